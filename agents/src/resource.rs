//! The resource prediction module (the seed's §2): required resources → a concrete request, the cheapest
//! instance mix that covers every resource, within each type's `[min_count, max_count]`, the quota and an
//! optional cost cap; a clipped request says why.
//!
//! Search: exhaustive over the counts of the scalable types (those with `min_count < max_count`), each bounded
//! by what covering the need alone would take, so it is exact; fixed types count at their `min_count`. Ties
//! in price go to fewer instances. Under a cost cap the need is scaled down (bisection on the fraction
//! covered) until the cheapest mix fits, and the plan says so.

use prescale_sim::cluster::{ClusterConfig, Quota, Resources};

/// A plan: instances per type, its price, and why it falls short of the need, if it does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Instances per type (cluster order).
    pub counts: Vec<u32>,
    /// Price of the mix, USD per hour.
    pub usd_per_hour: f64,
    /// Why the plan does not cover the need (max counts, quota or cost cap), if it does not.
    pub clipped: Option<String>,
}

/// Turns resource needs into instance mixes for one cluster.
#[derive(Clone, Debug)]
pub struct ResourcePlanner {
    caps: Vec<Resources>,
    prices: Vec<f64>,
    min: Vec<u32>,
    max: Vec<u32>,
    quota: Quota,
    cost_cap_usd_per_hour: Option<f64>,
}

fn covers(total: &Resources, need: &Resources) -> bool {
    let eps = 1e-9;
    total.cpu_cores + eps >= need.cpu_cores
        && total.memory_gib + eps >= need.memory_gib
        && total.storage_gib + eps >= need.storage_gib
        && total.network_gbps + eps >= need.network_gbps
}

impl ResourcePlanner {
    /// A planner for `cluster`, with an optional cap on the price per hour.
    pub fn new(cluster: &ClusterConfig, cost_cap_usd_per_hour: Option<f64>) -> Self {
        let t = &cluster.instance_types;
        ResourcePlanner {
            caps: t.iter().map(|t| t.capacity).collect(),
            prices: t.iter().map(|t| t.price_usd_per_hour).collect(),
            min: t.iter().map(|t| t.min_count).collect(),
            max: t.iter().map(|t| t.max_count).collect(),
            quota: cluster.quota,
            cost_cap_usd_per_hour,
        }
    }

    /// Price per hour of the smallest allowed fleet (every type at its `min_count`).
    pub fn minimum_usd_per_hour(&self) -> f64 {
        self.min.iter().zip(&self.prices).map(|(&n, p)| n as f64 * p).sum()
    }

    fn total(&self, counts: &[u32]) -> Resources {
        let mut r = Resources::default();
        for (c, cap) in counts.iter().zip(&self.caps) {
            r.add_scaled(cap, *c as f64);
        }
        r
    }

    fn price(&self, counts: &[u32]) -> f64 {
        counts.iter().zip(&self.prices).map(|(&c, p)| c as f64 * p).sum()
    }

    /// The cheapest admissible mix covering `need`, or `None` if none does.
    fn cheapest(&self, need: &Resources) -> Option<Vec<u32>> {
        let n = self.caps.len();
        // Upper bound per type: enough of it alone to cover the need (or its max).
        let bound: Vec<u32> = (0..n)
            .map(|i| {
                let c = &self.caps[i];
                let ratio = |need: f64, cap: f64| {
                    if need <= 0.0 {
                        0.0
                    } else if cap <= 0.0 {
                        f64::INFINITY
                    } else {
                        need / cap
                    }
                };
                let k = ratio(need.cpu_cores, c.cpu_cores)
                    .max(ratio(need.memory_gib, c.memory_gib))
                    .max(ratio(need.storage_gib, c.storage_gib))
                    .max(ratio(need.network_gbps, c.network_gbps));
                let k = if k.is_finite() { k.ceil() as u32 } else { self.max[i] };
                k.clamp(self.min[i], self.max[i])
            })
            .collect();
        let mut best: Option<(f64, u32, Vec<u32>)> = None;
        let mut counts = self.min.clone();
        self.search(0, &bound, need, &mut counts, &mut best);
        best.map(|b| b.2)
    }

    fn search(
        &self,
        i: usize,
        bound: &[u32],
        need: &Resources,
        counts: &mut Vec<u32>,
        best: &mut Option<(f64, u32, Vec<u32>)>,
    ) {
        if i == counts.len() {
            let total = self.total(counts);
            if covers(&total, need) && self.quota.admits(&total) {
                let (price, k) = (self.price(counts), counts.iter().sum::<u32>());
                if best.as_ref().is_none_or(|b| price < b.0 - 1e-12 || (price <= b.0 + 1e-12 && k < b.1)) {
                    *best = Some((price, k, counts.clone()));
                }
            }
            return;
        }
        for c in self.min[i]..=bound[i].max(self.min[i]) {
            counts[i] = c;
            self.search(i + 1, bound, need, counts, best);
        }
        counts[i] = self.min[i];
    }

    /// The plan for `need`.
    pub fn plan(&self, need: &Resources) -> Plan {
        let mut clipped = None;
        let counts = match self.cheapest(need) {
            Some(c) => c,
            None => {
                // Cannot cover: the largest fleet allowed, filled type by type within the quota.
                let mut c = self.min.clone();
                for i in 0..c.len() {
                    while c[i] < self.max[i] {
                        c[i] += 1;
                        if !self.quota.admits(&self.total(&c)) {
                            c[i] -= 1;
                            break;
                        }
                    }
                }
                clipped = Some(format!(
                    "need {:.1} cores / {:.1} GiB exceeds what max_count and the quota allow ({:.1} cores)",
                    need.cpu_cores,
                    need.memory_gib,
                    self.total(&c).cpu_cores
                ));
                c
            }
        };
        let price = self.price(&counts);
        if let Some(cap) = self.cost_cap_usd_per_hour
            && price > cap + 1e-12
        {
            // Largest fraction of the need whose cheapest mix fits the budget.
            let (mut lo, mut hi) = (0.0, 1.0);
            let mut fit = self.min.clone();
            for _ in 0..40 {
                let f = 0.5 * (lo + hi);
                let mut scaled = *need;
                scaled = Resources {
                    cpu_cores: scaled.cpu_cores * f,
                    memory_gib: scaled.memory_gib * f,
                    storage_gib: scaled.storage_gib * f,
                    network_gbps: scaled.network_gbps * f,
                };
                match self.cheapest(&scaled) {
                    Some(c) if self.price(&c) <= cap + 1e-12 => {
                        lo = f;
                        fit = c;
                    }
                    _ => hi = f,
                }
            }
            let got = self.price(&fit);
            return Plan {
                clipped: Some(format!(
                    "cost cap {cap:.2} USD/h: wanted {} instances ({price:.2} USD/h), got {} ({got:.2} USD/h, {:.0} % of the need)",
                    counts.iter().sum::<u32>(),
                    fit.iter().sum::<u32>(),
                    100.0 * lo
                )),
                counts: fit,
                usd_per_hour: got,
            };
        }
        Plan { counts, usd_per_hour: price, clipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_sim::cluster::{Billing, Delay, InstanceTypeConfig};

    fn ty(name: &str, cpu: f64, mem: f64, price: f64, min: u32, max: u32) -> InstanceTypeConfig {
        InstanceTypeConfig {
            name: name.into(),
            capacity: Resources { cpu_cores: cpu, memory_gib: mem, ..Resources::default() },
            price_usd_per_hour: price,
            billing: Billing::default(),
            provisioning_delay: Delay::Constant { s: 60.0 },
            warmup_s: 0.0,
            warmup_capacity_fraction: 1.0,
            termination_delay_s: 0.0,
            initial_count: min,
            min_count: min,
            max_count: max,
        }
    }

    fn cluster(types: Vec<InstanceTypeConfig>) -> ClusterConfig {
        ClusterConfig {
            scaling_type: types[0].name.clone(),
            instance_types: types,
            quota: Quota::default(),
            failures: None,
        }
    }

    #[test]
    fn cheapest_mix_covers_every_resource() {
        // cpu-heavy (4 cores, 8 GiB, 0.17) and memory-heavy (2 cores, 16 GiB, 0.13) types.
        let p =
            ResourcePlanner::new(&cluster(vec![ty("c", 4.0, 8.0, 0.17, 0, 20), ty("r", 2.0, 16.0, 0.13, 0, 20)]), None);
        // 10 cores, 40 GiB: options: 3c (12, 24) fails memory; 2c+1r (10, 32) fails; 1c+3r (10, 56): 0.56;
        // 2c+2r (12, 48): 0.60; 3c+1r (14, 40): 0.64; 0c+5r (10, 80): 0.65. Cheapest: 1c + 3r.
        let plan = p.plan(&Resources { cpu_cores: 10.0, memory_gib: 40.0, ..Resources::default() });
        assert_eq!(plan.counts, vec![1, 3]);
        assert!((plan.usd_per_hour - 0.56).abs() < 1e-12 && plan.clipped.is_none());
    }

    #[test]
    fn limits_and_cost_cap_clip_with_a_reason() {
        let c = cluster(vec![ty("m", 4.0, 16.0, 0.2, 1, 5)]);
        let plan = ResourcePlanner::new(&c, None).plan(&Resources { cpu_cores: 40.0, ..Resources::default() });
        assert_eq!(plan.counts, vec![5]);
        assert!(plan.clipped.unwrap().contains("max_count"));
        let plan = ResourcePlanner::new(&c, Some(0.61)).plan(&Resources { cpu_cores: 16.0, ..Resources::default() });
        assert_eq!(plan.counts, vec![3]);
        assert!(plan.clipped.unwrap().contains("cost cap 0.61 USD/h"));
        assert_eq!(ResourcePlanner::new(&c, None).plan(&Resources::default()).counts, vec![1]);
    }
}
