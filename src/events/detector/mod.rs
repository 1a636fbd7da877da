//! The event detector: a pure state machine that diffs each new snapshot against the topology it
//! last recorded and emits events (failover, node health, cluster state, membership, roles, slot
//! moves, config conflicts). It does no IO; the caller persists [`Topology`] and the events.

use crate::events::kind::{
    Claim, ClusterStateDetails, ConfigConflictDetails, Details, EventKind, FailoverDetails,
    NodeAddedDetails, NodeHealthDetails, NodeRef, NodeRemovedDetails, RoleChangedDetails,
    SlotsMovedDetails, StateValue, Trigger,
};
use crate::events::store::NewEvent;
use crate::model::{NodeData, Role, Snapshot, ViewNode};
use crate::parse::cluster_nodes::{SLOT_COUNT, SlotRange, format_ranges, slots_to_ranges};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

mod failover;
mod health;
mod membership;
mod slots;
mod state;

use state::aggregate_state;

/// Consecutive polls a node must be flagged `fail?` before `node_pfail` is announced, so a
/// suspicion that clears at once is not news.
const PFAIL_CONFIRM_POLLS: u32 = 2;

/// Consecutive polls of disagreement about slot owners before `config_conflict` is announced
/// (gossip makes every failover briefly inconsistent).
const CONFLICT_CONFIRM_POLLS: u32 = 3;

/// How long after a failed master answers again its failure still explains a promotion.
const RECENT_RECOVERY: Duration = Duration::from_secs(30);

/// How far back a node's oldest replica sample reaches. A promotion's trigger is told by the
/// messages sent since a sample taken before the request that caused it, and a manual failover
/// can complete up to 5 s (Redis's manual failover timeout) after its MFSTART: the chaos run
/// saw one take 2.2 s, and three samples of a 1 s poll, all taken after the MFSTART, made it
/// look forced.
const SAMPLE_SPAN: Duration = Duration::from_secs(6);

/// At most this many replica samples per node (polls faster than 1 s).
const MAX_REPLICA_SAMPLES: usize = 64;

/// Health of a node as last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not flagged.
    #[default]
    Ok,
    /// Announced as `fail?`.
    Pfail,
    /// Announced as `fail`.
    Fail,
}

/// What the detector remembers of one node between polls (and across restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedNode {
    /// `host:port`.
    pub addr: Option<String>,
    /// `master` or `replica`.
    pub role: String,
    /// Master id for replicas.
    pub master_id: Option<String>,
    /// Config epoch.
    pub config_epoch: u64,
    /// Owned slots as `(first, last)` pairs.
    pub slots: Vec<(u16, u16)>,
    /// Last announced health.
    pub health: Health,
    /// Failure episodes announced for this node at config epoch `episodes_epoch`: a replica can
    /// fail and recover several times while its master's epoch (which it reports) stays put,
    /// and each episode needs a key of its own.
    #[serde(default)]
    pub episodes: u32,
    /// The config epoch `episodes` counts at.
    #[serde(default)]
    pub episodes_epoch: u64,
}

impl TrackedNode {
    /// Counts a new failure episode beginning at `epoch`.
    fn begin_episode(&mut self, epoch: u64) {
        if self.episodes_epoch != epoch {
            self.episodes_epoch = epoch;
            self.episodes = 0;
        }
        self.episodes = self.episodes.saturating_add(1);
    }

    /// The key of a health event (`node_pfail`, `node_fail`, `node_recovered`) at `epoch`: the
    /// first episode at an epoch keeps the plain `kind/id/epoch`, later ones get `/n`.
    fn health_key(&self, kind: EventKind, id: &str, epoch: u64) -> String {
        // Every event of one episode carries the epoch it began at (and its number): a master
        // that fails at E and recovers as a replica at its new master's epoch F must not give
        // node_recovered/id/F, the key of its first failure episode at F as a replica.
        let epoch = match self.episodes {
            0 => epoch,
            _ => self.episodes_epoch,
        };
        match self.episodes {
            n if n > 1 && self.episodes_epoch == epoch => format!("{kind}/{id}/{epoch}/{n}"),
            _ => format!("{kind}/{id}/{epoch}"),
        }
    }
}

/// The persisted part of the detector: the topology as of the last recorded poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Topology {
    /// Members by id.
    pub nodes: BTreeMap<String, TrackedNode>,
    /// Last announced aggregate cluster state.
    pub cluster_ok: Option<bool>,
    /// The latest `cluster_state` fail episode: the cluster's current epoch when it began and
    /// its number among the episodes that began at that epoch. The epoch can stay put across
    /// two fail episodes (nothing was elected in between), and each needs keys of its own.
    #[serde(default)]
    pub cluster_fail_episode: Option<(u64, u32)>,
    /// A config conflict is announced and not resolved yet.
    pub conflict_announced: bool,
    /// Id of the last event stored when this topology was saved.
    pub last_event_id: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ReplicaSample {
    /// When the poll took it; `None` for the zero baseline of a fresh process.
    taken: Option<SystemTime>,
    offset: Option<i64>,
    /// Cluster bus messages sent, all types: lower than an earlier sample's means the process
    /// restarted in between.
    messages_sent: u64,
    mfstart_sent: u64,
    auth_req_sent: u64,
    /// FAIL messages received: the cluster broadcasts one when a majority flags a node FAIL.
    fail_received: u64,
}

/// Runtime-only memory of one node (lost on restart, which only costs precision).
#[derive(Debug, Default)]
struct History {
    /// Start of the node's current (or last) failure episode: unreachable or flagged.
    first_failure_seen: Option<SystemTime>,
    /// The episode included a `fail` flag.
    fail_flag_seen: bool,
    /// When the episode ended (answering, unflagged). Kept for a while: a master restarted
    /// quickly can be back before the poll that sees its replica's promotion.
    recovered_at: Option<SystemTime>,
    /// The node's config epoch when the episode began: a node seen healthy as a master at
    /// another epoch has taken part in a newer configuration, which ends the episode.
    episode_epoch: u64,
    /// The episode began while the node was a replica: it explains nothing about a later
    /// failover away from the node as a master.
    episode_as_replica: bool,
    /// The node was flagged when its promotion was logged: a promotion needs a majority of
    /// masters to hear it (or its own master, for TAKEOVER), so flags that stay on from then are
    /// observers' leftovers from before, not a new failure. Cleared once it is seen unflagged.
    flags_from_before: bool,
    last_master_offset: Option<i64>,
    /// Samples of the node's current process while it was a replica, oldest first.
    replica_samples: VecDeque<ReplicaSample>,
    /// The node's process was seen to restart after its newest replica sample (or it has none),
    /// so all its counters are newer than anything sampled: they count from 0.
    fresh_process: bool,
    /// `run_id` of the process last seen answering (INFO all; the telemetry is taken afresh by
    /// the first poll after a failed one, so a restarted process is known by its first answer).
    run_id: Option<String>,
    pfail_polls: u32,
}

impl History {
    /// Forgets the failure episode.
    fn end_episode(&mut self) {
        self.first_failure_seen = None;
        self.fail_flag_seen = false;
        self.recovered_at = None;
        self.episode_as_replica = false;
    }
}

/// Turns consecutive snapshots into events.
#[derive(Debug)]
pub struct Detector {
    topology: Topology,
    history: HashMap<String, History>,
    conflict_polls: u32,
    /// Keys logged after the saved topology (a crash between logging and saving): not re-announced.
    suppress: HashSet<String>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn node_ref(id: &str, addr: Option<&str>) -> NodeRef {
    NodeRef::new(id, addr)
}

fn event(time: SystemTime, key: String, summary: String, details: Details) -> NewEvent {
    NewEvent {
        key,
        time,
        summary,
        details,
    }
}

/// Per-slot owner ids of a slot map given as `(first, last)` ranges per node id.
fn owners<'a, R>(maps: impl Iterator<Item = (&'a str, R)>) -> Vec<Option<&'a str>>
where
    R: IntoIterator<Item = (u16, u16)>,
{
    let mut out = vec![None; usize::from(SLOT_COUNT)];
    for (id, ranges) in maps {
        for (start, end) in ranges {
            for slot in start..=end.min(SLOT_COUNT - 1) {
                if let Some(cell) = out.get_mut(usize::from(slot)) {
                    *cell = Some(id);
                }
            }
        }
    }
    out
}

/// Per-slot owners of a list of CLUSTER NODES-style members (view nodes or reply lines).
fn owners_of<'a, T: 'a>(
    members: impl Iterator<Item = &'a T>,
    id: impl Fn(&'a T) -> &'a str,
    slots: impl Fn(&'a T) -> &'a [SlotRange],
) -> Vec<Option<&'a str>> {
    owners(members.map(|m| (id(m), slots(m).iter().map(|r| (r.start, r.end)))))
}

fn tracked(n: &ViewNode, health: Health) -> TrackedNode {
    let mut t = TrackedNode {
        addr: None,
        role: String::new(),
        master_id: None,
        config_epoch: 0,
        slots: Vec::new(),
        health,
        episodes: 0,
        episodes_epoch: 0,
    };
    refresh(&mut t, n);
    t
}

/// Brings a tracked node's topology fields up to date with `n`, keeping its announced health and
/// episodes; a field is copied only when it changed. [`tracked`] records a new node with it.
fn refresh(t: &mut TrackedNode, n: &ViewNode) {
    if t.addr != n.addr {
        t.addr.clone_from(&n.addr);
    }
    if t.role != n.role.as_str() {
        t.role = n.role.as_str().to_string();
    }
    if t.master_id != n.master_id {
        t.master_id.clone_from(&n.master_id);
    }
    t.config_epoch = n.config_epoch;
    if !t
        .slots
        .iter()
        .copied()
        .eq(n.slots.iter().map(|r| (r.start, r.end)))
    {
        t.slots = n.slots.iter().map(|r| (r.start, r.end)).collect();
    }
}

fn current_health(n: &ViewNode) -> Health {
    if !n.fail_reporters.is_empty() {
        Health::Fail
    } else if !n.pfail_reporters.is_empty() {
        Health::Pfail
    } else {
        Health::Ok
    }
}

impl Detector {
    /// A detector starting from a persisted topology (empty on first run) and the keys of events
    /// logged after that topology was saved.
    pub fn new(topology: Topology, suppress: HashSet<String>) -> Self {
        Detector {
            topology,
            history: HashMap::new(),
            conflict_polls: 0,
            suppress,
        }
    }

    /// The topology to persist.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Records the id of the last stored event, to be saved with the topology.
    pub fn set_last_event_id(&mut self, id: u64) {
        self.topology.last_event_id = id;
    }

    /// Diffs a snapshot against the recorded topology, updates it, and returns new events.
    pub fn observe(&mut self, snap: &Snapshot) -> Vec<NewEvent> {
        let view = &snap.view;
        if !view.nodes.values().any(|n| n.reachable) {
            // Nothing answered: the exporter cannot tell what changed.
            return Vec::new();
        }
        self.update_history(snap);
        if self.topology.nodes.is_empty() {
            self.topology.nodes = view
                .nodes
                .values()
                .map(|n| (n.id.clone(), tracked(n, current_health(n))))
                .collect();
            self.topology.cluster_ok = aggregate_state(snap).map(|(ok, _)| ok);
            return Vec::new();
        }
        let mut events = Vec::new();
        let promoted = self.slot_changes(snap, &mut events);
        self.membership(snap, &mut events);
        self.health(snap, &mut events);
        self.roles(snap, &promoted, &mut events);
        self.cluster_state(snap, &mut events);
        self.conflicts(snap, &mut events);

        // Record the new topology, keeping announced health and episodes; a node's record is
        // updated in place (no allocation per node and round when nothing changed).
        let mut old = std::mem::take(&mut self.topology.nodes);
        self.topology.nodes = view
            .nodes
            .values()
            .map(|n| match old.remove_entry(&n.id) {
                Some((id, mut t)) => {
                    refresh(&mut t, n);
                    (id, t)
                }
                None => (n.id.clone(), tracked(n, Health::Ok)),
            })
            .collect();
        for n in view.nodes.values().filter(|n| n.role == Role::Master) {
            if let Some(h) = self.history.get_mut(&n.id) {
                h.replica_samples.clear();
                h.fresh_process = false;
            }
        }
        events.retain(|e| !self.suppress.remove(&e.key));
        events
    }
}

/// First 8 characters of a node id, for summaries.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests;
