//! The Kubernetes Horizontal Pod Autoscaler (autoscaling/v2), as documented in "Horizontal Pod Autoscaling"
//! (kubernetes.io, Concepts › Workloads › Autoscaling) and implemented by the HPA controller
//! (`pkg/controller/podautoscaler`: `horizontal.go`, `replica_calculator.go`, `metrics/utilization.go`): one
//! instance is one pod; the metric is CPU utilisation of the READY servers.
//!
//! **Syncs.** The controller runs every `sync_period_s` (`--horizontal-pod-autoscaler-sync-period`, 15 s), not
//! once per simulation step: a step of 60 s holds four syncs, at the multiples of the period inside
//! `(now − interval, now]`; a step shorter than the period holds one sync or none. All syncs of a step see the
//! step's metric (the metrics pipeline reports averages over a window anyway); pods ordered by an earlier sync
//! of the same step are Pending there, and pods removed are taken from the not-yet-ready ones first.
//!
//! Each sync (`reconcileAutoscaler`):
//! 0. The first sync records the current replica count as a recommendation (`recordInitialRecommendation`),
//!    so no scale-down happens within the stabilisation window after the HPA starts. A target at 0 replicas
//!    with `min_replicas ≥ 1` is left alone (autoscaling disabled); a target above `max_replicas` or below
//!    `min_replicas` is set to the bound without looking at the metric.
//! 1. **Replica calculation** (`GetResourceReplicas`): utilisation is a whole percent,
//!    `⌊100 · usage_m / request_m⌋` over the pods with a metric (milli-units, integer division, as
//!    `GetResourceUtilizationRatio`), and `ratio = utilisation / target_percent`. The tolerances
//!    (`(1 − down) ≤ ratio ≤ (1 + up)`: the global `tolerance`, or per direction since Kubernetes 1.33)
//!    keep the current count; else `desired = ⌈ratio · readyPods⌉`. With not-yet-ready pods (PROVISIONING
//!    here) and `ratio > 1`, they count at 0 %: `ratio'` over ready + unready; the current count is kept if
//!    `ratio'` is within tolerance or on the other side of 1, else `desired = ⌈ratio' · pods⌉` unless that
//!    moves against `ratio'`.
//! 2. **Without `behavior`** (`normalizeDesiredReplicas`, the legacy path): the highest recommendation within
//!    `downscale_stabilization_s` (default 300 s) is kept, then the count is bounded by `min_replicas` and by
//!    `min(max_replicas, max(2 · current, 4))` (`calculateScaleUpLimit`).
//! 3. **With `behavior`** (`normalizeDesiredReplicasWithBehaviors`): the recommendation is bounded by the
//!    lowest within the scale-up window (default 0 s) and the highest within the scale-down window (default
//!    `downscale_stabilization_s`); then per direction each policy (`Pods n` or `Percent p` per `period_s`)
//!    proposes a limit from the replica count at the start of its period; `Max` selects the policy allowing
//!    the largest change, `Min` the smallest, `Disabled` none. Scale-up: `Pods: start + n`,
//!    `Percent: ⌈start · (1 + p/100)⌉`; scale-down: `Pods: start − n`, `Percent: ⌊start · (1 − p/100)⌋`.
//!    Defaults: up `max(100 %, 4 pods) per 15 s`, down `100 % per 15 s`; bounds `[min_replicas, max_replicas]`.
//!
//! **Metrics** (`metric`, the HPA's first `metrics` entry): `Cpu` (`Resource` cpu with an
//! `averageUtilization` target; usage = the pod's share of the busy servers), `PodsRequestsPerSecond`
//! (`Pods`, `averageValue` per pod; a pod's value = its share of the arrival rate, through
//! `calcPlainMetricReplicas`: the average in milli-units, integer division, over the target) and
//! `ExternalRequestsPerSecond` (`External`, `averageValue` per pod, `GetExternalPerPodMetricReplicas`: the
//! service's whole arrival rate against `target · status.replicas`; outside tolerance
//! `desired = ⌈rate / target⌉`; no pod grouping).
//!
//! **Pods at a sync** (`groupPods`): Pending pods (PROVISIONING, or READY only after the sync instant) are
//! unready. A pod that turned READY less than `first_metric_s` before the sync has no sample yet: *missing*
//! (on a scale-down it counts at 100 % of its request — the target if that is higher — or at the target value
//! for a `Pods` metric; on a scale-up at 0). For CPU, a pod within the CPU initialisation period
//! (`cpu_initialization_period_s`, 300 s) whose sample does not yet cover one metric window
//! (`metric_window_s`, 15 s) since its readiness transition is unready (its sample is dropped; on a scale-up
//! it counts at 0). The pod's start is taken as the instant it turned READY (the simulator has no
//! container start apart from readiness), so the rule reads "READY for less than one metric window".
//!
//! Not modelled: failed pods apart from the fleet (a failed instance is gone at once and its replacement is
//! Pending, which is what the controller would see of a failed pod and its replacement), pods that go unready
//! after being ready, `Object` metrics, several metrics at once (the HPA takes the largest proposal), metric
//! fetch errors, and the readiness delay rule for pods past their initialisation period
//! (`--horizontal-pod-autoscaler-initial-readiness-delay`: READY instances here never turn unready).

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

/// Scaling rules for one direction (`HPAScalingRules`); a field left out takes the direction's default, as the
/// API server fills it in (`GenerateHPAScaleUpRules`, `GenerateHPAScaleDownRules`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaRules {
    /// Stabilisation window, seconds (default: 0 up, `downscale_stabilization_s` down).
    #[serde(default)]
    pub stabilization_window_s: Option<f64>,
    /// Policy selection (default `Max`).
    #[serde(default)]
    pub select_policy: SelectPolicy,
    /// Policies (default: up `Pods 4` and `Percent 100` per 15 s; down `Percent 100` per 15 s).
    #[serde(default)]
    pub policies: Option<Vec<HpaPolicy>>,
    /// Tolerance in this direction (Kubernetes 1.33, `HPAConfigurableTolerance`; default: the HPA's
    /// `tolerance`).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// Kubernetes' default scale-up policies: 4 pods or 100 % per 15 s.
const DEFAULT_UP: [HpaPolicy; 2] =
    [HpaPolicy::Pods { value: 4, period_s: 15.0 }, HpaPolicy::Percent { value: 100, period_s: 15.0 }];
/// Kubernetes' default scale-down policy: 100 % per 15 s.
const DEFAULT_DOWN: [HpaPolicy; 1] = [HpaPolicy::Percent { value: 100, period_s: 15.0 }];

impl HpaRules {
    fn policies_or_default(&self, up: bool) -> &[HpaPolicy] {
        self.policies.as_deref().unwrap_or(if up { &DEFAULT_UP } else { &DEFAULT_DOWN })
    }
}

/// `behavior` of the HPA; a direction left out takes its defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaBehavior {
    /// Scale-up rules.
    #[serde(default)]
    pub scale_up: HpaRules,
    /// Scale-down rules.
    #[serde(default)]
    pub scale_down: HpaRules,
}

/// Parameters of the Kubernetes HPA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaConfig {
    /// Target average CPU utilisation, a whole percent in (0, 1] (`averageUtilization` / 100); for the
    /// `Cpu` metric only (the others carry their own target).
    #[serde(default)]
    pub target_utilisation: Option<f64>,
    /// What the HPA scales on (default `Cpu`).
    #[serde(default)]
    pub metric: HpaMetric,
    /// Tolerance (`--horizontal-pod-autoscaler-tolerance`, default 0.1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// `minReplicas` (default 1).
    #[serde(default = "default_min")]
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// `behavior`; left out, the controller takes its legacy path (see the module docs), as Kubernetes does
    /// for an HPA without a `behavior` block.
    #[serde(default)]
    pub behavior: Option<HpaBehavior>,
    /// `--horizontal-pod-autoscaler-sync-period`, seconds (default 15).
    #[serde(default = "default_sync")]
    pub sync_period_s: f64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, seconds (default 300): the legacy path's window,
    /// and the scale-down window of a `behavior` that gives none.
    #[serde(default = "default_downscale")]
    pub downscale_stabilization_s: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`, seconds (default 300).
    #[serde(default = "default_cpu_init")]
    pub cpu_initialization_period_s: f64,
    /// The metrics pipeline's window (metrics-server `--metric-resolution`), seconds (default 15): a pod's
    /// CPU sample counts once it covers one window after the pod turned ready.
    #[serde(default = "default_window")]
    pub metric_window_s: f64,
    /// Seconds after a pod turns READY before the metrics pipeline reports it (default 0): before, the pod's
    /// metric is missing.
    #[serde(default)]
    pub first_metric_s: f64,
}

/// What the HPA scales on (the first entry of `metrics` in autoscaling/v2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum HpaMetric {
    /// `type: Resource`, `name: cpu`, target `averageUtilization` (`target_utilisation`).
    #[default]
    Cpu,
    /// `type: Pods`: requests per second per pod (a custom-metrics adapter's), target `averageValue` per pod.
    PodsRequestsPerSecond {
        /// Requests per second per pod.
        target_per_pod: f64,
    },
    /// `type: External`: the service's requests per second (a load balancer's metric, as KEDA serves it),
    /// target `averageValue` per pod.
    ExternalRequestsPerSecond {
        /// Requests per second per pod.
        target_per_pod: f64,
    },
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_min() -> u32 {
    1
}
fn default_sync() -> f64 {
    15.0
}
fn default_downscale() -> f64 {
    300.0
}
fn default_cpu_init() -> f64 {
    300.0
}
fn default_window() -> f64 {
    15.0
}

/// The runtime HPA.
pub struct KubernetesHpa {
    cfg: HpaConfig,
    /// Recommendations `(time, replicas)` within the longest stabilisation window.
    recommendations: VecDeque<(f64, u32)>,
    up_events: VecDeque<(f64, u32)>,
    down_events: VecDeque<(f64, u32)>,
    started: bool,
}

/// What the replica calculator sees of the pods at one sync.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodMetrics {
    /// The metric summed over the ready pods with a sample: CPU in use in servers (busy servers averaged over
    /// the metric window) for `Cpu`, requests per second for `PodsRequestsPerSecond`, the service's requests
    /// per second for `ExternalRequestsPerSecond`.
    pub usage: f64,
    /// Ready pods with a metric sample.
    pub ready: u32,
    /// Pods not yet ready (Pending), or, for CPU, ready pods whose sample does not cover a window yet.
    pub unready: u32,
    /// Running pods without a metric sample.
    pub missing: u32,
    /// CPU request of one pod, in servers.
    pub servers_per_pod: u32,
}

impl KubernetesHpa {
    /// A new HPA (nothing recorded: its first sync records the initial recommendation).
    pub fn new(cfg: HpaConfig) -> Self {
        KubernetesHpa {
            cfg,
            recommendations: VecDeque::new(),
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
            started: false,
        }
    }

    /// The target as a whole percent (`averageUtilization`).
    fn target_percent(&self) -> i64 {
        (self.cfg.target_utilisation.unwrap_or(1.0) * 100.0).round() as i64
    }

    /// A `Pods` or `External` target in milli-units (Kubernetes' quantities).
    fn target_milli(target_per_pod: f64) -> i64 {
        ((target_per_pod * 1000.0).round() as i64).max(1)
    }

    /// `(down, up)` tolerances.
    fn tolerances(&self) -> (f64, f64) {
        let t = self.cfg.tolerance;
        match &self.cfg.behavior {
            Some(b) => (b.scale_down.tolerance.unwrap_or(t), b.scale_up.tolerance.unwrap_or(t)),
            None => (t, t),
        }
    }

    fn within(&self, ratio: f64) -> bool {
        let (down, up) = self.tolerances();
        1.0 - down <= ratio && ratio <= 1.0 + up
    }

    /// The usage ratio of `pods` pods whose metric sums to `total_m` milli-units: for CPU the utilisation as a
    /// whole percent (`GetResourceUtilizationRatio`) over the target percent; for a `Pods` metric the average
    /// (integer division, `GetMetricUsageRatio`) over the target.
    fn ratio(&self, total_m: i64, pods: u32, servers_per_pod: u32) -> f64 {
        match self.cfg.metric {
            HpaMetric::PodsRequestsPerSecond { target_per_pod } => {
                (total_m / (pods as i64).max(1)) as f64 / Self::target_milli(target_per_pod) as f64
            }
            _ => {
                let request_m = pods as i64 * servers_per_pod as i64 * 1000;
                let percent = total_m * 100 / request_m.max(1);
                percent as f64 / self.target_percent() as f64
            }
        }
    }

    /// Step 1: the replica calculator with `current` spec replicas (`GetResourceReplicas`,
    /// `calcPlainMetricReplicas`, `GetExternalPerPodMetricReplicas`; see the module docs).
    pub fn replicas_for_metric(&self, m: PodMetrics, current: u32) -> u32 {
        let usage_m = (m.usage * 1000.0).round() as i64;
        if let HpaMetric::ExternalRequestsPerSecond { target_per_pod } = self.cfg.metric {
            // Against `status.replicas`: the pods that exist, ready or not.
            let target_m = Self::target_milli(target_per_pod);
            let ratio = usage_m as f64 / (target_m as f64 * current as f64);
            return if self.within(ratio) { current } else { (usage_m as f64 / target_m as f64).ceil() as u32 };
        }
        if m.ready == 0 {
            return current; // "did not receive metrics for targeted pods": no scaling
        }
        let ratio = self.ratio(usage_m, m.ready, m.servers_per_pod);
        let scale_up_with_unready = m.unready > 0 && ratio > 1.0;
        if !scale_up_with_unready && m.missing == 0 {
            if self.within(ratio) {
                return current;
            }
            return (ratio * m.ready as f64).ceil() as u32;
        }
        let (mut total_m, mut pods) = (usage_m, m.ready);
        if m.missing > 0 {
            if ratio < 1.0 {
                // A missing pod counts at 100 % of its request (the target if higher) on a scale-down, at the
                // target value for a plain metric.
                let fallback_m = match self.cfg.metric {
                    HpaMetric::PodsRequestsPerSecond { target_per_pod } => Self::target_milli(target_per_pod),
                    _ => m.servers_per_pod as i64 * 1000 * self.target_percent().max(100) / 100,
                };
                total_m += m.missing as i64 * fallback_m;
                pods += m.missing;
            } else if ratio > 1.0 {
                pods += m.missing; // at 0 on a scale-up
            }
        }
        if scale_up_with_unready {
            pods += m.unready; // at 0 on a scale-up
        }
        let new_ratio = self.ratio(total_m, pods, m.servers_per_pod);
        if self.within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
            return current;
        }
        let new_replicas = (new_ratio * pods as f64).ceil() as u32;
        if (new_ratio < 1.0 && new_replicas > current) || (new_ratio > 1.0 && new_replicas < current) {
            return current;
        }
        new_replicas
    }

    fn change_in_period(events: &VecDeque<(f64, u32)>, now_s: f64, period_s: f64) -> i64 {
        events.iter().filter(|(t, _)| *t > now_s - period_s).map(|(_, n)| *n as i64).sum()
    }

    /// The legacy path (no `behavior`): the highest recommendation within the downscale window, then the
    /// bounds and the scale-up limit `max(2 · current, 4)` (`normalizeDesiredReplicas`).
    fn normalize_legacy(&mut self, now_s: f64, current: u32, desired: u32) -> u32 {
        let cutoff = now_s - self.cfg.downscale_stabilization_s;
        // Recommendations at or after the cutoff count (Kubernetes drops those strictly before it).
        let stabilized =
            self.recommendations.iter().filter(|(t, _)| *t >= cutoff).map(|(_, r)| *r).fold(desired, u32::max);
        self.recommendations.retain(|(t, _)| *t >= cutoff);
        self.recommendations.push_back((now_s, desired));
        let scale_up_limit = (2 * current).max(4);
        let max_allowed = self.cfg.max_replicas.min(scale_up_limit);
        if stabilized < self.cfg.min_replicas { self.cfg.min_replicas } else { stabilized.min(max_allowed) }
    }

    /// Steps 2–4 with a `behavior` at `now_s` with `current` replicas (`normalizeDesiredReplicasWithBehaviors`).
    pub fn normalize(&mut self, now_s: f64, current: u32, desired: u32) -> u32 {
        let Some(b) = self.cfg.behavior.as_ref() else {
            return self.normalize_legacy(now_s, current, desired);
        };
        // 2. Stabilisation over the recorded recommendations (the current one included).
        let up_w = b.scale_up.stabilization_window_s.unwrap_or(0.0);
        let down_w = b.scale_down.stabilization_window_s.unwrap_or(self.cfg.downscale_stabilization_s);
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
        let (up_policies, down_policies) =
            (b.scale_up.policies_or_default(true), b.scale_down.policies_or_default(false));
        let (up_ev, down_ev) = (&self.up_events, &self.down_events);
        let start = |period: f64| {
            current as i64 - Self::change_in_period(up_ev, now_s, period)
                + Self::change_in_period(down_ev, now_s, period)
        };
        if rec > current {
            let limit = match b.scale_up.select_policy {
                SelectPolicy::Disabled => current as i64,
                sel => {
                    let proposals = up_policies.iter().map(|p| match *p {
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
                    let proposals = down_policies.iter().map(|p| match *p {
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
        let longest = |ps: &[HpaPolicy]| -> f64 {
            ps.iter()
                .map(|p| match *p {
                    HpaPolicy::Pods { period_s, .. } | HpaPolicy::Percent { period_s, .. } => period_s,
                })
                .fold(0.0, f64::max)
        };
        let (lu, ld) = (longest(up_policies), longest(down_policies));
        self.up_events.retain(|(t, _)| *t > now_s - lu);
        self.down_events.retain(|(t, _)| *t > now_s - ld);
        if rec > current {
            self.up_events.push_back((now_s, rec - current));
        } else if rec < current {
            self.down_events.push_back((now_s, current - rec));
        }
        rec
    }

    /// One sync (`reconcileAutoscaler`) at `now_s` with `current` spec replicas: the new spec replicas.
    pub fn sync(&mut self, now_s: f64, current: u32, m: PodMetrics) -> u32 {
        if !self.started {
            self.started = true;
            self.recommendations.push_back((now_s, current));
        }
        let c = &self.cfg;
        if current == 0 && c.min_replicas != 0 {
            return current; // "scaling is disabled since the replica count of the target is zero"
        }
        if current > c.max_replicas {
            return c.max_replicas;
        }
        if current < c.min_replicas {
            return c.min_replicas;
        }
        let desired = self.replicas_for_metric(m, current);
        self.normalize(now_s, current, desired)
    }

    /// The sync instants in `(now − interval, now]`: the multiples of the sync period (to a nanosecond).
    fn sync_times(&self, now_s: f64, interval_s: f64) -> Vec<f64> {
        let p = self.cfg.sync_period_s;
        let first = ((now_s - interval_s) / p + 1e-9).floor() as i64 + 1;
        let last = (now_s / p + 1e-9).floor() as i64;
        (first..=last).map(|k| k as f64 * p).collect()
    }
}

impl Controller for KubernetesHpa {
    fn name(&self) -> &str {
        "kubernetes-hpa"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let start = obs.allocated_instances();
        // The group's own pods' load (beside a static pool, its share of the READY servers' work): busy
        // servers for CPU, requests per second for a `Pods` metric; an `External` metric is the service's.
        let group = obs.servers_per_instance as f64 * obs.ready_instances as f64;
        let share = if group > 0.0 { group / (group + obs.static_ready_servers as f64) } else { 0.0 };
        let rate_per_s = if obs.interval_s > 0.0 { obs.arrivals_in_interval as f64 / obs.interval_s } else { 0.0 };
        let load = match self.cfg.metric {
            HpaMetric::Cpu => obs.busy_servers() * share,
            HpaMetric::PodsRequestsPerSecond { .. } => rate_per_s * share,
            HpaMetric::ExternalRequestsPerSecond { .. } => rate_per_s,
        };
        let per_pod = if obs.ready_instances > 0 { load / obs.ready_instances as f64 } else { 0.0 };
        let cpu = self.cfg.metric == HpaMetric::Cpu;
        let mut current = start;
        for t in self.sync_times(obs.now_s, obs.interval_s) {
            // Pods that turn READY after this sync are Pending at it; of those READY, the young ones may have
            // no sample yet (missing) or, for CPU, one that does not cover a window (unready).
            let (mut later, mut missing, mut young) = (0u32, 0u32, 0u32);
            for &r in &obs.recent_ready_s {
                let age = t - r;
                if age < 0.0 {
                    later += 1;
                } else if age < self.cfg.first_metric_s {
                    missing += 1;
                } else if cpu && age < self.cfg.cpu_initialization_period_s && age < self.cfg.metric_window_s {
                    young += 1;
                }
            }
            // Pods ordered by an earlier sync of this step are Pending; pods removed go unready ones first.
            let ready = (obs.ready_instances - later.min(obs.ready_instances)).min(current);
            let missing = missing.min(ready);
            let young = young.min(ready - missing);
            let sampled = ready - missing - young;
            let m = PodMetrics {
                usage: match self.cfg.metric {
                    HpaMetric::ExternalRequestsPerSecond { .. } => load,
                    _ => per_pod * sampled as f64,
                },
                ready: sampled,
                unready: current - ready + young,
                missing,
                servers_per_pod: obs.servers_per_instance,
            };
            current = self.sync(t, current, m);
        }
        if current == start { ScaleDecision::Hold } else { ScaleDecision::To { instances: current } }
    }
}

impl HpaConfig {
    /// Checks the parameters into `p` (paths below the controller).
    pub fn check(&self, p: &mut Problems) {
        let c = self;
        match (&c.metric, c.target_utilisation) {
            (HpaMetric::Cpu, None) => {
                p.add("target_utilisation", "the Cpu metric needs a target utilisation, in (0, 1]")
            }
            (HpaMetric::Cpu, Some(u)) => {
                if p.within("target_utilisation", u, Interval::open_closed(0.0, 1.0)) {
                    let percent = u * 100.0;
                    p.require("target_utilisation", (percent - percent.round()).abs() < 1e-9, || {
                        format!(
                            "must be a whole percent (Kubernetes' averageUtilization is an integer), got {u} ({percent} %)"
                        )
                    });
                }
            }
            (
                HpaMetric::PodsRequestsPerSecond { target_per_pod }
                | HpaMetric::ExternalRequestsPerSecond { target_per_pod },
                u,
            ) => {
                p.positive("metric.target_per_pod", *target_per_pod);
                if u.is_some() {
                    p.add("target_utilisation", "a requests-per-second metric has its own target (metric.target_per_pod): leave target_utilisation out");
                }
            }
        }
        p.within("cpu_initialization_period_s", c.cpu_initialization_period_s, Interval::closed(0.0, 3600.0));
        p.within("metric_window_s", c.metric_window_s, Interval::open_closed(0.0, 600.0));
        p.within("first_metric_s", c.first_metric_s, Interval::closed(0.0, 600.0));
        p.within("tolerance", c.tolerance, Interval::closed_open(0.0, 1.0));
        p.at_least("max_replicas", c.max_replicas.into(), c.min_replicas.max(1).into(), "max(1, min_replicas)");
        p.within("sync_period_s", c.sync_period_s, Interval::open_closed(0.0, 3600.0));
        p.within("downscale_stabilization_s", c.downscale_stabilization_s, Interval::closed(0.0, 3600.0));
        let Some(b) = &c.behavior else { return };
        for (dir, rules) in [("scale_up", &b.scale_up), ("scale_down", &b.scale_down)] {
            p.under(&format!("behavior.{dir}"), |p| {
                if let Some(w) = rules.stabilization_window_s {
                    p.within("stabilization_window_s", w, Interval::closed(0.0, 3600.0));
                }
                if let Some(t) = rules.tolerance {
                    p.within("tolerance", t, Interval::closed_open(0.0, 1.0));
                }
                let Some(policies) = &rules.policies else { return };
                p.require("policies", !policies.is_empty() || rules.select_policy == SelectPolicy::Disabled, || {
                    "must list at least one policy (or leave policies out for the defaults, or select_policy: \
                     Disabled)"
                        .into()
                });
                for (i, pol) in policies.iter().enumerate() {
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
