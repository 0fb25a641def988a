//! The two ways to learn, end to end: forecast cloning from a demand series, and behavioural cloning of the
//! hindsight expert with DAgger over simulator rollouts. Front ends (`prescale train`, notebooks, a live
//! server) call these and only add files and progress bars.

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::demand::DemandSeries;
use prescale_sim::fluid::FluidParams;
use serde::{Deserialize, Serialize};
use tch::Kind;

use super::model::{FitSummary, Model, ModelCard, Task};
use super::policy::{Actor, PolicySetting, rollout};
use super::spec::{Input, ModelSpec, calendar};
use super::train::{
    EpochRow, FitReport, Frames, Normaliser, Split, TrainingConfig, Windows, evaluate, fit, point, restore, snapshot,
    windows,
};
use prescale_sim::scenario::{ControllerSpec, InitContext, MetricBasis, PeriodMetrics, ScenarioConfig};

/// Training failed: a non-finite loss (the model holds the last good weights) or bad data.
pub enum LearnError {
    /// The loss became non-finite; the model with the last good weights and the message.
    NonFinite(Box<Model>, String),
    /// The data cannot train this spec (too short, etc.).
    Data(String),
}

/// Per-step frames of a demand series for a forecasting spec (state inputs are refused).
///
/// # Errors
/// A spec that asks for cluster-state inputs.
pub fn forecast_frames(spec: &ModelSpec, demand: &DemandSeries) -> Result<Frames, String> {
    if let Some(i) = spec.inputs.iter().find(|i| i.is_state()) {
        return Err(format!("input {i:?} is cluster state; a forecasting model sees demand and calendar only"));
    }
    let mut f = Frames { width: spec.width(), ..Frames::default() };
    for (k, y) in demand.rate_per_s.iter().enumerate() {
        let cal = calendar(demand.start_unix_s + (k + 1) as f64 * demand.step_s);
        for input in &spec.inputs {
            match input {
                Input::Rate => f.inputs.push(*y),
                Input::TimeOfDay => f.inputs.extend([cal[0] as f64, cal[1] as f64]),
                Input::DayOfWeek => f.inputs.extend([cal[2] as f64, cal[3] as f64]),
                _ => unreachable!("refused above"),
            }
        }
        f.target.push(*y);
    }
    Ok(f)
}

/// Mean absolute error (requests per second) per horizon of `model`'s point forecast over `w`.
pub fn mae_per_horizon(model: &Model, w: &Windows) -> Vec<f64> {
    let spec = &model.card.spec;
    let h = spec.horizon_steps as i64;
    if w.n == 0 {
        return vec![f64::NAN; h as usize];
    }
    let x = tch::Tensor::from_slice(&w.x).view([w.n as i64, spec.window_steps as i64, spec.width() as i64]);
    let y = tch::Tensor::from_slice(&w.y).view([w.n as i64, h]);
    let e = tch::no_grad(|| (point(&model.net.forward(&x), &spec.output) - y).abs().mean_dim(0, false, Kind::Float));
    Vec::<f32>::try_from(&e).expect("floats").iter().map(|v| *v as f64 * model.card.normalisation.sd).collect()
}

/// The in-sample seasonal-naive MAE (lag `m`) of `ys`: the MASE scale of Hyndman & Koehler (2006).
pub fn mase_scale(ys: &[f64], m: usize) -> f64 {
    let m = m.max(1);
    if ys.len() <= m {
        return f64::NAN;
    }
    ys.iter().skip(m).zip(ys).map(|(a, b)| (a - b).abs()).sum::<f64>() / (ys.len() - m) as f64
}

/// A trained forecaster and how it did.
pub struct Forecaster {
    /// The model (card filled but for hashes).
    pub model: Model,
    /// The training report.
    pub fit: FitReport,
}

/// Forecast cloning: trains `spec` on `demand` (time-ordered split, normalisation on the training part only),
/// and measures the test period: MAE per horizon and MASE (scale: seasonal naive over one day, in sample).
///
/// # Errors
/// Bad data or a non-finite loss.
pub fn train_forecaster(
    name: &str,
    spec: &ModelSpec,
    demand: &DemandSeries,
    source: &str,
    split: &Split,
    training: &TrainingConfig,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<Forecaster, LearnError> {
    let ranges = split.ranges(demand.steps());
    let mut f = fit_forecaster(name, spec, demand, source, ranges, training, true, on_epoch)?;
    f.model.card.data.split = [split.train, split.validation, 1.0 - split.train - split.validation];
    Ok(f)
}

/// Like [`train_forecaster`], on explicit step ranges `[train, validation, test]` (rolling-origin
/// evaluations train on everything before the first origin). With `need_test`, a test part too short for one
/// window is an error; otherwise its metrics are NaN.
///
/// # Errors
/// Bad data or a non-finite loss.
#[allow(clippy::too_many_arguments)]
pub fn fit_forecaster(
    name: &str,
    spec: &ModelSpec,
    demand: &DemandSeries,
    source: &str,
    [tr, va, te]: [std::ops::Range<usize>; 3],
    training: &TrainingConfig,
    need_test: bool,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<Forecaster, LearnError> {
    let frames = forecast_frames(spec, demand).map_err(LearnError::Data)?;
    let n = frames.steps();
    let h = spec.horizon_steps as usize;
    let norm = Normaliser::fit(&frames.target[tr.clone()]);
    let cut = |r: &std::ops::Range<usize>| windows(&frames, spec, &norm, 1, Split::ends(r, 1, h));
    let (wt, wv, ws) = (cut(&tr), cut(&va), cut(&te));
    if wt.n == 0 || wv.n == 0 || (need_test && ws.n == 0) {
        return Err(LearnError::Data(format!(
            "{source}: {n} steps give {} training, {} validation and {} test windows of {} + {h} steps; every part \
             needs at least one (a longer series or a shorter window)",
            wt.n, wv.n, ws.n, spec.window_steps
        )));
    }
    let device = training.device.device().map_err(LearnError::Data)?;
    tch::manual_seed(training.seed as i64);
    let mut c = ModelCard::new(name, Task::Forecast, spec, demand.step_s, norm, training);
    c.data.source = source.into();
    c.data.steps = n;
    c.data.series = 1;
    c.data.split = [tr.len() as f64 / n as f64, va.len() as f64 / n as f64, te.len() as f64 / n as f64];
    c.data.windows = [wt.n, wv.n, ws.n];
    let mut model = Model::fresh(c, device);
    let result = fit(&model.vs, &model.net, spec, &wt, &wv, training, on_epoch);
    let (report, stopped) = match result {
        Ok(r) => (r, None),
        Err(e) => (e.report.clone(), Some(e.to_string())),
    };
    model.card.fit = FitSummary::from(&report);
    model.card.fit.stopped = stopped.clone();
    if device != tch::Device::Cpu {
        model.vs.set_device(tch::Device::Cpu);
        model = Model::rebuilt(model);
    }
    let mae = mae_per_horizon(&model, &ws);
    let m = ((86_400.0 / demand.step_s).round() as usize).max(1);
    let scale = mase_scale(&frames.target[tr.clone()], m);
    let met = &mut model.card.metrics;
    met.insert("validation_loss".into(), report.best_validation_loss);
    met.insert("test_loss".into(), evaluate(&model.net, spec, &ws, tch::Device::Cpu));
    met.insert("test_mae_h1_per_s".into(), mae[0]);
    met.insert(format!("test_mae_h{h}_per_s"), mae[h - 1]);
    met.insert("mase_scale_per_s".into(), scale);
    met.insert("test_mase_h1".into(), mae[0] / scale);
    met.insert(format!("test_mase_h{h}"), mae[h - 1] / scale);
    match stopped {
        Some(msg) => Err(LearnError::NonFinite(Box::new(model), msg)),
        None => Ok(Forecaster { model, fit: report }),
    }
}

/// DAgger settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaggerConfig {
    /// DAgger rounds after the initial behavioural cloning (0: plain behavioural cloning).
    #[serde(default = "rounds")]
    pub rounds: u32,
    /// Mixture decay: the expert acts with probability `beta^round`.
    #[serde(default = "beta")]
    pub beta: f64,
    /// Epochs of continued training per round.
    #[serde(default = "round_epochs")]
    pub epochs_per_round: u32,
    /// Which round's policy to keep: the one with the least imitation error on the validation period of its
    /// own (learner-alone) rollouts — the error DAgger minimises, measured where the learner goes — as Ross et
    /// al. return the best policy on validation; or the last round's.
    #[serde(default)]
    pub keep: KeepRound,
}

/// Which DAgger round's policy to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepRound {
    /// Least validation imitation error (see [`DaggerConfig::keep`]).
    #[default]
    BestValidation,
    /// The last round.
    Last,
}

fn rounds() -> u32 {
    3
}
fn beta() -> f64 {
    0.5
}
fn round_epochs() -> u32 {
    10
}

impl Default for DaggerConfig {
    fn default() -> Self {
        DaggerConfig {
            rounds: rounds(),
            beta: beta(),
            epochs_per_round: round_epochs(),
            keep: KeepRound::BestValidation,
        }
    }
}

/// One DAgger round's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRow {
    /// Round (0: behavioural cloning on expert rollouts).
    pub round: u32,
    /// Probability that the expert acted in this round's rollouts.
    pub beta: f64,
    /// Aggregated training windows after the round.
    pub train_windows: usize,
    /// Best validation loss after training.
    pub validation_loss: f64,
    /// Test-period mean absolute error of the learner's order vs the expert's, instances, on its own
    /// (learner-only) evaluation rollouts.
    pub test_order_mae_instances: f64,
    /// Validation-period mean absolute error of the learner's order vs the expert's, instances, on its own
    /// evaluation rollouts: the imitation error on the learner's own state distribution, which selects the
    /// round kept.
    pub validation_order_mae_instances: f64,
    /// The learner's validation-period run metrics (evaluation rollouts, learner alone).
    pub validation: PeriodMetrics,
    /// The learner's test-period metrics (evaluation rollouts, learner alone).
    pub test: PeriodMetrics,
}

/// The scenario pieces a rollout needs.
pub struct RolloutWorld<'a> {
    /// The cluster.
    pub cluster: &'a ClusterConfig,
    /// Fluid parameters.
    pub params: FluidParams,
    /// The policy setting.
    pub setting: PolicySetting,
    /// Demand per training seed `(seed, series)`.
    pub demands: Vec<(u64, DemandSeries)>,
    /// The scenario's service and SLO, for the run metrics of rollouts (the definitions of `prescale run`).
    pub basis: MetricBasis,
    /// The quantile the learner acts on (see [`super::policy::BcPolicy::new`]).
    pub act_quantile: Option<f64>,
}

impl<'a> RolloutWorld<'a> {
    /// The world of a scenario `config` with the demand of each training seed (one library call: the front
    /// ends build nothing by hand). The policy setting is the scenario's, read at the first seed's demand.
    ///
    /// # Panics
    /// If `demands` is empty (training files list at least one seed).
    pub fn from_scenario<C: ControllerSpec>(
        config: &'a ScenarioConfig<C>,
        demands: Vec<(u64, DemandSeries)>,
        act_quantile: Option<f64>,
    ) -> Self {
        let (seed, first) = demands.first().expect("at least one seed");
        let ctx = InitContext {
            step_s: config.step_s,
            demand: first,
            service: &config.service,
            cluster: &config.cluster,
            seed: *seed,
            slo: &config.slo,
        };
        let setting = crate::policy_setting(&ctx);
        RolloutWorld {
            cluster: &config.cluster,
            params: FluidParams {
                mean_service_s: config.service.mean_service_s,
                per_request: config.per_request(),
                slo_threshold_s: config.slo.latency_threshold_s,
            },
            setting,
            basis: MetricBasis::of(config),
            demands,
            act_quantile,
        }
    }
}

/// A trained policy, its training and its DAgger rounds.
pub struct Policy {
    /// The model.
    pub model: Model,
    /// The last training report.
    pub fit: FitReport,
    /// One row per round.
    pub rounds: Vec<RoundRow>,
    /// The expert's own test-period metrics (same rollouts), for reference.
    pub expert: PeriodMetrics,
}

/// Behavioural cloning of the hindsight expert, then `dagger.rounds` DAgger rounds (see
/// [`super::policy`]). Each series is split in time: training windows come from the first part of every
/// rollout, validation from the next, and the test metrics from the last part only.
///
/// # Errors
/// Bad data or a non-finite loss.
#[allow(clippy::too_many_arguments)]
pub fn train_policy(
    name: &str,
    spec: &ModelSpec,
    world: &RolloutWorld<'_>,
    source: &str,
    split: &Split,
    training: &TrainingConfig,
    dagger: &DaggerConfig,
    on_epoch: &mut dyn FnMut(&EpochRow),
    on_round: &mut dyn FnMut(&RoundRow),
) -> Result<Policy, LearnError> {
    let device = training.device.device().map_err(LearnError::Data)?;
    let s = &world.setting;
    let roll = |actor: Actor<'_>, seed: u64, demand: &DemandSeries| {
        rollout(world.cluster, world.params, demand, s, &spec.inputs, actor, seed, world.act_quantile)
            .map_err(LearnError::Data)
    };
    // Round 0: the expert's own states.
    let mut all: Vec<Frames> = Vec::new();
    let mut expert = PeriodMetrics::default();
    for (seed, d) in &world.demands {
        let r = roll(Actor::Expert, *seed, d)?;
        let te = split.ranges(d.steps())[2].clone();
        expert.add(&PeriodMetrics::measure(&world.basis, d, &r.report.steps, te));
        all.push(r.frames);
    }
    let train_targets: Vec<f64> =
        all.iter().flat_map(|f| f.target[split.ranges(f.steps())[0].clone()].iter().copied()).collect();
    let norm = Normaliser::fit(&train_targets);
    let parts = |all: &[Frames]| {
        let mut w = [Windows::default(), Windows::default(), Windows::default()];
        for f in all {
            for (i, r) in split.ranges(f.steps()).iter().enumerate() {
                w[i].extend(&windows(f, spec, &norm, 0, Split::ends(r, 0, 1)));
            }
        }
        w
    };
    tch::manual_seed(training.seed as i64);
    let mut c = ModelCard::new(name, Task::Policy, spec, s.step_s, norm, training);
    c.data.source = source.into();
    c.data.split = [split.train, split.validation, 1.0 - split.train - split.validation];
    let mut model = Model::fresh(c, device);
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    let eval_seed = |seed: u64| seed.wrapping_add(0x9e37_79b9);
    for round in 0..=dagger.rounds {
        let beta = dagger.beta.powi(round as i32);
        if round > 0 {
            for (i, (seed, d)) in world.demands.iter().enumerate() {
                let r = roll(Actor::Mixture(&model, beta, seed ^ (round as u64) << 32 ^ i as u64), *seed, d)?;
                all.push(r.frames);
            }
        }
        let [wt, wv, _] = parts(&all);
        if wt.n == 0 || wv.n == 0 {
            return Err(LearnError::Data(format!(
                "{source}: rollouts give {} training and {} validation windows of {} steps; need a longer horizon",
                wt.n, wv.n, spec.window_steps
            )));
        }
        let cfg = if round == 0 {
            training.clone()
        } else {
            TrainingConfig {
                max_epochs: dagger.epochs_per_round,
                seed: training.seed + round as u64,
                ..training.clone()
            }
        };
        let report = match fit(&model.vs, &model.net, spec, &wt, &wv, &cfg, on_epoch) {
            Ok(r) => r,
            Err(e) => {
                model.card.fit = FitSummary::from(&e.report);
                model.card.fit.stopped = Some(format!("DAgger round {round}: {e}"));
                return Err(LearnError::NonFinite(Box::new(model), format!("DAgger round {round}: {e}")));
            }
        };
        // The learner alone, on evaluation rollouts (other seeds' noise), over the validation and test periods.
        let (mut validation, mut test) = (PeriodMetrics::default(), PeriodMetrics::default());
        let (mut err_sum, mut err_n, mut val_sum, mut val_n) = (0.0, 0usize, 0.0, 0usize);
        for (seed, d) in &world.demands {
            let r = roll(Actor::Learner(&model), eval_seed(*seed), d)?;
            let [_, va, te] = split.ranges(d.steps());
            let measure = |range| PeriodMetrics::measure(&world.basis, d, &r.report.steps, range);
            validation.add(&measure(va));
            test.add(&measure(te));
            let [_, wva, wte] = parts(std::slice::from_ref(&r.frames));
            let per_instance = s.mean_service_s / s.servers_per_instance as f64;
            if wte.n > 0 {
                err_sum += mae_per_horizon(&model, &wte)[0] * per_instance * wte.n as f64;
                err_n += wte.n;
            }
            if wva.n > 0 {
                val_sum += mae_per_horizon(&model, &wva)[0] * per_instance * wva.n as f64;
                val_n += wva.n;
            }
        }
        let row = RoundRow {
            round,
            beta: if round == 0 { 1.0 } else { beta },
            train_windows: wt.n,
            validation_loss: report.best_validation_loss,
            test_order_mae_instances: if err_n > 0 { err_sum / err_n as f64 } else { f64::NAN },
            validation_order_mae_instances: if val_n > 0 { val_sum / val_n as f64 } else { f64::NAN },
            validation,
            test,
        };
        on_round(&row);
        rows.push(row);
        kept.push((snapshot(&model.vs), report));
    }
    let pick = match dagger.keep {
        KeepRound::Last => rows.len() - 1,
        KeepRound::BestValidation => (0..rows.len())
            .min_by(|&a, &b| {
                let e = |i: usize| rows[i].validation_order_mae_instances;
                e(a).total_cmp(&e(b))
            })
            .expect("at least round 0"),
    };
    let (weights, report) = kept.swap_remove(pick);
    restore(&model.vs, &weights);
    let [wt, wv, wte] = parts(&all);
    model.card.data.steps = all.iter().map(Frames::steps).sum();
    model.card.data.series = all.len();
    model.card.data.windows = [wt.n, wv.n, wte.n];
    model.card.fit = FitSummary::from(&report);
    let last = &rows[pick];
    let met = &mut model.card.metrics;
    met.insert("validation_loss".into(), report.best_validation_loss);
    met.insert("dagger_rounds".into(), dagger.rounds as f64);
    met.insert("dagger_round_kept".into(), pick as f64);
    met.insert("test_order_mae_instances".into(), last.test_order_mae_instances);
    met.insert("test_slo_violation_minutes".into(), last.test.slo_violation_minutes);
    met.insert("test_cost_usd".into(), last.test.cost_usd);
    met.insert("expert_test_slo_violation_minutes".into(), expert.slo_violation_minutes);
    met.insert("expert_test_cost_usd".into(), expert.cost_usd);
    if device != tch::Device::Cpu {
        model.vs.set_device(tch::Device::Cpu);
        model = Model::rebuilt(model);
    }
    Ok(Policy { model, fit: report, rounds: rows, expert })
}
