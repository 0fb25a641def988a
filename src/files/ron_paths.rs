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

/// A token with its line and byte range in the source.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    start: usize,
    end: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let b: Vec<char> = chars.iter().map(|&(_, c)| c).collect();
    let byte = |i: usize| chars.get(i).map_or(src.len(), |&(o, _)| o);
    let (mut i, mut line) = (0usize, 1usize);
    let mut out: Vec<Token> = Vec::new();
    let push = |tok: Tok, line: usize, from: usize, to: usize, out: &mut Vec<Token>| {
        out.push(Token { tok, line, start: byte(from), end: byte(to) });
    };
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
                let (start, from) = (line, i);
                i += 1;
                while i < b.len() && b[i] != '"' {
                    line += (b[i] == '\n') as usize;
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                push(Tok::Scalar, start, from, i, &mut out);
            }
            '\'' => {
                let from = i;
                i += 1;
                while i < b.len() && b[i] != '\'' {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                push(Tok::Scalar, line, from, i, &mut out);
            }
            '(' | '[' | '{' => {
                push(Tok::Open(c), line, i, i + 1, &mut out);
                i += 1;
            }
            ')' | ']' | '}' => {
                push(Tok::Close(c), line, i, i + 1, &mut out);
                i += 1;
            }
            ',' => {
                push(Tok::Comma, line, i, i + 1, &mut out);
                i += 1;
            }
            ':' => {
                push(Tok::Colon, line, i, i + 1, &mut out);
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
                    push(Tok::Scalar, line, s, i, &mut out);
                } else {
                    push(Tok::Ident(word), line, s, i, &mut out);
                }
            }
            _ => {
                // Numbers and anything else: one scalar token up to a delimiter.
                let from = i;
                while i < b.len() && !b[i].is_whitespace() && !"()[]{},:".contains(b[i]) {
                    i += 1;
                }
                push(Tok::Scalar, line, from, i, &mut out);
            }
        }
    }
    out
}

/// Where a value is: its first line and its byte range; for a parenthesised group, also the byte offset of
/// its closing parenthesis (where a missing field can be inserted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// 1-based line of the value's first token.
    pub line: usize,
    /// Byte offset of the value's start.
    pub start: usize,
    /// Byte offset just past the value's end.
    pub end: usize,
    /// Byte offset of the closing `)` of a group value.
    pub close: Option<usize>,
}

struct Walker {
    toks: Vec<Token>,
    pos: usize,
    spans: HashMap<String, Span>,
    depth: usize,
}

/// Deepest nesting followed (the ron crate's own default limit): deeper text ends the walk, so that a
/// hostile file can neither overflow the stack nor make paths (and the time to build them) grow without bound.
const MAX_DEPTH: usize = 128;

impl Walker {
    fn peek(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |t| t.line)
    }

    fn value(&mut self, path: &str) -> Option<()> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let line = self.line();
        let start = self.toks.get(self.pos).map_or(0, |t| t.start);
        self.depth += 1;
        let r = self.value_inner(path);
        self.depth -= 1;
        let end = self.toks.get(self.pos.saturating_sub(1)).map_or(start, |t| t.end);
        let close = match self.toks.get(self.pos.saturating_sub(1)) {
            Some(Token { tok: Tok::Close(')'), start, .. }) => Some(*start),
            _ => None,
        };
        // The outer value wins over a transparent inner one (`Some(x)`, a variant's single value).
        self.spans.insert(path.to_string(), Span { line, start, end, close });
        r
    }

    fn value_inner(&mut self, path: &str) -> Option<()> {
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

/// Where every value of `src` is, by dotted path (values the scanner could not follow are left out).
pub fn value_spans(src: &str) -> HashMap<String, Span> {
    let mut w = Walker { toks: tokenize(src), pos: 0, spans: HashMap::new(), depth: 0 };
    // A value the scanner cannot follow ends the walk; what was found is kept.
    if w.value("").is_none() {
        w.spans.retain(|_, s| s.end >= s.start);
    }
    w.spans
}

/// Line of every value in `src`, by dotted path.
pub fn value_lines(src: &str) -> HashMap<String, usize> {
    value_spans(src).into_iter().map(|(p, s)| (p, s.line)).collect()
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

/// Applies `value` (RON text) at `path` of the scenario text `src`: replaces the value there, or inserts the
/// field into its parent struct. `None` if neither the path nor its parent is in the text.
pub fn set_path(src: &str, path: &str, value: &str) -> Option<String> {
    let spans = value_spans(src);
    if let Some(Span { start, end, .. }) = spans.get(path) {
        return Some(format!("{}{value}{}", &src[..*start], &src[*end..]));
    }
    let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
    if field.contains('[') {
        return None; // a list element that does not exist
    }
    let close = spans.get(parent)?.close?;
    let before = src[..close].trim_end();
    let sep = if before.ends_with('(') || before.ends_with(',') { "" } else { ", " };
    Some(format!("{before}{sep}{field}: {value}, {}", &src[close..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_replaces_and_inserts() {
        let src = "Scenario(\n  name: \"x\",\n  cluster: (quota: (cpu_cores: 3), scaling_type: \"m\"),\n  slo: (latency_quantile: 0.99)\n)";
        let t = set_path(src, "cluster.quota.cpu_cores", "40").unwrap();
        assert!(t.contains("quota: (cpu_cores: 40)"), "{t}");
        let t = set_path(src, "slo.latency_threshold_s", "0.25").unwrap();
        assert!(t.contains("slo: (latency_quantile: 0.99, latency_threshold_s: 0.25, )"), "{t}");
        assert!(set_path(src, "nowhere.at_all", "1").is_none());
        assert!(set_path(src, "cluster.instance_types[3].name", "\"a\"").is_none());
    }

    #[test]
    fn deep_nesting_ends_the_walk_without_overflowing_the_stack() {
        let deep = format!("S(a: {}1{})", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let spans = value_spans(&deep);
        assert!(spans.contains_key("a") && spans.len() <= MAX_DEPTH + 1, "{}", spans.len());
    }

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
        let spans = value_spans(src);
        let price = spans["cluster.instance_types[0].price_usd_per_hour"];
        assert_eq!(&src[price.start..price.end], "-3");
        let crowd = spans["workload.components[1]"];
        assert!(src[crowd.start..crowd.end].starts_with("FlashCrowd(") && src[crowd.start..crowd.end].ends_with(')'));
        assert_eq!(&src[crowd.close.unwrap()..crowd.close.unwrap() + 1], ")");
    }

    #[test]
    fn byte_offsets_survive_non_ascii_text() {
        let src = "// ≥ 0 — π\n(a: \"ü\", b: Some(2.5))";
        let spans = value_spans(src);
        assert_eq!(&src[spans["b"].start..spans["b"].end], "Some(2.5)");
        assert_eq!(&src[spans["a"].start..spans["a"].end], "\"ü\"");
    }
}
