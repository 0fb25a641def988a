//! Behavioural cloning with DAgger over simulator rollouts: who acts in a rollout ([`Actor`]), the rollout
//! recording expert-labelled states ([`rollout`]), the world rollouts run in ([`RolloutWorld`]), and the
//! rounds ([`train_policy`]).
//!
//! **DAgger.** Round 0 rolls the expert out (plain behavioural cloning) and trains on its states. Round
//! `i ≥ 1` rolls out the mixture policy (expert with probability `β^i`, else the learner, drawn per decision
//! from a seeded generator), labels every visited state with the expert, aggregates all rounds' data and
//! continues training. Each round reports the validation loss and the learner's own run metrics.

use std::sync::Arc;

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::demand::DemandSeries;
use prescale_sim::fluid::{FluidModel, FluidParams, FluidReport};
use prescale_sim::observe::{Observer, observe};
use prescale_sim::rng::RunSeed;
use prescale_sim::scenario::{ControllerSpec, MetricBasis, PeriodMetrics, ScenarioConfig};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::batch::ModelHandle;
use super::data::{Frames, Split, Windows, policy_normaliser, windows};
use super::expert::{HindsightExpert, PolicySetting};
pub use super::facts::{DaggerConfig, KeepRound};
use super::fit::{EpochRow, FitReport, TrainingConfig, fit, restore, snapshot};
use super::forecast_cloning::{LearnError, mae_per_horizon};
use super::model::{FitSummary, Model, ModelCard, Task};
use super::policy::{BcPolicy, state_row};
use super::spec::{Input, ModelSpec};

/// Who acts during a rollout.
pub enum Actor<'a> {
    /// The hindsight expert.
    Expert,
    /// The learner, alone.
    Learner(&'a Model),
    /// Per decision: the expert with probability `beta`, else the learner (seeded draw).
    Mixture(&'a Model, f64, u64),
}

/// A rollout's visited states, labelled by the expert, and the run it made.
pub struct Rollout {
    /// Inputs per decision and the expert's order (as capacity, requests per second) as target.
    pub frames: Frames,
    /// The fluid run.
    pub report: FluidReport,
}

/// Who acts in a rollout: the expert, or per decision the learner unless the expert is drawn.
struct Mixture {
    expert: HindsightExpert,
    learner: Option<BcPolicy>,
    beta: f64,
    rng: Xoshiro256PlusPlus,
}

impl Controller for Mixture {
    fn name(&self) -> &str {
        "dagger-rollout"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        // The learner sees every state (its window must be current) but acts only when drawn.
        let learner = self.learner.as_mut().map(|l| l.decide(obs));
        let use_expert = self.beta >= 1.0 || self.rng.random::<f64>() < self.beta;
        match learner {
            Some(d) if !use_expert => d,
            _ => ScaleDecision::To { instances: self.expert.order(obs) },
        }
    }
}

/// Labels every visited state with the expert's order: the state's inputs and the order as capacity.
struct Labeller {
    expert: HindsightExpert,
    inputs: Vec<Input>,
    s: PolicySetting,
}

impl Observer for Labeller {
    type Entry = (Vec<f64>, f64);
    fn observe(&mut self, obs: &Observation, _: &ScaleDecision, _: &dyn Controller) -> Self::Entry {
        let row = state_row(&self.inputs, &self.s, obs);
        (row, self.s.capacity_per_s(self.expert.order(obs) as f64))
    }
}

/// Runs the fluid model over `demand` with `actor`, recording the visited states and the expert's labels.
/// The learner acts on `act_quantile` (see [`BcPolicy::new`]).
///
/// # Errors
/// Cluster or parameter problems (from the fluid model).
#[allow(clippy::too_many_arguments)]
pub fn rollout(
    cluster: &ClusterConfig,
    params: FluidParams,
    demand: &DemandSeries,
    s: &PolicySetting,
    inputs: &[Input],
    actor: Actor<'_>,
    seed: u64,
    act_quantile: Option<f64>,
) -> Result<Rollout, String> {
    let expert = HindsightExpert::new(s.clone(), Arc::new(demand.rate_per_s.clone()))
        .with_demand(demand.memory_gib.as_deref(), demand.network_gbps.as_deref());
    let copy = |m: &Model| m.duplicate();
    let (learner, beta, draw_seed) = match actor {
        Actor::Expert => (None, 1.0, 0),
        Actor::Learner(m) => (Some(copy(m)), 0.0, 0),
        Actor::Mixture(m, beta, seed) => (Some(copy(m)), beta, seed),
    };
    let mixture = Mixture {
        expert: expert.clone(),
        learner: learner.map(|m| BcPolicy::new(ModelHandle::Own(Box::new(m)), s.clone(), act_quantile)),
        beta,
        rng: Xoshiro256PlusPlus::seed_from_u64(draw_seed ^ 0xda99e5),
    };
    let (controller, labels) = observe(Box::new(mixture), Labeller { expert, inputs: inputs.to_vec(), s: s.clone() });
    let model = FluidModel::new(cluster, params, demand.clone(), controller, RunSeed(seed))?;
    let report = model.run(&mut |_| {});
    let mut frames = Frames::default();
    for (row, target) in labels.take() {
        frames.width = row.len();
        frames.inputs.extend(&row);
        frames.target.push(target);
    }
    Ok(Rollout { frames, report })
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
        let setting = PolicySetting::from_context(&config.init_context(first, *seed));
        RolloutWorld {
            cluster: &config.cluster,
            params: config.fluid_params(),
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
///
/// Why one function: the DAgger rounds share the growing data set, the normaliser fitted once, the best model
/// so far and the per-round rows; the round's steps (roll out, label, fit, score) are already functions.
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
    let trains: Vec<_> = all.iter().map(|f| (f, split.ranges(f.steps())[0].clone())).collect();
    let (raw, norms) = policy_normaliser(spec, &trains);
    let parts = |all: &[Frames]| {
        let mut w = [Windows::default(), Windows::default(), Windows::default()];
        for f in all {
            for (i, r) in split.ranges(f.steps()).iter().enumerate() {
                w[i].extend(&windows(f, spec, &norms, 0, Split::ends(r, 0, 1)));
            }
        }
        w
    };
    tch::manual_seed(training.seed as i64);
    let mut c = ModelCard::new(name, Task::Policy, spec, s.step_s, norms, training);
    (c.data.target_mean_per_s, c.data.target_sd_per_s) = (raw.mean, raw.sd);
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
    if let Some(price) = s.violation_price_usd_per_min {
        met.insert("test_total_cost_usd".into(), last.test.total_cost_usd(price));
        met.insert("expert_test_total_cost_usd".into(), expert.total_cost_usd(price));
    }
    if device != tch::Device::Cpu {
        model.vs.set_device(tch::Device::Cpu);
        model = Model::rebuilt(model);
    }
    Ok(Policy { model, fit: report, rounds: rows, expert })
}
