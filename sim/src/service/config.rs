//! What a request-level run is given: the cluster, what a request holds, the queue discipline, the
//! statistics window, the control interval and horizon; and its validation.

use serde::Serialize;

use crate::cluster::{ClusterConfig, Resources};
use crate::validate::{Problem, Problems};

/// Order in which waiting requests are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum QueueDiscipline {
    /// First come, first served (REFERENCE_MODEL).
    #[default]
    Fifo,
    /// Last come, first served (non-preemptive).
    Lifo,
}

/// Plain parameters of a [`ServiceModel`](super::ServiceModel).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// The cluster.
    pub cluster: ClusterConfig,
    /// Resources one request holds while in service (cpu_cores > 0): they set the servers per instance
    /// ([`ClusterConfig::servers_per_instance`]).
    pub per_request: Resources,
    /// Control interval; `None` runs without controller ticks. Ticks are at `k · interval` for k = 1, 2, …
    /// while before the horizon.
    pub control_interval_s: Option<f64>,
    /// End of the run: nothing at or after it is processed. Required when there are ticks.
    pub horizon_s: Option<f64>,
    /// Queue discipline.
    pub discipline: QueueDiscipline,
    /// Requests count in the run statistics when `record_from_s <= arrival < record_until_s` (and they
    /// complete before the horizon).
    pub record_from_s: f64,
    /// See `record_from_s`.
    pub record_until_s: f64,
    /// Explicit memory demand per step, GiB (`step_s`, values): while it exceeds the READY memory capacity,
    /// an arriving request fails with probability `1 − capacity / demand` (stream `"memory"`), as in the
    /// fluid model.
    pub memory_demand_gib: Option<(f64, Vec<f64>)>,
    /// Explicit network demand per step, Gbit/s (`step_s`, values), alike against the READY bandwidth; a
    /// request fails with the probability of the scarcer of the two (one draw).
    pub network_demand_gbps: Option<(f64, Vec<f64>)>,
    /// Per-control-step statistics: `Some(slo_threshold_s)` records a [`StepSample`](crate::metrics::StepSample) per tick, counting
    /// completions slower than the threshold.
    pub step_stats_slo_s: Option<f64>,
}

impl ServiceConfig {
    /// Every problem with these parameters, each naming its field.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        p.under("cluster", |p| self.cluster.check(p));
        p.positive("per_request.cpu_cores", self.per_request.cpu_cores);
        if let Some(i) = self.control_interval_s {
            p.positive("control_interval_s", i);
            p.require("horizon_s", self.horizon_s.is_some(), || {
                "required when control_interval_s is set (ticks would never end)".into()
            });
        }
        if let Some(h) = self.horizon_s {
            p.positive("horizon_s", h);
        }
        p.non_negative("record_from_s", self.record_from_s);
        p.require("record_until_s", self.record_until_s >= self.record_from_s, || {
            format!("must be >= record_from_s ({}), got {}", self.record_from_s, self.record_until_s)
        });
        for (field, demand) in
            [("memory_demand_gib", &self.memory_demand_gib), ("network_demand_gbps", &self.network_demand_gbps)]
        {
            if let Some((step_s, d)) = demand {
                p.require(field, !d.is_empty() && *step_s > 0.0, || "needs a step > 0 and at least one value".into());
            }
        }
        p.require("step_stats_slo_s", self.step_stats_slo_s.is_none() || self.control_interval_s.is_some(), || {
            "per-step statistics need control_interval_s".into()
        });
        p.into_vec()
    }
}
