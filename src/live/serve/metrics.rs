//! The server's own metrics (`/metrics`, Prometheus exposition): what each tick decided and why, the inputs'
//! faults, the answers' latencies.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::live::config::Mode;
use crate::live::decider::{Counterfactual, Tick};
use crate::live::inputs::FaultKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    pub(super) kind: String,
}

/// What `/metrics` exposes.
pub(super) struct Metrics {
    pub(super) registry: Registry,
    pub(super) recommended: Gauge<f64, AtomicU64>,
    pub(super) served: Gauge<f64, AtomicU64>,
    pub(super) controller: Gauge<f64, AtomicU64>,
    pub(super) current: Gauge<f64, AtomicU64>,
    pub(super) forecast: Gauge<f64, AtomicU64>,
    pub(super) margin: Gauge<f64, AtomicU64>,
    pub(super) coverage: Gauge<f64, AtomicU64>,
    pub(super) available: Gauge<f64, AtomicU64>,
    pub(super) input_age: Gauge<f64, AtomicU64>,
    pub(super) decision_seconds: Histogram,
    pub(super) ticks: Counter,
    pub(super) errors: Family<KindLabel, Counter>,
    pub(super) shadow: [Gauge<f64, AtomicU64>; 7],
    /// Forecast, margin and coverage of the memory and the network loops (registered only where the
    /// configuration reads that demand, so that a controller that plans no such resource shows none).
    pub(super) resources: [[Gauge<f64, AtomicU64>; 3]; 2],
}

impl Metrics {
    pub(super) fn new(name: &str, mode: Mode, memory: bool, network: bool) -> Metrics {
        let mut registry = Registry::with_labels(std::iter::once(("service".into(), name.to_string().into())));
        let g = |r: &mut Registry, n: &str, h: &str| {
            let g = Gauge::<f64, AtomicU64>::default();
            r.register(n, h, g.clone());
            g
        };
        let recommended =
            g(&mut registry, "prescale_recommended_replicas", "Replicas recommended (after fail-safe and rate limits)");
        let served = g(
            &mut registry,
            "prescale_served_replicas",
            "Replicas served to KEDA (the recommendation; the current replicas in shadow mode)",
        );
        let controller =
            g(&mut registry, "prescale_controller_replicas", "The controller's own answer before the limits");
        let current = g(&mut registry, "prescale_current_replicas", "READY + pending replicas read from Prometheus");
        let forecast = g(&mut registry, "prescale_forecast_cpu_cores", "Demand forecast for the interval, CPU cores");
        let margin = g(&mut registry, "prescale_margin_cpu_cores", "Safety margin of the last decision, CPU cores");
        let coverage = g(
            &mut registry,
            "prescale_coverage_ratio",
            "Realised coverage: share of intervals with demand within forecast + margin",
        );
        let available = g(
            &mut registry,
            "prescale_available",
            "1 while a recommendation is served, 0 while answering 503 / UNAVAILABLE",
        );
        let input_age =
            g(&mut registry, "prescale_input_age_seconds", "Age of the oldest input sample at the last tick");
        let decision_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 10));
        registry.register(
            "prescale_decision_seconds",
            "Time to read the inputs and decide, seconds",
            decision_seconds.clone(),
        );
        let ticks = Counter::default();
        registry.register("prescale_ticks", "Control ticks", ticks.clone());
        let errors = Family::<KindLabel, Counter>::default();
        registry.register("prescale_errors", "Failed ticks by kind", errors.clone());
        for k in FaultKind::ALL {
            let _ = errors.get_or_create(&KindLabel { kind: k.label().into() });
        }
        let shadow_names = [
            ("prescale_shadow_minutes", "Shadow mode: minutes observed"),
            ("prescale_shadow_actual_violation_minutes", "Shadow mode: minutes the running replicas violated the SLO"),
            (
                "prescale_shadow_violation_minutes",
                "Shadow mode: minutes the controller's replicas would have violated the SLO",
            ),
            (
                "prescale_shadow_prevented_minutes",
                "Shadow mode: violations the controller would have prevented, minutes",
            ),
            ("prescale_shadow_caused_minutes", "Shadow mode: violations the controller would have caused, minutes"),
            ("prescale_shadow_actual_cost_usd", "Shadow mode: price of the running replicas, USD"),
            ("prescale_shadow_cost_usd", "Shadow mode: price of the controller's replicas, USD"),
        ];
        let shadow = shadow_names.map(|(n, h)| {
            let gauge = Gauge::<f64, AtomicU64>::default();
            if mode == Mode::Shadow {
                registry.register(n, h, gauge.clone());
            }
            gauge
        });
        let resource_names = [
            (
                memory,
                [
                    ("prescale_memory_forecast_gib", "Memory demand forecast for the interval, GiB"),
                    ("prescale_memory_margin_gib", "Safety margin of the memory loop, GiB"),
                    ("prescale_memory_coverage_ratio", "Memory loop's realised coverage"),
                ],
            ),
            (
                network,
                [
                    ("prescale_network_forecast_gbps", "Network demand forecast for the interval, Gbit/s"),
                    ("prescale_network_margin_gbps", "Safety margin of the network loop, Gbit/s"),
                    ("prescale_network_coverage_ratio", "Network loop's realised coverage"),
                ],
            ),
        ];
        let resources = resource_names.map(|(read, names)| {
            names.map(|(n, h)| {
                let gauge = Gauge::<f64, AtomicU64>::default();
                if read {
                    registry.register(n, h, gauge.clone());
                }
                gauge
            })
        });
        Metrics {
            resources,
            registry,
            recommended,
            served,
            controller,
            current,
            forecast,
            margin,
            coverage,
            available,
            input_age,
            decision_seconds,
            ticks,
            errors,
            shadow,
        }
    }

    pub(super) fn update(&self, t: &Tick, cf: &Counterfactual, decision_s: f64) {
        let set = |g: &Gauge<f64, AtomicU64>, v: Option<f64>| {
            if let Some(v) = v {
                g.set(v);
            }
        };
        set(&self.recommended, t.recommended_replicas.map(f64::from));
        set(&self.served, t.served_replicas.map(f64::from));
        set(&self.controller, t.controller_replicas.map(f64::from));
        set(&self.current, t.current_replicas.map(f64::from));
        if let Some(d) = t.diagnostics {
            set(&self.forecast, d.forecast_cpu_cores.is_finite().then_some(d.forecast_cpu_cores));
            set(&self.margin, d.margin_cpu_cores.is_finite().then_some(d.margin_cpu_cores));
            set(&self.coverage, d.coverage.is_finite().then_some(d.coverage));
            for (gauges, r) in self.resources.iter().zip([d.memory, d.network]) {
                if let Some(r) = r {
                    for (g, x) in gauges.iter().zip([r.forecast, r.margin, r.coverage]) {
                        set(g, x.is_finite().then_some(x));
                    }
                }
            }
        }
        self.available.set(t.available as u8 as f64);
        set(&self.input_age, t.max_input_age_s.is_finite().then_some(t.max_input_age_s));
        self.decision_seconds.observe(decision_s);
        self.ticks.inc();
        if let Some(f) = &t.fault {
            self.errors.get_or_create(&KindLabel { kind: f.kind.label().into() }).inc();
        }
        let v = [
            cf.minutes,
            cf.actual_violation_minutes,
            cf.shadow_violation_minutes,
            cf.prevented_minutes,
            cf.caused_minutes,
            cf.actual_cost_usd,
            cf.shadow_cost_usd,
        ];
        for (g, x) in self.shadow.iter().zip(v) {
            g.set(x);
        }
    }

    pub(super) fn text(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).expect("writing to memory");
        s
    }
}
