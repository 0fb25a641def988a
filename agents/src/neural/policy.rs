//! A behavioural-cloning policy: the learner's view of a decision ([`state_row`], [`PolicyState`]), the
//! policy acting as a controller ([`BcPolicy`]); many runs share its forward passes through
//! [`super::batch`].
//! The expert it imitates is in [`super::expert`]; its training (DAgger) in [`super::dagger`].
//!
//! **The learner** sees only observable state: a window of (rate, calendar, ready capacity, pending capacity,
//! backlog) and predicts the expert's order as capacity in requests per second (`n · servers / mean service
//! time`), turned into instances by the scenario's own instance size.

use std::collections::VecDeque;
use std::sync::Arc;

use prescale_sim::controller::{Controller, Diagnostics, Observation, ScaleDecision};

use super::batch::ModelHandle;
use super::data::{Frames, Split, policy_normaliser, windows};
use super::expert::{HindsightExpert, PolicySetting};
pub use super::facts::bc_name;
use super::facts::{FineTuneConfig, RefitConfig};
use super::forecaster::{RefitSchedule, evaluate_mae, fit_fresh, tune_on};
use super::model::Model;
use super::spec::{Input, ModelSpec, OutputKind, calendar};

/// The inputs of one decision, unnormalised, in the spec's order.
pub fn state_row(inputs: &[Input], s: &PolicySetting, obs: &Observation) -> Vec<f64> {
    let cal = calendar(s.start_unix_s + obs.now_s);
    let per_server = 1.0 / s.mean_service_s;
    let spi = obs.servers_per_instance as f64;
    let mut r = Vec::with_capacity(inputs.len() + 2);
    for input in inputs {
        match input {
            Input::Rate => r.push(obs.arrivals_in_interval as f64 / obs.interval_s.max(1e-9)),
            Input::TimeOfDay => r.extend([cal[0] as f64, cal[1] as f64]),
            Input::DayOfWeek => r.extend([cal[2] as f64, cal[3] as f64]),
            Input::ReadyCapacity => r.push(obs.ready_servers as f64 * per_server),
            Input::PendingCapacity => r.push(obs.provisioning_instances as f64 * spi * per_server),
            Input::Backlog => r.push(obs.queue_len as f64 / obs.interval_s.max(1e-9)),
            Input::LogBacklog => r.push(super::spec::log_backlog(
                obs.queue_len as f64,
                obs.ready_servers as f64 * per_server,
                obs.interval_s,
            )),
            // The stated demand (NaN when the workload states none: training and validation refuse such a
            // policy on such a workload).
            Input::Memory => r.push(obs.memory_demand_gib),
            Input::Network => r.push(obs.network_demand_gbps),
        }
    }
    r
}

/// What a BC policy remembers between decisions besides its weights: the window of observed states. Kept
/// apart from the model (which may be shared by many runs, [`super::batch`]).
pub struct PolicyState {
    s: PolicySetting,
    rows: VecDeque<Vec<f64>>,
    act_quantile: Option<f64>,
    /// Never order fewer instances than the stated memory and network need now ([`BcConfig::resource_floor`]).
    resource_floor: bool,
    diag: Diagnostics,
}

impl PolicyState {
    /// An empty window for a scenario's setting.
    pub fn new(s: PolicySetting, act_quantile: Option<f64>) -> Self {
        PolicyState { s, rows: VecDeque::new(), act_quantile, resource_floor: false, diag: Diagnostics::default() }
    }

    /// Adds the tick's state; the model's input window (raw, `window × width` floats) once it is full.
    pub fn observe(&mut self, spec: &ModelSpec, obs: &Observation) -> Option<Vec<f32>> {
        let l = spec.window_steps as usize;
        self.rows.push_back(state_row(&spec.inputs, &self.s, obs));
        if self.rows.len() > l {
            self.rows.pop_front();
        }
        (self.rows.len() == l).then(|| self.rows.iter().flatten().map(|v| *v as f32).collect())
    }

    /// The order, from the model's outputs for this window (`None`: window not full yet, so the reactive
    /// rule of the HPA at 70 % utilisation); with the resource floor, at least what the memory and network the
    /// workload states at this step need beside the static pools (within the count limits).
    pub fn decide(&mut self, spec: &ModelSpec, out: Option<&[f32]>, obs: &Observation) -> ScaleDecision {
        self.diag.fallback = out.is_none();
        self.diag.non_finite_output = out.is_some_and(|o| o.iter().any(|x| !x.is_finite()));
        if self.diag.non_finite_output {
            return ScaleDecision::Hold;
        }
        let n = match out {
            Some(out) => {
                let cap = match (&spec.output, self.act_quantile) {
                    (OutputKind::Gaussian, Some(q)) => {
                        out[0] as f64 + crate::variance::normal_quantile(q) * (0.5 * out[1] as f64).exp()
                    }
                    (OutputKind::Quantiles(levels), q) => {
                        out[super::spec::nearest_level(levels, q.unwrap_or(0.5))] as f64
                    }
                    _ => out[0] as f64,
                };
                self.s.instances(cap)
            }
            None => {
                let servers = (obs.busy_servers() / FALLBACK_UTILISATION - self.s.static_servers as f64).max(0.0);
                ((servers / self.s.servers_per_instance as f64).ceil() as u32)
                    .clamp(self.s.min_instances, self.s.max_instances)
            }
        };
        let floor = if self.resource_floor {
            self.s.resources.instances_for(obs.memory_demand_gib, obs.network_demand_gbps).min(self.s.max_instances)
        } else {
            0
        };
        ScaleDecision::To { instances: n.max(floor) }
    }

    /// What the policy reports per step (only whether it fell back).
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            forecast_cpu_cores: f64::NAN,
            margin_cpu_cores: f64::NAN,
            coverage: f64::NAN,
            fallback: self.diag.fallback,
            clipped: false,
            fine_tune_mae_before_cores: f64::NAN,
            fine_tune_mae_after_cores: f64::NAN,
            non_finite_output: self.diag.non_finite_output,
            model_calls: 0,
            memory: None,
            network: None,
        }
    }
}

/// The utilisation the reactive fallback sizes for before a full window has been seen (the reference HPA's
/// target in spirit: busy servers / 0.7).
pub const FALLBACK_UTILISATION: f64 = 0.7;

/// A learned policy acting in the simulator (or a live system): the window of observed states in, an order
/// out. Until a full window has been seen it uses the reactive rule of the HPA (capacity for the busy servers
/// at 70 % utilisation) and says so in its diagnostics.
pub struct BcPolicy {
    model: ModelHandle,
    state: PolicyState,
    name: String,
    tuner: Option<Tuner>,
}

/// Online adaptation of a policy (`Bc(..., fine_tune: (...), refit: (...))`): DAgger in the run. The policy
/// logs its own states, the rate of each step and the backlog at each decision. When a fine-tune or a refit is
/// due it labels the logged decisions of its window whose horizons have passed with the hindsight expert over
/// the *observed* rates (a decision's label needs the `h_hi` steps after it, so the newest `h_hi` decisions wait
/// for the next one). A fine-tune (every `fine_tune.every_s`, on the last `fine_tune.window_s`) takes `steps`
/// full-batch Adam steps on them with the policy's own loss (a cost-aware policy stays cost-aware). A refit
/// (every `refit.every_s`, on the last `refit.window_s`) trains the architecture again from fresh weights
/// (seeded with the card's training seed plus the refit's number) with the normalisation fitted anew on the
/// window — the first four fifths of its decisions train, the last fifth stops early — for at most
/// `refit.epochs` epochs, and replaces the policy when it trains; when both are due the refit follows the
/// fine-tune and wins. The one-step order error over the labels before and after is reported in the time series
/// as `fine_tune_mae_before_cores` / `_after_cores` (the order's capacity in cores).
struct Tuner {
    /// The fine-tune, every how many decisions, on how many.
    fine_tune: Option<(FineTuneConfig, usize, usize)>,
    refit: Option<RefitSchedule>,
    cap: usize,
    seen: usize,
    /// The last `cap` decisions, oldest first.
    log: VecDeque<Logged>,
    update: Option<(f64, f64)>,
}

/// What the tuner keeps of a decision.
struct Logged {
    /// The state row the policy saw (unnormalised, in the spec's order).
    row: Vec<f64>,
    /// The rate observed over the step, requests per second.
    rate_per_s: f64,
    /// The memory (GiB) and network (Gbit/s) demand the step stated (NaN where none).
    memory_gib: f64,
    network_gbps: f64,
    /// Requests waiting at the decision.
    queued: f64,
}

impl Tuner {
    /// The last `steps` logged decisions whose horizons have passed, labelled by the expert over the observed
    /// rates since the first of them: inputs and orders (capacity, requests per second).
    fn labelled(&self, s: &PolicySetting, width: usize, steps: usize) -> Frames {
        let part: Vec<&Logged> = self.log.iter().skip(self.log.len().saturating_sub(steps)).collect();
        let (_, h_hi) = s.horizons();
        let n = part.len().saturating_sub(h_hi);
        let series = |f: fn(&Logged) -> f64| part.iter().map(|d| f(d)).collect::<Vec<f64>>();
        let stated = |xs: Vec<f64>| xs.iter().any(|x| x.is_finite()).then_some(xs);
        let (memory, network) = (stated(series(|d| d.memory_gib)), stated(series(|d| d.network_gbps)));
        let expert = HindsightExpert::new(s.clone(), Arc::new(series(|d| d.rate_per_s)))
            .with_demand(memory.as_deref(), network.as_deref());
        Frames {
            width,
            inputs: part[..n].iter().flat_map(|d| d.row.iter().copied()).collect(),
            target: (0..n).map(|j| s.capacity_per_s(expert.label(j, part[j].queued) as f64)).collect(),
        }
    }
}

/// Trains `model`'s architecture again from fresh weights (seeded with `seed`) on the labelled decisions
/// `frames`: decisions `0..train_end` train (the normalisation fitted on them as in training), the rest stop
/// early; at most `epochs` epochs. `None` when the frames hold no training or no validation window, or the
/// loss stopped being finite.
fn refit_policy(model: &Model, frames: &Frames, train_end: usize, epochs: u32, seed: u64) -> Option<Model> {
    let spec = &model.card.spec;
    let n = frames.steps();
    let (tr, va) = (0..train_end.min(n), train_end.min(n)..n);
    let (raw, norms) = policy_normaliser(spec, &[(frames, tr.clone())]);
    let cut = |r: &std::ops::Range<usize>| windows(frames, spec, &norms, 0, Split::ends(r, 0, 1));
    let (wt, wv) = (cut(&tr), cut(&va));
    if wt.n == 0 || wv.n == 0 {
        return None;
    }
    let mut card = model.card.clone();
    card.set_norms(norms);
    (card.data.target_mean_per_s, card.data.target_sd_per_s) = (raw.mean, raw.sd);
    fit_fresh(card, &wt, &wv, epochs, seed)
}

impl BcPolicy {
    /// Wraps a policy model; `act_quantile` acts on that quantile of a Gaussian output (or the nearest
    /// quantile level) instead of the centre.
    pub fn new(model: ModelHandle, s: PolicySetting, act_quantile: Option<f64>) -> Self {
        let name = bc_name(&model.card().name);
        BcPolicy { model, state: PolicyState::new(s, act_quantile), name, tuner: None }
    }

    /// The same, fine-tuned online and refitted on a schedule as [`BcConfig::fine_tune`](super::facts::BcConfig::fine_tune) and
    /// [`BcConfig::refit`](super::facts::BcConfig::refit) say; the policy owns its model (its weights change).
    pub fn adapting(
        model: Model,
        s: PolicySetting,
        act_quantile: Option<f64>,
        fine_tune: Option<FineTuneConfig>,
        refit: Option<RefitConfig>,
    ) -> Self {
        let step_s = s.step_s;
        let steps = |window_s: f64| ((window_s / step_s).round() as usize).max(1);
        let refit = refit.map(|r| RefitSchedule::new(&r, step_s));
        let tuner = Tuner {
            cap: fine_tune.as_ref().map_or(0, |f| steps(f.window_s)).max(refit.map_or(0, |r| r.steps)).max(1),
            fine_tune: fine_tune.map(|f| {
                let (every, window) = (steps(f.every_s), steps(f.window_s));
                (f, every, window)
            }),
            refit,
            seen: 0,
            log: VecDeque::new(),
            update: None,
        };
        BcPolicy { tuner: Some(tuner), ..BcPolicy::new(ModelHandle::Own(Box::new(model)), s, act_quantile) }
    }

    /// The same, never ordering fewer instances than the memory and network the workload states now need
    /// ([`BcConfig::resource_floor`](super::facts::BcConfig::resource_floor)).
    pub fn with_resource_floor(mut self, on: bool) -> Self {
        self.state.resource_floor = on;
        self
    }

    /// Logs the decision's state (the row [`PolicyState::observe`] has just added) for adaptation, and
    /// fine-tunes or refits when one is due.
    fn tune(&mut self, obs: &Observation) {
        let Some(t) = self.tuner.as_mut() else { return };
        let s = &self.state.s;
        t.update = None;
        t.seen += 1;
        if t.log.len() == t.cap {
            t.log.pop_front();
        }
        t.log.push_back(Logged {
            row: self.state.rows.back().cloned().expect("the decision's state was observed"),
            rate_per_s: obs.arrivals_in_interval as f64 / obs.interval_s.max(1e-9),
            memory_gib: obs.memory_demand_gib,
            network_gbps: obs.network_demand_gbps,
            queued: obs.queue_len as f64,
        });
        let width = self.model.card().spec.width();
        if let Some((cfg, every, window)) = &t.fine_tune
            && t.seen.is_multiple_of(*every)
        {
            let model = self.model.own();
            let frames = t.labelled(s, width, *window);
            let n = frames.steps();
            let w = windows(&frames, &model.card.spec, &model.card.norms(), 0, Split::ends(&(0..n), 0, 1));
            if w.n > 0 {
                t.update = Some(tune_on(model, &w, cfg));
            }
        }
        if let Some(r) = t.refit
            && t.seen.is_multiple_of(r.every)
            && t.log.len() >= r.steps
        {
            let number = r.done + 1;
            t.refit = Some(RefitSchedule { done: number, ..r });
            let frames = t.labelled(s, width, r.steps);
            let current = self.model.own();
            let n = frames.steps();
            let all = |m: &Model| windows(&frames, &m.card.spec, &m.card.norms(), 0, Split::ends(&(0..n), 0, 1));
            let seed = current.card.training.seed.wrapping_add(number);
            if let Some(fresh) = refit_policy(current, &frames, n * 4 / 5, r.epochs, seed) {
                t.update = Some((evaluate_mae(current, &all(current)), evaluate_mae(&fresh, &all(&fresh))));
                self.model = ModelHandle::Own(Box::new(fresh));
            }
        }
    }
}

impl Controller for BcPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let window = self.state.observe(&self.model.card().spec, obs);
        // A fine-tune that is due changes the weights before they act on this decision.
        self.tune(obs);
        let out = window.map(|x| self.model.predict(&x, 1));
        self.state.decide(&self.model.card().spec, out.as_deref(), obs)
    }

    fn diagnostics(&self) -> Option<Diagnostics> {
        let mut d = Diagnostics { model_calls: self.model.forward_calls(), ..self.state.diagnostics() };
        if let Some((before, after)) = self.tuner.as_ref().and_then(|t| t.update) {
            // Capacity (requests per second) in cores: servers busy at that rate times the cores each holds.
            let cores_per_rate = self.state.s.mean_service_s * self.state.s.cores_per_request;
            (d.fine_tune_mae_before_cores, d.fine_tune_mae_after_cores) =
                (before * cores_per_rate, after * cores_per_rate);
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::model::{Model, ModelCard};

    /// The log-scaled backlog counts control intervals of READY capacity, is 0 for an empty queue, ln 2 for one
    /// interval's worth, and stays bounded however long the queue (and with nothing READY).
    #[test]
    fn the_log_backlog_is_bounded_and_counts_intervals_of_ready_capacity() {
        use super::super::spec::{LOG_BACKLOG_CAP, log_backlog};
        let s = PolicySetting { max_instances: 10, warmup_s: 0.0, ..super::super::expert::test_setting() };
        // 8 READY servers at 0.1 s: 80 requests per second, 4,800 per 60 s interval.
        let obs = |queue_len: usize, ready_servers: u32| Observation {
            interval_s: 60.0,
            queue_len,
            ready_servers,
            ..Observation::default()
        };
        let row = |q, r| state_row(&[Input::Backlog, Input::LogBacklog], &s, &obs(q, r));
        assert_eq!(row(0, 8), [0.0, 0.0]);
        assert_eq!(row(4_800, 8), [80.0, 2f64.ln()]);
        let huge = row(1_000_000_000, 8);
        assert!(huge[0] > 1e7 && huge[1] == LOG_BACKLOG_CAP.ln_1p(), "{huge:?}");
        assert_eq!(row(9, 0)[1], 10f64.ln(), "nothing READY: the queue over one request");
        assert_eq!(log_backlog(-1.0, 80.0, 60.0), 0.0);
        assert!(!Input::LogBacklog.is_rate() && Input::LogBacklog.is_state());
    }

    /// With the resource floor the order is at least `⌈(stated memory − pools) / per instance⌉` (and the
    /// network's), from the model's output and from the fallback alike, within the count limits; an unstated
    /// (NaN) demand is no floor, and without the option the stated demand changes nothing.
    #[test]
    fn the_resource_floor_holds_the_order_to_the_stated_memory_and_network() {
        use super::super::expert::FleetResources;
        let resources = FleetResources {
            memory_gib_per_instance: 32.0,
            network_gbps_per_instance: 10.0,
            static_memory_gib: 64.0,
            static_network_gbps: 0.0,
        };
        let s = PolicySetting { resources, max_instances: 40, ..super::super::expert::test_setting() };
        let spec = ModelSpec {
            architecture: super::super::spec::Architecture::Mlp { hidden: vec![8] },
            inputs: vec![Input::Rate],
            window_steps: 1,
            horizon_steps: 1,
            output: OutputKind::Gaussian,
            level: Default::default(),
            targets: crate::neural::spec::default_targets(),
        };
        // A model output of 120 requests/s: 3 instances of 4 servers at 0.1 s.
        let out = [120.0_f32, 0.0];
        let order = |floor: bool, memory_gib: f64, network_gbps: f64, out: Option<&[f32]>| {
            let mut state = PolicyState::new(s.clone(), None);
            state.resource_floor = floor;
            let obs = Observation {
                interval_s: 60.0,
                memory_demand_gib: memory_gib,
                network_demand_gbps: network_gbps,
                ..Observation::default()
            };
            match state.decide(&spec, out, &obs) {
                ScaleDecision::To { instances } => instances,
                d => panic!("{d:?}"),
            }
        };
        assert_eq!(order(false, 1_000.0, 300.0, Some(&out)), 3, "no floor: the model's order");
        assert_eq!(order(true, f64::NAN, f64::NAN, Some(&out)), 3, "nothing stated: no floor");
        assert_eq!(order(true, 400.0, f64::NAN, Some(&out)), 11, "(400 - 64) / 32 = 10.5");
        assert_eq!(order(true, 400.0, 150.0, Some(&out)), 15, "the network binds: 150 / 10");
        assert_eq!(order(true, 64.0, 5.0, Some(&out)), 3, "the pools hold the memory: the model's order");
        assert_eq!(order(true, 10_000.0, f64::NAN, Some(&out)), 40, "within max_instances");
        assert_eq!(order(true, 400.0, f64::NAN, None), 11, "the fallback too");
    }

    #[test]
    fn batched_forward_equals_single_forward_to_float_rounding() {
        let spec = ModelSpec {
            architecture: super::super::spec::Architecture::Gru { hidden: 32, layers: 1 },
            inputs: vec![Input::Rate, Input::ReadyCapacity, Input::PendingCapacity, Input::Backlog],
            window_steps: 30,
            horizon_steps: 1,
            output: OutputKind::Gaussian,
            level: Default::default(),
            targets: crate::neural::spec::default_targets(),
        };
        let norm = crate::neural::data::Normaliser { mean: 200.0, sd: 100.0, level_floor_per_s: None };
        let card = ModelCard::new("t", crate::neural::model::Task::Policy, &spec, 60.0, norm, &Default::default());
        tch::manual_seed(5);
        let m = Model::fresh(card, tch::Device::Cpu);
        let per = 30 * spec.width();
        for n in [2usize, 3, 5, 8, 17, 64] {
            let x: Vec<f32> = (0..n * per).map(|i| 100.0 + ((i * 7919) % 1000) as f32 * 0.37).collect();
            let batched = m.predict(&x, n);
            // Not always the same bits (a batched matrix product sums in another order), hence batching
            // across runs is opt-in (`prescale sweep --batch-runs`); the same to float rounding.
            for b in 0..n {
                let single = m.predict(&x[b * per..(b + 1) * per], 1);
                for (a, c) in single.iter().zip(&batched[b * 2..(b + 1) * 2]) {
                    assert!((a - c).abs() <= 1e-5 * a.abs().max(1.0), "batch {n}, row {b}: {a} vs {c}");
                }
            }
        }
    }
}
