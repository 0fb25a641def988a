//! Scenario files: any text through the reader, validation and preparation `prescale validate` and `run` use,
//! and the sizing `prescale validate` prints. No input may panic; an accepted scenario prepares or says why not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Anchored in the repository's scenarios folder, so that relative trace paths can resolve.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/fuzz.ron");
    if let Ok(loaded) = prescale::files::scenario_io::load_scenario_text(&file, text) {
        if let Ok(prepared) = loaded.prepare(loaded.config.seed) {
            let _ = prepared.sizing().map(|s| (s.summary(), s.warnings()));
        }
    }
});
