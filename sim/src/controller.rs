//! The controller seam: what every autoscaler sees at a control tick and what it may answer.
//!
//! At each tick the service model builds an [`Observation`] (busy server-seconds over the last interval,
//! instances per lifecycle state, queue length, arrivals and completions) and asks its [`Controller`] for a
//! [`ScaleDecision`]. The model, not the controller, carries the decision out (which instances to cancel or
//! drain is a property of the cluster, REFERENCE_MODEL §4.5 step 7), so a controller is pure policy and the
//! same controller can later drive a live system.
//!
//! Two controllers live here beside the trait: [`Static`], the simplest possible one, and
//! [`ReferenceHpa`], the HPA-style rule of REFERENCE_MODEL §4.4–4.5. Richer autoscalers (the full
//! Kubernetes HPA, predictive allocators) live in the `prescale-agents` crate and implement the same trait.

use std::fmt;

use crate::validate::{Interval, Problems};

/// What a controller sees at a control tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The tick's instant, seconds since the start of the run.
    pub now_s: f64,
    /// Length of the control interval that ends now.
    pub interval_s: f64,
    /// Busy server-seconds over `(now - interval, now]`, on READY and DRAINING instances.
    pub busy_server_s: f64,
    /// Instances taking requests.
    pub ready_instances: u32,
    /// Instances ordered but not yet ready.
    pub provisioning_instances: u32,
    /// Instances finishing their last requests before they go.
    pub draining_instances: u32,
    /// Servers (concurrent requests) per instance of the scaling type.
    pub servers_per_instance: u32,
    /// Usable servers on all READY instances (warming ones count their reduced servers).
    pub ready_servers: u32,
    /// Usable servers on READY instances of types other than the scaling type (static pools).
    pub static_ready_servers: u32,
    /// Requests waiting for a server now.
    pub queue_len: usize,
    /// Requests that arrived during the interval.
    pub arrivals_in_interval: u64,
    /// Requests that completed during the interval.
    pub completions_in_interval: u64,
    /// Fraction of the interval's completions slower than the SLO threshold (0 when unknown).
    pub slow_fraction: f64,
    /// Memory demand over the interval, GiB, when the workload states it (a trace's memory column);
    /// NaN otherwise (memory then follows from requests in service).
    pub memory_demand_gib: f64,
    /// Network demand over the interval, Gbit/s, when the workload states it (a trace's network column);
    /// NaN otherwise (bandwidth then follows from requests).
    pub network_demand_gbps: f64,
    /// When each READY instance of the scaling type that became ready within the last
    /// [`crate::cluster::RECENT_READY_S`] did so, seconds since the start, oldest first (instances READY from
    /// the start are not listed): what the Kubernetes HPA's readiness and missing-metric rules look at.
    pub recent_ready_s: Vec<f64>,
}

impl Default for Observation {
    /// An empty cluster at time zero with no demand stated (memory and network demand NaN): a base for
    /// `Observation { field: value, ..Default::default() }`.
    fn default() -> Self {
        Observation {
            now_s: 0.0,
            interval_s: 0.0,
            busy_server_s: 0.0,
            ready_instances: 0,
            provisioning_instances: 0,
            draining_instances: 0,
            servers_per_instance: 1,
            ready_servers: 0,
            static_ready_servers: 0,
            queue_len: 0,
            arrivals_in_interval: 0,
            completions_in_interval: 0,
            slow_fraction: 0.0,
            memory_demand_gib: f64::NAN,
            network_demand_gbps: f64::NAN,
            recent_ready_s: Vec::new(),
        }
    }
}

impl Observation {
    /// READY + PROVISIONING: the allocation a decision is measured against (`N` in REFERENCE_MODEL §4.5).
    pub fn allocated_instances(&self) -> u32 {
        self.ready_instances + self.provisioning_instances
    }

    /// Mean busy servers over the interval (`busy_server_s / interval_s`): what the reactive fallbacks of the
    /// learned and predictive controllers size the fleet from when they cannot forecast yet.
    pub fn busy_servers(&self) -> f64 {
        self.busy_server_s / self.interval_s.max(1e-9)
    }
}

/// The workload's side of a tick, as the model measured it over the interval that ends now; the fleet adds
/// its own side ([`crate::cluster::Fleet::observation`]), so both fidelities build an [`Observation`] by one
/// code path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickLoad {
    /// Busy server-seconds over the interval, on READY and DRAINING instances.
    pub busy_server_s: f64,
    /// Requests waiting for a server now.
    pub queue_len: usize,
    /// Requests that arrived during the interval.
    pub arrivals_in_interval: u64,
    /// Requests that completed during the interval.
    pub completions_in_interval: u64,
    /// Fraction of the interval's completions slower than the SLO threshold (0 when unknown).
    pub slow_fraction: f64,
    /// Memory demand over the interval, GiB, when the workload states it; NaN otherwise.
    pub memory_demand_gib: f64,
    /// Network demand over the interval, Gbit/s, when the workload states it; NaN otherwise.
    pub network_demand_gbps: f64,
}

/// Lead time of an order, in control steps: `(h_lo, h_hi)` with `h_lo = ⌈d / Δ⌉` (at least 1), the first step
/// an instance ordered now can serve, and `h_hi = ⌈(d + Δ + w) / Δ⌉` (at least `h_lo`), the last step before the
/// next decision's order is at full capacity (`d`: provisioning delay, `Δ`: step, `w`: warm-up). The one
/// definition the proactive allocator, the hindsight expert and validation share.
pub fn lead_time_steps(provisioning_delay_s: f64, step_s: f64, warmup_s: f64) -> (usize, usize) {
    let h_lo = ((provisioning_delay_s / step_s).ceil() as usize).max(1);
    let h_hi = (((provisioning_delay_s + step_s + warmup_s) / step_s).ceil() as usize).max(h_lo);
    (h_lo, h_hi)
}

/// A controller's answer at a tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleDecision {
    /// Change nothing.
    Hold,
    /// Bring READY + PROVISIONING instances of the scaling type to this number.
    To {
        /// Desired allocated instances.
        instances: u32,
    },
    /// Bring READY + PROVISIONING instances of every type to these numbers (one per instance type, in the
    /// cluster's order): an instance mix.
    Mix {
        /// Desired allocated instances per type.
        instances: Vec<u32>,
    },
}

impl ScaleDecision {
    /// Applies this decision to `counts` (allocated instances of each type, in the cluster's order;
    /// `scaling_index` is the type a `To` scales): `Hold` keeps them, `To` sets the scaling type's, `Mix` sets
    /// each type it lists. The one reading of a decision against the current counts, without the fleet's limits:
    /// shadow runs and live mode replay decisions through it ([`crate::cluster::Fleet::apply`] carries one out,
    /// with the limits, on real instances).
    pub fn apply_to(&self, counts: &mut [u32], scaling_index: usize) {
        match self {
            ScaleDecision::Hold => {}
            ScaleDecision::To { instances } => counts[scaling_index] = *instances,
            ScaleDecision::Mix { instances } => {
                for (c, n) in counts.iter_mut().zip(instances) {
                    *c = *n;
                }
            }
        }
    }

    /// The scaling type's count this decision asks for, given its current count (see [`Self::apply_to`]).
    pub fn scaling_count(&self, current: u32, scaling_index: usize) -> u32 {
        let mut counts = vec![0; scaling_index + 1];
        counts[scaling_index] = current;
        self.apply_to(&mut counts, scaling_index);
        counts[scaling_index]
    }
}

/// What a controller may report about its last decision, for the run's time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Diagnostics {
    /// Demand (CPU cores) forecast for the step that just ended, when a forecast was made for it.
    pub forecast_cpu_cores: f64,
    /// Safety margin (CPU cores) added at the last decision.
    pub margin_cpu_cores: f64,
    /// Realised coverage so far: fraction of steps whose demand stayed within forecast + margin.
    pub coverage: f64,
    /// Whether the last decision fell back to a reactive rule (too little history).
    pub fallback: bool,
    /// Whether the last request was clipped (quota, max count or cost cap).
    pub clipped: bool,
    /// Mean absolute one-step forecast error (CPU cores) over the fine-tuning window just before an online
    /// model update made at this decision (learned predictors; NaN when none was made).
    pub fine_tune_mae_before_cores: f64,
    /// The same error just after the update.
    pub fine_tune_mae_after_cores: f64,
    /// Whether the model behind the last decision gave a value that is not a finite number (a forecast or an
    /// order): the decision held the fleet as it was, and the run reports an error naming the step (never a
    /// silent zero).
    pub non_finite_output: bool,
    /// Forward passes the controller's learned model has made so far in this run (learned predictors and
    /// policies; 0 for classical controllers): what a decision costs in network evaluations.
    pub model_calls: u64,
    /// The loop of the stated memory demand, GiB, when the controller plans it with a forecast of its own.
    pub memory: Option<DemandDiagnostics>,
    /// The loop of the stated network demand, Gbit/s, when the controller plans it with a forecast of its own.
    pub network: Option<DemandDiagnostics>,
}

/// A stated demand's own forecasting loop (memory in GiB, network in Gbit/s), as [`Diagnostics`] reports the
/// rate's in CPU cores.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct DemandDiagnostics {
    /// Demand forecast for the step that just ended (NaN when none was made for it).
    pub forecast: f64,
    /// Safety margin added at the last decision, at the far horizon (0 while the loop falls back to the last
    /// value).
    pub margin: f64,
    /// Realised coverage so far: fraction of judged steps whose demand stayed within forecast + margin.
    pub coverage: f64,
}

/// An autoscaling policy: observation in, decision out.
pub trait Controller: Send {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// The decision at one control tick.
    fn decide(&mut self, obs: &Observation) -> ScaleDecision;
    /// What the controller can say about its last decision (forecasting controllers); `None` by default.
    fn diagnostics(&self) -> Option<Diagnostics> {
        None
    }
    /// Why the controller could not decide as configured, if it could not — e.g. an external predictor that
    /// crashed, hung or answered nonsense — with the step and what went wrong. A controller with a fault holds
    /// the fleet from then on; the run fails with this message (the first fault is kept).
    fn fault(&self) -> Option<String> {
        None
    }
}

impl fmt::Debug for dyn Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Controller({})", self.name())
    }
}

/// A fixed allocation: keeps the cluster at `instances` (or, with `None`, never acts). Stateless, so the same
/// value is its scenario config (`Static(instances: 10)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Static {
    /// The allocation to keep; `None` leaves the cluster as it is.
    #[serde(default)]
    pub instances: Option<u32>,
}

impl Static {
    /// Never changes the cluster.
    pub fn hold() -> Self {
        Static { instances: None }
    }

    /// Keeps READY + PROVISIONING at `instances`.
    pub fn at(instances: u32) -> Self {
        Static { instances: Some(instances) }
    }
}

impl Controller for Static {
    fn name(&self) -> &str {
        "static"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        match self.instances {
            Some(n) if n != obs.allocated_instances() => ScaleDecision::To { instances: n },
            _ => ScaleDecision::Hold,
        }
    }
}

/// The HPA-style controller of REFERENCE_MODEL §4.4–4.5 (not the full Kubernetes HPA: no stabilisation
/// window, no rate policies; those are in `prescale-agents`).
///
/// With `B` busy server-seconds over the interval, `R` ready instances, `s` servers per instance and
/// interval `Δ`: `util = B / (s · Δ · R)`; if `|util / target − 1| ≤ tolerance` hold; otherwise
/// `desired = ceil(R · util / target)` clamped to `[min, max]`. Evaluated in this order in double precision,
/// as the reference writes it, so that level-X results are bit-identical.
///
/// With no READY server at all the utilisation is undefined: the controller then only enforces `min`.
///
/// Beside static pools of other instance types (`S` usable servers, busy work spread over all READY
/// servers): `util = B / (Δ (s R + S))` and the group is sized so that all READY servers would run at the
/// target, `desired = ceil((B / (Δ · target) − S) / s)`. With `S = 0` the reference formulas above are used
/// unchanged (bit-identical).
///
/// Stateless, so the same value is its scenario config (`ReferenceHpa(target_utilisation: 0.6,
/// max_instances: 80)`; tolerance 0.1 and min 1 by default).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceHpa {
    /// Target utilisation of ready servers, in (0, 1].
    pub target_utilisation: f64,
    /// Dead band around the target: no change while `|util / target − 1| ≤ tolerance`.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Lower bound on desired instances.
    #[serde(default = "default_min")]
    pub min_instances: u32,
    /// Upper bound on desired instances.
    pub max_instances: u32,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_min() -> u32 {
    1
}

impl Static {
    /// Checks the parameters into `p`, given the scaling type's `max_count`.
    pub fn check(&self, p: &mut Problems, scaling_max: Option<u32>) {
        if let (Some(n), Some(max)) = (self.instances, scaling_max) {
            p.at_most("instances", n.into(), max.into(), "the scaling type's max_count");
        }
    }
}

impl ReferenceHpa {
    /// Checks the parameters into `p`.
    pub fn check(&self, p: &mut Problems) {
        p.within("target_utilisation", self.target_utilisation, Interval::open_closed(0.0, 1.0));
        p.within("tolerance", self.tolerance, Interval::closed_open(0.0, 1.0));
        p.at_least("max_instances", self.max_instances.into(), 1.0, "");
        p.at_most("min_instances", self.min_instances.into(), self.max_instances.into(), "max_instances");
    }
}

impl ReferenceHpa {
    /// The constants of REFERENCE_MODEL §4.4: target 0.6, tolerance 0.1, 1 to 1000 instances.
    pub fn reference() -> Self {
        ReferenceHpa { target_utilisation: 0.6, tolerance: 0.1, min_instances: 1, max_instances: 1000 }
    }
}

impl Controller for ReferenceHpa {
    fn name(&self) -> &str {
        "reference-hpa"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        if obs.ready_instances == 0 && obs.static_ready_servers == 0 {
            return if obs.allocated_instances() < self.min_instances {
                ScaleDecision::To { instances: self.min_instances }
            } else {
                ScaleDecision::Hold
            };
        }
        let r = obs.ready_instances as f64;
        let s = obs.servers_per_instance as f64;
        let others = obs.static_ready_servers as f64;
        let util = if others == 0.0 {
            obs.busy_server_s / (s * obs.interval_s * r)
        } else {
            obs.busy_server_s / (obs.interval_s * (s * r + others))
        };
        let ratio = util / self.target_utilisation;
        if (ratio - 1.0).abs() <= self.tolerance {
            return ScaleDecision::Hold;
        }
        let wanted = if others == 0.0 {
            r * util / self.target_utilisation
        } else {
            (obs.busy_server_s / (obs.interval_s * self.target_utilisation) - others) / s
        };
        let desired = wanted.ceil().clamp(self.min_instances as f64, self.max_instances as f64);
        ScaleDecision::To { instances: desired as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::lead_time_steps;

    #[test]
    fn lead_time_counts_delay_step_and_warmup() {
        assert_eq!(lead_time_steps(120.0, 60.0, 60.0), (2, 4));
        assert_eq!(lead_time_steps(110.0, 60.0, 0.0), (2, 3));
        assert_eq!(lead_time_steps(0.0, 60.0, 0.0), (1, 1));
    }

    use super::*;

    fn obs(busy_server_s: f64, ready: u32, provisioning: u32) -> Observation {
        Observation {
            now_s: 15.0,
            interval_s: 15.0,
            busy_server_s,
            ready_instances: ready,
            provisioning_instances: provisioning,
            servers_per_instance: 4,
            ready_servers: 4 * ready,
            ..Observation::default()
        }
    }

    #[test]
    fn reference_hpa_follows_section_4_5() {
        let mut c = ReferenceHpa::reference();
        // 10 ready, 60 % busy: inside the dead band.
        assert_eq!(c.decide(&obs(0.6 * 60.0 * 10.0, 10, 0)), ScaleDecision::Hold);
        // 66 % busy: ratio 1.1 exactly is still inside (<= tolerance)... up to rounding; 67 % is outside.
        assert_eq!(c.decide(&obs(0.67 * 60.0 * 10.0, 10, 0)), ScaleDecision::To { instances: 12 });
        // desired = ceil(B / 60 / 0.6) = ceil(300 / 36) = 9, whatever is provisioning.
        assert_eq!(c.decide(&obs(300.0, 10, 5)), ScaleDecision::To { instances: 9 });
        // Idle: clamp to min.
        assert_eq!(c.decide(&obs(0.0, 10, 0)), ScaleDecision::To { instances: 1 });
        // Saturated far beyond max: clamp to max.
        let mut small = ReferenceHpa { max_instances: 3, ..ReferenceHpa::reference() };
        assert_eq!(small.decide(&obs(60.0 * 10.0, 10, 0)), ScaleDecision::To { instances: 3 });
        // No ready instance: only the minimum is enforced.
        assert_eq!(c.decide(&obs(5.0, 0, 2)), ScaleDecision::Hold);
        assert_eq!(c.decide(&obs(5.0, 0, 0)), ScaleDecision::To { instances: 1 });
    }

    #[test]
    fn reference_hpa_sizes_the_group_beside_a_static_pool() {
        let mut c = ReferenceHpa { min_instances: 0, ..ReferenceHpa::reference() };
        // 128 static servers + 2 group instances of 8; 180 busy servers on average over 60 s.
        let mut o = obs(180.0 * 60.0, 2, 0);
        o.interval_s = 60.0;
        o.servers_per_instance = 8;
        o.static_ready_servers = 128;
        o.ready_servers = 144;
        // util = 180 / 144 > target: all READY servers at 60 % needs 300 servers: (300 - 128) / 8 = 21.5 -> 22.
        assert_eq!(c.decide(&o), ScaleDecision::To { instances: 22 });
        // No group instance READY: the static pool still tells the load.
        o.ready_instances = 0;
        o.ready_servers = 128;
        o.busy_server_s = 30.0 * 60.0;
        assert_eq!(c.decide(&o), ScaleDecision::To { instances: 0 });
        o.busy_server_s = 120.0 * 60.0;
        assert_eq!(c.decide(&o), ScaleDecision::To { instances: 9 });
    }

    #[test]
    fn static_keeps_its_allocation() {
        assert_eq!(Static::hold().decide(&obs(1e6, 3, 0)), ScaleDecision::Hold);
        assert_eq!(Static::at(3).decide(&obs(1e6, 3, 0)), ScaleDecision::Hold);
        assert_eq!(Static::at(5).decide(&obs(0.0, 3, 1)), ScaleDecision::To { instances: 5 });
    }
}
