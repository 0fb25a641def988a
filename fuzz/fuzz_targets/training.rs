//! Training files: any text through validation (`prescale validate`, before `prescale train`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../training/fuzz.ron");
    let _ = prescale::neural::train::load_train_text(&file, text);
});
