//! The typed event vocabulary: [`EventKind`], one details struct per kind, and [`Details`],
//! which ties each kind to its struct. Metrics, the alerter and the `/events` filters match on
//! these types; JSON strings appear only on the wire.
//!
//! Wire format (a contract: alert packs, Alertmanager keys and users' scripts read it, and
//! `tests/fixtures/events_golden.jsonl` pins it byte for byte): the details' fields are
//! flattened into the event object in alphabetical order, nested objects too, and an absent
//! value is written as `null`. Keep struct fields sorted by name when adding one.

use serde::{Deserialize, Serialize};

/// What happened. Serialized as its snake_case name (`"node_pfail"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A replica took over a master's slots.
    Failover,
    /// A node is suspected failing (PFAIL) by other nodes.
    NodePfail,
    /// The cluster marked a node FAIL.
    NodeFail,
    /// A flagged node is no longer flagged.
    NodeRecovered,
    /// The aggregate `cluster_state` changed.
    ClusterState,
    /// A node joined.
    NodeAdded,
    /// A node is no longer known to any reachable node.
    NodeRemoved,
    /// A node changed role or master outside a failover.
    RoleChanged,
    /// Slots changed owner outside a failover.
    SlotsMoved,
    /// Nodes disagree about slot ownership for several polls.
    ConfigConflict,
}

impl EventKind {
    /// Every kind, in the order `/events?kind=` documents them.
    pub const ALL: [EventKind; 10] = [
        EventKind::Failover,
        EventKind::NodePfail,
        EventKind::NodeFail,
        EventKind::NodeRecovered,
        EventKind::ClusterState,
        EventKind::NodeAdded,
        EventKind::NodeRemoved,
        EventKind::RoleChanged,
        EventKind::SlotsMoved,
        EventKind::ConfigConflict,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failover => "failover",
            EventKind::NodePfail => "node_pfail",
            EventKind::NodeFail => "node_fail",
            EventKind::NodeRecovered => "node_recovered",
            EventKind::ClusterState => "cluster_state",
            EventKind::NodeAdded => "node_added",
            EventKind::NodeRemoved => "node_removed",
            EventKind::RoleChanged => "role_changed",
            EventKind::SlotsMoved => "slots_moved",
            EventKind::ConfigConflict => "config_conflict",
        }
    }

    /// The kind with this wire name (exact, case-sensitive).
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a failover was started, as told from the cluster's message counters and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The cluster failed the master and a replica won an election on its own.
    Automatic,
    /// `CLUSTER FAILOVER` (the master cooperated).
    Manual,
    /// `CLUSTER FAILOVER FORCE` (an election without the master).
    Force,
    /// `CLUSTER FAILOVER TAKEOVER` (no election).
    Takeover,
    /// Not enough samples to tell.
    Unknown,
}

impl Trigger {
    /// The wire name (also the `trigger` label of the failover metrics and alerts).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Automatic => "automatic",
            Trigger::Manual => "manual",
            Trigger::Force => "force",
            Trigger::Takeover => "takeover",
            Trigger::Unknown => "unknown",
        }
    }
}

/// `cluster_state` as a node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateValue {
    /// `cluster_state:ok`.
    Ok,
    /// `cluster_state:fail`.
    Fail,
}

impl StateValue {
    /// `Ok` for true.
    pub fn from_ok(ok: bool) -> StateValue {
        if ok { StateValue::Ok } else { StateValue::Fail }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "ok",
            StateValue::Fail => "fail",
        }
    }
}

/// A node as events name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRef {
    /// `host:port` when known.
    pub addr: Option<String>,
    /// The 40-character node id.
    pub id: String,
}

impl NodeRef {
    /// A reference to node `id` at `addr`.
    pub fn new(id: &str, addr: Option<&str>) -> NodeRef {
        NodeRef {
            addr: addr.map(str::to_string),
            id: id.to_string(),
        }
    }
}

/// Details of a [`EventKind::Failover`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverDetails {
    /// The promoted node's config epoch (part of the key).
    pub config_epoch: u64,
    /// From the first failure seen to the promotion; null for manual failovers and when
    /// the failure and the promotion were first seen by the same poll.
    pub duration_seconds: Option<f64>,
    /// When the exporter first saw the old master failing (RFC 3339).
    pub first_failure_seen: Option<String>,
    /// The old master's last replication offset the exporter saw.
    pub last_master_offset_seen: Option<i64>,
    /// The promoted replica.
    pub new_master: NodeRef,
    /// The master it replaced.
    pub old_master: NodeRef,
    /// Writes acknowledged by the old master that the new one may not have.
    pub possible_data_loss_bytes: Option<i64>,
    /// The offset the new master had replicated when it was promoted.
    pub replica_offset_at_promotion: Option<i64>,
    /// The slot ranges taken over (`0-5460 5462`).
    pub slots: String,
    /// How the failover was started.
    pub trigger: Trigger,
}

/// Details of [`EventKind::NodePfail`], [`EventKind::NodeFail`] and
/// [`EventKind::NodeRecovered`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeHealthDetails {
    /// The node.
    pub node: NodeRef,
    /// Ids of the nodes reporting the flag (empty for a recovery, and for a FAIL inferred
    /// from a failover whose flag no poll saw).
    #[serde(default)]
    pub reported_by: Vec<String>,
    /// Its role (`master`, `replica`).
    pub role: String,
}

/// Details of a [`EventKind::ClusterState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStateDetails {
    /// The previous state.
    pub from: StateValue,
    /// `cluster_slots_fail` of a node reporting the new state.
    pub slots_fail: u64,
    /// `cluster_slots_ok` of that node.
    pub slots_ok: u64,
    /// `cluster_slots_pfail` of that node.
    pub slots_pfail: u64,
    /// The new state.
    pub to: StateValue,
}

/// Details of a [`EventKind::NodeAdded`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeAddedDetails {
    /// Its master, for a replica.
    pub master_id: Option<String>,
    /// The node.
    pub node: NodeRef,
    /// Its role.
    pub role: String,
}

/// Details of a [`EventKind::NodeRemoved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRemovedDetails {
    /// The node.
    pub node: NodeRef,
    /// Its last known role.
    pub role: String,
}

/// Details of a [`EventKind::RoleChanged`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleChangedDetails {
    /// Its master before.
    pub from_master_id: Option<String>,
    /// Its role before.
    pub from_role: String,
    /// The node.
    pub node: NodeRef,
    /// Its master now.
    pub to_master_id: Option<String>,
    /// Its role now.
    pub to_role: String,
}

/// Details of a [`EventKind::SlotsMoved`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotsMovedDetails {
    /// The new owner's config epoch.
    pub config_epoch: u64,
    /// The previous owner (null: the slots were unassigned).
    pub from: Option<NodeRef>,
    /// How many slots moved.
    pub slot_count: u32,
    /// The slot ranges.
    pub slots: String,
    /// The new owner (null: the slots are now unassigned).
    pub to: Option<NodeRef>,
}

/// One observer's differing claim in a [`EventKind::ConfigConflict`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The node whose CLUSTER NODES says so.
    pub observer: String,
    /// The owner it names (null: unassigned).
    pub owner: Option<String>,
    /// The slot ranges.
    pub slots: String,
}

/// Details of a [`EventKind::ConfigConflict`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigConflictDetails {
    /// What the observers that disagree with the merged view claim.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Ids of the masters involved.
    #[serde(default)]
    pub masters: Vec<String>,
    /// The disputed slot ranges.
    pub slots: String,
}

/// An event's kind-specific fields: the variant is the kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    /// See [`EventKind::Failover`].
    Failover(FailoverDetails),
    /// See [`EventKind::NodePfail`].
    NodePfail(NodeHealthDetails),
    /// See [`EventKind::NodeFail`].
    NodeFail(NodeHealthDetails),
    /// See [`EventKind::NodeRecovered`].
    NodeRecovered(NodeHealthDetails),
    /// See [`EventKind::ClusterState`].
    ClusterState(ClusterStateDetails),
    /// See [`EventKind::NodeAdded`].
    NodeAdded(NodeAddedDetails),
    /// See [`EventKind::NodeRemoved`].
    NodeRemoved(NodeRemovedDetails),
    /// See [`EventKind::RoleChanged`].
    RoleChanged(RoleChangedDetails),
    /// See [`EventKind::SlotsMoved`].
    SlotsMoved(SlotsMovedDetails),
    /// See [`EventKind::ConfigConflict`].
    ConfigConflict(ConfigConflictDetails),
}

impl Details {
    /// The kind these details belong to.
    pub fn kind(&self) -> EventKind {
        match self {
            Details::Failover(_) => EventKind::Failover,
            Details::NodePfail(_) => EventKind::NodePfail,
            Details::NodeFail(_) => EventKind::NodeFail,
            Details::NodeRecovered(_) => EventKind::NodeRecovered,
            Details::ClusterState(_) => EventKind::ClusterState,
            Details::NodeAdded(_) => EventKind::NodeAdded,
            Details::NodeRemoved(_) => EventKind::NodeRemoved,
            Details::RoleChanged(_) => EventKind::RoleChanged,
            Details::SlotsMoved(_) => EventKind::SlotsMoved,
            Details::ConfigConflict(_) => EventKind::ConfigConflict,
        }
    }

    /// Reads the details of a `kind` event from its flattened fields (unknown fields are
    /// ignored, so a log written by a newer version still opens).
    pub fn from_fields(
        kind: EventKind,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Details, serde_json::Error> {
        use serde_json::from_value as v;
        let fields = serde_json::Value::Object(fields);
        Ok(match kind {
            EventKind::Failover => Details::Failover(v(fields)?),
            EventKind::NodePfail => Details::NodePfail(v(fields)?),
            EventKind::NodeFail => Details::NodeFail(v(fields)?),
            EventKind::NodeRecovered => Details::NodeRecovered(v(fields)?),
            EventKind::ClusterState => Details::ClusterState(v(fields)?),
            EventKind::NodeAdded => Details::NodeAdded(v(fields)?),
            EventKind::NodeRemoved => Details::NodeRemoved(v(fields)?),
            EventKind::RoleChanged => Details::RoleChanged(v(fields)?),
            EventKind::SlotsMoved => Details::SlotsMoved(v(fields)?),
            EventKind::ConfigConflict => Details::ConfigConflict(v(fields)?),
        })
    }

    /// The failover's details, for a failover.
    pub fn failover(&self) -> Option<&FailoverDetails> {
        match self {
            Details::Failover(f) => Some(f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(EventKind::parse("FAILOVER"), None);
    }
}
