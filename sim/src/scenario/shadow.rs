//! Shadow mode: a second controller deciding beside the acting one without acting, and what it would have
//! done (definitions in the module docs of `scenario`).

use super::*;
use crate::counterfactual::{Counterfactual, ready_lag_steps, violates_slo};
use crate::observe::Observer;

/// What a shadow controller would have done (definitions in the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowSummary {
    /// The shadow controller.
    pub controller: String,
    /// What its allocation would have cost, USD (billed per step, no minimum).
    pub cost_usd: f64,
    /// Minutes in which its capacity would have violated the SLO (M/M/c estimate).
    pub slo_violation_minutes: f64,
    /// Minutes the acting controller violated the SLO and the shadow would not have.
    pub prevented_minutes: f64,
    /// Minutes the shadow would have violated the SLO and the acting controller did not.
    pub caused_minutes: f64,
}

/// A shadow controller beside the acting one, as an observer: it decides on every observation the acting
/// controller saw, after it, and its decision is logged, never carried out.
pub(super) struct Shadow(pub(super) Box<dyn Controller>);

impl Observer for Shadow {
    type Entry = crate::controller::ScaleDecision;
    fn observe(
        &mut self,
        obs: &crate::controller::Observation,
        _acting_decided: &crate::controller::ScaleDecision,
        _acting: &dyn Controller,
    ) -> Self::Entry {
        self.0.decide(obs)
    }
    fn fault(&self) -> Option<String> {
        self.0.fault()
    }
}

/// Replays a shadow's decisions on the cluster's types: per step its allocated and ready capacity (ready =
/// what it decided [`ready_lag_steps`] earlier, by the scaling type's mean provisioning delay), whether its
/// capacity would have met the SLO ([`violates_slo`]), and its cost, tallied by the one [`Counterfactual`].
pub(super) fn shadow_rows<C: ControllerSpec>(
    cfg: &ScenarioConfig<C>,
    demand: &DemandSeries,
    decisions: &[crate::controller::ScaleDecision],
    rows: &mut [MetricsRow],
) -> ShadowSummary {
    let types = &cfg.cluster.instance_types;
    let st = cfg.cluster.scaling_index().expect("validated");
    let per = cfg.per_request();
    let servers: Vec<f64> = types.iter().map(|t| ClusterConfig::servers_per_instance(t, &per) as f64).collect();
    let lag = ready_lag_steps(types[st].provisioning_delay.mean_s(), demand.step_s);
    let mut counts: Vec<Vec<u32>> = Vec::with_capacity(rows.len());
    let mut cur: Vec<u32> = types.iter().map(|t| t.initial_count).collect();
    for k in 0..rows.len() {
        counts.push(cur.clone());
        if let Some(d) = decisions.get(k) {
            d.apply_to(&mut cur, st);
        }
    }
    let mu = 1.0 / cfg.service.mean_service_s;
    let q = cfg.slo.latency_quantile;
    let mut tally = Counterfactual::default();
    for (j, row) in rows.iter_mut().enumerate() {
        let allocated = &counts[j];
        let ready = &counts[j.saturating_sub(lag)];
        let cores = |c: &[u32]| c.iter().zip(types).map(|(n, t)| *n as f64 * t.capacity.cpu_cores).sum::<f64>();
        let c_servers: f64 = ready.iter().zip(&servers).map(|(n, s)| *n as f64 * s).sum();
        let violated = violates_slo(demand.rate_per_s[j], mu, c_servers, q, cfg.slo.latency_threshold_s);
        let dt_min = (row.t_end_s - row.t_start_s) / 60.0;
        let cost =
            allocated.iter().zip(types).map(|(n, t)| *n as f64 * t.price_usd_per_hour).sum::<f64>() * dt_min / 60.0;
        tally.add(dt_min, row.slo_violated == 1, violated, 0.0, cost);
        row.shadow_allocated_cpu_cores = cores(allocated);
        row.shadow_ready_cpu_cores = cores(ready);
        row.shadow_slo_violated = Some(violated as u8);
        row.shadow_cost_usd = tally.shadow_cost_usd;
    }
    ShadowSummary {
        controller: cfg.shadow.as_ref().map(|c| c.name()).unwrap_or_default(),
        cost_usd: tally.shadow_cost_usd,
        slo_violation_minutes: tally.shadow_violation_minutes,
        prevented_minutes: tally.prevented_minutes,
        caused_minutes: tally.caused_minutes,
    }
}
