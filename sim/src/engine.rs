//! The discrete-event engine: a [`Model`] reacting to its own events in virtual time.
//!
//! A [`Simulation`] owns one model value (all state of a run lives there: no globals, so runs can proceed in
//! parallel on other threads without sharing anything), the future-event list and the clock. It pops the
//! earliest event, advances the clock to it and hands it to [`Model::handle`], which may schedule further
//! events through a [`Context`]. The engine knows nothing of queues, servers or random numbers; those belong
//! to models such as [`crate::service::ServiceModel`].
//!
//! Invariants kept here: the clock never goes backwards (scheduling before `now` panics, since it can only be
//! a bug in the model), and same-instant events are handled in the order they were scheduled.
//! A run is stepped one event at a time ([`Simulation::step`]), up to an instant
//! ([`Simulation::run_until`]) or until nothing is left ([`Simulation::run_until_empty`]).
//!
//! Dispatch is static: `Simulation<M>` is monomorphised for each model, so the event loop compiles to the
//! same code as a hand-written one.

use crate::queue::EventQueue;
use crate::time::SimTime;

/// A simulated system: its state and how it reacts to each of its events.
pub trait Model {
    /// The model's events (the payload of the future-event list).
    type Event;

    /// Reacts to `event`, which happens at `ctx.now()`.
    fn handle(&mut self, event: Self::Event, ctx: &mut Context<'_, Self::Event>);
}

/// What a model sees while it handles an event: the clock, and the means to schedule events.
pub struct Context<'a, E> {
    now: SimTime,
    queue: &'a mut EventQueue<E>,
}

impl<E> Context<'_, E> {
    /// The instant of the event being handled.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at instant `at` (at or after now; same-instant events keep scheduling order).
    ///
    /// # Panics
    /// If `at` is before now.
    #[inline]
    #[track_caller]
    pub fn schedule_at(&mut self, at: SimTime, event: E) {
        assert!(at >= self.now, "event scheduled in the past: at {at:?}, now {:?}", self.now);
        self.queue.push(at, event);
    }

    /// Schedules `event` `delay_s` seconds from now (`delay_s >= 0`).
    #[inline]
    #[track_caller]
    pub fn schedule_in(&mut self, delay_s: f64, event: E) {
        self.schedule_at(self.now + delay_s, event);
    }
}

/// Why a call to one of the `run_*` methods returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// No event is left.
    Empty,
    /// The next event is at or after the requested instant.
    ReachedTime,
    /// The requested number of events was handled.
    StepLimit,
}

/// A model, its pending events and its clock.
pub struct Simulation<M: Model> {
    model: M,
    queue: EventQueue<M::Event>,
    now: SimTime,
    handled: u64,
}

impl<M: Model> Simulation<M> {
    /// A simulation of `model` at time zero with no pending event.
    pub fn new(model: M) -> Self {
        Simulation { model, queue: EventQueue::new(), now: SimTime::ZERO, handled: 0 }
    }

    /// Schedules an event from outside the model (initial events, external inputs).
    ///
    /// # Panics
    /// If `at` is before the current time.
    #[track_caller]
    pub fn schedule_at(&mut self, at: SimTime, event: M::Event) {
        assert!(at >= self.now, "event scheduled in the past: at {at:?}, now {:?}", self.now);
        self.queue.push(at, event);
    }

    /// The current virtual time: the instant of the last event handled, or the instant a
    /// [`Simulation::run_until`] call stopped at.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The instant of the next pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    /// Number of events handled so far (engine events, whatever the model counts as canonical).
    pub fn events_handled(&self) -> u64 {
        self.handled
    }

    /// Number of pending events.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The model, to read its state between steps.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, to change it between steps (an external input).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Ends the simulation and returns the model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Calls `f` with the model and a context at the current time, to schedule events from outside the
    /// event loop (initial events, external inputs) through the model's own methods.
    pub fn with_context<R>(&mut self, f: impl FnOnce(&mut M, &mut Context<'_, M::Event>) -> R) -> R {
        let mut ctx = Context { now: self.now, queue: &mut self.queue };
        f(&mut self.model, &mut ctx)
    }

    /// Handles the next event; returns its instant, or `None` if no event was pending.
    #[inline]
    pub fn step(&mut self) -> Option<SimTime> {
        let (at, event) = self.queue.pop()?;
        self.dispatch(at, event);
        Some(at)
    }

    /// Handles every event strictly before `end`, then sets the clock to `end` (if it is later than now).
    /// Events at or after `end` stay pending.
    pub fn run_until(&mut self, end: SimTime) -> Stop {
        loop {
            match self.queue.peek_time() {
                Some(at) if at < end => {
                    let (at, event) = self.queue.pop().expect("peeked");
                    self.dispatch(at, event);
                }
                next => {
                    self.now = self.now.max(end);
                    return if next.is_some() { Stop::ReachedTime } else { Stop::Empty };
                }
            }
        }
    }

    /// Handles events until none is left.
    pub fn run_until_empty(&mut self) -> Stop {
        while let Some((at, event)) = self.queue.pop() {
            self.dispatch(at, event);
        }
        Stop::Empty
    }

    /// Handles at most `n` events.
    pub fn run_steps(&mut self, n: u64) -> Stop {
        for _ in 0..n {
            if self.step().is_none() {
                return Stop::Empty;
            }
        }
        Stop::StepLimit
    }

    #[inline(always)]
    fn dispatch(&mut self, at: SimTime, event: M::Event) {
        debug_assert!(at >= self.now, "queue returned an event before now");
        self.now = at;
        self.handled += 1;
        let mut ctx = Context { now: at, queue: &mut self.queue };
        self.model.handle(event, &mut ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that logs what it sees and reschedules itself a fixed number of times.
    struct Echo {
        log: Vec<(f64, u32)>,
        repeats_left: u32,
    }

    impl Model for Echo {
        type Event = u32;
        fn handle(&mut self, event: u32, ctx: &mut Context<'_, u32>) {
            self.log.push((ctx.now().as_secs(), event));
            if self.repeats_left > 0 {
                self.repeats_left -= 1;
                ctx.schedule_in(1.5, event + 100);
                ctx.schedule_in(0.0, event + 1000);
            }
        }
    }

    #[test]
    fn run_until_stops_before_the_end_instant_and_sets_the_clock() {
        let mut sim = Simulation::new(Echo { log: vec![], repeats_left: 2 });
        sim.schedule_at(SimTime::from_secs(1.0), 1);
        assert_eq!(sim.run_until(SimTime::from_secs(2.5)), Stop::ReachedTime);
        // 1@1.0 schedules 101@2.5 and 1001@1.0; 1001@1.0 schedules 1101@2.5 and 2001@1.0.
        assert_eq!(sim.model().log, vec![(1.0, 1), (1.0, 1001), (1.0, 2001)]);
        assert_eq!(sim.now(), SimTime::from_secs(2.5));
        assert_eq!(sim.run_until_empty(), Stop::Empty);
        assert_eq!(sim.model().log[3..], [(2.5, 101), (2.5, 1101)]);
    }

    #[test]
    fn step_by_step_and_step_limit() {
        let mut sim = Simulation::new(Echo { log: vec![], repeats_left: 0 });
        for t in [3.0, 1.0, 2.0] {
            sim.schedule_at(SimTime::from_secs(t), t as u32);
        }
        assert_eq!(sim.step(), Some(SimTime::from_secs(1.0)));
        assert_eq!(sim.run_steps(5), Stop::Empty);
        assert_eq!(sim.events_handled(), 3);
        assert_eq!(sim.step(), None);
    }

    #[test]
    #[should_panic(expected = "event scheduled in the past")]
    fn scheduling_in_the_past_panics() {
        let mut sim = Simulation::new(Echo { log: vec![], repeats_left: 0 });
        sim.schedule_at(SimTime::from_secs(2.0), 0);
        sim.step();
        sim.schedule_at(SimTime::from_secs(1.0), 0);
    }
}
