//! A controller outside Rust: a child process that receives each tick's observation and answers the decision,
//! in JSON lines (`examples/external/README.md` states the protocol).
//!
//! ```text
//! prescale → {"prescale":"external-controller","protocol":1,"step_s":60,"seed":1,...,"instance_types":[...]}
//! child    → {"name":"my-policy"}
//! prescale → {"step":0,"observation":{"now_s":60.0,"arrivals_in_interval":11950,"ready_instances":10,...}}
//! child    → {"instances":12}        or {"mix":[12,0]}   or {"hold":true}
//! ```
//!
//! A fault (see `crate::child`, plus an answer that is none of the three, a count that is not a whole number
//! in 0..=10^6, a mix of the wrong length) holds the fleet from then on and fails the run with the step, the
//! command and what was received.

use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::scenario::InitContext;
use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::child::{JsonChild, clip};

const KIND: &str = "controller";

/// `External(command: [...])`: a controller implemented by a child process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// Program and arguments; a program named by a path with a `/` is relative to `dir`.
    pub command: Vec<String>,
    /// Working folder of the child, relative to the file that names it (default: that file's folder).
    #[serde(default)]
    pub dir: Option<String>,
    /// Longest wait for one answer, seconds (at start-up and per tick).
    #[serde(default = "timeout_s")]
    pub timeout_s: f64,
}

fn timeout_s() -> f64 {
    10.0
}

impl ExternalConfig {
    /// Checks the command, folder and timeout into `p`.
    pub fn check(&self, p: &mut Problems) {
        check_command(p, &self.command, self.dir.as_deref(), self.timeout_s);
    }
}

/// The checks an external predictor and an external controller share: a program, a folder that exists, a
/// program named by a path that exists there, a timeout in (0, 3600] s.
pub(crate) fn check_command(p: &mut Problems, command: &[String], dir: Option<&str>, timeout_s: f64) {
    p.require("command", !command.is_empty() && !command[0].is_empty(), || {
        "must name a program, e.g. [\"python3\", \"my_predictor.py\"]".into()
    });
    p.within("timeout_s", timeout_s, Interval::open_closed(0.0, 3600.0));
    if let Some(d) = dir {
        p.require("dir", std::path::Path::new(d).is_dir(), || format!("{d}: no such folder"));
    }
    if let Some(prog) = command.first().filter(|c| c.contains('/')) {
        let base = std::path::Path::new(dir.unwrap_or("."));
        let path = base.join(prog);
        p.require("command[0]", path.is_file(), || format!("{prog}: no such program (relative to {})", base.display()));
    }
}

/// A controller implemented by a child process (see the module documentation).
pub struct ExternalController {
    child: Option<JsonChild>,
    name: String,
    types: usize,
    step: u64,
    fault: Option<String>,
}

impl ExternalController {
    /// Starts the child and tells it the setting; a failure becomes the controller's fault.
    pub fn start(cfg: &ExternalConfig, ctx: &InitContext<'_>) -> Self {
        let types: Vec<Value> = ctx
            .cluster
            .instance_types
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "cpu_cores": t.capacity.cpu_cores,
                    "memory_gib": t.capacity.memory_gib,
                    "price_usd_per_hour": t.price_usd_per_hour,
                    "provisioning_delay_mean_s": t.provisioning_delay.mean_s(),
                    "warmup_s": t.warmup_s,
                    "initial_count": t.initial_count,
                    "min_count": t.min_count,
                    "max_count": t.max_count,
                })
            })
            .collect();
        let greeting = json!({
            "prescale": "external-controller",
            "protocol": 1,
            "step_s": ctx.step_s,
            "seed": ctx.seed,
            "start_unix_s": ctx.demand.start_unix_s,
            "mean_service_s": ctx.service.mean_service_s,
            "cores_per_request": ctx.service.cores_per_request,
            "slo": {"latency_quantile": ctx.slo.latency_quantile, "latency_threshold_s": ctx.slo.latency_threshold_s},
            "instance_types": types,
            "scaling_type": ctx.cluster.scaling_index(),
        });
        let n = ctx.cluster.instance_types.len();
        match JsonChild::start(
            KIND,
            &cfg.command,
            cfg.dir.as_deref().map(std::path::Path::new),
            cfg.timeout_s,
            &greeting,
        ) {
            Ok((child, name)) => ExternalController {
                child: Some(child),
                name: format!("external:{name}"),
                types: n,
                step: 0,
                fault: None,
            },
            Err(e) => ExternalController { child: None, name: "external".into(), types: n, step: 0, fault: Some(e) },
        }
    }

    fn observation(obs: &Observation) -> Value {
        let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
        json!({
            "now_s": obs.now_s,
            "interval_s": obs.interval_s,
            "arrivals_in_interval": obs.arrivals_in_interval,
            "completions_in_interval": obs.completions_in_interval,
            "busy_server_s": obs.busy_server_s,
            "queue_len": obs.queue_len,
            "slow_fraction": obs.slow_fraction,
            "ready_instances": obs.ready_instances,
            "provisioning_instances": obs.provisioning_instances,
            "draining_instances": obs.draining_instances,
            "servers_per_instance": obs.servers_per_instance,
            "ready_servers": obs.ready_servers,
            "static_ready_servers": obs.static_ready_servers,
            "memory_demand_gib": num(obs.memory_demand_gib),
            "network_demand_gbps": num(obs.network_demand_gbps),
            "recent_ready_s": obs.recent_ready_s,
        })
    }

    fn ask(&mut self, obs: &Observation) -> Result<ScaleDecision, String> {
        // Step k is the k-th interval (its row in timeseries.csv); `t` its start, as the predictor's messages say.
        let at = format!("at step {} (t = {} s)", self.step, obs.now_s - obs.interval_s);
        let msg = json!({"step": self.step, "observation": Self::observation(obs)});
        let child = self.child.as_mut().expect("asked only with a child");
        let v = child.ask(KIND, &msg, &at)?;
        let count = |x: &Value| x.as_u64().filter(|n| *n <= 1_000_000).map(|n| n as u32);
        let decision = if v.get("hold").is_some_and(|h| h.as_bool() == Some(true)) {
            Some(ScaleDecision::Hold)
        } else if let Some(n) = v.get("instances") {
            count(n).map(|instances| ScaleDecision::To { instances })
        } else if let Some(Value::Array(mix)) = v.get("mix") {
            let counts: Option<Vec<u32>> = mix.iter().map(count).collect();
            counts.filter(|c| c.len() == self.types).map(|instances| ScaleDecision::Mix { instances })
        } else {
            None
        };
        decision.ok_or_else(|| {
            child.fail(
                KIND,
                &at,
                &format!(
                    "expected {{\"instances\": N}}, {{\"mix\": [{} counts]}} or {{\"hold\": true}} (counts whole, 0 to \
                     1000000); got '{}'",
                    self.types,
                    clip(&v.to_string())
                ),
            )
        })
    }
}

impl Controller for ExternalController {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        if self.fault.is_some() || self.child.is_none() {
            return ScaleDecision::Hold;
        }
        let d = match self.ask(obs) {
            Ok(d) => d,
            Err(e) => {
                self.fault = Some(e);
                self.child = None;
                ScaleDecision::Hold
            }
        };
        self.step += 1;
        d
    }

    fn fault(&self) -> Option<String> {
        self.fault.as_ref().map(|f| format!("controller {}: {f}", self.name))
    }
}
