//! A child process spoken to in JSON lines: one object per line each way, prescale writing first. The core of
//! the external predictor (`predictor::external`) and the external controller (`external`); the protocols are
//! stated in `examples/external/README.md`.
//!
//! No threads: answers are awaited with `poll(2)` on the child's stdout, up to a timeout; its stderr goes to a
//! temporary file whose last lines are quoted when it fails. Every failure — it cannot be started, exits, does
//! not answer in time, answers a line that is not one JSON object — is a message naming the command, where in
//! the run it happened and what was received; the process is stopped then.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest answer line accepted, bytes.
const MAX_LINE: usize = 1 << 20;

/// A running child process.
pub(crate) struct JsonChild {
    command: Vec<String>,
    timeout: Duration,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    buf: Vec<u8>,
    /// Where its stderr goes: an anonymous temporary file (no name anywhere, so nothing can be planted in its
    /// place and nothing stays behind when prescale is killed); only its last bytes are ever read.
    stderr_file: std::fs::File,
}

/// The most of a child's stderr a fault message quotes (its end), bytes.
const STDERR_TAIL_BYTES: u64 = 600;

/// `command` as the messages show it.
pub(crate) fn describe(kind: &str, command: &[String]) -> String {
    format!("external {kind} `{}`", command.join(" "))
}

/// `s`, cut to 200 characters for a message (the project's one rule for echoing input).
pub(crate) fn clip(s: &str) -> String {
    prescale_sim::input::clip(s, 200)
}

impl JsonChild {
    /// Starts `command` in `dir`, sends `greeting` and reads the answer, which must name the child
    /// (`{"name": "..."}`, 1–64 characters). `kind` ("predictor", "controller") is for messages.
    pub(crate) fn start(
        kind: &str,
        command: &[String],
        dir: Option<&Path>,
        timeout_s: f64,
        greeting: &Value,
    ) -> Result<(JsonChild, String), String> {
        let what = describe(kind, command);
        let (program, args) = command.split_first().ok_or(format!("{what}: an empty command"))?;
        // Unnamed from the start (O_TMPFILE, or an exclusive create under a random name unlinked at once).
        let stderr_file =
            tempfile::tempfile().map_err(|e| format!("{what}: cannot create a temporary file for its stderr: {e}"))?;
        let err_out =
            stderr_file.try_clone().map_err(|e| format!("{what}: cannot hand its stderr a temporary file: {e}"))?;
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
            format!("{what}: cannot start it{}: {e}", dir.map(|d| format!(" in {}", d.display())).unwrap_or_default())
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut me = JsonChild {
            command: command.to_vec(),
            timeout: Duration::from_secs_f64(timeout_s.clamp(0.001, 86_400.0)),
            child,
            stdin,
            stdout,
            buf: Vec::new(),
            stderr_file,
        };
        let answer = me.ask(kind, greeting, "at start-up")?;
        match answer.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n.chars().count() <= 64 => Ok((me, n.to_string())),
            _ => Err(me.fail(
                kind,
                "at start-up",
                &format!("expected {{\"name\": \"...\"}} (1-64 characters), got {}", clip(&answer.to_string())),
            )),
        }
    }

    /// Sends `msg` and reads one answer line as a JSON object (`at`: where in the run, for messages).
    pub(crate) fn ask(&mut self, kind: &str, msg: &Value, at: &str) -> Result<Value, String> {
        let mut line = msg.to_string();
        line.push('\n');
        let sent = self.stdin.as_mut().map(|s| s.write_all(line.as_bytes()).and_then(|_| s.flush()));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.fail(kind, at, "it no longer reads its input (exited?)"));
        }
        let text = self.read_line(kind, at)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(self.fail(kind, at, &format!("expected one JSON object per line, got '{}'", clip(&text)))),
        }
    }

    /// One line of the child's stdout, waiting at most the timeout.
    fn read_line(&mut self, kind: &str, at: &str) -> Result<String, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).trim_end_matches('\r').to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(self.fail(kind, at, &format!("an answer line longer than {MAX_LINE} bytes")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let t = self.timeout.as_secs_f64();
                return Err(self.fail(kind, at, &format!("no answer within {t} s (timeout_s)")));
            }
            let mut fds = libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fds, 1, ms) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.fail(kind, at, &format!("poll failed: {e}")));
            }
            if ready == 0 {
                continue; // the deadline check above ends it
            }
            let mut chunk = [0u8; 8192];
            match self.stdout.read(&mut chunk) {
                Ok(0) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    let partial = if self.buf.is_empty() {
                        String::new()
                    } else {
                        format!(" after '{}'", clip(&String::from_utf8_lossy(&self.buf)))
                    };
                    return Err(self.fail(kind, at, &format!("it exited ({status}){partial}")));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(kind, at, &format!("reading its output failed: {e}"))),
            }
        }
    }

    /// The fault message (the process is stopped): the command, where, what, and its stderr's last lines.
    pub(crate) fn fail(&mut self, kind: &str, at: &str, what: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The end only, read in place (`pread`: the child's file offset is shared and left alone), whatever
        // the size of what it wrote.
        use std::os::unix::fs::FileExt as _;
        let len = self.stderr_file.metadata().map_or(0, |m| m.len());
        let from = len.saturating_sub(STDERR_TAIL_BYTES);
        let mut b = vec![0u8; (len - from) as usize];
        let n = self.stderr_file.read_at(&mut b, from).unwrap_or(0);
        let s = String::from_utf8_lossy(&b[..n]).trim().to_string();
        let tail = if s.is_empty() { String::new() } else { format!("; its stderr ends: {}", s.replace('\n', " | ")) };
        format!("{} {at}: {what}{tail}", describe(kind, &self.command))
    }
}

impl Drop for JsonChild {
    fn drop(&mut self) {
        // End of the run (or a failure): close its input, give it a moment to exit, then stop it.
        drop(self.stdin.take());
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
