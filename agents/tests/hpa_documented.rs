//! The Kubernetes HPA, case by case, from the Kubernetes documentation ("Horizontal Pod Autoscaling",
//! kubernetes.io: algorithm details, readiness, stabilisation window, scaling policies and their example,
//! default behaviour, configurable tolerance) and from the Kubernetes sources' own test cases
//! (`pkg/controller/podautoscaler`: `replica_calculator_test.go`, and the rules of `horizontal.go`), not from
//! this implementation's own output. One pod = one instance of 4 servers; unless a test says otherwise, the
//! control interval is the HPA sync period, 15 s.

use prescale_agents::hpa::{
    HpaBehavior, HpaConfig, HpaMetric, HpaPolicy, HpaRules, KubernetesHpa, PodMetrics, SelectPolicy,
};
use prescale_sim::controller::{Controller, Observation, ScaleDecision};

const SERVERS: u32 = 4;
const SYNC_S: f64 = 15.0;

fn config(target: f64, min: u32, max: u32, behavior: Option<HpaBehavior>) -> HpaConfig {
    HpaConfig {
        target_utilisation: Some(target),
        metric: HpaMetric::Cpu,
        tolerance: 0.1,
        min_replicas: min,
        max_replicas: max,
        behavior,
        sync_period_s: SYNC_S,
        downscale_stabilization_s: 300.0,
        cpu_initialization_period_s: 300.0,
        metric_window_s: 15.0,
        first_metric_s: 0.0,
    }
}

/// An HPA with a `behavior` block.
fn hpa(target: f64, min: u32, max: u32, behavior: HpaBehavior) -> KubernetesHpa {
    KubernetesHpa::new(config(target, min, max, Some(behavior)))
}

/// An HPA without a `behavior` block (the controller's legacy path).
fn legacy(target: f64, min: u32, max: u32) -> KubernetesHpa {
    KubernetesHpa::new(config(target, min, max, None))
}

/// Scale-down without a stabilisation window (for cases about the ratio, not about the window).
fn no_down_window() -> HpaBehavior {
    HpaBehavior {
        scale_down: HpaRules { stabilization_window_s: Some(0.0), ..HpaRules::default() },
        ..HpaBehavior::default()
    }
}

/// An observation at `now_s`: `ready` pods at average utilisation `util`, `unready` pods provisioning.
fn obs(now_s: f64, ready: u32, unready: u32, util: f64) -> Observation {
    Observation {
        now_s,
        interval_s: SYNC_S,
        busy_server_s: util * (ready * SERVERS) as f64 * SYNC_S,
        ready_instances: ready,
        provisioning_instances: unready,
        draining_instances: 0,
        servers_per_instance: SERVERS,
        ready_servers: ready * SERVERS,
        ..Observation::default()
    }
}

fn to(d: ScaleDecision) -> Option<u32> {
    match d {
        ScaleDecision::To { instances } => Some(instances),
        ScaleDecision::Hold => None,
        ScaleDecision::Mix { .. } => panic!("the HPA scales one group"),
    }
}

/// "desiredReplicas = ceil[currentReplicas * ( currentMetricValue / desiredMetricValue )]": 200m against a
/// target of 100m doubles the replicas; 50m halves them.
#[test]
fn the_ratio_rule() {
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 4, 0, 1.0))), Some(8));
    let mut h = hpa(0.5, 1, 100, no_down_window());
    assert_eq!(to(h.decide(&obs(15.0, 4, 0, 0.25))), Some(2));
    // ceil: 3 pods at 1.5x the target want 4.5 -> 5.
    let mut h = hpa(0.4, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 3, 0, 0.6))), Some(5));
}

/// "the control plane skips any scaling action if the ratio is sufficiently close to 1.0 (within a
/// globally-configurable tolerance, 0.1 by default)".
#[test]
fn the_tolerance() {
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.5 * 1.09))), None);
    assert_eq!(to(h.decide(&obs(30.0, 10, 0, 0.5 * 0.91))), None);
    assert_eq!(to(h.decide(&obs(45.0, 10, 0, 0.5 * 1.12))), Some(12));
}

/// Readiness: when scaling up, pods that are not yet ready are treated as using 0 % of the target; the
/// action is skipped if that reverses the direction or lands within tolerance.
#[test]
fn not_yet_ready_pods_count_at_zero_when_scaling_up() {
    // 4 ready at twice the target, 4 unready: averaged over 8 pods the ratio is exactly 1 -> no change.
    let mut h = hpa(0.4, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 4, 4, 0.8))), None);
    // 4 ready at three times the target, 4 unready: ratio 1.5 over 8 pods -> ceil(12).
    let mut h = hpa(0.3, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 4, 4, 0.9))), Some(12));
    // Scaling down, unready pods do not change the ready pods' ratio: 4 ready at half the target -> 2.
    let mut h = hpa(
        0.5,
        1,
        100,
        HpaBehavior { scale_down: rules(0.0, SelectPolicy::Max, vec![pct(100, 15.0)]), ..HpaBehavior::default() },
    );
    assert_eq!(to(h.decide(&obs(15.0, 4, 4, 0.25))), Some(2));
}

/// Default scale-down stabilisation: "the autoscaler ... chooses the highest recommendation from the last
/// 300 seconds" before scaling down.
#[test]
fn scale_down_waits_for_the_stabilisation_window() {
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    // 8 pods at target: a recommendation of 8 is recorded at t = 15.
    assert_eq!(to(h.decide(&obs(15.0, 8, 0, 0.5))), None);
    // From t = 30 load halves: the raw recommendation is 4, but 8 was recommended within 300 s.
    let mut t = 30.0;
    while t <= 300.0 {
        assert_eq!(to(h.decide(&obs(t, 8, 0, 0.25))), None, "scaled down at t = {t}");
        t += SYNC_S;
    }
    // At t = 315 the 8 of t = 15 has left the window (only recommendations strictly after now - 300
    // count): scale to 4.
    assert_eq!(to(h.decide(&obs(315.0, 8, 0, 0.25))), Some(4));
}

/// Default scale-up behaviour: "Percent 100 every 15 seconds and Pods 4 every 15 seconds, selectPolicy
/// Max", no stabilisation: at most doubling (or +4 pods, whichever is more) per 15 s.
#[test]
fn default_scale_up_rate() {
    let mut h = hpa(0.1, 1, 1000, HpaBehavior::default());
    // 10 pods at 5x: raw 50; 100 % -> 20, +4 -> 14; Max -> 20.
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.5))), Some(20));
    // 15 s later the earlier event has left the 15-s period: from 20 -> 40.
    assert_eq!(to(h.decide(&obs(30.0, 20, 0, 0.25))), Some(40));
    // A small group: 1 pod at 10x wants 10; 100 % -> 2, +4 -> 5; Max -> 5.
    let mut h = hpa(0.1, 1, 1000, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 1, 0, 1.0))), Some(5));
}

fn pods(value: u32, period_s: f64) -> HpaPolicy {
    HpaPolicy::Pods { value, period_s }
}
fn pct(value: u32, period_s: f64) -> HpaPolicy {
    HpaPolicy::Percent { value, period_s }
}
fn rules(window: f64, select: SelectPolicy, policies: Vec<HpaPolicy>) -> HpaRules {
    HpaRules { stabilization_window_s: Some(window), select_policy: select, policies: Some(policies), tolerance: None }
}

/// The documentation's policy example: scale-down with "Pods 4 per 60 s" and "Percent 10 per 60 s"; with
/// selectPolicy Max the policy allowing the larger change wins (10 % once there are more than 40 pods),
/// counted from the replicas at the start of the period; with Min the smaller; Disabled stops scale-down.
#[test]
fn documented_scale_down_policies() {
    let down = |select| HpaBehavior {
        scale_down: rules(0.0, select, vec![pods(4, 60.0), pct(10, 60.0)]),
        ..HpaBehavior::default()
    };
    let mut h = hpa(0.5, 1, 100, down(SelectPolicy::Max));
    // 80 pods far below target (raw 8): Pods -> 76, Percent -> 72; Max change -> 72.
    assert_eq!(to(h.decide(&obs(60.0, 80, 0, 0.05))), Some(72));
    // Within the same 60-s period the 8 removed count against it: start 80 again -> limit 72 = current.
    assert_eq!(to(h.decide(&obs(75.0, 72, 0, 0.05))), None);
    assert_eq!(to(h.decide(&obs(105.0, 72, 0, 0.05))), None);
    // After the period: from 72, Pods -> 68, Percent -> int(64.8) = 64; Max -> 64.
    assert_eq!(to(h.decide(&obs(120.0, 72, 0, 0.05))), Some(64));
    // Below 40 pods the 4-pod policy allows more: 30 pods -> Pods 26, Percent 27 -> 26.
    let mut h = hpa(0.5, 1, 100, down(SelectPolicy::Max));
    assert_eq!(to(h.decide(&obs(60.0, 30, 0, 0.05))), Some(26));
    // selectPolicy Min: the smaller change: 80 -> 76.
    let mut h = hpa(0.5, 1, 100, down(SelectPolicy::Min));
    assert_eq!(to(h.decide(&obs(60.0, 80, 0, 0.05))), Some(76));
    // Disabled: no scale-down at all.
    let mut h = hpa(0.5, 1, 100, down(SelectPolicy::Disabled));
    assert_eq!(to(h.decide(&obs(60.0, 80, 0, 0.05))), None);
}

/// minReplicas and maxReplicas bound the result.
#[test]
fn replica_bounds() {
    let mut h = hpa(
        0.5,
        3,
        6,
        HpaBehavior { scale_down: rules(0.0, SelectPolicy::Max, vec![pct(100, 15.0)]), ..HpaBehavior::default() },
    );
    assert_eq!(to(h.decide(&obs(15.0, 4, 0, 1.0))), Some(6));
    let mut h = hpa(
        0.5,
        3,
        6,
        HpaBehavior { scale_down: rules(0.0, SelectPolicy::Max, vec![pct(100, 15.0)]), ..HpaBehavior::default() },
    );
    assert_eq!(to(h.decide(&obs(15.0, 5, 0, 0.05))), Some(3));
}

fn pods_at(usage_servers: f64, ready: u32, unready: u32, servers_per_pod: u32) -> PodMetrics {
    PodMetrics { usage: usage_servers, ready, unready, missing: 0, servers_per_pod }
}

/// `replica_calculator_test.go`, CPU cases (one server = a 1-core request; levels in millicores):
/// `TestReplicaCalcScaleUp` (levels 300, 500, 700 at a 30 % target -> 5), `TestReplicaCalcScaleUpUnreadyLessScale`
/// (the first pod unready: its sample is dropped, 1200m over 2 pods = 60 %, rebalanced over 3 pods = 40 % -> 4),
/// `TestReplicaCalcScaleDown` (100, 300, 500, 250, 250 at 50 % -> 28 % -> 3), `TestReplicaCalcTolerance`
/// (1010, 1030, 1020 at 100 % -> 102 %, within tolerance -> 3).
#[test]
fn replica_calculator_cases_of_the_kubernetes_sources() {
    let h = legacy(0.3, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_at(1.5, 3, 0, 1), 3), 5);
    assert_eq!(h.replicas_for_metric(pods_at(1.2, 2, 1, 1), 3), 4);
    let h = legacy(0.5, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_at(1.4, 5, 0, 1), 5), 3);
    let h = legacy(1.0, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_at(3.06, 3, 0, 1), 3), 3);
}

/// `GetResourceUtilizationRatio`: utilisation is `int32(usage * 100 / requests)`, a whole percent, before it
/// is compared with the target: 55.1 % against 50 % reads 55 %, a ratio of exactly 1.1, within tolerance
/// (the exact ratio 1.102 would scale 10 pods to 12).
#[test]
fn utilisation_is_a_whole_percent() {
    let h = legacy(0.5, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_at(0.551 * 40.0, 10, 0, SERVERS), 10), 10);
    assert_eq!(h.replicas_for_metric(pods_at(0.56 * 40.0, 10, 0, SERVERS), 10), 12);
}

/// Configurable tolerance (Kubernetes 1.33, `behavior.scaleUp.tolerance`): a scale-up tolerance of 5 % acts on
/// a ratio of 1.08 that the default 10 % would ignore, while scale-down keeps the global 10 %.
#[test]
fn tolerance_per_direction() {
    let b = HpaBehavior {
        scale_up: HpaRules { tolerance: Some(0.05), ..HpaRules::default() },
        scale_down: HpaRules { stabilization_window_s: Some(0.0), ..HpaRules::default() },
    };
    let mut h = hpa(0.5, 1, 100, b.clone());
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.54))), Some(11));
    let mut h = hpa(0.5, 1, 100, b);
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.46))), None);
    let mut h = hpa(0.5, 1, 100, no_down_window());
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.54))), None);
}

/// Without a `behavior` block (`normalizeDesiredReplicas`): scale-up is capped at `max(2 * current, 4)` per
/// sync (`calculateScaleUpLimit`), and scale-down keeps the highest recommendation of the last 300 s.
#[test]
fn without_behavior_the_legacy_rules_apply() {
    // 1 pod at 10x the target wants 10: the cap is max(2, 4) = 4.
    let mut h = legacy(0.1, 1, 1000);
    assert_eq!(to(h.decide(&obs(15.0, 1, 0, 1.0))), Some(4));
    // 10 pods at 5x want 50: the cap is 20 (with behavior defaults it would also be 20; 3 pods: 6, not 7).
    let mut h = legacy(0.1, 1, 1000);
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.5))), Some(20));
    let mut h = legacy(0.1, 1, 1000);
    assert_eq!(to(h.decide(&obs(15.0, 3, 0, 1.0))), Some(6));
    let mut h = hpa(0.1, 1, 1000, HpaBehavior::default());
    assert_eq!(to(h.decide(&obs(15.0, 3, 0, 1.0))), Some(7));
    // maxReplicas below the cap wins (`TestUpscaleCapGreaterThanMaxReplicas`: 20).
    let mut h = legacy(0.1, 1, 20);
    assert_eq!(to(h.decide(&obs(15.0, 10, 0, 0.5))), Some(20));
    // Scale-down: 8 pods at target, then at half: held for 300 s after the last recommendation of 8.
    let mut h = legacy(0.5, 1, 100);
    assert_eq!(to(h.decide(&obs(15.0, 8, 0, 0.5))), None);
    let mut t = 30.0;
    while t <= 315.0 {
        assert_eq!(to(h.decide(&obs(t, 8, 0, 0.25))), None, "scaled down at t = {t}");
        t += SYNC_S;
    }
    // Legacy keeps recommendations at the cutoff itself (only those strictly before now - 300 are dropped).
    assert_eq!(to(h.decide(&obs(330.0, 8, 0, 0.25))), Some(4));
}

/// `recordInitialRecommendation`: the first sync records the current count, so a new HPA over an
/// over-provisioned fleet scales it down only once the stabilisation window has passed.
#[test]
fn a_new_hpa_does_not_scale_down_within_the_window() {
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    for k in 1..=20 {
        assert_eq!(to(h.decide(&obs(15.0 * k as f64, 8, 0, 0.1))), None, "sync {k}");
    }
    assert_eq!(to(h.decide(&obs(15.0 * 21.0, 8, 0, 0.1))), Some(2));
}

/// `reconcileAutoscaler`: a target at 0 replicas with minReplicas >= 1 is left alone (scaling disabled);
/// above maxReplicas or below minReplicas the count is set to the bound whatever the metric says.
#[test]
fn out_of_range_and_scaled_to_zero_targets() {
    let mut h = legacy(0.5, 1, 10);
    assert_eq!(to(h.decide(&obs(15.0, 0, 0, 0.0))), None);
    let mut h = legacy(0.5, 1, 10);
    assert_eq!(to(h.decide(&obs(15.0, 14, 0, 0.9))), Some(10));
    let mut h = legacy(0.5, 3, 10);
    assert_eq!(to(h.decide(&obs(15.0, 2, 0, 0.0))), Some(3));
}

/// The sync period inside a longer simulation step: a 60-s step holds four syncs at 15, 30, 45 and 60 s; pods
/// ordered by one are Pending at the next. 1 pod at 10x a 10 % target, without `behavior`: 4 (cap), then 8
/// (cap; 100 % over 4 pods = 25 %, wants 10), then 10 (12 % over 8 pods, the cap is 16), then within
/// tolerance (10 % over 10 pods): 10 where a single sync per step would say 4.
#[test]
fn a_long_step_holds_several_syncs() {
    let mut h = legacy(0.1, 1, 1000);
    let mut o = obs(60.0, 1, 0, 1.0);
    o.interval_s = 60.0;
    o.busy_server_s = 1.0 * SERVERS as f64 * 60.0;
    assert_eq!(to(h.decide(&o)), Some(10));
    // A step of 10 s holds a sync only when a multiple of 15 s falls inside it.
    let mut h = legacy(0.1, 1, 1000);
    let at = |now: f64| {
        let mut o = obs(now, 1, 0, 1.0);
        o.interval_s = 10.0;
        o.busy_server_s = 1.0 * SERVERS as f64 * 10.0;
        o
    };
    assert_eq!(to(h.decide(&at(10.0))), None);
    assert_eq!(to(h.decide(&at(20.0))), Some(4));
}

fn pods_with(usage: f64, ready: u32, unready: u32, missing: u32) -> PodMetrics {
    PodMetrics { usage, ready, unready, missing, servers_per_pod: 1 }
}

/// `replica_calculator_test.go`, pods without a metric sample (`missingPods`; one pod = a 1-core request,
/// levels in millicores, a pod with no level is missing, `podReadiness: False` is unready):
/// `TestReplicaCalcMissingMetricsNoChangeEq` (1000 of 2 at 100 % -> 2), `…NoChangeGt` (1900 -> 2: the missing
/// pod at 0 % brings 190 % to 95 %), `…NoChangeLt` (600 -> 2: at 100 % it brings 60 % to 80 %, ⌈1.6⌉ = 2),
/// `…UnreadyChange` (3 pods, one unready, 450 at 50 % -> 3: the direction would flip), `…UnreadyScaleUp`
/// (2000 at 50 % -> 4), `…UnreadyScaleDown` (4 pods: 100, 100, one unready, one missing -> 3).
#[test]
fn missing_metrics_cases_of_the_kubernetes_sources() {
    let h = legacy(1.0, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_with(1.0, 1, 0, 1), 2), 2);
    assert_eq!(h.replicas_for_metric(pods_with(1.9, 1, 0, 1), 2), 2);
    assert_eq!(h.replicas_for_metric(pods_with(0.6, 1, 0, 1), 2), 2);
    let h = legacy(0.5, 1, 100);
    assert_eq!(h.replicas_for_metric(pods_with(0.45, 1, 1, 1), 3), 3);
    assert_eq!(h.replicas_for_metric(pods_with(2.0, 1, 1, 1), 3), 4);
    assert_eq!(h.replicas_for_metric(pods_with(0.2, 2, 1, 1), 4), 3);
}

fn plain(metric: HpaMetric) -> KubernetesHpa {
    KubernetesHpa::new(HpaConfig { target_utilisation: None, metric, ..config(0.5, 1, 100, None) })
}

/// `replica_calculator_test.go`, `Pods` and `External` metrics (levels are metric values; a `Pods` target is
/// an average per pod, compared in milli-units after an integer division): `TestReplicaCalcScaleUpCM`
/// (20, 10, 30 against 15 -> 4), `TestPlainMetricReplicaCalcMissingMetricsNoChangeEq` (20, 19, 21 of 5 pods
/// against 20 -> 5), `TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM` (10, 10 of 3 pods against 17, 2
/// replicas -> 2: the missing pod at the target would still ask for 3 while the ratio says down),
/// `TestReplicaCalcScaleUpPerPodCMExternal` (8.6 in all against 2.15 per pod, 3 replicas -> 4) and its
/// tolerance (8.6 against 2.8667 per pod for 3 replicas is within 10 % -> 3).
#[test]
fn pods_and_external_metric_cases_of_the_kubernetes_sources() {
    let h = plain(HpaMetric::PodsRequestsPerSecond { target_per_pod: 15.0 });
    assert_eq!(h.replicas_for_metric(pods_with(60.0, 3, 0, 0), 3), 4);
    let h = plain(HpaMetric::PodsRequestsPerSecond { target_per_pod: 20.0 });
    assert_eq!(h.replicas_for_metric(pods_with(60.0, 3, 0, 2), 5), 5);
    let h = plain(HpaMetric::PodsRequestsPerSecond { target_per_pod: 17.0 });
    assert_eq!(h.replicas_for_metric(pods_with(20.0, 2, 0, 1), 2), 2);
    let h = plain(HpaMetric::ExternalRequestsPerSecond { target_per_pod: 2.15 });
    assert_eq!(h.replicas_for_metric(pods_with(8.6, 3, 0, 0), 3), 4);
    let h = plain(HpaMetric::ExternalRequestsPerSecond { target_per_pod: 2.8667 });
    assert_eq!(h.replicas_for_metric(pods_with(8.6, 3, 0, 0), 3), 3);
}

/// The documentation's readiness rules through a whole sync: "the HPA ignores … pods … within their CPU
/// initialisation period whose sample does not cover a metric window" — a pod READY for 5 s of a 15-s window
/// counts at 0 % on a scale-up (3 pods at 100 % against 50 % ask for 4, not 6), and a pod READY for 20 s
/// counts in full; a pod the metrics pipeline does not report yet (`first_metric_s`) counts at 100 % of its
/// request on a scale-down, which holds 3 lightly loaded pods at 3 instead of 1.
#[test]
fn new_pods_are_unready_or_missing_as_the_controller_groups_them() {
    let with_young = |ready_at: f64| Observation { recent_ready_s: vec![ready_at], ..obs(15.0, 3, 0, 1.0) };
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&with_young(10.0))), Some(4));
    let mut h = hpa(0.5, 1, 100, HpaBehavior::default());
    assert_eq!(to(h.decide(&with_young(-5.0))), Some(6));
    // A CPU initialisation period shorter than the pod's age: its sample counts even within the window.
    let mut cfg = config(0.5, 1, 100, Some(HpaBehavior::default()));
    cfg.cpu_initialization_period_s = 2.0;
    assert_eq!(to(KubernetesHpa::new(cfg).decide(&with_young(10.0))), Some(6));
    // Missing: the scale-down is held.
    let light = |young: Vec<f64>| Observation { recent_ready_s: young, ..obs(15.0, 3, 0, 0.1) };
    let mut cfg = config(0.5, 1, 100, Some(no_down_window()));
    cfg.first_metric_s = 30.0;
    assert_eq!(to(KubernetesHpa::new(cfg.clone()).decide(&light(vec![0.0]))), None);
    assert_eq!(to(KubernetesHpa::new(cfg).decide(&light(vec![-60.0]))), Some(1));
    // A 30-s step holds syncs at 15 s and 30 s; a pod that turns READY at 16 s is Pending at the first: 2 pods
    // at 100 % and 1 at 0 % give 66 % against 50 %, 4 pods; at the second it is within its window (unready)
    // and the 4th Pending: 8 busy of 16 servers, 50 %, hold. An old pod would count: 6 at once.
    let step = |ready_at: f64| Observation {
        recent_ready_s: vec![ready_at],
        now_s: 30.0,
        interval_s: 30.0,
        busy_server_s: 12.0 * 30.0,
        ..obs(30.0, 3, 0, 1.0)
    };
    assert_eq!(to(hpa(0.5, 1, 100, HpaBehavior::default()).decide(&step(16.0))), Some(4));
    assert_eq!(to(hpa(0.5, 1, 100, HpaBehavior::default()).decide(&step(-100.0))), Some(6));
}

/// A `Pods` metric of requests per second and an `External` one through a whole sync: 600 requests in 15 s
/// over 4 READY pods is 10 per pod; against 5 per pod both ask for 8.
#[test]
fn requests_per_second_metrics_through_a_sync() {
    let o = Observation { arrivals_in_interval: 600, ..obs(15.0, 4, 0, 0.3) };
    for metric in [
        HpaMetric::PodsRequestsPerSecond { target_per_pod: 5.0 },
        HpaMetric::ExternalRequestsPerSecond { target_per_pod: 5.0 },
    ] {
        let mut h = KubernetesHpa::new(HpaConfig {
            target_utilisation: None,
            metric: metric.clone(),
            ..config(0.5, 1, 100, Some(HpaBehavior::default()))
        });
        assert_eq!(to(h.decide(&o)), Some(8), "{metric:?}");
    }
}
