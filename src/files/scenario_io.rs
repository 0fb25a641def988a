//! Scenario files on disk: reading RON (with line numbers for every problem), loading the trace a scenario
//! replays (plain or gzip CSV), and preparing the run. All I/O of scenarios happens here, in the front end;
//! `prescale-sim` receives text and values.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use prescale_agents::ControllerConfig;
use prescale_sim::scenario::{self, ControllerSpec, Problem, WorkloadConfig, prepare};

/// A scenario as prescale reads it: any controller of `prescale-agents`.
pub type ScenarioConfig = scenario::ScenarioConfig<ControllerConfig>;
/// A prepared scenario with any controller of `prescale-agents`.
pub type Prepared = scenario::Prepared<ControllerConfig>;
use prescale_sim::trace::{Trace, parse_csv};

use crate::files::ron_paths::{line_of, value_lines};

/// One problem with a scenario or its trace, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file concerned.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, when one is concerned.
    pub path: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(p) = &self.path {
            write!(f, ": {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every diagnostic, one per line, as one error (how the front ends report a file's problems).
pub fn diagnostics_error(diags: &[Diagnostic]) -> anyhow::Error {
    anyhow::anyhow!("{}", diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))
}

/// A scenario read from a file (or embedded text), with its trace loaded if it replays one.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Where it came from (for messages; a name for embedded scenarios).
    pub file: PathBuf,
    /// The config as written.
    pub config: ScenarioConfig,
    /// The trace, for a trace workload.
    pub trace: Option<Trace>,
    /// Line of each field, for later problems.
    lines: std::collections::HashMap<String, usize>,
}

impl Loaded {
    /// Prepares the run with `seed` (validation that needs the trace happens here).
    pub fn prepare(&self, seed: u64) -> Result<Prepared, Vec<Diagnostic>> {
        prepare(self.config.clone(), self.trace.as_ref(), seed).map_err(|ps| self.place(ps))
    }

    fn place(&self, problems: Vec<Problem>) -> Vec<Diagnostic> {
        place_problems(&self.file, &self.lines, problems)
    }
}

/// Places the problems of any file (dotted paths from its root) at their lines.
pub fn place_problems(
    file: &Path,
    lines: &std::collections::HashMap<String, usize>,
    problems: Vec<Problem>,
) -> Vec<Diagnostic> {
    problems
        .into_iter()
        .map(|p| Diagnostic {
            file: file.to_path_buf(),
            line: line_of(lines, &p.path),
            path: Some(p.path),
            message: p.message,
        })
        .collect()
}

/// RON as prescale reads it: `Some(…)` may be left out around optional values, and a variant holding one
/// struct may be written `Trace(path: …)` instead of `Trace((path: …))`.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    )
}

/// Reads and checks a scenario file, and loads its trace.
///
/// # Errors
/// Every problem found: a syntax or type error (one, with its line: the parser stops there), or every
/// validation problem with its path and line, or the trace's first problem with its file and line.
pub fn load_scenario(file: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_scenario_text(file, &read_text(file)?)
}

/// Largest text file prescale reads (a scenario, experiment or training file, or a trace after
/// decompression), bytes.
pub const MAX_TEXT_BYTES: u64 = 256 << 20;

/// Reads a text file (a UTF-8 byte-order mark at its start is dropped), or says why not: unreadable, larger
/// than [`MAX_TEXT_BYTES`], or not UTF-8 (with the line of the first bad byte).
pub fn read_text(file: &Path) -> Result<String, Vec<Diagnostic>> {
    let diag =
        |line: Option<usize>, message: String| vec![Diagnostic { file: file.to_path_buf(), line, path: None, message }];
    let raw = read_capped(file, "").map_err(|m| diag(None, m))?;
    utf8_text(raw).map_err(|(line, m)| diag(Some(line), m))
}

/// The bytes of `file` (`what` it is, for messages: "" or " trace"), or why not: unreadable, or larger than
/// [`MAX_TEXT_BYTES`] (checked before reading).
fn read_capped(file: &Path, what: &str) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(file).map_err(|e| format!("cannot read{what}: {e}"))?.len();
    if size > MAX_TEXT_BYTES {
        return Err(format!("the{what} file is {size} bytes, more than prescale reads ({MAX_TEXT_BYTES})"));
    }
    std::fs::read(file).map_err(|e| format!("cannot read{what}: {e}"))
}

/// `raw` as text without a leading byte-order mark, or the line of its first byte that is not UTF-8.
fn utf8_text(raw: Vec<u8>) -> Result<String, (usize, String)> {
    match String::from_utf8(raw) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            Ok(s)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            let col = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
            Err((line, format!("not UTF-8 text: byte 0x{:02x} at column {col} (save the file as UTF-8)", bytes[at])))
        }
    }
}

/// Parses RON text as prescale reads it ([`ron_options`]); a syntax or type error names its line and column.
pub fn parse_ron<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, Vec<Diagnostic>> {
    // A byte-order mark (text given directly; files lose theirs in `read_text`) is not RON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    ron_options().from_str(text).map_err(|e| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: Some(e.span.start.line),
            path: None,
            message: format!("{} (column {})", e.code, e.span.start.col),
        }]
    })
}

/// Like [`load_scenario`], from text (`file` names it and anchors a relative trace path).
pub fn load_scenario_text(file: &Path, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let mut config: ScenarioConfig = parse_ron(file, text)?;
    // Model directories are named relative to the scenario file.
    let base = file.parent().unwrap_or(Path::new("."));
    config.controller.resolve_paths(base);
    if let Some(s) = &mut config.shadow {
        s.resolve_paths(base);
    }
    let lines = value_lines(text);
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(place_problems(file, &lines, problems));
    }
    let trace = match &config.workload {
        WorkloadConfig::Trace(t) => {
            let trace_file = file.parent().unwrap_or(Path::new(".")).join(&t.path);
            let columns = config.trace_columns();
            let loaded = read_trace(&trace_file, &t.timestamp_column, &columns, &t.policies).map_err(|mut d| {
                d.message = format!(
                    "{} (workload.path at {}:{})",
                    d.message,
                    file.display(),
                    line_of(&lines, "workload.path").unwrap_or(0)
                );
                vec![d]
            })?;
            Some(loaded)
        }
        WorkloadConfig::Synthetic { .. } => None,
    };
    // The resolved scenario (written beside results) names the trace by its absolute path, so that it
    // replays from anywhere.
    if let WorkloadConfig::Trace(t) = &mut config.workload {
        let trace_file = file.parent().unwrap_or(Path::new(".")).join(&t.path);
        if let Ok(abs) = trace_file.canonicalize() {
            t.path = abs.display().to_string();
        }
    }
    Ok(Loaded { file: file.to_path_buf(), config, trace, lines })
}

/// Reads a CSV trace (gzip-compressed if the name ends in `.gz`) and parses the given columns.
///
/// # Errors
/// A diagnostic naming the trace file, and the line and column where the problem is.
pub fn read_trace(
    file: &Path,
    time_column: &str,
    columns: &[String],
    policies: &prescale_sim::trace::TracePolicies,
) -> Result<Trace, Diagnostic> {
    parse_trace_text(file, &read_trace_text(file)?, time_column, columns, policies)
}

/// The text of a trace file (gzip-compressed if the name ends in `.gz`), size-capped and checked to be UTF-8.
///
/// # Errors
/// A diagnostic naming the file (and the line of the first byte that is not UTF-8).
pub fn read_trace_text(file: &Path) -> Result<String, Diagnostic> {
    let diag =
        |line: Option<usize>, message: String| Diagnostic { file: file.to_path_buf(), line, path: None, message };
    let raw = read_capped(file, " trace").map_err(|m| diag(None, m))?;
    let raw = if file.extension().is_some_and(|e| e == "gz") {
        // Decompressed size is capped: a small file must not expand into gigabytes of memory.
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(MAX_TEXT_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| diag(None, format!("cannot decompress (gzip): {e}")))?;
        if out.len() as u64 > MAX_TEXT_BYTES {
            return Err(diag(
                None,
                format!("decompresses to more than {MAX_TEXT_BYTES} bytes, more than prescale reads"),
            ));
        }
        out
    } else {
        raw
    };
    utf8_text(raw).map_err(|(line, m)| diag(Some(line), m))
}

/// Parses the text of the trace `file` (as [`read_trace`]).
///
/// # Errors
/// A diagnostic naming the file, and the line and column where the problem is.
pub fn parse_trace_text(
    file: &Path,
    text: &str,
    time_column: &str,
    columns: &[String],
    policies: &prescale_sim::trace::TracePolicies,
) -> Result<Trace, Diagnostic> {
    parse_csv(text, time_column, columns, policies).map_err(|e| Diagnostic {
        file: file.to_path_buf(),
        line: (e.line > 0).then_some(e.line),
        path: None,
        message: e.to_string_without_line(),
    })
}

/// Formats a trace error without its line (the diagnostic carries it).
trait WithoutLine {
    fn to_string_without_line(&self) -> String;
}

impl WithoutLine for prescale_sim::trace::TraceError {
    fn to_string_without_line(&self) -> String {
        match &self.column {
            Some(c) => format!("column '{c}': {}", self.message),
            None => self.message.clone(),
        }
    }
}
