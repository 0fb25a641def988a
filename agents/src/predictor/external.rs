//! A predictor outside Rust: a child process speaking JSON lines on stdin/stdout (`examples/external/README.md`
//! states the protocol; Python predictors and a helper module are beside it).
//!
//! ```text
//! prescale → {"prescale":"external-predictor","protocol":1,"signal":"requests_per_s","step_s":60,"seed":1,"start_unix_s":0}
//! child    → {"name":"autoets"}
//! prescale → {"step":0,"t_s":0,"observed":[812.0],"horizon":5}          (one line per control tick)
//! child    → {"mean":[…5 numbers…],"sd":[…5 numbers…]}   or   {"wait":"needs 60 steps of history"}
//! …                                                                   (stdin closed at the end of the run)
//! ```
//!
//! `observed` holds the values seen since the previous message (one per step, in order), so the child keeps
//! its own history and each tick costs one short line each way. `wait` is "not enough history yet": the
//! controller uses its reactive rule for that tick, as for a built-in predictor. Everything else the child
//! does wrong — exiting, answering later than the timeout, a line that is not such an object, a number that is
//! NaN, infinite or (for `sd`) negative, the wrong count — is a fault: the predictor stops asking (the
//! controller holds the fleet) and the run fails with the step, the command and what was received.
//!
//! No threads: answers are awaited with `poll(2)` on the child's stdout; its stderr goes to a temporary file whose
//! last lines are quoted when it fails.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Forecast, NotEnoughHistory, Predictor};

/// Longest answer line accepted, bytes.
const MAX_LINE: usize = 1 << 20;

/// What the child is told at start-up.
#[derive(Clone, Debug)]
pub struct Hello {
    /// The signal it forecasts: `requests_per_s` or `memory_gib`.
    pub signal: &'static str,
    /// Control step, seconds.
    pub step_s: f64,
    /// The run's seed (a deterministic child gives the same answers for the same seed).
    pub seed: u64,
    /// Wall-clock time of the run's first step (UNIX seconds; 0 for synthetic workloads).
    pub start_unix_s: f64,
}

/// A running child process and its protocol state.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    buf: Vec<u8>,
    stderr_file: std::path::PathBuf,
}

/// A predictor implemented by a child process (see the module documentation).
pub struct ExternalPredictor {
    command: Vec<String>,
    timeout: Duration,
    step_s: f64,
    /// Steps observed so far.
    steps: usize,
    /// `forecast` takes `&self`; the exchange with the child changes state, which lives here.
    state: std::cell::RefCell<State>,
}

struct State {
    process: Option<Process>,
    /// Values observed and not yet sent.
    pending: Vec<f64>,
    /// The first fault; once set, nothing more is asked.
    fault: Option<String>,
}

impl ExternalPredictor {
    /// Starts `command` (program and arguments) in `dir` and greets it; a failure to start or to greet
    /// becomes the predictor's fault (reported by the run), never a panic.
    pub fn start(command: &[String], dir: Option<&std::path::Path>, timeout_s: f64, hello: &Hello) -> Self {
        let me = ExternalPredictor {
            command: command.to_vec(),
            timeout: Duration::from_secs_f64(timeout_s.clamp(0.001, 86_400.0)),
            step_s: hello.step_s,
            steps: 0,
            state: std::cell::RefCell::new(State { process: None, pending: Vec::new(), fault: None }),
        };
        let started = me.spawn(dir, hello);
        {
            let mut st = me.state.borrow_mut();
            match started {
                Ok(p) => st.process = Some(p),
                Err(e) => st.fault = Some(e),
            }
        }
        me
    }

    fn describe(&self) -> String {
        format!("external predictor `{}`", self.command.join(" "))
    }

    fn spawn(&self, dir: Option<&std::path::Path>, hello: &Hello) -> Result<Process, String> {
        let (program, args) = self.command.split_first().ok_or("an empty command")?;
        let stderr_file = std::env::temp_dir().join(format!(
            "prescale-external-{}-{}.stderr",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let err_out = std::fs::File::create(&stderr_file)
            .map_err(|e| format!("{}: cannot create {}: {e}", self.describe(), stderr_file.display()))?;
        // A program named by a path is found in the child's folder (not this process's).
        let program = match dir {
            Some(d) if program.contains('/') => d.join(program).display().to_string(),
            _ => program.clone(),
        };
        let mut cmd = Command::new(&program);
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(err_out);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_file(&stderr_file);
            format!(
                "{}: cannot start it{}: {e}",
                self.describe(),
                dir.map(|d| format!(" in {}", d.display())).unwrap_or_default()
            )
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut p = Process { child, stdin, stdout, buf: Vec::new(), stderr_file };
        let greeting = json!({
            "prescale": "external-predictor",
            "protocol": 1,
            "signal": hello.signal,
            "step_s": hello.step_s,
            "seed": hello.seed,
            "start_unix_s": hello.start_unix_s,
        });
        let answer = self.exchange(&mut p, &greeting, "at start-up")?;
        match answer.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n.len() <= 64 => {}
            _ => {
                return Err(self.fail(
                    &mut p,
                    "at start-up",
                    &format!("expected {{\"name\": \"...\"}} (1-64 characters), got {}", clip(&answer.to_string())),
                ));
            }
        }
        Ok(p)
    }

    /// Sends `msg` and reads one answer line as JSON.
    fn exchange(&self, p: &mut Process, msg: &Value, at: &str) -> Result<Value, String> {
        let mut line = msg.to_string();
        line.push('\n');
        let sent = p.stdin.as_mut().map(|s| s.write_all(line.as_bytes()).and_then(|_| s.flush()));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.fail(p, at, "it no longer reads its input (exited?)"));
        }
        let text = self.read_line(p, at)?;
        serde_json::from_str::<Value>(&text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| self.fail(p, at, &format!("expected one JSON object per line, got '{}'", clip(&text))))
    }

    /// One line of the child's stdout, waiting at most the timeout.
    fn read_line(&self, p: &mut Process, at: &str) -> Result<String, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(i) = p.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = p.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).trim_end_matches('\r').to_string());
            }
            if p.buf.len() > MAX_LINE {
                return Err(self.fail(p, at, &format!("an answer line longer than {MAX_LINE} bytes")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(
                    p,
                    at,
                    &format!("no answer within {} s (timeout_s)", self.timeout.as_secs_f64()),
                ));
            }
            let mut fds = libc::pollfd { fd: p.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fds, 1, ms) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.fail(p, at, &format!("poll failed: {e}")));
            }
            if ready == 0 {
                continue; // the deadline check above ends it
            }
            let mut chunk = [0u8; 8192];
            match p.stdout.read(&mut chunk) {
                Ok(0) => {
                    let status = p.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    let partial = if p.buf.is_empty() {
                        String::new()
                    } else {
                        format!(" after '{}'", clip(&String::from_utf8_lossy(&p.buf)))
                    };
                    return Err(self.fail(p, at, &format!("it exited ({status}){partial}")));
                }
                Ok(n) => p.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(p, at, &format!("reading its output failed: {e}"))),
            }
        }
    }

    /// The fault message (and the process stopped): the command, where, what, and its stderr's last lines.
    fn fail(&self, p: &mut Process, at: &str, what: &str) -> String {
        let _ = p.child.kill();
        let _ = p.child.wait();
        let tail = std::fs::read(&p.stderr_file)
            .map(|b| {
                let s = String::from_utf8_lossy(&b[b.len().saturating_sub(600)..]).trim().to_string();
                if s.is_empty() { String::new() } else { format!("; its stderr ends: {}", s.replace('\n', " | ")) }
            })
            .unwrap_or_default();
        let _ = std::fs::remove_file(&p.stderr_file);
        format!("{} {at}: {what}{tail}", self.describe())
    }

    /// Asks for `horizon` steps, sending `observed`; `Ok(None)` is the child's `wait`.
    fn ask(&self, p: &mut Process, observed: &[f64], horizon: usize) -> Result<Option<Forecast>, String> {
        let k = self.steps.saturating_sub(1);
        let at = format!("at step {k} (t = {} s)", k as f64 * self.step_s);
        let msg = json!({"step": k, "t_s": k as f64 * self.step_s, "observed": observed, "horizon": horizon});
        let v = self.exchange(p, &msg, &at)?;
        if v.get("wait").is_some() {
            return Ok(None);
        }
        let numbers = |key: &str| -> Result<Vec<f64>, String> {
            let arr = v.get(key).and_then(Value::as_array).ok_or(format!("no '{key}' list"))?;
            if arr.len() != horizon {
                return Err(format!("'{key}' has {} values, {horizon} were asked for", arr.len()));
            }
            arr.iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_f64().filter(|f| f.is_finite()).ok_or(format!("{key}[{i}] is {x}, not a finite number"))
                })
                .collect()
        };
        let parsed = numbers("mean").and_then(|mean| {
            let sd = numbers("sd")?;
            if let Some(i) = sd.iter().position(|s| *s < 0.0) {
                return Err(format!("sd[{i}] is {} (< 0)", sd[i]));
            }
            Ok(Forecast { mean, sd })
        });
        parsed.map(Some).map_err(|why| {
            self.fail(
                p,
                &at,
                &format!(
                    "expected {{\"mean\": [{horizon} numbers], \"sd\": [{horizon} numbers >= 0]}} or {{\"wait\": …}}: {why}; got '{}'",
                    clip(&v.to_string())
                ),
            )
        })
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn clip(s: &str) -> String {
    if s.chars().count() <= 200 { s.to_string() } else { format!("{}…", s.chars().take(200).collect::<String>()) }
}

impl Predictor for ExternalPredictor {
    fn name(&self) -> &'static str {
        "external"
    }

    fn min_history(&self) -> usize {
        1
    }

    fn observe(&mut self, y: f64) {
        self.state.get_mut().pending.push(y);
        self.steps += 1;
    }

    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        let not_yet = NotEnoughHistory { have: self.steps, need: self.steps + 1 };
        // A broken child: a non-finite forecast makes the controller hold the fleet; the run fails with the fault.
        let broken = Ok(Forecast { mean: vec![f64::NAN; horizon], sd: vec![f64::NAN; horizon] });
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if st.fault.is_some() {
            return broken;
        }
        let Some(p) = st.process.as_mut() else { return Err(not_yet) };
        let answer = self.ask(p, &st.pending, horizon);
        // Sent: the next message carries only what is observed after this tick.
        st.pending.clear();
        match answer {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(not_yet),
            Err(e) => {
                st.fault = Some(e);
                st.process = None;
                broken
            }
        }
    }

    fn fault(&self) -> Option<String> {
        self.state.borrow().fault.clone()
    }
}

impl Drop for ExternalPredictor {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(mut p) = st.process.take() {
            // End of the run: close its input, give it a moment to exit, then stop it.
            drop(p.stdin.take());
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(2) {
                if matches!(p.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
            let _ = std::fs::remove_file(&p.stderr_file);
        }
    }
}
