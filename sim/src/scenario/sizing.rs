//! What a scenario's demand asks of its fleet, before anything runs: the request rate's mean, 99th percentile
//! and peak, and the instances of the scaling type each needs to meet the SLO — the least count whose M/M/c
//! sojourn-time quantile (Erlang C, beside the static pools' servers) is within the SLO threshold. `prescale
//! validate` prints it with a warning where the count limits decide the run instead of the controller: a
//! trace scaled so small that `min_count` alone covers its peak (every controller is held at the minimum), or
//! so large that `max_count` cannot meet it.

use crate::cluster::ClusterConfig;
use crate::queueing::Latency;

use super::Prepared;

/// The demand's rates and the instances each needs (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Sizing {
    /// Mean, 99th percentile and peak of the request rate per step, requests per second.
    pub rate_per_s: [f64; 3],
    /// Instances of the scaling type that meet the SLO at each of those rates (`None`: more than
    /// [`SIZING_MAX_INSTANCES`], or none could).
    pub instances: [Option<u32>; 3],
    /// Instances of the scaling type the peak of a stated memory or network demand needs beside the static
    /// pools' (`⌈(demand − pools) / per instance⌉`), and which binds, `"memory"` or `"network"` (`None`: the
    /// workload states neither).
    pub stated_peak_instances: Option<(u32, &'static str)>,
    /// The scaling type's name and count limits.
    pub scaling_type: String,
    /// See `scaling_type`.
    pub min_count: u32,
    /// See `scaling_type`.
    pub max_count: u32,
}

/// The largest count [`Sizing`] looks for.
pub const SIZING_MAX_INSTANCES: u32 = 1_000_000;

impl Sizing {
    /// The warnings worth a user's attention: the peak (the SLO at the peak rate, or a stated memory's or
    /// network's peak, whichever needs more) needs more than `max_count`, or `min_count` alone meets it (so no
    /// controller has anything to decide).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let peak = match (self.instances[2], self.stated_peak_instances) {
            (Some(a), Some((b, _))) => Some(a.max(b)),
            (a, _) => a,
        };
        match peak {
            Some(peak) if peak > self.max_count => w.push(format!(
                "the peak needs {peak} instances of {}, more than max_count {}: every controller falls short \
                 there",
                self.scaling_type, self.max_count
            )),
            None => w.push(format!(
                "the peak rate needs more than {SIZING_MAX_INSTANCES} instances of {} to meet the SLO",
                self.scaling_type
            )),
            Some(peak) if peak <= self.min_count => w.push(format!(
                "min_count {} alone meets the peak ({peak} needed): every controller is held at the minimum; \
                 scale the trace (amplitude_scale) or lower min_count to compare controllers",
                self.min_count
            )),
            _ => {}
        }
        w
    }

    /// One line: rates and counts.
    pub fn summary(&self) -> String {
        let n = |x: Option<u32>| x.map_or_else(|| format!("> {SIZING_MAX_INSTANCES}"), |n| n.to_string());
        // Three significant digits or so, whatever the scale.
        let r = |x: f64| match x.abs() {
            a if a >= 100.0 => format!("{x:.0}"),
            a if a >= 1.0 => format!("{x:.2}"),
            _ => format!("{x:.4}"),
        };
        format!(
            "rate mean {} / p99 {} / peak {} per s; the SLO needs {} / {} / {} instances of {} there{} (limits {}..{})",
            r(self.rate_per_s[0]),
            r(self.rate_per_s[1]),
            r(self.rate_per_s[2]),
            n(self.instances[0]),
            n(self.instances[1]),
            n(self.instances[2]),
            self.scaling_type,
            self.stated_peak_instances
                .map(|(m, what)| format!(", the stated {what} {m} at its peak"))
                .unwrap_or_default(),
            self.min_count,
            self.max_count
        )
    }
}

/// The least instances of `servers_per_instance` servers beside `static_servers` whose M/M/c sojourn time
/// meets `quantile` ≤ `threshold_s` at `rate_per_s` with service rate `mu_per_s` per server (`None`: more than
/// [`SIZING_MAX_INSTANCES`], or the service time alone misses the threshold; an idle service needs one server,
/// whatever the threshold). The hindsight expert's `n_min` is this within the count limits. A bisection: the
/// quantile falls as servers are added, and each look costs one Erlang C (O(√load)), so any rate a scenario may
/// state is sized in a few dozen looks.
pub fn instances_for_slo(
    rate_per_s: f64,
    mu_per_s: f64,
    servers_per_instance: u32,
    static_servers: u32,
    quantile: f64,
    threshold_s: f64,
) -> Option<u32> {
    if rate_per_s > 0.0 && Latency::mmc(0.0, mu_per_s, 1).quantile(quantile) > threshold_s {
        return None;
    }
    let (spi, pools) = (u64::from(servers_per_instance.max(1)), u64::from(static_servers));
    let meets = |n: u64| {
        let c = n * spi + pools;
        match u32::try_from(c) {
            _ if c == 0 => false,
            _ if rate_per_s <= 0.0 => true,
            Ok(c) => {
                rate_per_s < f64::from(c) * mu_per_s
                    && Latency::mmc(rate_per_s, mu_per_s, c).quantile(quantile) <= threshold_s
            }
            // Beyond what a u32 counts: as good as the service time alone once stable.
            Err(_) => rate_per_s < c as f64 * mu_per_s,
        }
    };
    let max = u64::from(SIZING_MAX_INSTANCES);
    // Below the offered load no count is stable: start there, then double the excess until a count meets it.
    let mut lo = ((rate_per_s / mu_per_s - pools as f64) / spi as f64).floor().clamp(0.0, max as f64) as u64;
    if meets(lo) {
        return u32::try_from(lo).ok();
    }
    let mut step = 1;
    let mut hi = lo + step;
    while !meets(hi) {
        if hi >= max {
            return None;
        }
        lo = hi;
        step *= 2;
        hi = (lo + step).min(max);
    }
    // The least between: `lo` misses, `hi` meets.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    u32::try_from(hi).ok()
}

impl<C> Prepared<C> {
    /// What the demand asks of the fleet (module docs); `None` without a scaling type.
    pub fn sizing(&self) -> Option<Sizing> {
        let cfg = &self.config;
        let cluster: &ClusterConfig = &cfg.cluster;
        let t = &cluster.instance_types[cluster.scaling_index()?];
        let per_request = cfg.service.per_request();
        let spi = ClusterConfig::servers_per_instance(t, &per_request);
        let pools = cluster.static_servers(&per_request);
        let mut rates: Vec<f64> = self.demand.rate_per_s.iter().copied().filter(|r| r.is_finite()).collect();
        if rates.is_empty() {
            return None;
        }
        crate::stats::sort_samples(&mut rates);
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let p99 = crate::stats::nearest_rank(&rates, 0.99);
        let peak = rates[rates.len() - 1];
        let mu = 1.0 / cfg.service.mean_service_s;
        let need = |r: f64| instances_for_slo(r, mu, spi, pools, cfg.slo.latency_quantile, cfg.slo.latency_threshold_s);
        // A stated demand's peak, beside what the static pools hold of it.
        let static_capacity = cluster.static_capacity();
        let stated = |series: Option<&Vec<f64>>, per: f64, pools: f64| {
            let peak = series?.iter().copied().filter(|x| x.is_finite()).fold(f64::NAN, f64::max);
            (peak.is_finite() && per > 0.0)
                .then(|| ((peak - pools).max(0.0) / per).ceil().min(f64::from(u32::MAX)) as u32)
        };
        let memory = stated(self.demand.memory_gib.as_ref(), t.capacity.memory_gib, static_capacity.memory_gib)
            .map(|n| (n, "memory"));
        let network = stated(self.demand.network_gbps.as_ref(), t.capacity.network_gbps, static_capacity.network_gbps)
            .map(|n| (n, "network"));
        Some(Sizing {
            rate_per_s: [mean, p99, peak],
            instances: [need(mean), need(p99), need(peak)],
            stated_peak_instances: [memory, network].into_iter().flatten().max_by_key(|(n, _)| *n),
            scaling_type: t.name.clone(),
            min_count: t.min_count,
            max_count: t.max_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Servers for p99 ≤ 0.5 s at μ = 10 per second, from `../shared/peers/erlang_c.py` (`sojourn_quantile`,
    /// the least c): λ = 8.3 → 3, 400 → 43, 1,234 → 126, 2,500 → 253 (c − 1 gives 0.522, 0.512, 0.545 and
    /// 0.522 s).
    #[test]
    fn the_counts_are_the_least_that_meet_the_slo_by_erlang_c() {
        for (rate, servers) in [(8.3, 3u32), (400.0, 43), (1_234.0, 126), (2_500.0, 253)] {
            assert_eq!(
                instances_for_slo(rate, 10.0, 1, 0, 0.99, 0.5),
                Some(servers),
                "one server an instance, λ {rate}"
            );
            assert_eq!(instances_for_slo(rate, 10.0, 4, 0, 0.99, 0.5), Some(servers.div_ceil(4)), "four, λ {rate}");
        }
        // Static pools count: 40 servers beside leave 3 of the 43 to the scaled group.
        assert_eq!(instances_for_slo(400.0, 10.0, 1, 40, 0.99, 0.5), Some(3));
        assert_eq!(instances_for_slo(0.0, 10.0, 4, 0, 0.99, 0.5), Some(1), "an idle service still needs a server");
        assert_eq!(instances_for_slo(0.0, 10.0, 4, 8, 0.99, 0.5), Some(0), "the pools serve it");
        // A service time whose own p99 (ln 100 / μ = 0.46 s) misses the threshold: no count meets it.
        assert_eq!(instances_for_slo(5.0, 10.0, 4, 0, 0.99, 0.4), None);
        assert_eq!(instances_for_slo(0.0, 10.0, 4, 0, 0.99, 0.4), Some(1), "idle: no request to be slow");
        assert_eq!(instances_for_slo(f64::NAN, 10.0, 4, 0, 0.99, 0.5), None);
        // The largest rate a scenario may state: about 10^11 busy servers, 2.5 x 10^10 instances of four, more
        // than it looks for (a bisection of a few dozen Erlang C looks; a walk count by count would not end).
        assert_eq!(instances_for_slo(1e12, 10.0, 4, 0, 0.99, 0.5), None);
        let n = instances_for_slo(3e7, 10.0, 4, 0, 0.99, 0.5).expect("within the search");
        assert!(n > 750_000 && n < 760_000, "{n}: 3 million busy servers in instances of four, and a little more");
    }
}
