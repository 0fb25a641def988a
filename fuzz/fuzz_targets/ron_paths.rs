//! The tolerant RON path scanner: spans must lie on character boundaries inside the text, and applying an
//! axis value at any path it reports (what an experiment does) must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale::files::ron_paths::{value_lines, value_spans};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let spans = value_spans(text);
    let lines = value_lines(text);
    for (path, s) in &spans {
        assert!(s.start <= s.end && s.end <= text.len(), "{path}: {s:?}");
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end), "{path}: {s:?}");
        if let Some(c) = s.close {
            assert!(c <= text.len() && text.is_char_boundary(c), "{path}: {s:?}");
        }
        assert!(lines.contains_key(path));
    }
    // One replacement and one insertion, at the first path in order (HashMap order would make runs
    // irreproducible).
    if let Some(path) = spans.keys().min() {
        let _ = prescale::files::ron_paths::set_path(text, path, "1");
        let _ = prescale::files::ron_paths::set_path(text, &format!("{path}.new_field"), "(a: 1)");
    }
});
