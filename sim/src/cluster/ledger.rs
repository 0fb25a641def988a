//! The fleet's ledger: per instance type, the instances by lifecycle state, the usable servers of READY
//! instances, the PROVISIONING instances by ready time, and the bill — kept on every lifecycle change, so that
//! what a tick observes and what a step records cost O(types), not O(instances). `Fleet::check_invariants`
//! holds it against a walk over the instances.
//!
//! # The bill, exactly and in constant time
//! An instance of a type billed with granularity `g` and minimum `m`, created at `c`, is billed at time `t`
//! for `max(m, g·⌈(t − c)/g⌉)` seconds. Writing every instant as `t = g·k + ρ` (integer `k`, `0 ≤ ρ < g`;
//! [`split`]), `⌈(t − c)/g⌉ = k_t − k_c + [ρ_t > ρ_c]`, so the live instances of a type are billed
//! `g·(n·k_t − Σk_c + #{ρ_c < ρ_t})` seconds before their minimums: a count, a sum of integers and a rank
//! among the creation phases, none of which walks the instances. The minimum only lifts instances younger
//! than `m`, which are the newest (instances are numbered in creation order), so `Fleet::cost_usd` walks
//! those alone. Billed seconds are summed per type before they are priced, so the cost does not depend on
//! the order of the instances and, with whole-second granularities and minimums (as clouds bill), is exact.

use std::collections::{BTreeMap, BTreeSet};

use super::{Billing, InstanceState};

/// `t = g·k + ρ` with integer `k` and `0 ≤ ρ < g` (exact when `g` and `t` are whole seconds below 2^53).
pub(crate) fn split(t_s: f64, g_s: f64) -> (i64, f64) {
    let mut k = (t_s / g_s).floor();
    let mut rho = t_s - g_s * k;
    if rho < 0.0 {
        k -= 1.0;
        rho += g_s;
    } else if rho >= g_s {
        k += 1.0;
        rho -= g_s;
    }
    // `+ 0.0` turns a negative zero into zero, so that phases order by their bits.
    (k as i64, rho + 0.0)
}

/// Billing periods from `created` to `now` (both [`split`] by the same granularity): `⌈(now − created)/g⌉`.
fn periods(created: (i64, f64), now: (i64, f64)) -> i64 {
    now.0 - created.0 + i64::from(now.1 > created.1)
}

/// Billed seconds of one instance created at `created_s`, at `now_s`.
pub(crate) fn billed_s(billing: &Billing, created_s: f64, now_s: f64) -> f64 {
    let g = billing.granularity_s;
    let n = periods(split(created_s, g), split(now_s, g));
    (g * n as f64).max(billing.minimum_s)
}

/// Instances of one type by state, and the usable servers of its READY ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TypeCounts {
    pub(crate) provisioning: u32,
    pub(crate) ready: u32,
    pub(crate) draining: u32,
    pub(crate) terminating: u32,
    pub(crate) usable_ready: u64,
}

impl TypeCounts {
    fn slot(&mut self, s: InstanceState) -> Option<&mut u32> {
        match s {
            InstanceState::Provisioning => Some(&mut self.provisioning),
            InstanceState::Ready => Some(&mut self.ready),
            InstanceState::Draining => Some(&mut self.draining),
            InstanceState::Terminating => Some(&mut self.terminating),
            InstanceState::Gone => None,
        }
    }

    /// Instances that are not gone.
    pub(crate) fn live(&self) -> u32 {
        self.provisioning + self.ready + self.draining + self.terminating
    }
}

/// One type's bill (see the module docs).
#[derive(Clone, Debug, Default)]
struct Book {
    /// `Σ k_c` over the live instances.
    k_sum: i64,
    /// The creation phases `ρ_c` of the live instances (bits → how many).
    phases: BTreeMap<u64, u32>,
    /// Billed seconds of the instances that are gone.
    gone_s: f64,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    billing: Vec<Billing>,
    pub(crate) counts: Vec<TypeCounts>,
    books: Vec<Book>,
    /// PROVISIONING instances by (ready time's bits, number): ready times are ≥ 0, so bits order as numbers.
    provisioning: BTreeSet<(u64, u32)>,
    /// The largest minimum billed time of any type: instances older than this are past their minimum.
    pub(crate) max_minimum_s: f64,
}

impl Ledger {
    pub(crate) fn new(billing: Vec<Billing>) -> Ledger {
        let n = billing.len();
        let max_minimum_s = billing.iter().map(|b| b.minimum_s).fold(0.0, f64::max);
        Ledger {
            billing,
            counts: vec![TypeCounts::default(); n],
            books: vec![Book::default(); n],
            provisioning: BTreeSet::new(),
            max_minimum_s,
        }
    }

    /// A new instance of type `ty`, created at `created_s` in state `state`, READY at `ready_at_s`.
    pub(crate) fn created(&mut self, id: u32, ty: usize, state: InstanceState, created_s: f64, ready_at_s: f64) {
        let (k, rho) = split(created_s, self.billing[ty].granularity_s);
        let book = &mut self.books[ty];
        book.k_sum += k;
        *book.phases.entry(rho.to_bits()).or_default() += 1;
        self.entered(id, ty, state, ready_at_s);
    }

    /// Instance `id` of type `ty` (READY at `ready_at_s`) moves from state `from` to `to`; into `Gone`, it is
    /// billed for good at `now_s` (it was created at `created_s`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn moved(
        &mut self,
        id: u32,
        ty: usize,
        from: InstanceState,
        to: InstanceState,
        ready_at_s: f64,
        created_s: f64,
        now_s: f64,
    ) {
        if let Some(n) = self.counts[ty].slot(from) {
            *n -= 1;
        }
        if from == InstanceState::Provisioning {
            self.provisioning.remove(&(ready_at_s.to_bits(), id));
        }
        self.entered(id, ty, to, ready_at_s);
        if to == InstanceState::Gone {
            let billing = self.billing[ty];
            let (k, rho) = split(created_s, billing.granularity_s);
            let book = &mut self.books[ty];
            book.k_sum -= k;
            match book.phases.get_mut(&rho.to_bits()) {
                Some(c) if *c > 1 => *c -= 1,
                _ => {
                    book.phases.remove(&rho.to_bits());
                }
            }
            book.gone_s += billed_s(&billing, created_s, now_s);
        }
    }

    fn entered(&mut self, id: u32, ty: usize, state: InstanceState, ready_at_s: f64) {
        if let Some(n) = self.counts[ty].slot(state) {
            *n += 1;
        }
        if state == InstanceState::Provisioning {
            self.provisioning.insert((ready_at_s.to_bits(), id));
        }
    }

    /// READY instances of type `ty` gain (`+`) or lose (`-`) `delta` usable servers.
    pub(crate) fn usable_changed(&mut self, ty: usize, delta: i64) {
        let u = &mut self.counts[ty].usable_ready;
        *u = u.checked_add_signed(delta).expect("usable servers never go below zero");
    }

    /// PROVISIONING instances READY at or before `now_s`, in number order.
    pub(crate) fn due(&self, now_s: f64) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.provisioning.range(..=(now_s.max(0.0).to_bits(), u32::MAX)).map(|&(_, id)| id).collect();
        ids.sort_unstable();
        ids
    }

    /// Billed seconds of type `ty` at `now_s`: the gone instances, and the live ones before their minimum (the
    /// caller adds what the minimum lifts; see the module docs).
    pub(crate) fn billed_before_minimum_s(&self, ty: usize, now_s: f64) -> f64 {
        let g = self.billing[ty].granularity_s;
        let (k_now, rho_now) = split(now_s, g);
        let book = &self.books[ty];
        let earlier_phases: i64 = book.phases.range(..rho_now.to_bits()).map(|(_, &c)| i64::from(c)).sum();
        let n = i64::from(self.counts[ty].live());
        let periods = n * k_now - book.k_sum + earlier_phases;
        book.gone_s + g * periods as f64
    }

    /// What the minimum adds to the bill of one live instance of type `ty` created at `created_s`, at `now_s`
    /// (zero once it is billed for more than the minimum).
    pub(crate) fn minimum_lift_s(&self, ty: usize, created_s: f64, now_s: f64) -> f64 {
        let b = &self.billing[ty];
        let g = b.granularity_s;
        let before = g * periods(split(created_s, g), split(now_s, g)) as f64;
        (b.minimum_s - before).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_exact_on_whole_seconds_and_keeps_the_phase_in_range() {
        for g in [1.0, 60.0, 3600.0] {
            for t in [0.0, 1.0, 59.0, 60.0, 61.0, 3599.0, 3600.0, 86_400.0 * 365.0 + 17.0] {
                let (k, rho) = split(t, g);
                assert_eq!(k as f64 * g + rho, t, "t {t} g {g}");
                assert!((0.0..g).contains(&rho), "t {t} g {g}: rho {rho}");
                assert_eq!(rho.to_bits(), (rho + 0.0).to_bits());
            }
        }
        // Not whole seconds: still a phase in range.
        for t in [0.1, 0.3, 1e-9, 12345.678] {
            let (_, rho) = split(t, 0.1);
            assert!((0.0..0.1).contains(&rho), "t {t}: rho {rho}");
        }
    }

    #[test]
    fn billed_seconds_agree_with_the_per_instance_rule() {
        // The rule of `Billing::billed_s` on the lifetime, for whole-second instants.
        for (g, m) in [(1.0, 60.0), (60.0, 60.0), (3600.0, 3600.0), (1.0, 0.0), (60.0, 0.0)] {
            let billing = Billing { granularity_s: g, minimum_s: m };
            for c in [0.0, 1.0, 59.0, 60.0, 3601.0] {
                for life in [0.0, 1.0, 59.0, 60.0, 61.0, 3599.0, 3600.0, 3601.0, 7300.0] {
                    assert_eq!(
                        billed_s(&billing, c, c + life),
                        billing.billed_s(life),
                        "g {g} m {m} c {c} life {life}"
                    );
                }
            }
        }
    }
}
