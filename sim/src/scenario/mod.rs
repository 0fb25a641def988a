//! Scenarios: the single description of a world to simulate, and how it is lived through.
//!
//! A [`ScenarioConfig`] (plain serde data, written in RON in `scenarios/`) names the workload, the service
//! (what a request costs), the cluster, the SLO, the controller, the control step, the horizon, the fidelity
//! and the seed. [`ScenarioConfig::problems`] lists *every* problem with its dotted path;
//! [`prepare`] turns a valid config (and its loaded trace, if it replays one) into a [`Prepared`] scenario
//! whose [`DemandSeries`] both fidelities share; [`run`] lives through it and derives the metrics.
//!
//! # Metrics (the one place they are defined)
//! Per control step `(t_start, t_end]` ([`MetricsRow`]):
//! * `demand_rate_per_s`: the workload's request rate; `demand_cpu_cores = rate · mean_service_s ·
//!   cores_per_request` (the offered load in cores); memory, storage and network demand are the trace's
//!   explicit columns where given, else `rate · mean_service_s · memory_gib_per_request`, 0, and
//!   `rate · network_mbit_per_request / 1000`.
//! * `ready_*`, `provisioning_*`: capacity of READY instances (warming ones at their reduced share) and of
//!   PROVISIONING ones at the end of the step; `allocated_cpu_cores = ready + provisioning`.
//! * `utilisation = busy server-seconds / READY server-seconds` over the step (busy time on DRAINING
//!   instances counts, as in REFERENCE_MODEL §4.5, so it can exceed 1 briefly while they finish).
//! * `latency_p50_s`, `latency_p95_s`, `latency_p99_s`: of the requests completing in the step
//!   (request-level: nearest rank of their sojourns; fluid: of the step's latency distribution).
//! * `slo_violated`: the latency at the SLO's quantile exceeds the threshold, or more than `1 − quantile` of
//!   the step's requests failed; `slo_excess_s = max(0, latency at the quantile − threshold)`.
//! * `cost_usd`: billed cost so far (billing granularity and minimum applied).
//! * `over_provisioning_cores = max(0, allocated − demand_cpu)` (capacity paid for beyond the offered
//!   load); `under_provisioning_cores = max(0, demand_cpu − ready)` (offered load beyond what can serve).
//!   Both can be positive at once: capacity ordered but not yet ready.
//! * `scaling_actions`: instances ordered or removed by the decision at the end of the step;
//!   `failed_requests`: lost on failed instances or refused for lack of memory.
//! * Forecasting controllers only (NaN otherwise): `forecast_cpu_cores`, the one-step-ahead forecast made
//!   for this step (as offered load in cores); `forecast_error_cores = demand_cpu_cores −
//!   forecast_cpu_cores`; `margin_cpu_cores`, the margin added at the decision ending the step; `coverage`,
//!   the fraction of steps so far whose demand stayed within forecast + margin.
//! * With a shadow controller (`shadow:`; empty otherwise): `shadow_allocated_cpu_cores` and
//!   `shadow_ready_cpu_cores`, the capacity its decisions would have allocated and had READY (READY = what it
//!   decided one mean provisioning delay earlier; removals take effect at once); `shadow_slo_violated`, whether
//!   that READY capacity would have missed the SLO at the step's rate (M/M/c); `shadow_cost_usd`, its
//!   allocation's price so far (per step, no billing minimum). Its decisions are made on the acting
//!   cluster's observations, as a shadow deployment's would be. The estimate ignores the backlog carried
//!   between steps and warm-up, so during an overload it is optimistic (a controller shadowing itself counts
//!   6 of its 9 violated minutes on `scenarios/flash-crowd.ron`).
//!
//! Run summary ([`RunSummary`]): `slo_violation_minutes` (total length of violated steps),
//! `slo_violation_request_fraction` ((slow completions + failed + still waiting at the horizon) / requests;
//! fluid: expected numbers), `unfinished_requests` (waiting at the horizon),
//! `cost_usd`, with a priced SLO (`slo.violation_price_usd_per_min`) `slo_penalty_usd` (violated minutes ×
//! price) and `total_cost_usd` (bill + penalty), `over_/under_provisioning_core_hours` (integrals of the
//! per-step values),
//! `scaling_actions`, `latency_p99_s` over the whole run (request-level: nearest rank of every completion;
//! fluid: quantile of the request-weighted mixture of the step distributions) and mean utilisation; for
//! forecasting controllers `forecast_mae_cores`, the final `coverage` and `fallback_steps` (decided by the
//! reactive fallback while history was short); with a shadow, [`ShadowSummary`]: its cost and SLO minutes,
//! and the minutes in which it would have prevented (acting violated, shadow not) or caused (the reverse) a
//! violation. With a warm history (`history_s`), every summary figure covers the scored steps
//! `[scored_from_s, horizon_s)` only (latency quantiles: the scored steps' mixture, or the requests that
//! arrived after the history; cost and instance-hours: the bill after the history; `max_instances`: the most
//! instances at a scored step's end), and `history` holds the history's [`PeriodMetrics`] apart.
//!
//! Code map: `config` (the schema), `validate` (problems and size limits), `prepare` (demand), `shadow`
//! (shadow mode), this file (the run driver); the metric definitions are in [`crate::metrics`] and are
//! re-exported here.

mod config;
mod prepare;
mod shadow;
mod sizing;
mod summary;
mod validate;

pub use crate::validate::{Problem, Problems};
pub use config::*;
pub use prepare::{Prepared, prepare};
pub use shadow::ShadowSummary;
pub use sizing::{SIZING_MAX_INSTANCES, Sizing, instances_for_slo};
pub use validate::{MAX_HORIZON_S, MAX_RATE_PER_S, MAX_REQUEST_LEVEL_REQUESTS, MAX_STEPS};

use crate::metrics::sum;
pub use crate::metrics::{MetricBasis, MetricsRow, PeriodMetrics, row};
use shadow::{Shadow, shadow_rows};
pub use summary::{RunOutput, RunSummary};
use validate::{demand_problem, failures_problem};

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterConfig, Resources};
use crate::controller::{Controller, Diagnostics, Observation, ReferenceHpa, ScaleDecision, Static};
use crate::demand::{Component, DemandSeries, PiecewiseArrivals, arrival_draws, synthetic_rates};
use crate::fluid::{FluidModel, FluidParams, FluidReport, FluidStepper};
use crate::metrics::StepSample;
use crate::observe::{Observer, observe};
use crate::queueing::mixture_quantile;
use crate::rng::RunSeed;
use crate::service::{QueueDiscipline, ServiceConfig, ServiceModel};
use crate::stats::nearest_rank;
use crate::trace::{Trace, TracePolicies, TraceReport, resample};
use crate::workload::ExpServiceTimes;

/// Lives through a prepared scenario with `seed`, calling `progress(fraction done)` now and then.
pub fn run<C: ControllerSpec>(p: &Prepared<C>, seed: u64, progress: &mut dyn FnMut(f64)) -> RunOutput {
    run_with(p, seed, progress, &|| false, None, None).expect("never cancelled")
}

/// Where [`run_streamed`] hands a run's rows.
type RowSink<'a> = &'a mut dyn FnMut(&[MetricsRow]);

/// [`run`], handing `rows` the run's per-step rows in order, each once, in batches — a fluid run without a
/// shadow controller while it goes on (every 1 % of the steps), any other at the end — so that a writer can
/// format and store them while the simulation runs. Concatenated, the batches are the output's `rows`; the
/// same bits as [`run`].
pub fn run_streamed<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    progress: &mut dyn FnMut(f64),
    rows: &mut dyn FnMut(&[MetricsRow]),
) -> RunOutput {
    run_with(p, seed, progress, &|| false, None, Some(rows)).expect("never cancelled")
}

/// [`run`], asking `cancel()` whenever it reports progress (every 1 % of the steps) and giving up with `None`
/// once it says yes (what an interactive front end runs in the background). Not cancelled, the same bits as
/// [`run`].
pub fn run_unless<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    progress: &mut dyn FnMut(f64),
    cancel: &dyn Fn() -> bool,
) -> Option<RunOutput> {
    run_with(p, seed, progress, cancel, None, None)
}

/// One control tick as the acting controller lived it: what it saw, what it answered, what it reported.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedTick {
    /// The observation.
    pub obs: Observation,
    /// The decision.
    pub decision: ScaleDecision,
    /// Its diagnostics after deciding.
    pub diagnostics: Option<Diagnostics>,
}

/// [`run`], also returning every tick of the acting controller (the run is the same bits: the recorder only
/// copies what passes): what `prescale run --record-live` turns into Prometheus data and decisions to
/// replay a live server against.
pub fn run_recorded<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> (RunOutput, Vec<RecordedTick>) {
    let mut ticks = Vec::new();
    let out = run_with(p, seed, progress, &|| false, Some(&mut ticks), None).expect("never cancelled");
    (out, ticks)
}

/// Logs every tick of the acting controller as a [`RecordedTick`].
struct RecordTicks;

impl Observer for RecordTicks {
    type Entry = RecordedTick;
    fn observe(&mut self, obs: &Observation, decision: &ScaleDecision, acting: &dyn Controller) -> RecordedTick {
        RecordedTick { obs: obs.clone(), decision: decision.clone(), diagnostics: acting.diagnostics() }
    }
}

fn run_with<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    progress: &mut dyn FnMut(f64),
    cancel: &dyn Fn() -> bool,
    record: Option<&mut Vec<RecordedTick>>,
    mut rows_out: Option<RowSink<'_>>,
) -> Option<RunOutput> {
    let cfg = &p.config;
    let horizon_s = p.demand.steps() as f64 * p.demand.step_s;
    let ctx = p.init_context(seed);
    let controller = cfg.controller.init(&ctx);
    let controller_name = controller.name().to_string();
    // Observers of the acting controller: the tick recorder, then the shadow controller.
    let (mut ticks, mut shadow_log) = (None, None);
    let mut controller = controller;
    if record.is_some() {
        let (observed, log) = observe(controller, RecordTicks);
        (controller, ticks) = (observed, Some(log));
    }
    if let Some(sc) = &cfg.shadow {
        let (observed, log) = observe(controller, Shadow(sc.init(&ctx)));
        (controller, shadow_log) = (observed, Some(log));
    }
    let fault;
    // Rows made (and handed out) while a fluid run without a shadow goes on: a row is its step's alone there.
    let mut streamed: Option<Vec<MetricsRow>> = None;
    let (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99) = match cfg.fidelity {
        Fidelity::Fluid => {
            let model = fluid_model(p, seed, controller);
            let mut report = match rows_out.as_mut().filter(|_| cfg.shadow.is_none()) {
                Some(hand) => {
                    let basis = MetricBasis::of(cfg);
                    let mut made: Vec<MetricsRow> = Vec::with_capacity(p.demand.steps());
                    let report = model.run_observed(progress, cancel, &mut |closed| {
                        let k0 = made.len();
                        made.extend(closed.iter().enumerate().map(|(i, s)| row(&basis, &p.demand, k0 + i, s)));
                        hand(&made[k0..]);
                    })?;
                    streamed = Some(made);
                    report
                }
                None => model.run_unless(progress, cancel)?,
            };
            fault = report.controller_fault.take();
            fluid_parts(report, scored_from(p))
        }
        Fidelity::RequestLevel => {
            let seed = RunSeed(seed);
            let scfg = ServiceConfig {
                cluster: cfg.cluster.clone(),
                per_request: cfg.per_request(),
                control_interval_s: Some(p.demand.step_s),
                horizon_s: Some(horizon_s),
                discipline: QueueDiscipline::Fifo,
                // Latency quantiles of the scored period: requests that arrive after the history.
                record_from_s: cfg.history_s,
                record_until_s: f64::INFINITY,
                memory_demand_gib: p.demand.memory_gib.clone().map(|m| (p.demand.step_s, m)),
                network_demand_gbps: p.demand.network_gbps.clone().map(|m| (p.demand.step_s, m)),
                step_stats_slo_s: Some(cfg.slo.latency_threshold_s),
            };
            let arrivals = PiecewiseArrivals::new(arrival_draws(seed), p.demand.rate_per_s.clone(), p.demand.step_s);
            let service = ExpServiceTimes::new(seed.draws("service"), 1.0 / cfg.service.mean_service_s);
            let mut model =
                ServiceModel::new(scfg, arrivals, service, controller, seed).expect("prepared scenarios are valid");
            model.reserve_samples(p.demand.expected_requests() as usize);
            let mut sim = model.into_simulation();
            let n = p.demand.steps();
            let chunk = (n / 100).max(1);
            for k in (chunk..n).step_by(chunk) {
                sim.run_until(crate::SimTime::from_secs(k as f64 * p.demand.step_s));
                progress(k as f64 / n as f64);
                if cancel() {
                    return None;
                }
            }
            sim.run_until(crate::SimTime::from_secs(horizon_s));
            progress(1.0);
            let mut r = sim.into_model().finish(horizon_s);
            fault = r.controller_fault.take();
            let s = &r.sorted_sojourn_s;
            (
                r.steps,
                r.fleet,
                r.cost_usd,
                r.instance_seconds,
                r.max_instances,
                r.final_instances,
                nearest_rank(s, 0.5),
                nearest_rank(s, 0.99),
            )
        }
    };
    if let (Some(record), Some(ticks)) = (record, ticks) {
        *record = ticks.take();
    }
    let shadow_decisions = shadow_log.map(|log| log.take());
    let handed = streamed.is_some();
    let out = assemble(
        p,
        seed,
        controller_name,
        (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99),
        shadow_decisions.as_deref(),
        fault,
        streamed,
    );
    if let Some(hand) = rows_out.filter(|_| !handed) {
        hand(&out.rows);
    }
    Some(out)
}

/// The fluid model of a prepared scenario, with `controller` deciding.
pub fn fluid_model<C: ControllerSpec>(p: &Prepared<C>, seed: u64, controller: Box<dyn Controller>) -> FluidModel {
    FluidModel::new(&p.config.cluster, p.fluid_params(), p.demand.clone(), controller, RunSeed(seed))
        .expect("prepared scenarios are valid")
}

/// The output of a fluid run of `p` made elsewhere (e.g. driven tick by tick through [`FluidModel::stepper`]
/// by a lockstep driver), exactly as [`run`] would report it; `controller_name` names who decided.
/// (Scenarios with a shadow controller are run by [`run`].)
pub fn fluid_output<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    controller_name: String,
    mut report: FluidReport,
) -> RunOutput {
    let fault = report.controller_fault.take();
    assemble(p, seed, controller_name, fluid_parts(report, scored_from(p)), None, fault, None)
}

/// The first scored step of a run of `p` (after its warm history).
fn scored_from<C: ControllerSpec>(p: &Prepared<C>) -> usize {
    ((p.config.history_s / p.demand.step_s).round() as usize).min(p.demand.steps())
}

type Parts = (Vec<StepSample>, crate::cluster::FleetCounters, f64, f64, u32, u32, f64, f64);

/// The parts of a fluid run, run-level latency quantiles over the scored steps `k0..`.
fn fluid_parts(r: FluidReport, k0: usize) -> Parts {
    // The steps' own quantiles bracket the run's and start the search.
    let scored = &r.steps[k0.min(r.steps.len())..];
    let p50s: Vec<f64> = scored.iter().map(|s| s.latency_p50_s).collect();
    let p99s: Vec<f64> = scored.iter().map(|s| s.latency_p99_s).collect();
    let latencies = &r.latencies[k0.min(r.latencies.len())..];
    let p50 = mixture_quantile(latencies, 0.5, Some(&p50s));
    let p99 = mixture_quantile(latencies, 0.99, Some(&p99s));
    (r.steps, r.fleet, r.cost_usd, r.instance_seconds, r.max_instances, r.final_instances, p50, p99)
}

fn assemble<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    controller_name: String,
    (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99): Parts,
    shadow_log: Option<&[crate::controller::ScaleDecision]>,
    controller_fault: Option<String>,
    made: Option<Vec<MetricsRow>>,
) -> RunOutput {
    let cfg = &p.config;
    let horizon_s = p.demand.steps() as f64 * p.demand.step_s;
    let basis = MetricBasis::of(cfg);
    // The rows, unless made already as the steps closed (the same function of each step).
    let mut rows: Vec<MetricsRow> =
        made.unwrap_or_else(|| steps.iter().enumerate().map(|(k, s)| row(&basis, &p.demand, k, s)).collect());
    debug_assert_eq!(rows.len(), steps.len(), "a row per step");
    let shadow = shadow_log.map(|log| shadow_rows(cfg, &p.demand, log, &mut rows));
    // Everything below scores the steps after the warm history (all of them without one).
    let k0 = scored_from(p).min(steps.len());
    let history = (k0 > 0).then(|| PeriodMetrics::of_rows(&rows[..k0], 0.0));
    let (before_cost, before_inst_s) =
        if k0 > 0 { (steps[k0 - 1].cost_usd, steps[k0 - 1].instance_s) } else { (0.0, 0.0) };
    let all_steps = &steps;
    let (steps, rows_scored) = (&steps[k0..], &rows[k0..]);
    // The span metrics by their one definition (cost: the fleet's bill, equal to the last row's to 1e-9).
    let period = PeriodMetrics::of_rows(rows_scored, before_cost);
    let requests = sum(steps.iter().map(|s| s.arrivals));
    let slow = sum(steps.iter().map(|s| s.slo_violations));
    let failed = sum(steps.iter().map(|s| s.failed));
    let unfinished = steps.last().map_or(0.0, |s| s.queued);
    let busy = sum(steps.iter().map(|s| s.busy_server_s));
    let ready = sum(steps.iter().map(|s| s.ready_server_s));
    // The fleet's own totals for a whole run; the scored span's from the per-step record.
    let (cost_usd, inst_s, max_i) = if k0 == 0 {
        (cost_usd, inst_s, max_i)
    } else {
        let most = steps.iter().map(|s| s.ready_instances + s.provisioning_instances + s.draining_instances).max();
        (period.cost_usd, steps.last().map_or(0.0, |s| s.instance_s) - before_inst_s, most.unwrap_or(final_i))
    };
    let blocks = crate::metrics::score_blocks(rows_scored.len(), p.demand.step_s)
        .into_iter()
        .map(|b| {
            let before = (k0 + b.start).checked_sub(1).map_or(0.0, |k| all_steps[k].cost_usd);
            PeriodMetrics::of_rows(&rows_scored[b], before)
        })
        .collect();
    let penalty_usd = cfg.slo.violation_price_usd_per_min.map(|price| period.penalty_usd(price));
    let summary = RunSummary {
        scenario: cfg.name.clone(),
        fidelity: cfg.fidelity,
        seed,
        horizon_s,
        scored_from_s: k0 as f64 * p.demand.step_s,
        history,
        step_s: p.demand.step_s,
        controller: controller_name,
        requests,
        completions: sum(steps.iter().map(|s| s.completions)),
        failed_requests: failed,
        unfinished_requests: unfinished,
        slo_violation_minutes: period.slo_violation_minutes,
        slo_violation_request_fraction: if requests > 0.0 { (slow + failed + unfinished) / requests } else { 0.0 },
        cost_usd,
        slo_penalty_usd: penalty_usd,
        total_cost_usd: penalty_usd.map(|x| x + cost_usd),
        instance_hours: inst_s / 3600.0,
        over_provisioning_core_hours: period.over_provisioning_core_hours,
        under_provisioning_core_hours: period.under_provisioning_core_hours,
        scaling_actions: rows_scored.iter().map(|r| r.scaling_actions as u64).sum(),
        latency_p50_s: p50,
        latency_p99_s: p99,
        mean_utilisation: if ready > 0.0 { busy / ready } else { 0.0 },
        max_instances: max_i,
        final_instances: final_i,
        fleet,
        forecast_mae_cores: {
            let errs: Vec<f64> =
                rows_scored.iter().map(|r| r.forecast_error_cores.abs()).filter(|e| e.is_finite()).collect();
            if errs.is_empty() { f64::NAN } else { sum(errs.iter().copied()) / errs.len() as f64 }
        },
        coverage: steps.iter().rev().find_map(|s| s.diagnostics.map(|d| d.coverage)).unwrap_or(f64::NAN),
        fallback_steps: steps.iter().filter(|s| s.diagnostics.is_some_and(|d| d.fallback)).count() as u64,
        shadow,
        blocks,
    };
    // The controller's own account first (it names the step and what went wrong), else the first step whose
    // model output was not finite.
    let fault = controller_fault.or_else(|| {
        all_steps.iter().enumerate().find(|(_, s)| s.diagnostics.is_some_and(|d| d.non_finite_output)).map(|(k, s)| {
            format!("step {k} (t = {} s): the controller's model gave a non-finite output (NaN or inf)", s.start_s)
        })
    });
    RunOutput { rows, summary, fault }
}
