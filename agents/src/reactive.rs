//! Reactive baselines besides the Kubernetes HPA: AWS-style target tracking and step scaling.
//!
//! Both act on the CPU utilisation of READY servers over the last control interval and scale the scaling
//! type. As in the AWS documentation (Application Auto Scaling / EC2 Auto Scaling, "Target tracking scaling
//! policies" and "Step scaling policies"), alarms need consecutive breaching datapoints (one per control step
//! here), and cooldowns keep new activities from starting before earlier ones take effect.

use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

fn utilisation(obs: &Observation) -> Option<f64> {
    (obs.ready_servers > 0).then(|| obs.busy_server_s / (obs.interval_s * obs.ready_servers as f64))
}

/// Target tracking (AWS-style): capacity proportional to `utilisation / target`, scaling out when the high
/// alarm fires (`scale_out_datapoints` consecutive steps above target; AWS: 3 of 1 minute) and in when the low
/// alarm fires (`scale_in_datapoints` consecutive steps below `scale_in_fraction · target`; AWS: 15 of 1 minute
/// at 90 %); scale-out is not repeated within `scale_out_cooldown_s` unless it asks for more, scale-in waits
/// `scale_in_cooldown_s` after any activity (AWS default 300 s each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTrackingConfig {
    /// Target utilisation in (0, 1].
    pub target_utilisation: f64,
    /// Consecutive steps above target before scaling out.
    #[serde(default = "three")]
    pub scale_out_datapoints: u32,
    /// Consecutive steps below `scale_in_fraction · target` before scaling in.
    #[serde(default = "fifteen")]
    pub scale_in_datapoints: u32,
    /// The low alarm's threshold as a fraction of the target.
    #[serde(default = "ninety")]
    pub scale_in_fraction: f64,
    /// Scale-out cooldown, seconds.
    #[serde(default = "three_hundred")]
    pub scale_out_cooldown_s: f64,
    /// Scale-in cooldown, seconds.
    #[serde(default = "three_hundred")]
    pub scale_in_cooldown_s: f64,
    /// Fewest instances.
    #[serde(default = "one_u32")]
    pub min_instances: u32,
    /// Most instances.
    pub max_instances: u32,
}

impl TargetTrackingConfig {
    /// Checks the parameters into `p`.
    pub fn check(&self, p: &mut Problems) {
        p.within("target_utilisation", self.target_utilisation, Interval::open_closed(0.0, 1.0));
        p.at_least(
            "max_instances",
            self.max_instances.into(),
            self.min_instances.max(1).into(),
            "max(1, min_instances)",
        );
        p.within("scale_in_fraction", self.scale_in_fraction, Interval::closed(0.0, 1.0));
        p.non_negative("scale_out_cooldown_s", self.scale_out_cooldown_s);
        p.non_negative("scale_in_cooldown_s", self.scale_in_cooldown_s);
    }
}

fn three() -> u32 {
    3
}
fn fifteen() -> u32 {
    15
}
fn ninety() -> f64 {
    0.9
}
fn three_hundred() -> f64 {
    300.0
}
fn one_u32() -> u32 {
    1
}

/// The runtime target-tracking policy.
pub struct TargetTracking {
    cfg: TargetTrackingConfig,
    above: u32,
    below: u32,
    last_activity_s: f64,
    last_out_s: f64,
    last_out_to: u32,
}

impl TargetTracking {
    /// A new policy.
    pub fn new(cfg: TargetTrackingConfig) -> Self {
        TargetTracking {
            cfg,
            above: 0,
            below: 0,
            last_activity_s: f64::NEG_INFINITY,
            last_out_s: f64::NEG_INFINITY,
            last_out_to: 0,
        }
    }
}

impl Controller for TargetTracking {
    fn name(&self) -> &str {
        "target-tracking"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let Some(u) = utilisation(obs) else { return ScaleDecision::Hold };
        let c = &self.cfg;
        let current = obs.allocated_instances();
        self.above = if u > c.target_utilisation { self.above + 1 } else { 0 };
        self.below = if u < c.scale_in_fraction * c.target_utilisation { self.below + 1 } else { 0 };
        let group = obs.servers_per_instance as f64 * obs.ready_instances as f64;
        let proportional = ((u / c.target_utilisation) * (group + obs.static_ready_servers as f64)
            - obs.static_ready_servers as f64)
            / obs.servers_per_instance as f64;
        let desired = (proportional.ceil().max(0.0) as u32).clamp(c.min_instances, c.max_instances);
        let now = obs.now_s;
        if self.above >= c.scale_out_datapoints && desired > current {
            let cooling = now - self.last_out_s < c.scale_out_cooldown_s;
            if !cooling || desired > self.last_out_to {
                self.last_out_s = now;
                self.last_activity_s = now;
                self.last_out_to = desired;
                self.above = 0;
                return ScaleDecision::To { instances: desired };
            }
        }
        if self.below >= c.scale_in_datapoints
            && desired < current
            && now - self.last_activity_s >= c.scale_in_cooldown_s
        {
            self.last_activity_s = now;
            self.below = 0;
            return ScaleDecision::To { instances: desired };
        }
        if current < c.min_instances {
            return ScaleDecision::To { instances: c.min_instances };
        }
        ScaleDecision::Hold
    }
}

/// One step of a step-scaling policy: when the breach (utilisation − threshold for scale-out, threshold −
/// utilisation for scale-in) is in `[lower, upper)`, change capacity by `adjustment`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Lower bound of the breach (inclusive).
    pub lower: f64,
    /// Upper bound of the breach (exclusive; `None` = unbounded).
    #[serde(default)]
    pub upper: Option<f64>,
    /// What to do.
    pub adjustment: Adjustment,
}

/// A step's adjustment (AWS `AdjustmentType`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Adjustment {
    /// Add (or, for scale-in, remove) this many instances.
    ChangeInCapacity(u32),
    /// Add (remove) this percent of the current instances, at least one.
    PercentChangeInCapacity(f64),
    /// Set capacity to this.
    ExactCapacity(u32),
}

/// Step scaling (AWS-style): a scale-out alarm at `scale_out_threshold` and a scale-in alarm at
/// `scale_in_threshold` of utilisation, each with its steps, one activity per `cooldown_s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepScalingConfig {
    /// Utilisation at or above which the scale-out steps apply.
    pub scale_out_threshold: f64,
    /// Steps for scale-out, by breach above the threshold.
    pub scale_out_steps: Vec<Step>,
    /// Utilisation at or below which the scale-in steps apply.
    pub scale_in_threshold: f64,
    /// Steps for scale-in, by breach below the threshold.
    pub scale_in_steps: Vec<Step>,
    /// Cooldown after an activity, seconds.
    #[serde(default = "three_hundred")]
    pub cooldown_s: f64,
    /// Fewest instances.
    #[serde(default = "one_u32")]
    pub min_instances: u32,
    /// Most instances.
    pub max_instances: u32,
}

impl StepScalingConfig {
    /// Checks the parameters into `p`.
    pub fn check(&self, p: &mut Problems) {
        p.require("scale_in_threshold", self.scale_in_threshold < self.scale_out_threshold, || {
            format!("must be below scale_out_threshold ({}), got {}", self.scale_out_threshold, self.scale_in_threshold)
        });
        p.non_negative("cooldown_s", self.cooldown_s);
        p.at_least(
            "max_instances",
            self.max_instances.into(),
            self.min_instances.max(1).into(),
            "max(1, min_instances)",
        );
    }
}

/// The runtime step-scaling policy.
pub struct StepScaling {
    cfg: StepScalingConfig,
    last_activity_s: f64,
}

impl StepScaling {
    /// A new policy.
    pub fn new(cfg: StepScalingConfig) -> Self {
        StepScaling { cfg, last_activity_s: f64::NEG_INFINITY }
    }

    fn pick(steps: &[Step], breach: f64) -> Option<&Adjustment> {
        steps.iter().find(|s| breach >= s.lower && s.upper.is_none_or(|u| breach < u)).map(|s| &s.adjustment)
    }
}

impl Controller for StepScaling {
    fn name(&self) -> &str {
        "step-scaling"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let Some(u) = utilisation(obs) else { return ScaleDecision::Hold };
        let c = &self.cfg;
        let current = obs.allocated_instances();
        if obs.now_s - self.last_activity_s < c.cooldown_s {
            return ScaleDecision::Hold;
        }
        let apply = |adj: &Adjustment, up: bool| -> i64 {
            match *adj {
                Adjustment::ChangeInCapacity(n) => current as i64 + if up { n as i64 } else { -(n as i64) },
                Adjustment::PercentChangeInCapacity(p) => {
                    let d = ((current as f64 * p / 100.0).abs().floor() as i64).max(1);
                    current as i64 + if up { d } else { -d }
                }
                Adjustment::ExactCapacity(n) => n as i64,
            }
        };
        let target = if u >= c.scale_out_threshold {
            Self::pick(&c.scale_out_steps, u - c.scale_out_threshold).map(|a| apply(a, true))
        } else if u <= c.scale_in_threshold {
            Self::pick(&c.scale_in_steps, c.scale_in_threshold - u).map(|a| apply(a, false))
        } else {
            None
        };
        match target {
            Some(t) => {
                let n = (t.max(0) as u32).clamp(c.min_instances, c.max_instances);
                if n == current {
                    return ScaleDecision::Hold;
                }
                self.last_activity_s = obs.now_s;
                ScaleDecision::To { instances: n }
            }
            None => ScaleDecision::Hold,
        }
    }
}
