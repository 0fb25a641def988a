//! The vocabulary of amounts: [`Resources`], an amount of each resource (CPU, memory, storage, network) an
//! instance offers or a workload needs. A leaf: the cluster, the metrics and the scenario all measure in it.
//!
//! What it is not: it holds no limits or prices (those are the cluster's, `cluster::ResourceLimits`).

use serde::{Deserialize, Serialize};

/// An amount of each resource an instance offers or a workload needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores.
    #[serde(default)]
    pub cpu_cores: f64,
    /// Memory, GiB.
    #[serde(default)]
    pub memory_gib: f64,
    /// Local storage, GiB.
    #[serde(default)]
    pub storage_gib: f64,
    /// Network bandwidth, Gbit/s.
    #[serde(default)]
    pub network_gbps: f64,
}

impl Resources {
    /// `self + k · other`, resource by resource.
    pub fn add_scaled(&mut self, other: &Resources, k: f64) {
        self.cpu_cores += k * other.cpu_cores;
        self.memory_gib += k * other.memory_gib;
        self.storage_gib += k * other.storage_gib;
        self.network_gbps += k * other.network_gbps;
    }

    /// The four amounts in the order cpu, memory, storage, network, with their names.
    pub fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("cpu_cores", self.cpu_cores),
            ("memory_gib", self.memory_gib),
            ("storage_gib", self.storage_gib),
            ("network_gbps", self.network_gbps),
        ]
    }
}
