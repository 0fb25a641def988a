//! Where each field of a RON document is: a map from dotted paths (`cluster.instance_types[1].name`) to the
//! line on which the field's value starts, so that validation problems (found on the typed config, which has
//! no positions) can name their line.
//!
//! Conventions, matching the paths of `prescale_sim::scenario::Problem`: struct fields are `.name`; list
//! elements `[i]`; an enum variant's name adds nothing (`Synthetic(base_rate_per_s: …)` → `workload.
//! base_rate_per_s`), and neither does `Some(…)` or a newtype variant's single value (`Trace((path: …))`).
//! A bare tuple `( a, b )` numbers its elements `[i]`. The scanner is tolerant: on text it cannot follow it
//! stops and keeps what it found (serde reports syntax errors with positions of its own).

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Open(char),
    Close(char),
    Comma,
    Colon,
    Scalar,
}

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let (mut i, mut line) = (0usize, 1usize);
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < b.len() && !(b[i] == '*' && b.get(i + 1) == Some(&'/')) {
                    line += (b[i] == '\n') as usize;
                    i += 1;
                }
                i += 2;
            }
            '"' => {
                let start = line;
                i += 1;
                while i < b.len() && b[i] != '"' {
                    line += (b[i] == '\n') as usize;
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push((Tok::Scalar, start));
            }
            '\'' => {
                i += 1;
                while i < b.len() && b[i] != '\'' {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push((Tok::Scalar, line));
            }
            '(' | '[' | '{' => {
                out.push((Tok::Open(c), line));
                i += 1;
            }
            ')' | ']' | '}' => {
                out.push((Tok::Close(c), line));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            ':' => {
                out.push((Tok::Colon, line));
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let s = i;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
                let word: String = b[s..i].iter().collect();
                if word == "r" && b.get(i) == Some(&'#') {
                    // Raw string r#"…"#: skip to the closing quote-hash.
                    while i < b.len() && !(b[i] == '"' && b.get(i + 1) == Some(&'#')) {
                        line += (b[i] == '\n') as usize;
                        i += 1;
                    }
                    i += 2;
                    out.push((Tok::Scalar, line));
                } else {
                    out.push((Tok::Ident(word), line));
                }
            }
            _ => {
                // Numbers and anything else: one scalar token up to a delimiter.
                while i < b.len() && !b[i].is_whitespace() && !"()[]{},:".contains(b[i]) {
                    i += 1;
                }
                out.push((Tok::Scalar, line));
            }
        }
    }
    out
}

struct Walker {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    lines: HashMap<String, usize>,
}

impl Walker {
    fn peek(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |(_, l)| *l)
    }

    fn value(&mut self, path: &str) -> Option<()> {
        let line = self.line();
        self.lines.entry(path.to_string()).or_insert(line);
        match self.peek(0)?.clone() {
            Tok::Ident(_) if self.peek(1) == Some(&Tok::Open('(')) => {
                self.pos += 2;
                self.group(path, true)
            }
            Tok::Open('(') => {
                self.pos += 1;
                self.group(path, false)
            }
            Tok::Open('[') => {
                self.pos += 1;
                let mut i = 0;
                loop {
                    match self.peek(0)? {
                        Tok::Close(_) => {
                            self.pos += 1;
                            return Some(());
                        }
                        Tok::Comma => self.pos += 1,
                        _ => {
                            self.value(&format!("{path}[{i}]"))?;
                            i += 1;
                        }
                    }
                }
            }
            Tok::Open('{') => {
                self.pos += 1;
                loop {
                    match self.peek(0)? {
                        Tok::Close(_) => {
                            self.pos += 1;
                            return Some(());
                        }
                        Tok::Comma | Tok::Colon => self.pos += 1,
                        _ => self.value(&format!("{path}{{}}"))?,
                    }
                }
            }
            _ => {
                self.pos += 1;
                Some(())
            }
        }
    }

    /// Inside `(`: named fields, or positional values (transparent after a variant name, `[i]` otherwise).
    fn group(&mut self, path: &str, transparent: bool) -> Option<()> {
        let mut i = 0;
        loop {
            match self.peek(0)?.clone() {
                Tok::Close(_) => {
                    self.pos += 1;
                    return Some(());
                }
                Tok::Comma => self.pos += 1,
                Tok::Ident(field) if self.peek(1) == Some(&Tok::Colon) => {
                    self.pos += 2;
                    let p = if path.is_empty() { field } else { format!("{path}.{field}") };
                    self.value(&p)?;
                }
                _ => {
                    let p = if transparent { path.to_string() } else { format!("{path}[{i}]") };
                    self.value(&p)?;
                    i += 1;
                }
            }
        }
    }
}

/// Line of every value in `src`, by dotted path.
pub fn value_lines(src: &str) -> HashMap<String, usize> {
    let mut w = Walker { toks: tokenize(src), pos: 0, lines: HashMap::new() };
    let _ = w.value("");
    w.lines
}

/// The line of `path`, or of its nearest ancestor that the document has (a missing field is reported on
/// the line of the struct that lacks it).
pub fn line_of(lines: &HashMap<String, usize>, path: &str) -> Option<usize> {
    let mut p = path.to_string();
    loop {
        if let Some(&l) = lines.get(&p) {
            return Some(l);
        }
        let cut = p.rfind(['.', '['])?;
        p.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_lines() {
        let src = r#"// a scenario
Scenario(
    name: "x",
    workload: Synthetic(
        base_rate_per_s: 10.0,
        components: [
            Daily(amplitude: 0.3, peak_hour: 14.0),
            /* a flash crowd */
            FlashCrowd(
                start_s: 100.0,
            ),
        ],
    ),
    cluster: (
        instance_types: [(name: "a", price_usd_per_hour: -3)],
        failures: Some((mean_time_between_failures_s: 5.0)),
    ),
    pair: (1, "two"),
)"#;
        let l = value_lines(src);
        assert_eq!(l["name"], 3);
        assert_eq!(l["workload.base_rate_per_s"], 5);
        assert_eq!(l["workload.components[0].peak_hour"], 7);
        assert_eq!(l["workload.components[1].start_s"], 10);
        assert_eq!(l["cluster.instance_types[0].price_usd_per_hour"], 15);
        assert_eq!(l["cluster.failures.mean_time_between_failures_s"], 16);
        assert_eq!(l["pair[1]"], 18);
        assert_eq!(line_of(&l, "cluster.instance_types[0].max_count"), Some(15));
        assert_eq!(line_of(&l, "workload.components[1].decay_s"), Some(9));
    }
}
