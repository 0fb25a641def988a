//! Preparation: a valid scenario (and its loaded trace) turned into the demand series both fidelities share.

use super::*;

/// A scenario ready to run: valid config and its demand series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(bound(serialize = "C: ControllerSpec"))]
pub struct Prepared<C = ControllerConfig> {
    /// The config, with `horizon_s` resolved.
    pub config: ScenarioConfig<C>,
    /// Demand per step (seed-dependent for random synthetic components).
    pub demand: DemandSeries,
    /// What loading the trace found, if the workload is a trace.
    pub trace_report: Option<TraceReport>,
}

impl<C: ControllerSpec> Prepared<C> {
    /// What a controller is built from for run `seed` (what [`ControllerSpec::init`] takes).
    pub fn init_context(&self, seed: u64) -> InitContext<'_> {
        self.config.init_context(&self.demand, seed)
    }

    /// The fluid model's parameters: service time, per-request needs, SLO threshold.
    pub fn fluid_params(&self) -> FluidParams {
        self.config.fluid_params()
    }

    /// The fluid world of run `seed` with every decision made outside ([`FluidModel::external`]): one library
    /// call for lockstep sweeps, training rollouts and live loops.
    pub fn fluid_stepper(&self, seed: u64) -> FluidStepper {
        FluidModel::external(&self.config.cluster, self.fluid_params(), self.demand.clone(), RunSeed(seed))
            .expect("prepared scenarios are valid")
    }
}

/// Validates `config` and builds its demand for run `seed`; `trace` must be the loaded trace for a trace
/// workload (columns in the order of [`ScenarioConfig::trace_columns`]).
///
/// # Errors
/// Every problem found, with its path.
pub fn prepare<C: ControllerSpec>(
    mut config: ScenarioConfig<C>,
    trace: Option<&Trace>,
    seed: u64,
) -> Result<Prepared<C>, Vec<Problem>> {
    let mut problems = config.problems();
    if !problems.is_empty() {
        return Err(problems);
    }
    let step = config.step_s;
    let demand = match (&config.workload, trace) {
        (WorkloadConfig::Synthetic { base_rate_per_s, components }, _) => {
            let steps = (config.horizon_s.expect("validated") / step).round() as usize;
            DemandSeries {
                step_s: step,
                rate_per_s: synthetic_rates(*base_rate_per_s, components, step, steps, RunSeed(seed)),
                ..DemandSeries::default()
            }
        }
        (WorkloadConfig::Trace(t), Some(trace)) => {
            // The part of the trace the run plays, in trace seconds from its first timestamp.
            let bounds = t.slice.as_ref().map(|slice| slice_bounds(slice, &trace.report)).transpose()?;
            let start_tr = match bounds {
                None => t.start_offset_s,
                Some((from, _)) => {
                    let history_tr = config.history_s / t.time_scale;
                    if from - history_tr < -1e-9 {
                        return Err(vec![Problem {
                            path: "history_s".into(),
                            message: format!(
                                "{} s of history need the trace from {} s before the slice, but the slice starts {from} s \
                                 into the trace; shorten history_s or start the slice later",
                                config.history_s, history_tr
                            ),
                        }]);
                    }
                    (from - history_tr).max(0.0)
                }
            };
            let end_tr = bounds.map_or(trace.report.span_s, |(_, to)| to);
            let available_s = (end_tr - start_tr) * t.time_scale;
            let max_steps = (available_s / step + 1e-9).floor().max(0.0) as usize;
            let steps = match config.horizon_s {
                Some(h) => {
                    let want = (h / step).round() as usize;
                    if want > max_steps {
                        problems.push(Problem {
                            path: "horizon_s".into(),
                            message: format!(
                                "{h} s exceeds the trace: {available_s} s available after start_offset_s and time_scale"
                            ),
                        });
                    }
                    want
                }
                None if available_s > MAX_HORIZON_S || available_s / step > MAX_STEPS => {
                    return Err(vec![Problem {
                        path: "workload.time_scale".into(),
                        message: format!(
                            "the trace lasts {available_s:.4e} simulated s ({:.3e} steps of {step} s), more than 400 days or \
                             {MAX_STEPS:e} steps; set horizon_s or a smaller time_scale",
                            available_s / step
                        ),
                    }]);
                }
                None => max_steps,
            };
            if steps == 0 {
                problems.push(Problem {
                    path: "workload.path".into(),
                    message: format!("the trace covers {available_s} s, less than one step of {step} s"),
                });
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            config.horizon_s = Some(steps as f64 * step);
            let played = TraceWorkload { start_offset_s: start_tr, ..t.clone() };
            trace_demand(&played, trace, &config.service, step, steps)
        }
        (WorkloadConfig::Trace(_), None) => {
            return Err(vec![Problem { path: "workload.path".into(), message: "the trace was not loaded".into() }]);
        }
    };
    let horizon_s = demand.steps() as f64 * step;
    if config.history_s >= horizon_s {
        return Err(vec![Problem {
            path: "history_s".into(),
            message: format!(
                "must be shorter than the run ({horizon_s} s), got {}: nothing would be scored",
                config.history_s
            ),
        }]);
    }
    if let Some(m) = failures_problem(&config.cluster, horizon_s) {
        return Err(vec![Problem { path: "cluster.failures.mean_time_between_failures_s".into(), message: m }]);
    }
    if let Some(p) = demand_problem(&demand, matches!(config.workload, WorkloadConfig::Trace(_))) {
        return Err(vec![p]);
    }
    if config.fidelity == Fidelity::RequestLevel && demand.expected_requests() > MAX_REQUEST_LEVEL_REQUESTS {
        return Err(vec![Problem {
            path: "fidelity".into(),
            message: format!(
                "RequestLevel would simulate about {:.2e} requests (at most {MAX_REQUEST_LEVEL_REQUESTS:e}); use Fluid \
                 or a shorter horizon_s",
                demand.expected_requests()
            ),
        }]);
    }
    Ok(Prepared { trace_report: trace.map(|t| t.report.clone()), config, demand })
}

fn trace_demand(t: &TraceWorkload, trace: &Trace, service: &ServiceSpec, step: f64, steps: usize) -> DemandSeries {
    let mut d = DemandSeries {
        step_s: step,
        start_unix_s: trace.report.first_timestamp_s + t.start_offset_s,
        ..DemandSeries::default()
    };
    for (col, m) in t.metrics.iter().enumerate() {
        let mut v = resample(trace, col, t.policies.gaps, t.start_offset_s, t.time_scale, step, steps);
        for x in v.iter_mut() {
            *x *= t.amplitude_scale;
        }
        match &m.meaning {
            MetricMeaning::RequestsPerInterval => {
                let per = 1.0 / trace.report.nominal_interval_s;
                d.rate_per_s = v.into_iter().map(|x| x * per).collect();
            }
            MetricMeaning::RequestsPerSecond => d.rate_per_s = v,
            MetricMeaning::Utilisation { resource, percent, reference_capacity } => {
                let k = reference_capacity / if *percent { 100.0 } else { 1.0 };
                let amount: Vec<f64> = v.into_iter().map(|x| x * k).collect();
                match resource {
                    ResourceKind::Cpu => {
                        let per_core = 1.0 / (service.mean_service_s * service.cores_per_request);
                        d.rate_per_s = amount.into_iter().map(|c| c * per_core).collect();
                    }
                    ResourceKind::Memory => d.memory_gib = Some(amount),
                    ResourceKind::Storage => d.storage_gib = Some(amount),
                    ResourceKind::Network => d.network_gbps = Some(amount),
                }
            }
        }
    }
    d
}

/// A slice's bounds in trace seconds from the trace's first timestamp, checked against its span.
fn slice_bounds(slice: &TraceSlice, report: &TraceReport) -> Result<(f64, f64), Vec<Problem>> {
    let span = report.span_s;
    let problem = |message: String| vec![Problem { path: "workload.slice".into(), message }];
    let (from, to) = match slice {
        TraceSlice::Fraction { from, to } => (from * span, to * span),
        TraceSlice::Between { from, to } => {
            let instant = |s: &str| {
                crate::trace::parse_iso8601(s)
                    .or_else(|| s.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                    .map(|t| t - report.first_timestamp_s)
                    .ok_or_else(|| {
                        problem(format!("'{}' is neither an ISO-8601 instant nor a number", crate::input::clip(s, 60)))
                    })
            };
            (instant(from)?, instant(to)?)
        }
    };
    if !(0.0 <= from && from < to && to <= span + 1e-9) {
        return Err(problem(format!(
            "covers {from} s to {to} s of a trace spanning 0 to {span} s: it must start at or after the trace's first \
             timestamp, end by its last interval's end, and end after it starts"
        )));
    }
    Ok((from, to.min(span)))
}
