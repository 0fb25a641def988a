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

use serde_json::{Value, json};

use super::{Forecast, NotEnoughHistory, Predictor};
use crate::child::{JsonChild, clip};

const KIND: &str = "predictor";

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

/// A predictor implemented by a child process (see the module documentation).
pub struct ExternalPredictor {
    step_s: f64,
    /// Steps observed so far.
    steps: usize,
    /// `forecast` takes `&self`; the exchange with the child changes state, which lives here.
    state: std::cell::RefCell<State>,
}

struct State {
    child: Option<JsonChild>,
    /// Values observed and not yet sent.
    pending: Vec<f64>,
    /// The first fault; once set, nothing more is asked.
    fault: Option<String>,
}

impl ExternalPredictor {
    /// Starts `command` (program and arguments) in `dir` and greets it; a failure to start or to greet
    /// becomes the predictor's fault (reported by the run), never a panic.
    pub fn start(command: &[String], dir: Option<&std::path::Path>, timeout_s: f64, hello: &Hello) -> Self {
        let greeting = json!({
            "prescale": "external-predictor",
            "protocol": 1,
            "signal": hello.signal,
            "step_s": hello.step_s,
            "seed": hello.seed,
            "start_unix_s": hello.start_unix_s,
        });
        let (child, fault) = match JsonChild::start(KIND, command, dir, timeout_s, &greeting) {
            Ok((c, _name)) => (Some(c), None),
            Err(e) => (None, Some(e)),
        };
        ExternalPredictor {
            step_s: hello.step_s,
            steps: 0,
            state: std::cell::RefCell::new(State { child, pending: Vec::new(), fault }),
        }
    }

    /// Asks for `horizon` steps, sending `observed`; `Ok(None)` is the child's `wait`.
    fn ask(&self, child: &mut JsonChild, observed: &[f64], horizon: usize) -> Result<Option<Forecast>, String> {
        let k = self.steps.saturating_sub(1);
        let at = format!("at step {k} (t = {} s)", k as f64 * self.step_s);
        let msg = json!({"step": k, "t_s": k as f64 * self.step_s, "observed": observed, "horizon": horizon});
        let v = child.ask(KIND, &msg, &at)?;
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
            child.fail(
                KIND,
                &at,
                &format!(
                    "expected {{\"mean\": [{horizon} numbers], \"sd\": [{horizon} numbers >= 0]}} or {{\"wait\": …}}: \
                     {why}; got '{}'",
                    clip(&v.to_string())
                ),
            )
        })
    }
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
        let Some(child) = st.child.as_mut() else { return Err(not_yet) };
        let answer = self.ask(child, &st.pending, horizon);
        // Sent: the next message carries only what is observed after this tick.
        st.pending.clear();
        match answer {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(not_yet),
            Err(e) => {
                st.fault = Some(e);
                st.child = None;
                broken
            }
        }
    }

    fn fault(&self) -> Option<String> {
        self.state.borrow().fault.clone()
    }
}
