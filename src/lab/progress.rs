//! Progress of long front-end work (training, forecast evaluation): a live bar on a terminal, and when
//! standard error is not a terminal (a log file, CI, a notebook cell) periodic plain lines with the latest
//! figures, elapsed time and an estimate of what is left, so a long job is never silent.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between plain progress lines (`PRESCALE_PROGRESS_EVERY_S` overrides, e.g. 0 for every update).
const DEFAULT_EVERY_S: f64 = 10.0;

/// A progress report over `total` units (epochs).
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Lines>,
    total: u64,
    what: String,
    unit: &'static str,
}

struct Lines {
    start: Instant,
    last: Option<Instant>,
    every: Duration,
}

impl Progress {
    /// Nothing when `quiet`; a bar on a terminal; otherwise plain lines to standard error, prefixed `[what]`.
    pub fn new(quiet: bool, total: u64, what: &str, unit: &'static str) -> Self {
        let (bar, lines) = if quiet {
            (None, None)
        } else if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} (eta {{eta}})"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(what.to_string());
            (Some(b), None)
        } else {
            let every = std::env::var("PRESCALE_PROGRESS_EVERY_S")
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(DEFAULT_EVERY_S);
            (None, Some(Lines { start: Instant::now(), last: None, every: Duration::from_secs_f64(every) }))
        };
        Progress { bar, lines, total, what: what.to_string(), unit }
    }

    /// `pos` of the total done; `figures` says how it goes (losses). A plain line is printed when one is due
    /// and always for the last unit.
    pub fn update(&mut self, pos: u64, figures: &str) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            b.set_message(format!("{} {figures}", self.what));
        }
        if let Some(l) = &mut self.lines {
            let now = Instant::now();
            let due = l.last.is_none_or(|t| now.duration_since(t) >= l.every) || pos >= self.total;
            if due {
                l.last = Some(now);
                let elapsed = now.duration_since(l.start).as_secs_f64();
                let left =
                    if pos > 0 { elapsed / pos as f64 * self.total.saturating_sub(pos) as f64 } else { f64::NAN };
                eprintln!(
                    "[{}] {} {pos}/{} ({figures}); {elapsed:.0} s elapsed, about {left:.0} s left",
                    self.what, self.unit, self.total
                );
            }
        }
    }

    /// A line of its own (a DAgger round, a finished model), above the bar or as a plain line.
    pub fn println(&self, line: String) {
        match (&self.bar, &self.lines) {
            (Some(b), _) => b.println(line),
            (None, Some(_)) => eprintln!("[{}] {line}", self.what),
            (None, None) => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
