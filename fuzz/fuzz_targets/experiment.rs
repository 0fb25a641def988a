//! Experiment files: any text through validation and expansion (`prescale validate`, before a sweep).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/fuzz.ron");
    let _ = prescale::lab::experiment::load_experiment_text(&file, text, std::path::Path::new("fuzz-results"));
});
