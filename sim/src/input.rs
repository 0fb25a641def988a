//! Rules every reader of user input shares: names that become folder names, and echoes of user text in
//! messages.
//!
//! A name given in a scenario, experiment or training file (or an experiment's controller name) becomes a
//! folder under the results root. [`name_problem`] refuses anything that could leave that root or collide
//! with prescale's own hidden folders: it must be 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters, digits,
//! `.`, `_` or `-`, and must not start with `.` (which also refuses `.` and `..`). [`clip`] shortens user text
//! echoed in an error so that a megabyte cell does not become a megabyte message.

/// Longest name, bytes (the usual file-name limit of Linux and macOS file systems).
pub const MAX_NAME_BYTES: usize = 255;

/// Why `name` cannot name a results folder, or `None` if it can (see the module docs).
pub fn name_problem(name: &str) -> Option<String> {
    const RULE: &str = "must be 1 to 255 bytes of letters, digits, '.', '_' or '-', not starting with '.' (it names a \
                        folder)";
    if name.is_empty() {
        return Some(format!("{RULE}, got an empty name"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!("{RULE}, got {} bytes", name.len()));
    }
    if name.starts_with('.') || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Some(format!("{RULE}, got '{}'", clip(name, 80)));
    }
    None
}

/// `text`, cut to at most `max_chars` characters with the number of characters left out, for messages.
pub fn clip(text: &str, max_chars: usize) -> String {
    let n = text.chars().count();
    if n <= max_chars {
        return text.to_string();
    }
    let head: String = text.chars().take(max_chars).collect();
    format!("{head}… ({} more characters)", n - max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_results_root_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "é", "a b", &"x".repeat(256)] {
            assert!(name_problem(bad).is_some(), "accepted {bad:?}");
        }
        for good in ["flash-crowd", "v1.2", "a_b", &"x".repeat(255)] {
            assert_eq!(name_problem(good), None, "refused {good:?}");
        }
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééééé", 2), "éé… (3 more characters)");
    }
}
