//! Batched inference across runs: many runs (each on its own thread, each a plain simulation) share one
//! [`Batcher`], and every forward pass of their models goes through it, so that one libtorch call per model
//! serves every run that asks at the same point.
//!
//! **Rounds by call index.** A run's k-th call to the batcher belongs to round k. Round k is carried out when
//! every run still going has made its k-th call (and waits for the answer) or has finished: its requests are
//! grouped by model, and each model makes one forward pass over its requests' rows, in the order of the runs'
//! numbers. So what is batched with what is a function of the runs alone — not of thread timing or the number
//! of cores — and every run sees the same numbers on every execution of the same group.
//!
//! The numbers are those of unbatched runs up to float rounding: a batched matrix product may sum in another
//! order than a batch of one (`policy::tests::batched_forward_equals_single_forward_to_float_rounding`
//! bounds it), and a run's decisions can differ where a rounded output crosses an instance boundary. Hence
//! batching is opt-in (`prescale sweep --batch-runs`) and its groups are fixed by the experiment.
//!
//! Which batcher a model built on this thread joins is set with [`Participation::enter`]: the runtime's
//! factories ([`super::torch::with_torch`]) build [`ModelHandle::Shared`] handles while one is entered.
//! A forecaster that fine-tunes online changes its weights, so it always owns its model.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::model::{Model, ModelCard, ModelError};

/// A model as the agents use it: owned, or one of a [`Batcher`]'s models reached through it.
pub enum ModelHandle {
    /// The agent's own model (its forward passes are its own; fine-tuning may change it).
    Own(Box<Model>),
    /// A model of a batcher, asked as run `participant`.
    Shared {
        /// The batcher holding the model.
        batcher: Arc<Batcher>,
        /// The calling run's number in the batcher.
        participant: usize,
        /// The model's number in the batcher.
        model: usize,
        /// The model's card (a copy).
        card: Box<ModelCard>,
        /// Calls this handle made (what the forward passes would have been unbatched).
        calls: AtomicU64,
    },
}

impl ModelHandle {
    /// The model's card.
    pub fn card(&self) -> &ModelCard {
        match self {
            ModelHandle::Own(m) => &m.card,
            ModelHandle::Shared { card, .. } => card,
        }
    }

    /// [`Model::predict`] on `n` windows: directly, or as this run's share of the batcher's next round.
    pub fn predict(&self, x: &[f32], n: usize) -> Vec<f32> {
        match self {
            ModelHandle::Own(m) => m.predict(x, n),
            ModelHandle::Shared { batcher, participant, model, calls, .. } => {
                calls.fetch_add(1, Ordering::Relaxed);
                batcher.predict(*participant, *model, x.to_vec(), n)
            }
        }
    }

    /// Calls made: forward passes of an own model; for a shared one, the calls this run made (the forward
    /// passes it would have made alone; the batcher counts the passes really made).
    pub fn forward_calls(&self) -> u64 {
        match self {
            ModelHandle::Own(m) => m.forward_calls(),
            ModelHandle::Shared { calls, .. } => calls.load(Ordering::Relaxed),
        }
    }

    /// The owned model (what fine-tuning changes).
    ///
    /// # Panics
    /// On a shared handle: the factories give agents that change their weights their own model.
    pub fn own(&self) -> &Model {
        match self {
            ModelHandle::Own(m) => m,
            ModelHandle::Shared { .. } => panic!("an agent that changes its weights owns its model"),
        }
    }
}

/// One run's request in a round.
struct Request {
    model: usize,
    x: Vec<f32>,
    n: usize,
}

struct State {
    /// Model directories (as given) and models, in the order first asked for.
    models: Vec<(PathBuf, Model)>,
    /// Per run: still going (has not called [`Batcher::finish`]).
    live: Vec<bool>,
    /// Per run: its request in the current round, while it waits.
    pending: Vec<Option<Request>>,
    /// Per run: the answer to its last request, until it takes it.
    answers: Vec<Option<Vec<f32>>>,
    /// Rounds carried out.
    rounds: u64,
    /// Forward passes made (one per model per round that asked it).
    forward_passes: u64,
    /// Requests answered.
    calls: u64,
}

/// Forward passes shared by a fixed set of runs, in rounds by call index (see the module docs).
pub struct Batcher {
    state: Mutex<State>,
    answered: Condvar,
}

/// What a batcher did: requests answered (the forward passes of unbatched runs) and forward passes made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Rounds carried out.
    pub rounds: u64,
    /// Requests answered.
    pub calls: u64,
    /// Forward passes made.
    pub forward_passes: u64,
}

impl Batcher {
    /// A batcher for runs `0..participants`.
    pub fn new(participants: usize) -> Arc<Batcher> {
        Arc::new(Batcher {
            state: Mutex::new(State {
                models: Vec::new(),
                live: vec![true; participants],
                pending: (0..participants).map(|_| None).collect(),
                answers: vec![None; participants],
                rounds: 0,
                forward_passes: 0,
                calls: 0,
            }),
            answered: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside a forward pass poisons the lock: every run of the group then fails with this message
        // rather than waiting for an answer that will not come.
        self.state.lock().unwrap_or_else(|_| panic!("a batched forward pass failed in another run of this group"))
    }

    /// The number of the model in `dir` (loaded and checked on first use) and its card.
    ///
    /// # Errors
    /// What [`Model::load`] finds wrong.
    pub fn model(&self, dir: &Path) -> Result<(usize, ModelCard), ModelError> {
        let mut s = self.lock();
        if let Some(i) = s.models.iter().position(|(d, _)| d == dir) {
            return Ok((i, s.models[i].1.card.clone()));
        }
        let m = Model::load(dir)?;
        let card = m.card.clone();
        s.models.push((dir.to_path_buf(), m));
        Ok((s.models.len() - 1, card))
    }

    /// Run `participant`'s next request: `n` windows for model `model`; blocks until its round is carried out.
    ///
    /// # Panics
    /// If the run has finished, or already waits (a run is one thread).
    pub fn predict(&self, participant: usize, model: usize, x: Vec<f32>, n: usize) -> Vec<f32> {
        let mut s = self.lock();
        assert!(s.live[participant] && s.pending[participant].is_none(), "run {participant} asks out of turn");
        s.pending[participant] = Some(Request { model, x, n });
        // Waiting runs are woken only when their round has been carried out (not at every request).
        if Self::carry_out_if_ready(&mut s) {
            self.answered.notify_all();
        }
        loop {
            if let Some(a) = s.answers[participant].take() {
                return a;
            }
            s = self
                .answered
                .wait(s)
                .unwrap_or_else(|_| panic!("a batched forward pass failed in another run of this group"));
        }
    }

    /// Run `participant` will ask no more (it finished, failed or panicked).
    pub fn finish(&self, participant: usize) {
        let Ok(mut s) = self.state.lock() else {
            // Poisoned by a failed forward pass: wake the waiting runs so that they fail too.
            self.answered.notify_all();
            return;
        };
        s.live[participant] = false;
        s.pending[participant] = None;
        if Self::carry_out_if_ready(&mut s) {
            self.answered.notify_all();
        }
    }

    /// What the batcher has done so far.
    pub fn counts(&self) -> BatchCounts {
        let s = self.lock();
        BatchCounts { rounds: s.rounds, calls: s.calls, forward_passes: s.forward_passes }
    }

    /// Carries out the round if every live run waits in it: per model (in the order first asked for), one
    /// forward pass over the rows of the runs that asked it, in run order. Whether it did.
    fn carry_out_if_ready(s: &mut State) -> bool {
        let waiting = s.pending.iter().filter(|p| p.is_some()).count();
        let live = s.live.iter().filter(|l| **l).count();
        if waiting == 0 || waiting < live {
            return false;
        }
        let requests: Vec<(usize, Request)> =
            s.pending.iter_mut().enumerate().filter_map(|(i, p)| p.take().map(|r| (i, r))).collect();
        for (m, (_, model)) in s.models.iter().enumerate() {
            let asked: Vec<&(usize, Request)> = requests.iter().filter(|(_, r)| r.model == m).collect();
            if asked.is_empty() {
                continue;
            }
            let rows: usize = asked.iter().map(|(_, r)| r.n).sum();
            let x: Vec<f32> = asked.iter().flat_map(|(_, r)| r.x.iter().copied()).collect();
            let out = model.predict(&x, rows);
            let per = out.len() / rows.max(1);
            let mut at = 0;
            for (i, r) in asked {
                s.answers[*i] = Some(out[at * per..(at + r.n) * per].to_vec());
                at += r.n;
            }
            s.forward_passes += 1;
        }
        s.calls += requests.len() as u64;
        s.rounds += 1;
        true
    }
}

thread_local! {
    static CURRENT: RefCell<Option<(Arc<Batcher>, usize)>> = const { RefCell::new(None) };
}

/// This thread runs as one participant of a batcher while the value lives: models the runtime builds on this
/// thread are shared handles, and dropping it (also when the run panics) tells the batcher the run is over.
pub struct Participation {
    batcher: Arc<Batcher>,
    participant: usize,
}

impl Participation {
    /// Enters `batcher` as run `participant` on this thread.
    pub fn enter(batcher: Arc<Batcher>, participant: usize) -> Participation {
        CURRENT.with(|c| *c.borrow_mut() = Some((batcher.clone(), participant)));
        Participation { batcher, participant }
    }
}

impl Drop for Participation {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
        self.batcher.finish(self.participant);
    }
}

/// A handle on the model in `dir`: shared through this thread's batcher when one is entered, else loaded.
///
/// # Errors
/// What [`Model::load`] finds wrong.
pub fn handle(dir: &Path) -> Result<ModelHandle, ModelError> {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some((batcher, participant)) => {
            let (model, card) = batcher.model(dir)?;
            Ok(ModelHandle::Shared { batcher, participant, model, card: Box::new(card), calls: AtomicU64::new(0) })
        }
        None => Model::load(dir).map(|m| ModelHandle::Own(Box::new(m))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::model::{Model, ModelCard, Task};
    use crate::neural::spec::{Architecture, Input, ModelSpec, OutputKind};

    fn saved_model(dir: &Path) {
        let spec = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![16] },
            inputs: vec![Input::Rate],
            window_steps: 4,
            horizon_steps: 1,
            output: OutputKind::Point,
            level: Default::default(),
            targets: crate::neural::spec::default_targets(),
        };
        let norm = crate::neural::data::Normaliser { mean: 10.0, sd: 3.0, level_floor_per_s: None };
        let card = ModelCard::new("b", Task::Forecast, &spec, 60.0, norm, &Default::default());
        tch::manual_seed(3);
        Model::fresh(card, tch::Device::Cpu).save(dir, &|_| Ok(())).unwrap();
    }

    /// Runs of different lengths on their own threads: each gets the answer its own window asks for (to float
    /// rounding), the batcher makes one pass per round, and the counts add up.
    #[test]
    fn rounds_by_call_index_answer_each_run_and_count_passes() {
        let d = tempfile::tempdir().unwrap();
        saved_model(d.path());
        let alone = Model::load(d.path()).unwrap();
        let lengths = [5usize, 9, 1, 7];
        let batcher = Batcher::new(lengths.len());
        let got: Vec<Vec<Vec<f32>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = lengths
                .iter()
                .enumerate()
                .map(|(p, &len)| {
                    let b = batcher.clone();
                    let dir = d.path().to_path_buf();
                    sc.spawn(move || {
                        let _in = Participation::enter(b, p);
                        let h = handle(&dir).unwrap();
                        (0..len).map(|k| h.predict(&[p as f32, k as f32, 1.0, 2.0], 1)).collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (p, outs) in got.iter().enumerate() {
            for (k, o) in outs.iter().enumerate() {
                let want = alone.predict(&[p as f32, k as f32, 1.0, 2.0], 1);
                assert!((o[0] - want[0]).abs() <= 1e-5 * want[0].abs().max(1.0), "run {p} call {k}");
            }
        }
        let c = batcher.counts();
        assert_eq!(c.calls, 22);
        assert_eq!(c.rounds, 9, "as many rounds as the longest run's calls");
        assert_eq!(c.forward_passes, 9, "one model: one pass per round");
    }

    /// A run that panics leaves the group: the others are still answered.
    #[test]
    fn a_panicking_run_does_not_stall_the_others() {
        let d = tempfile::tempdir().unwrap();
        saved_model(d.path());
        let batcher = Batcher::new(2);
        std::thread::scope(|sc| {
            let (b0, b1) = (batcher.clone(), batcher.clone());
            let dir = d.path().to_path_buf();
            let bad = sc.spawn(move || {
                let _in = Participation::enter(b0, 0);
                panic!("the run failed");
            });
            let good = sc.spawn(move || {
                let _in = Participation::enter(b1, 1);
                let h = handle(&dir).unwrap();
                (0..3).map(|_| h.predict(&[1.0, 2.0, 3.0, 4.0], 1)).filter(|o| o[0].is_finite()).count()
            });
            assert!(bad.join().is_err());
            assert_eq!(good.join().unwrap(), 3);
        });
    }
}
