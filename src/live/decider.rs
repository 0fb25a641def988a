//! The decision loop's body, shared by the live server and its replays: checked inputs in, a recommendation
//! out, through the same [`Controller`] object a scenario builds — with the fail-safe, the rate limits, and
//! shadow mode's counterfactual around it. No I/O and no clock: a tick is a function of what came before,
//! the tick's time and its inputs.
//!
//! Fail-safe rules (every one counted by kind and logged with its cause by the caller):
//! - a tick whose inputs are missing, stale, invalid or unreadable, or whose controller fails (a fault, or a
//!   model answering a non-finite value), never lowers the recommendation: it holds the larger of the last
//!   recommendation and the current replicas;
//! - after `fail_safe.grace_s` of consecutive failed ticks the tick is *unavailable* (HTTP 503, gRPC
//!   `UNAVAILABLE`), so KEDA's own fallback applies; the first good tick makes it available again;
//! - a recommendation is never below `fail_safe.min_replicas` (1 unless configured to allow zero) nor above
//!   the scaling type's `max_count`, and follows the rate limits of `behavior`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use prescale_sim::controller::{Controller, Diagnostics};
use prescale_sim::counterfactual::{ready_lag_steps, violates_slo};
use prescale_sim::demand::DemandSeries;
use prescale_sim::scenario::{ControllerSpec, InitContext};

use super::config::{Behavior, Mode, ServeConfig};
use super::inputs::{Checked, Fault, FaultKind, LiveInputs, Setting, observation};

/// One tick's outcome: a row of the replay CSV and what the endpoints serve.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// When, Unix seconds.
    pub t_unix_s: f64,
    /// Seconds since the controller's clock origin (the simulator's `now_s`).
    pub now_s: f64,
    /// READY + pending replicas, when read.
    pub current_replicas: Option<u32>,
    /// The controller's own answer, before the limits (none on a failed tick).
    pub controller_replicas: Option<u32>,
    /// The recommendation after the fail-safe and the rate limits (none before any replicas are known).
    pub recommended_replicas: Option<u32>,
    /// What the endpoints serve: the recommendation when acting, the current replicas in shadow mode.
    pub served_replicas: Option<u32>,
    /// What the controller reported (forecast, margin, coverage).
    pub diagnostics: Option<Diagnostics>,
    /// Why the tick failed, if it did.
    pub fault: Option<Fault>,
    /// Whether the endpoints answer with a value (false: 503 / `UNAVAILABLE`).
    pub available: bool,
    /// Age of the oldest input sample, seconds.
    pub max_input_age_s: f64,
}

/// Shadow mode's running counterfactual, by the one definition shadow runs in a scenario use
/// ([`prescale_sim::counterfactual`]): the controller's READY replicas are what it recommended one lead time
/// earlier, and a minute violates the SLO when the M/M/c latency at the observed rate on those servers misses it
/// (for the running replicas: the measured latency when `queries.latency_s` is given, else the same estimate).
pub use prescale_sim::counterfactual::Counterfactual;

/// The decision loop's state.
pub struct Decider {
    setting: Setting,
    controller: Box<dyn Controller>,
    controller_name: String,
    mode: Mode,
    fail_safe: super::config::FailSafe,
    behavior: Option<Behavior>,
    scaling_index: usize,
    max_replicas: u32,
    origin_unix_s: f64,
    last_recommended: Option<u32>,
    last_served: Option<u32>,
    recent: VecDeque<(f64, u32)>,
    degraded_since: Option<f64>,
    /// Failed ticks by kind.
    pub errors: BTreeMap<FaultKind, u64>,
    // Shadow mode.
    lag_ticks: usize,
    shadow_history: VecDeque<u32>,
    counterfactual: Counterfactual,
    price_usd_per_hour: f64,
    slo: prescale_sim::scenario::SloConfig,
}

impl Decider {
    /// The controller of `cfg` built as a scenario builds it, with its clock origin at `origin_unix_s` (the
    /// controller's `now_s` is `t − origin`; calendar features read `origin + now_s`).
    pub fn new(cfg: &ServeConfig, origin_unix_s: f64) -> Decider {
        let demand = DemandSeries { step_s: cfg.interval_s, start_unix_s: origin_unix_s, ..DemandSeries::default() };
        let ctx = InitContext {
            step_s: cfg.interval_s,
            demand: &demand,
            service: &cfg.service,
            cluster: &cfg.cluster,
            seed: cfg.seed,
            slo: &cfg.slo,
        };
        Decider::with_controller(cfg, origin_unix_s, cfg.controller.init(&ctx))
    }

    /// The decider of `cfg` around a controller built elsewhere (`cfg.controller` is not used).
    pub fn with_controller(cfg: &ServeConfig, origin_unix_s: f64, controller: Box<dyn Controller>) -> Decider {
        let st = cfg.scaling_index();
        let t = &cfg.cluster.instance_types[st];
        Decider {
            setting: Setting::of(cfg),
            controller_name: controller.name().to_string(),
            controller,
            mode: cfg.mode,
            fail_safe: cfg.fail_safe.clone(),
            behavior: cfg.behavior.clone(),
            scaling_index: st,
            max_replicas: t.max_count,
            origin_unix_s,
            last_recommended: None,
            last_served: None,
            recent: VecDeque::new(),
            degraded_since: None,
            errors: BTreeMap::new(),
            lag_ticks: ready_lag_steps(t.provisioning_delay.mean_s(), cfg.interval_s),
            shadow_history: VecDeque::new(),
            counterfactual: Counterfactual::default(),
            price_usd_per_hour: t.price_usd_per_hour,
            slo: cfg.slo.clone(),
        }
    }

    /// The controller's name.
    pub fn controller_name(&self) -> &str {
        &self.controller_name
    }

    /// The counterfactual so far (shadow mode; zeros when acting).
    pub fn counterfactual(&self) -> &Counterfactual {
        &self.counterfactual
    }

    /// A history tick: the controller decides on it (so it fits and calibrates), the answer is discarded.
    pub fn warm(&mut self, t_unix_s: f64, x: &LiveInputs) {
        let obs = observation(x, &self.setting, t_unix_s - self.origin_unix_s);
        let _ = self.controller.decide(&obs);
    }

    /// One control tick at `t_unix_s` with its checked inputs.
    pub fn tick(&mut self, t_unix_s: f64, checked: Checked) -> Tick {
        let now_s = t_unix_s - self.origin_unix_s;
        let current = checked.current_replicas;
        let mut diagnostics = None;
        let outcome: Result<(u32, LiveInputs), Fault> = checked.inputs.and_then(|x| {
            let obs = observation(&x, &self.setting, now_s);
            let decision = self.controller.decide(&obs);
            diagnostics = self.controller.diagnostics();
            if let Some(why) = self.controller.fault() {
                return Err(Fault {
                    kind: FaultKind::Model,
                    message: format!("controller {}: {why}", self.controller_name),
                });
            }
            if diagnostics.is_some_and(|d| d.non_finite_output) {
                return Err(Fault {
                    kind: FaultKind::Model,
                    message: format!(
                        "controller {}: the model answered a value that is not a finite number",
                        self.controller_name
                    ),
                });
            }
            let n = decision.scaling_count(x.current_replicas(), self.scaling_index);
            Ok((n, x))
        });
        let (controller_replicas, recommended, fault) = match outcome {
            Ok((n, x)) => {
                self.degraded_since = None;
                let r = self.limit(t_unix_s, n, x.current_replicas());
                if self.mode == Mode::Shadow {
                    self.account(&x, r);
                }
                (Some(n), Some(r), None)
            }
            Err(f) => {
                *self.errors.entry(f.kind).or_default() += 1;
                self.degraded_since.get_or_insert(t_unix_s);
                // Never lower: the larger of the last recommendation and the running replicas (even above
                // max_count, if someone scaled by hand: the fail-safe does not remove capacity).
                let held = match (self.last_recommended, current) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0)).max(self.fail_safe.min_replicas)),
                };
                (None, held, Some(f))
            }
        };
        if recommended.is_some() {
            self.last_recommended = recommended;
        }
        let served = match self.mode {
            Mode::Act => recommended,
            Mode::Shadow => current.or(self.last_served),
        };
        if served.is_some() {
            self.last_served = served;
        }
        let within_grace = self.degraded_since.is_none_or(|s| t_unix_s - s < self.fail_safe.grace_s);
        Tick {
            t_unix_s,
            now_s,
            current_replicas: current,
            controller_replicas,
            recommended_replicas: recommended,
            served_replicas: served,
            diagnostics,
            fault,
            available: within_grace && served.is_some(),
            max_input_age_s: checked.max_age_s,
        }
    }

    /// The controller's answer `n` within the replica limits and the rate limits, from `current` replicas.
    fn limit(&mut self, t_unix_s: f64, n: u32, current: u32) -> u32 {
        let lo = self.fail_safe.min_replicas;
        let raw = n.clamp(lo, self.max_replicas.max(lo));
        let Some(b) = &self.behavior else { return raw };
        // Scale-down stabilisation: no lower than the highest answer within the window.
        self.recent.push_back((t_unix_s, raw));
        while self.recent.front().is_some_and(|&(t, _)| t <= t_unix_s - b.scale_down_stabilisation_s) {
            self.recent.pop_front();
        }
        let mut target = raw;
        if target < current {
            let highest = self.recent.iter().map(|&(_, r)| r).max().unwrap_or(raw);
            target = highest.min(current).max(target);
        }
        // Per-period limits, as many periods as fit in an interval (compounded like successive HPA syncs).
        let periods = |p: f64| (self.setting.interval_s / p).ceil().max(1.0) as u32;
        let mut up = current as f64;
        for _ in 0..periods(b.scale_up_period_s) {
            up += (up * b.scale_up_percent / 100.0).ceil().max(b.scale_up_pods as f64);
        }
        let mut down = current as f64;
        for _ in 0..periods(b.scale_down_period_s) {
            down -= (down * b.scale_down_percent / 100.0).floor();
        }
        let limited = (target as f64).clamp(down, up.max(down)) as u32;
        limited.clamp(lo, self.max_replicas.max(lo))
    }

    /// Shadow mode: one interval of the counterfactual.
    fn account(&mut self, x: &LiveInputs, recommended: u32) {
        let s = &self.setting;
        if self.shadow_history.is_empty() {
            // Before its first decision the controller's replicas are the running ones.
            for _ in 0..self.lag_ticks {
                self.shadow_history.push_back(x.current_replicas());
            }
        }
        self.shadow_history.push_back(recommended);
        while self.shadow_history.len() > self.lag_ticks + 1 {
            self.shadow_history.pop_front();
        }
        let shadow_ready = self.shadow_history[0];
        let mu = 1.0 / s.mean_service_s;
        let lambda = x.request_rate_per_s;
        let (q, thr) = (self.slo.latency_quantile, self.slo.latency_threshold_s);
        let violated = |replicas: u32| {
            let c = replicas * s.servers_per_instance + s.static_ready_servers;
            violates_slo(lambda, mu, c as f64, q, thr)
        };
        let actual = x.latency_s.map_or_else(|| violated(x.ready_replicas), |l| l > thr);
        let shadow = violated(shadow_ready);
        let hours = s.interval_s / 3600.0;
        self.counterfactual.add(
            s.interval_s / 60.0,
            actual,
            shadow,
            x.current_replicas() as f64 * self.price_usd_per_hour * hours,
            recommended as f64 * self.price_usd_per_hour * hours,
        );
    }
}

/// Shared, read-mostly view of the latest tick for the endpoints.
pub type Shared = Arc<std::sync::RwLock<Option<Tick>>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::config::load_serve_text;
    use crate::live::prom::Sample;
    use prescale_sim::controller::ScaleDecision;
    use std::path::Path;

    fn config(extra: &str) -> ServeConfig {
        let interval = if extra.contains("interval_s") { "" } else { "interval_s: 60," };
        let text = format!(
            r#"Serve(
    name: "web",
    prometheus: (url: "http://127.0.0.1:9"),
    queries: (request_rate_per_s: "rate", ready_replicas: "ready"),
    {interval}
    service: (mean_service_s: 0.1),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.2,
            provisioning_delay: Constant(s: 120), initial_count: 2, min_count: 1, max_count: 40)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 40),
    {extra}
)"#
        );
        load_serve_text(Path::new("t.ron"), &text).map_err(|d| format!("{d:?}")).unwrap().config
    }

    fn good(rate: f64, ready: f64) -> Checked {
        let s = |v: f64| Ok(Some(Sample { value: v, sample_unix_s: 0.0 }));
        super::super::inputs::check(&vec![("request_rate_per_s", s(rate)), ("ready_replicas", s(ready))], 0.0, 1e9)
    }

    fn failed(kind: FaultKind, current: Option<u32>) -> Checked {
        Checked { inputs: Err(Fault { kind, message: "x".into() }), current_replicas: current, max_age_s: f64::NAN }
    }

    /// A failed tick never lowers the recommendation; past the grace it is unavailable; a good tick recovers.
    #[test]
    fn failures_hold_then_go_unavailable_then_recover() {
        let mut d = Decider::new(&config("behavior: None, fail_safe: (grace_s: 120)"), 0.0);
        let t = d.tick(60.0, good(200.0, 2.0));
        let up = t.recommended_replicas.unwrap();
        assert!(up > 2, "{t:?}");
        for (k, kind) in FaultKind::ALL.into_iter().enumerate() {
            let t = d.tick(120.0 + 60.0 * k as f64, failed(kind, Some(1)));
            assert_eq!(t.recommended_replicas, Some(up), "{kind:?} held the last recommendation");
            assert_eq!(t.available, k < 2, "unavailable from the grace on ({kind:?})");
        }
        assert_eq!(d.errors.values().sum::<u64>(), 6);
        let t = d.tick(600.0, good(0.0, 9.0));
        assert!(t.available && t.fault.is_none());
        assert_eq!(t.recommended_replicas, Some(1), "an idle service goes to min_replicas, never 0");
    }

    /// Held above what the current replicas are, even with nothing recommended before.
    #[test]
    fn a_cold_failure_holds_the_current_replicas() {
        let mut d = Decider::new(&config(""), 0.0);
        assert_eq!(d.tick(60.0, failed(FaultKind::Stale, Some(7))).recommended_replicas, Some(7));
        let mut d = Decider::new(&config(""), 0.0);
        let t = d.tick(60.0, failed(FaultKind::Unreachable, None));
        assert_eq!((t.recommended_replicas, t.available), (None, false), "nothing known: nothing served");
    }

    fn busy(rate: f64, ready: u32, busy_cores: f64) -> Checked {
        let busy_cpu_seconds = Some(busy_cores * 15.0);
        let x = LiveInputs { request_rate_per_s: rate, ready_replicas: ready, busy_cpu_seconds, ..Default::default() };
        Checked { inputs: Ok(x), current_replicas: Some(ready), max_age_s: 0.0 }
    }

    /// Kubernetes' default behaviour: up by max(100 %, 4 pods) per 15 s, down only as low as the highest
    /// answer of the last 5 minutes.
    #[test]
    fn rate_limits_follow_the_hpa_behavior() {
        let mut d = Decider::new(&config("interval_s: 15"), 0.0);
        // 2 replicas (8 servers) with 40 busy cores: the controller asks ceil(2 * 5 / 0.6) = 17; one 15-s
        // period allows 2 + max(2, 4) = 6.
        let t = d.tick(15.0, busy(400.0, 2, 40.0));
        assert_eq!((t.controller_replicas, t.recommended_replicas), (Some(17), Some(6)));
        // Demand gone at once: held at the window's highest answer (17), but not above the current replicas.
        let t = d.tick(30.0, busy(0.0, 6, 0.0));
        assert_eq!((t.controller_replicas, t.recommended_replicas), (Some(1), Some(6)));
        // Once the 17 is five minutes old (t = 315 s) the scale-down happens (100 % per period: all the way).
        let mut last = Vec::new();
        for k in 3..=21 {
            last.push(d.tick(15.0 * k as f64, busy(0.0, 6, 0.0)).recommended_replicas.unwrap());
        }
        assert_eq!(last[..last.len() - 1], [6; 18], "t = 45 .. 300 s");
        assert_eq!(last.last(), Some(&1));
    }

    /// A controller that answers `fail_at` ticks well, then reports a non-finite model output, then a fault.
    struct Failing {
        ticks: u32,
        fail_at: u32,
    }

    impl Controller for Failing {
        fn name(&self) -> &str {
            "failing"
        }
        fn decide(&mut self, _obs: &prescale_sim::controller::Observation) -> ScaleDecision {
            self.ticks += 1;
            ScaleDecision::To { instances: if self.ticks < self.fail_at { 9 } else { 0 } }
        }
        fn diagnostics(&self) -> Option<Diagnostics> {
            Some(Diagnostics { non_finite_output: self.ticks == self.fail_at, ..Default::default() })
        }
        fn fault(&self) -> Option<String> {
            (self.ticks > self.fail_at).then(|| "the child process exited".to_string())
        }
    }

    /// A model that answers a non-finite value, or a controller that faults, is a failed tick of kind
    /// `model`: the recommendation holds (the controller's 0 is never served) and the grace applies.
    #[test]
    fn model_failures_hold_the_recommendation() {
        let cfg = config("behavior: None, fail_safe: (grace_s: 60)");
        let mut d = Decider::with_controller(&cfg, 0.0, Box::new(Failing { ticks: 0, fail_at: 3 }));
        assert_eq!(d.tick(60.0, good(10.0, 4.0)).recommended_replicas, Some(9));
        assert_eq!(d.tick(120.0, good(10.0, 9.0)).recommended_replicas, Some(9));
        let t = d.tick(180.0, good(10.0, 9.0));
        let f = t.fault.unwrap();
        assert_eq!((f.kind, t.recommended_replicas, t.available), (FaultKind::Model, Some(9), true));
        assert!(f.message.contains("not a finite number"), "{}", f.message);
        let t = d.tick(240.0, good(10.0, 9.0));
        let f = t.fault.unwrap();
        assert_eq!((f.kind, t.recommended_replicas, t.available), (FaultKind::Model, Some(9), false));
        assert!(f.message.contains("the child process exited"), "{}", f.message);
        assert_eq!(d.errors[&FaultKind::Model], 2);
    }

    /// Shadow mode serves the running replicas and counts the minutes it would have prevented or caused.
    #[test]
    fn shadow_mode_serves_the_current_replicas() {
        let mut d = Decider::new(&config("mode: Shadow, behavior: None"), 0.0);
        for k in 1..=10 {
            // 2 READY replicas (8 servers) at 100 requests/s: 1 Erlang/server - overloaded.
            let t = d.tick(60.0 * k as f64, good(100.0, 2.0));
            assert_eq!(t.served_replicas, Some(2));
            assert!(t.recommended_replicas.unwrap() > 2);
        }
        let c = d.counterfactual();
        assert_eq!(c.minutes, 10.0);
        assert_eq!(c.actual_violation_minutes, 10.0);
        // Two intervals of provisioning delay: the first two minutes the controller's replicas are the running ones.
        assert_eq!(c.shadow_violation_minutes, 2.0);
        assert_eq!(c.prevented_minutes, 8.0);
        assert!(c.shadow_cost_usd > c.actual_cost_usd);
    }
}
