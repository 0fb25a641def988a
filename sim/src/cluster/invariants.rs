//! The fleet held against walks over its instances: the invariants (states, lists, the ledger's counts and
//! PROVISIONING set, the quota) and the walk-based definitions the ledger keeps in constant time.

use super::ledger::{TypeCounts, billed_s};
use super::*;

impl Fleet {
    /// The same cost by a walk over every instance ever created (the definition [`Fleet::cost_usd`] keeps in
    /// constant time; for the invariant checks and tests).
    pub fn cost_usd_by_walk(&self, now_s: f64) -> f64 {
        let mut billed = vec![0.0; self.types.len()];
        for i in &self.instances {
            let t = &self.types[i.ty as usize];
            let end_s = if i.state == InstanceState::Gone { i.gone_s } else { now_s };
            billed[i.ty as usize] += billed_s(&t.billing, i.created_s, end_s);
        }
        self.types.iter().zip(billed).map(|(t, b)| b / 3600.0 * t.price_usd_per_hour).sum()
    }

    /// Busy servers on READY and on DRAINING instances (a walk over the live instances: for invariant checks).
    pub fn busy_servers(&self) -> (u32, u32) {
        let (mut on_ready, mut on_draining) = (0, 0);
        for &id in &self.live {
            let i = &self.instances[id as usize];
            match i.state {
                InstanceState::Ready => on_ready += i.busy,
                InstanceState::Draining => on_draining += i.busy,
                _ => {}
            }
        }
        (on_ready, on_draining)
    }

    /// Checks the fleet's own invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        for &id in &self.live {
            let i = &self.instances[id as usize];
            if i.state == InstanceState::Gone {
                return Err(format!("instance {id} is gone but listed live"));
            }
            if i.state == InstanceState::Draining && i.busy == 0 {
                return Err(format!("instance {id} drains with no busy server"));
            }
            if i.busy > i.usable.max(if i.state == InstanceState::Draining { i.busy } else { 0 }) {
                return Err(format!("instance {id} has {} busy of {} usable servers", i.busy, i.usable));
            }
        }
        let live_states = self.instances.iter().filter(|i| i.state != InstanceState::Gone).count();
        if live_states != self.live.len() || self.alive as usize != self.live.len() {
            return Err(format!(
                "live list {} / alive {} / states {live_states} disagree",
                self.live.len(),
                self.alive
            ));
        }
        if !self.live.windows(2).all(|w| w[0] < w[1]) {
            return Err("live list not ascending".to_string());
        }
        let usable: u32 = self
            .live
            .iter()
            .map(|&id| &self.instances[id as usize])
            .filter(|i| i.state == InstanceState::Ready)
            .map(|i| i.usable)
            .sum();
        if usable != self.ready_servers {
            return Err(format!("ready servers {} != sum of usable {usable}", self.ready_servers));
        }
        // The ledger against a walk.
        let mut walked = vec![TypeCounts::default(); self.types.len()];
        for &id in &self.live {
            let i = &self.instances[id as usize];
            let c = &mut walked[i.ty as usize];
            match i.state {
                InstanceState::Provisioning => c.provisioning += 1,
                InstanceState::Ready => {
                    c.ready += 1;
                    c.usable_ready += u64::from(i.usable);
                }
                InstanceState::Draining => c.draining += 1,
                InstanceState::Terminating => c.terminating += 1,
                InstanceState::Gone => {}
            }
        }
        for (ty, t) in self.types.iter().enumerate() {
            if walked[ty] != self.ledger.counts[ty] {
                return Err(format!(
                    "type {}: the ledger counts {:?}, the instances {:?}",
                    t.name, self.ledger.counts[ty], walked[ty]
                ));
            }
            let n = walked[ty].live();
            if n > t.max_count.max(t.initial_count) {
                return Err(format!("type {}: {n} live instances exceed max_count {}", t.name, t.max_count));
            }
        }
        let due_walked: Vec<u32> = self
            .live
            .iter()
            .copied()
            .filter(|&id| self.instances[id as usize].state == InstanceState::Provisioning)
            .collect();
        let mut due_ledger = self.ledger.due(f64::INFINITY);
        due_ledger.sort_unstable();
        if due_walked != due_ledger {
            return Err(format!("PROVISIONING instances {due_walked:?}, the ledger lists {due_ledger:?}"));
        }
        if !self.quota.admits(&self.allocated()) {
            return Err(format!("live capacity {:?} exceeds the quota {:?}", self.allocated(), self.quota));
        }
        Ok(())
    }
}
