//! Per-tick data out of a controller that a model owns: [`observe`] wraps the acting controller with an
//! [`Observer`] that sees every tick after the acting controller decided — the observation, the decision, and
//! the acting controller itself (its diagnostics) — and returns a [`TickLog`] of what the observer made, which
//! the caller reads once the run is over.
//!
//! A model takes its controller as a `Box<dyn Controller>` and keeps it, so this is the one way a caller gets
//! data back from a tick: a recorded run logs every tick for live replays (`scenario::run_recorded`), a shadow
//! run is an observer that is itself a controller deciding beside the acting one (`scenario`'s shadow mode), and a
//! DAgger rollout's observer labels every visited state with the expert (`prescale-agents`' `neural::dagger`).
//!
//! An observer never changes what the acting controller decides: the run is the same bits with and without it.
//! Not here: who decides (the `controller` module) or what a run reports (`scenario`).

use std::sync::{Arc, Mutex, PoisonError};

use crate::controller::{Controller, Diagnostics, Observation, ScaleDecision};

/// Sees every tick of the acting controller and makes one log entry of it.
pub trait Observer: Send {
    /// What one tick leaves in the log.
    type Entry: Send;
    /// The entry for one tick: `acting` has just decided `decision` on `obs`.
    fn observe(&mut self, obs: &Observation, decision: &ScaleDecision, acting: &dyn Controller) -> Self::Entry;
    /// Why the observer could not do its part, if it could not (a shadow controller's fault); the run fails
    /// with it as with the acting controller's own (which comes first).
    fn fault(&self) -> Option<String> {
        None
    }
}

/// The entries an [`observe`]d controller made, one per tick in order, read after the run.
pub struct TickLog<T>(Arc<Mutex<Vec<T>>>);

impl<T> TickLog<T> {
    /// Takes the entries made so far, leaving the log empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `acting` with `observer` beside it, and the log its entries go to. The returned controller decides exactly
/// as `acting` does, names itself and reports diagnostics as `acting` does, and reports `acting`'s fault
/// first, then the observer's.
pub fn observe<O: Observer + 'static>(
    acting: Box<dyn Controller>,
    observer: O,
) -> (Box<dyn Controller>, TickLog<O::Entry>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    (Box::new(Observed { acting, observer, log: log.clone() }), TickLog(log))
}

struct Observed<O: Observer> {
    acting: Box<dyn Controller>,
    observer: O,
    log: Arc<Mutex<Vec<O::Entry>>>,
}

impl<O: Observer> Controller for Observed<O> {
    fn name(&self) -> &str {
        self.acting.name()
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let decision = self.acting.decide(obs);
        let entry = self.observer.observe(obs, &decision, &*self.acting);
        self.log.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
        decision
    }

    fn diagnostics(&self) -> Option<Diagnostics> {
        self.acting.diagnostics()
    }

    fn fault(&self) -> Option<String> {
        self.acting.fault().or_else(|| self.observer.fault())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Static;

    /// Counts ticks and copies the decision.
    struct Copy(u32);
    impl Observer for Copy {
        type Entry = (u32, ScaleDecision, String);
        fn observe(&mut self, _: &Observation, d: &ScaleDecision, acting: &dyn Controller) -> Self::Entry {
            self.0 += 1;
            (self.0, d.clone(), acting.name().to_string())
        }
        fn fault(&self) -> Option<String> {
            (self.0 >= 2).then(|| "observer gave up".to_string())
        }
    }

    #[test]
    fn the_observed_controller_decides_as_the_acting_one_and_logs_every_tick() {
        let (mut c, log) = observe(Box::new(Static::at(3)), Copy(0));
        let obs = Observation::default();
        let mut plain = Static::at(3);
        assert_eq!(c.decide(&obs), plain.decide(&obs));
        assert_eq!(c.fault(), None);
        assert_eq!(c.decide(&obs), plain.decide(&obs));
        assert_eq!(c.name(), "static");
        assert_eq!(c.fault().as_deref(), Some("observer gave up"));
        let entries = log.take();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], (1, ScaleDecision::To { instances: 3 }, "static".to_string()));
        assert!(log.take().is_empty(), "take empties the log");
    }
}
