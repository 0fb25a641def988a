//! The Kubernetes Horizontal Pod Autoscaler (autoscaling/v2), as documented in "Horizontal Pod Autoscaling"
//! (kubernetes.io, Concepts › Workloads › Autoscaling) and implemented by the HPA controller
//! (`pkg/controller/podautoscaler`): one instance is one pod, the metric is CPU utilisation of READY servers.
//!
//! Each sync (control tick):
//! 1. **Replica calculation** (`replica_calculator.go`): `ratio = utilisation / target` over READY pods. With
//!    no not-yet-ready pod that matters: if `|ratio − 1| ≤ tolerance` keep the current count, else
//!    `desired = ceil(ratio · readyPods)`. If pods are not ready (PROVISIONING here) and `ratio > 1`, they count
//!    at 0 % use: `ratio' = usage / (requests of ready + unready)`, and the HPA keeps the current count if
//!    `ratio'` is within tolerance or on the other side of 1, else `desired = ceil(ratio' · (ready + unready))`,
//!    unless that would move against `ratio'`.
//! 2. **Stabilisation** (`stabilizeRecommendationWithBehaviors`): the recommendation is bounded by the
//!    lowest recommendation within the scale-up window (default 0 s) and the highest within the scale-down
//!    window (default 300 s).
//! 3. **Rate policies** (`convertDesiredReplicasWithBehaviorRate`): per direction, each policy (`Pods n` or
//!    `Percent p` per `period_s`) proposes a limit from the replica count at the start of its period; `Max`
//!    selects the policy allowing the largest change, `Min` the smallest, `Disabled` none. Scale-up:
//!    `Pods: start + n`, `Percent: ceil(start · (1 + p/100))`; scale-down: `Pods: start − n`,
//!    `Percent: floor(start · (1 − p/100))`. Defaults: up `max(100 %, 4 pods) per 15 s`, down `100 % per 15 s`.
//! 4. **Bounds**: `[min_replicas, max_replicas]`.

use std::collections::VecDeque;

use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

/// A rate policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum HpaPolicy {
    /// At most `value` pods per `period_s`.
    Pods {
        /// Pods.
        value: u32,
        /// Period, seconds.
        period_s: f64,
    },
    /// At most `value` percent of the pods at the start of the period per `period_s`.
    Percent {
        /// Percent.
        value: u32,
        /// Period, seconds.
        period_s: f64,
    },
}

/// Which policy applies when several do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The one allowing the largest change (Kubernetes' default).
    #[default]
    Max,
    /// The one allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// Scaling rules for one direction (`HPAScalingRules`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaRules {
    /// Stabilisation window, seconds.
    pub stabilization_window_s: f64,
    /// Policy selection.
    #[serde(default)]
    pub select_policy: SelectPolicy,
    /// Policies.
    pub policies: Vec<HpaPolicy>,
}

/// `behavior` of the HPA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaBehavior {
    /// Scale-up rules.
    #[serde(default = "default_up")]
    pub scale_up: HpaRules,
    /// Scale-down rules.
    #[serde(default = "default_down")]
    pub scale_down: HpaRules,
}

fn default_up() -> HpaRules {
    HpaRules {
        stabilization_window_s: 0.0,
        select_policy: SelectPolicy::Max,
        policies: vec![HpaPolicy::Percent { value: 100, period_s: 15.0 }, HpaPolicy::Pods { value: 4, period_s: 15.0 }],
    }
}

fn default_down() -> HpaRules {
    HpaRules {
        stabilization_window_s: 300.0,
        select_policy: SelectPolicy::Max,
        policies: vec![HpaPolicy::Percent { value: 100, period_s: 15.0 }],
    }
}

impl Default for HpaBehavior {
    fn default() -> Self {
        HpaBehavior { scale_up: default_up(), scale_down: default_down() }
    }
}

/// Parameters of the Kubernetes HPA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaConfig {
    /// Target average CPU utilisation, in (0, 1] (`averageUtilization` / 100).
    pub target_utilisation: f64,
    /// Tolerance (`--horizontal-pod-autoscaler-tolerance`, default 0.1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// `minReplicas` (default 1).
    #[serde(default = "default_min")]
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// `behavior` (defaults as documented).
    #[serde(default)]
    pub behavior: HpaBehavior,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_min() -> u32 {
    1
}

/// The runtime HPA.
pub struct KubernetesHpa {
    cfg: HpaConfig,
    recommendations: VecDeque<(f64, u32)>,
    up_events: VecDeque<(f64, u32)>,
    down_events: VecDeque<(f64, u32)>,
}

impl KubernetesHpa {
    /// A new HPA.
    pub fn new(cfg: HpaConfig) -> Self {
        KubernetesHpa {
            cfg,
            recommendations: VecDeque::new(),
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
        }
    }

    /// Step 1: the replica calculator. `usage` = busy servers (average over the interval), `ready` and
    /// `unready` pods of `servers` servers, `current` = spec replicas.
    pub fn replicas_for_metric(&self, usage: f64, ready: u32, unready: u32, servers: f64, current: u32) -> u32 {
        if ready == 0 {
            return current; // no metrics: Kubernetes does not scale
        }
        let t = self.cfg.target_utilisation;
        let ratio = usage / (ready as f64 * servers) / t;
        let scale_up_with_unready = unready > 0 && ratio > 1.0;
        if !scale_up_with_unready {
            if (1.0 - ratio).abs() <= self.cfg.tolerance {
                return current;
            }
            return (ratio * ready as f64).ceil() as u32;
        }
        let pods = (ready + unready) as f64;
        let new_ratio = usage / (pods * servers) / t;
        if (1.0 - new_ratio).abs() <= self.cfg.tolerance || (ratio > 1.0 && new_ratio < 1.0) {
            return current;
        }
        let new_replicas = (new_ratio * pods).ceil() as u32;
        if (new_ratio < 1.0 && new_replicas > current) || (new_ratio > 1.0 && new_replicas < current) {
            return current;
        }
        new_replicas
    }

    fn change_in_period(events: &VecDeque<(f64, u32)>, now_s: f64, period_s: f64) -> i64 {
        events.iter().filter(|(t, _)| *t > now_s - period_s).map(|(_, n)| *n as i64).sum()
    }

    /// Steps 2–4 on a raw recommendation at `now_s` with `current` replicas.
    pub fn normalize(&mut self, now_s: f64, current: u32, desired: u32) -> u32 {
        let b = &self.cfg.behavior;
        // 2. Stabilisation over the recorded recommendations (the current one included).
        let (up_w, down_w) = (b.scale_up.stabilization_window_s, b.scale_down.stabilization_window_s);
        let mut up_rec = desired;
        let mut down_rec = desired;
        for &(t, r) in &self.recommendations {
            if t > now_s - up_w {
                up_rec = up_rec.min(r);
            }
            if t > now_s - down_w {
                down_rec = down_rec.max(r);
            }
        }
        let keep = up_w.max(down_w);
        self.recommendations.retain(|(t, _)| *t > now_s - keep);
        self.recommendations.push_back((now_s, desired));
        let mut rec = current.max(up_rec).min(down_rec);
        // 3. Rate policies, 4. bounds.
        let (up_ev, down_ev) = (&self.up_events, &self.down_events);
        let start = |period: f64| {
            current as i64 - Self::change_in_period(up_ev, now_s, period)
                + Self::change_in_period(down_ev, now_s, period)
        };
        if rec > current {
            let limit = match b.scale_up.select_policy {
                SelectPolicy::Disabled => current as i64,
                sel => {
                    let proposals = b.scale_up.policies.iter().map(|p| match *p {
                        HpaPolicy::Pods { value, period_s } => start(period_s) + value as i64,
                        HpaPolicy::Percent { value, period_s } => {
                            (start(period_s) as f64 * (1.0 + value as f64 / 100.0)).ceil() as i64
                        }
                    });
                    if sel == SelectPolicy::Max { proposals.max() } else { proposals.min() }.unwrap_or(current as i64)
                }
            }
            .max(current as i64);
            let max_allowed = (self.cfg.max_replicas as i64).min(limit);
            rec = rec.min(max_allowed.max(0) as u32);
        } else if rec < current {
            let limit = match b.scale_down.select_policy {
                SelectPolicy::Disabled => current as i64,
                sel => {
                    let proposals = b.scale_down.policies.iter().map(|p| match *p {
                        HpaPolicy::Pods { value, period_s } => start(period_s) - value as i64,
                        HpaPolicy::Percent { value, period_s } => {
                            (start(period_s) as f64 * (1.0 - value as f64 / 100.0)) as i64
                        }
                    });
                    if sel == SelectPolicy::Max { proposals.min() } else { proposals.max() }.unwrap_or(current as i64)
                }
            }
            .min(current as i64);
            let min_allowed = (self.cfg.min_replicas as i64).max(limit);
            rec = rec.max(min_allowed.max(0) as u32);
        }
        rec = rec.clamp(self.cfg.min_replicas, self.cfg.max_replicas);
        let longest = |r: &HpaRules| {
            r.policies
                .iter()
                .map(|p| match *p {
                    HpaPolicy::Pods { period_s, .. } | HpaPolicy::Percent { period_s, .. } => period_s,
                })
                .fold(0.0, f64::max)
        };
        let (lu, ld) = (longest(&b.scale_up), longest(&b.scale_down));
        self.up_events.retain(|(t, _)| *t > now_s - lu);
        self.down_events.retain(|(t, _)| *t > now_s - ld);
        if rec > current {
            self.up_events.push_back((now_s, rec - current));
        } else if rec < current {
            self.down_events.push_back((now_s, current - rec));
        }
        rec
    }
}

impl Controller for KubernetesHpa {
    fn name(&self) -> &str {
        "kubernetes-hpa"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let current = obs.allocated_instances();
        // Busy servers of the group's own pods (beside a static pool, its share of the READY servers).
        let group = obs.servers_per_instance as f64 * obs.ready_instances as f64;
        let share = if group > 0.0 { group / (group + obs.static_ready_servers as f64) } else { 0.0 };
        let usage = obs.busy_server_s / obs.interval_s * share;
        let desired = self.replicas_for_metric(
            usage,
            obs.ready_instances,
            obs.provisioning_instances,
            obs.servers_per_instance as f64,
            current,
        );
        let rec = self.normalize(obs.now_s, current, desired);
        if rec == current { ScaleDecision::Hold } else { ScaleDecision::To { instances: rec } }
    }
}

impl HpaConfig {
    /// Checks the parameters into `p` (paths below the controller).
    pub fn check(&self, p: &mut Problems) {
        let c = self;
        p.within("target_utilisation", c.target_utilisation, Interval::open_closed(0.0, 1.0));
        p.within("tolerance", c.tolerance, Interval::closed_open(0.0, 1.0));
        p.at_least("max_replicas", c.max_replicas.into(), c.min_replicas.max(1).into(), "max(1, min_replicas)");
        for (dir, rules) in [("scale_up", &c.behavior.scale_up), ("scale_down", &c.behavior.scale_down)] {
            p.under(&format!("behavior.{dir}"), |p| {
                p.within("stabilization_window_s", rules.stabilization_window_s, Interval::closed(0.0, 3600.0));
                p.require(
                    "policies",
                    !rules.policies.is_empty() || rules.select_policy == SelectPolicy::Disabled,
                    || "must list at least one policy (or select_policy: Disabled)".into(),
                );
                for (i, pol) in rules.policies.iter().enumerate() {
                    let (value, period) = match *pol {
                        HpaPolicy::Pods { value, period_s } | HpaPolicy::Percent { value, period_s } => {
                            (value, period_s)
                        }
                    };
                    p.under(&format!("policies[{i}]"), |p| {
                        p.at_least("value", value.into(), 1.0, "");
                        p.within("period_s", period, Interval::open_closed(0.0, 1800.0));
                    });
                }
            });
        }
    }
}
