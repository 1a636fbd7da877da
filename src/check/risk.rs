//! The topology-risk part of `check`: the same figures as the `redis_cluster_*` risk metrics
//! (computed by the same functions, [`crate::metrics::risk`]), and a WARNING wherever the alert
//! rules in `alerts/` warn.

use super::{Problem, Status};
use crate::metrics::risk::{colocated_replicas, host_masters, host_of, memory_skew, slot_skew};
use crate::model::{Role, Snapshot, ViewNode};
use serde::Serialize;
use std::collections::BTreeMap;

/// Thresholds of the topology-risk WARNINGs: the same as the alert rules' in
/// `alerts/redis-cluster.rules.yml` (group `redis-cluster.topology-risk`), which also hold for a
/// while (10m, 30m) before firing; the check, being one look, warns at once.
pub mod risk_thresholds {
    /// `RedisClusterSlotSkew`: most slots of one master over the mean, above this.
    pub const SLOT_SKEW: f64 = 1.5;
    /// `RedisClusterMemorySkew`: largest used_memory of a slot-owning master over the mean,
    /// above this.
    pub const MEMORY_SKEW: f64 = 2.0;
}

/// One slot-owning master's replicas on its own host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Colocated {
    /// The master's address.
    pub master: String,
    /// Its replicas on the master's host.
    pub colocated: usize,
    /// All its replicas.
    pub replicas: usize,
}

/// The topology-risk figures, the same as the `redis_cluster_*` risk metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Risk {
    /// Per slot-owning master (by address): its replicas on its own host, of all of them
    /// (`redis_cluster_master_colocated_replicas`). A WARNING when every one is (and it has one).
    pub colocated_replicas: Vec<Colocated>,
    /// Slot-owning masters per host (`redis_cluster_host_masters`).
    pub masters_per_host: BTreeMap<String, usize>,
    /// Most slots of one master / mean slots per slot-owning master
    /// (`redis_cluster_slot_skew_ratio`); a WARNING above [`risk_thresholds::SLOT_SKEW`].
    pub slot_skew: Option<f64>,
    /// Largest used_memory of a slot-owning master / their mean
    /// (`redis_cluster_memory_skew_ratio`); a WARNING above [`risk_thresholds::MEMORY_SKEW`].
    pub memory_skew: Option<f64>,
}

/// The slot-owning masters of the view.
fn slot_owners(snapshot: &Snapshot) -> impl Iterator<Item = &ViewNode> {
    snapshot
        .view
        .nodes
        .values()
        .filter(|n| n.role == Role::Master && !n.slots.is_empty())
}

fn name(n: &ViewNode) -> String {
    n.addr.clone().unwrap_or_else(|| n.id.clone())
}

impl Risk {
    /// The figures of one snapshot.
    pub fn of(snapshot: &Snapshot) -> Risk {
        let view = &snapshot.view;
        let replicas_of = |addr: &str| {
            let Some(master) = slot_owners(snapshot).find(|n| n.addr.as_deref() == Some(addr))
            else {
                return 0;
            };
            view.nodes
                .values()
                .filter(|r| r.role == Role::Replica && r.master_id.as_deref() == Some(&master.id))
                .count()
        };
        Risk {
            colocated_replicas: colocated_replicas(view)
                .into_iter()
                .map(|(master, colocated)| Colocated {
                    replicas: replicas_of(&master),
                    master,
                    colocated,
                })
                .collect(),
            masters_per_host: host_masters(view).into_iter().collect(),
            slot_skew: slot_skew(view),
            memory_skew: memory_skew(snapshot),
        }
    }

    /// A WARNING for each figure the alert rules warn about, naming the master concerned.
    pub fn problems(&self, snapshot: &Snapshot) -> Vec<Problem> {
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        let id_at = |addr: &str| snapshot.view.by_addr(addr).map(|n| n.id.clone());
        for c in &self.colocated_replicas {
            if c.replicas > 0 && c.colocated >= c.replicas {
                found.push((format!(
                    "master {} has all its replicas ({}) on its own host {}: losing that host loses the shard",
                    c.master,
                    c.replicas,
                    host_of(&c.master)
                ), id_at(&c.master).into_iter().collect()));
            }
        }
        if let Some(skew) = self.slot_skew.filter(|s| *s > risk_thresholds::SLOT_SKEW)
            && let Some(m) = slot_owners(snapshot).max_by_key(|n| n.slot_count())
        {
            found.push((
                format!(
                    "slot skew {skew:.2} (over {}): master {} owns {} slots, {skew:.2}x the mean",
                    risk_thresholds::SLOT_SKEW,
                    name(m),
                    m.slot_count()
                ),
                vec![m.id.clone()],
            ));
        }
        let used = |n: &ViewNode| snapshot.data_of(&n.id)?.stats_info()?.field("used_memory");
        if let Some(skew) = self
            .memory_skew
            .filter(|s| *s > risk_thresholds::MEMORY_SKEW)
            && let Some((m, bytes)) = slot_owners(snapshot)
                .filter_map(|n| Some((n, used(n)?)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        {
            found.push((format!(
                "memory skew {skew:.2} (over {}): master {} uses {bytes} bytes, {skew:.2}x the mean of the slot-owning masters",
                risk_thresholds::MEMORY_SKEW,
                name(m)
            ), vec![m.id.clone()]));
        }
        found
            .into_iter()
            .map(|(text, ids)| Problem::new(Status::Warning, text, ids))
            .collect()
    }

    /// The topology-risk section of the human report.
    pub fn render_human(&self) -> String {
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "-".to_string()
            } else {
                items.join(", ")
            }
        };
        let colocated = list(
            self.colocated_replicas
                .iter()
                .map(|c| format!("{} {}/{}", c.master, c.colocated, c.replicas))
                .collect(),
        );
        let hosts = list(
            self.masters_per_host
                .iter()
                .map(|(h, n)| format!("{h} {n}"))
                .collect(),
        );
        let skew = |v: Option<f64>, over: f64| match v {
            Some(v) => format!("{v:.2} (WARNING above {over})"),
            None => "-".to_string(),
        };
        format!(
            "\nTopology risk:\n  replicas on their master's host: {colocated}\n  \
             slot-owning masters per host: {hosts}\n  slot skew: {}\n  memory skew: {}\n",
            skew(self.slot_skew, risk_thresholds::SLOT_SKEW),
            skew(self.memory_skew, risk_thresholds::MEMORY_SKEW),
        )
    }
}
