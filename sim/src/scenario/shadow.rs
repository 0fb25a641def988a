//! Shadow mode: a second controller deciding beside the acting one without acting, and what it would have
//! done (definitions in the module docs of `scenario`).

use super::*;

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

/// The acting controller with a shadow beside it: the shadow decides on every observation, its decisions are
/// logged, and only the acting controller's decision is carried out.
pub(super) struct Shadowed {
    pub(super) acting: Box<dyn Controller>,
    pub(super) shadow: Box<dyn Controller>,
    pub(super) log: std::sync::Arc<std::sync::Mutex<Vec<crate::controller::ScaleDecision>>>,
}

impl Controller for Shadowed {
    fn name(&self) -> &str {
        self.acting.name()
    }
    fn decide(&mut self, obs: &crate::controller::Observation) -> crate::controller::ScaleDecision {
        let s = self.shadow.decide(obs);
        self.log.lock().expect("not poisoned").push(s);
        self.acting.decide(obs)
    }
    fn fault(&self) -> Option<String> {
        self.acting.fault().or_else(|| self.shadow.fault())
    }

    fn diagnostics(&self) -> Option<crate::controller::Diagnostics> {
        self.acting.diagnostics()
    }
}

/// Replays a shadow's decisions on the cluster's types: per step its allocated and ready capacity (ready =
/// what it decided ⌈d/Δ⌉ steps earlier, `d` the scaling type's mean provisioning delay), whether its capacity
/// would have met the SLO (M/M/c at the step's rate), and its cost.
pub(super) fn shadow_rows<C: ControllerSpec>(
    cfg: &ScenarioConfig<C>,
    demand: &DemandSeries,
    decisions: &[crate::controller::ScaleDecision],
    rows: &mut [MetricsRow],
) -> ShadowSummary {
    use crate::controller::ScaleDecision;
    let types = &cfg.cluster.instance_types;
    let st = cfg.cluster.scaling_index().expect("validated");
    let per = cfg.per_request();
    let servers: Vec<f64> = types.iter().map(|t| ClusterConfig::servers_per_instance(t, &per) as f64).collect();
    let lag = ((types[st].provisioning_delay.mean_s() / demand.step_s).ceil() as usize).max(1);
    let mut counts: Vec<Vec<f64>> = Vec::with_capacity(rows.len());
    let mut cur: Vec<f64> = types.iter().map(|t| t.initial_count as f64).collect();
    for k in 0..rows.len() {
        counts.push(cur.clone());
        match decisions.get(k) {
            Some(ScaleDecision::To { instances }) => cur[st] = *instances as f64,
            Some(ScaleDecision::Mix { instances }) => {
                for (c, n) in cur.iter_mut().zip(instances) {
                    *c = *n as f64;
                }
            }
            _ => {}
        }
    }
    let mu = 1.0 / cfg.service.mean_service_s;
    let q = cfg.slo.latency_quantile;
    let mut sum = ShadowSummary {
        controller: cfg.shadow.as_ref().map(|c| c.name()).unwrap_or_default(),
        cost_usd: 0.0,
        slo_violation_minutes: 0.0,
        prevented_minutes: 0.0,
        caused_minutes: 0.0,
    };
    for (j, row) in rows.iter_mut().enumerate() {
        let allocated = &counts[j];
        let ready = &counts[j.saturating_sub(lag)];
        let cores = |c: &[f64]| c.iter().zip(types).map(|(n, t)| n * t.capacity.cpu_cores).sum::<f64>();
        let c_servers: f64 = ready.iter().zip(&servers).map(|(n, s)| n * s).sum();
        let lambda = demand.rate_per_s[j];
        let violated = if lambda <= 0.0 {
            false
        } else if lambda < c_servers * mu {
            crate::queueing::Latency::mmc(lambda, mu, c_servers as u32).quantile(q) > cfg.slo.latency_threshold_s
        } else {
            true
        };
        let dt_min = (row.t_end_s - row.t_start_s) / 60.0;
        sum.cost_usd += allocated.iter().zip(types).map(|(n, t)| n * t.price_usd_per_hour).sum::<f64>() * dt_min / 60.0;
        row.shadow_allocated_cpu_cores = cores(allocated);
        row.shadow_ready_cpu_cores = cores(ready);
        row.shadow_slo_violated = Some(violated as u8);
        row.shadow_cost_usd = sum.cost_usd;
        if violated {
            sum.slo_violation_minutes += dt_min;
        }
        match (row.slo_violated == 1, violated) {
            (true, false) => sum.prevented_minutes += dt_min,
            (false, true) => sum.caused_minutes += dt_min,
            _ => {}
        }
    }
    sum
}
