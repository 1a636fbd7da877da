//! The snapshot model: what one poll round saw on every node, plus the cluster-wide view derived
//! from all those observations (pure functions, no IO).

use crate::parse::cluster_info::ClusterInfo;
use crate::parse::cluster_nodes::{NodeFlags, NodeLine, SLOT_COUNT, SlotRange, slots_to_ranges};
use crate::parse::info::Info;
use crate::parse::slot_stats::SlotMetric;
use crate::topology::{Claim, FnvMap, NodeId, PeerLine, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why polling a node failed; the value of the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// TCP (or TLS) connection could not be established.
    Connect,
    /// No complete reply within `--node-timeout`.
    Timeout,
    /// Authentication failed or is required (`WRONGPASS`, `NOAUTH`).
    Auth,
    /// The reply was not valid RESP or not the expected text.
    Protocol,
    /// The server answered that cluster support is disabled.
    NotCluster,
    /// The reply exceeded the per-poll size bound.
    TooLarge,
    /// The server is loading its dataset (`LOADING`).
    Loading,
    /// Any other error reply from the server.
    ServerError,
    /// The connection broke mid-reply.
    Io,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The ACL user may not run one of the telemetry commands (CONFIG GET, SLOWLOG): that part
    /// is missing, the node is still up.
    NoPerm,
}

impl FailureReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::NotCluster => "not_cluster",
            Self::TooLarge => "too_large",
            Self::Loading => "loading",
            Self::ServerError => "server_error",
            Self::Io => "io",
            Self::Tls => "tls",
            Self::NoPerm => "noperm",
        }
    }
}

/// A failed poll of one node: the reason label and a log-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollFailure {
    /// Category, used as the metric label.
    pub reason: FailureReason,
    /// Human-readable detail (never contains secrets).
    pub message: String,
    /// False when the poller did not try this round (reconnect backoff); such a failure is not
    /// counted again.
    pub attempted: bool,
}

/// CONFIG GET values the metrics use (absent when not readable).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConfigValues {
    /// `maxmemory` in bytes.
    pub maxmemory: Option<f64>,
    /// `maxclients`.
    pub maxclients: Option<f64>,
    /// `io-threads`.
    pub io_threads: Option<f64>,
}

/// SLOWLOG LEN and the newest SLOWLOG entry.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Slowlog {
    /// Entries in the slow log.
    pub length: f64,
    /// Id and duration (microseconds) of the newest entry, when there is one.
    pub last: Option<(f64, f64)>,
}

/// The slower telemetry tier of one node (`--stats-interval`): the whole INFO, CONFIG GET of
/// the few keys the metrics need, the latency monitor's latest spikes, and the slow log. Taken in the same round trip as a fast poll
/// when due, and reused by the rounds in between.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStats {
    /// When it was taken.
    pub time: SystemTime,
    /// `INFO all`.
    pub info: Info,
    /// CONFIG GET (empty when refused).
    pub config: ConfigValues,
    /// SLOWLOG (None when refused).
    pub slowlog: Option<Slowlog>,
    /// LATENCY LATEST: `(event, Unix time of the latest spike, its duration in ms)`.
    pub latency_spikes: Vec<(String, f64, f64)>,
    /// CLUSTER SLOT-STATS: per metric the node's top slots by it, `(slot, value)` largest first,
    /// slots at 0 left out. A metric is absent when it was not asked for (a replica, a server
    /// without the command, CPU and network while `cluster-slot-stats-enabled` is off) or failed.
    pub hot_slots: BTreeMap<SlotMetric, Vec<(u16, u64)>>,
}

/// Everything one node answered in one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeData {
    /// CLUSTER INFO.
    pub cluster_info: ClusterInfo,
    /// CLUSTER NODES in compact form (shared: a node's last reply is reused until its CLUSTER
    /// INFO shows a change or its refresh turn comes, and kept when a fresh one says the same).
    pub nodes: Arc<Topology>,
    /// INFO replication, every poll: roles, offsets, replicas, link state.
    pub info: Info,
    /// The latest slower telemetry, when the node has answered it once.
    pub stats: Option<Arc<NodeStats>>,
    /// Problems that cost part of the telemetry but not the poll (a refused command, malformed
    /// lines), counted once when they happen.
    pub soft_failures: Vec<PollFailure>,
}

impl NodeData {
    /// The latest INFO all, when there is one.
    pub fn stats_info(&self) -> Option<&Info> {
        self.stats.as_deref().map(|s| &s.info)
    }
}

/// The outcome of polling one address.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObservation {
    /// `host:port` the exporter polled; the `addr` label.
    pub addr: String,
    /// The replies, or why there are none.
    pub result: Result<NodeData, PollFailure>,
    /// Wall time the poll of this node took.
    pub duration: Duration,
}

impl NodeObservation {
    /// The replies when the poll succeeded.
    pub fn data(&self) -> Option<&NodeData> {
        self.result.as_ref().ok()
    }

    /// The node id the node gave for itself.
    pub fn node_id(&self) -> Option<&str> {
        self.data()?.nodes.myself().map(|m| m.id.as_str())
    }
}

/// Role of a node in the derived view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Master (with or without slots).
    Master,
    /// Replica of another node.
    Replica,
}

impl Role {
    /// The label value (`master` / `replica`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
        }
    }
}

/// One cluster member as the whole set of observations describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewNode {
    /// Node id.
    pub id: String,
    /// `host:port`, when known.
    pub addr: Option<String>,
    /// Role.
    pub role: Role,
    /// The master's id, for replicas.
    pub master_id: Option<String>,
    /// Config epoch (as the authoritative line gives it).
    pub config_epoch: u64,
    /// Slots it owns in the derived slot map.
    pub slots: Vec<SlotRange>,
    /// Ids of reachable observers that flag it `fail?`.
    pub pfail_reporters: Vec<String>,
    /// Ids of reachable observers that flag it `fail`.
    pub fail_reporters: Vec<String>,
    /// The exporter polled it successfully this round.
    pub reachable: bool,
    /// Its own replication offset from INFO, when reachable.
    pub repl_offset: Option<i64>,
    /// Slots it is migrating away (from its own `myself` line).
    pub migrating: usize,
    /// Slots it is importing (from its own `myself` line).
    pub importing: usize,
    /// Flagged `nofailover`.
    pub nofailover: bool,
}

impl ViewNode {
    /// Number of owned slots.
    pub fn slot_count(&self) -> u32 {
        self.slots.iter().map(SlotRange::len).sum()
    }

    /// Flagged `fail` by at least one observer.
    pub fn is_failed(&self) -> bool {
        !self.fail_reporters.is_empty()
    }
}

/// The cluster-wide view derived from every reachable node's CLUSTER NODES.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// Members by node id (handshake nodes excluded).
    pub nodes: BTreeMap<String, ViewNode>,
    /// Every reachable node maps every slot to the same owner.
    pub consistent: bool,
    /// Masters that own slots but have no healthy replica.
    pub masters_without_replica: usize,
    /// Slots with no owner, or whose owner is flagged `fail` or did not answer the exporter.
    pub uncovered_slots: u32,
}

impl ClusterView {
    /// Addresses of every member with a known address.
    pub fn addrs(&self) -> BTreeSet<String> {
        self.nodes.values().filter_map(|n| n.addr.clone()).collect()
    }

    /// The member at an address.
    pub fn by_addr(&self, addr: &str) -> Option<&ViewNode> {
        self.nodes
            .values()
            .find(|n| n.addr.as_deref() == Some(addr))
    }
}

/// One completed poll round.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When the round started.
    pub time: SystemTime,
    /// Wall time of the whole round.
    pub duration: Duration,
    /// What each polled address answered, by address.
    pub observations: BTreeMap<String, NodeObservation>,
    /// The derived cluster view.
    pub view: ClusterView,
}

impl Snapshot {
    /// Builds a snapshot from the observations of one round.
    pub fn new(time: SystemTime, duration: Duration, observations: Vec<NodeObservation>) -> Self {
        Self::new_cached(time, duration, observations, &mut ViewCache::default())
    }

    /// [`Snapshot::new`] reusing the topology part of the previous view while it still holds
    /// (see [`ViewCache`]).
    pub fn new_cached(
        time: SystemTime,
        duration: Duration,
        observations: Vec<NodeObservation>,
        cache: &mut ViewCache,
    ) -> Self {
        let observations: BTreeMap<String, NodeObservation> = observations
            .into_iter()
            .map(|o| (o.addr.clone(), o))
            .collect();
        let view = derive_view_cached(&observations, cache);
        Snapshot {
            time,
            duration,
            observations,
            view,
        }
    }

    /// The observation of the node with this id, if the exporter polled it successfully.
    pub fn data_of(&self, id: &str) -> Option<&NodeData> {
        let addr = self.view.nodes.get(id)?.addr.as_deref()?;
        self.observations.get(addr)?.data()
    }
}

/// What the last derived view was derived from (every reachable observer's id and compact
/// topology) and its topology part, reused while no observer's topology changed: the poller keeps
/// a cached reply's `Arc` and reuses it for a fresh reply that says the same, so in a steady
/// cluster only reachability, offsets and coverage are redone each round.
#[derive(Debug, Default)]
pub struct ViewCache {
    inputs: Vec<(String, Arc<Topology>)>,
    view: Option<ClusterView>,
}

impl ViewCache {
    fn matches(&self, reachable: &[(&str, &NodeData)]) -> bool {
        self.view.is_some()
            && self.inputs.len() == reachable.len()
            && self
                .inputs
                .iter()
                .zip(reachable)
                .all(|((id, t), (rid, d))| id == rid && Arc::ptr_eq(t, &d.nodes))
    }
}

/// Derives the cluster view from one round's observations.
pub fn derive_view(observations: &BTreeMap<String, NodeObservation>) -> ClusterView {
    derive_view_cached(observations, &mut ViewCache::default())
}

/// [`derive_view`], reusing the cached topology part when no reachable observer's topology
/// changed since the cache was filled; the cache is refilled otherwise.
pub fn derive_view_cached(
    observations: &BTreeMap<String, NodeObservation>,
    cache: &mut ViewCache,
) -> ClusterView {
    let reachable: Vec<(&str, &NodeData)> = observations
        .values()
        .filter_map(|o| Some((o.node_id()?, o.data()?)))
        .collect();
    let mut view = match (&cache.view, cache.matches(&reachable)) {
        (Some(v), true) => v.clone(),
        _ => {
            let v = derive_topology(&reachable);
            cache.inputs = reachable
                .iter()
                .map(|(id, d)| ((*id).to_string(), Arc::clone(&d.nodes)))
                .collect();
            cache.view = Some(v.clone());
            v
        }
    };
    for node in view.nodes.values_mut() {
        let obs = node.addr.as_deref().and_then(|a| observations.get(a));
        let data = obs.and_then(NodeObservation::data);
        node.reachable = data.is_some() && obs.and_then(NodeObservation::node_id) == Some(&node.id);
        node.repl_offset = data.and_then(|d| d.info.replication_offset());
    }
    view.uncovered_slots = uncovered_slots(&view, observations);
    view
}

/// The part of the view that depends only on the observers' topologies: members, roles,
/// reporters, slot map and its consistency (reachability and offsets are left unset).
fn derive_topology(reachable: &[(&str, &NodeData)]) -> ClusterView {
    let (own, seen) = lines_by_node(reachable);
    let mut view = ClusterView {
        consistent: true,
        ..ClusterView::default()
    };
    for (id, lines) in &seen {
        let own_line = own.get(id).copied();
        if let Some(node) = view_node(*id, own_line, lines) {
            view.nodes.insert(id.as_str().to_string(), node);
        }
    }
    let (consistent, owned) = slot_owners(reachable);
    view.consistent = consistent;
    for (id, ranges) in owned {
        if let Some(node) = view.nodes.get_mut(id.as_str()) {
            node.slots = ranges;
        }
    }
    view.masters_without_replica = masters_without_replica(&view);
    view
}

/// A node's own line: the compact record and the full one.
type OwnLine<'a> = (&'a PeerLine, &'a NodeLine);

/// Lines of one node id: the node's own (`myself`) line, and every observer's line about it
/// (observers in address order).
type LinesByNode<'a> = (
    FnvMap<NodeId, OwnLine<'a>>,
    FnvMap<NodeId, Vec<(&'a str, &'a PeerLine)>>,
);

/// Every reachable observer's CLUSTER NODES lines grouped by the node they are about
/// (handshake entries are not among the compact lines).
fn lines_by_node<'a>(reachable: &[(&'a str, &'a NodeData)]) -> LinesByNode<'a> {
    let mut own: FnvMap<NodeId, OwnLine<'a>> = FnvMap::default();
    let mut seen: FnvMap<NodeId, Vec<(&str, &PeerLine)>> = FnvMap::default();
    for (observer, data) in reachable {
        for line in data.nodes.lines() {
            if line.flags().myself
                && let Some(full) = data.nodes.myself()
            {
                own.insert(line.id, (line, full));
            }
            seen.entry(line.id).or_default().push((*observer, line));
        }
    }
    (own, seen)
}

/// Lines that agree on a node's role: replica or not, and its master.
type GroupKey = (bool, Option<NodeId>);

/// The line that describes a node: the newest one (highest config epoch) any observer has, its
/// own `myself` line among equals, then the one most observers agree on. A node's role, slots
/// and epoch travel together in its gossip, so observers that have heard of a promotion show
/// the node as a master at the new epoch while the rest still show the old replica line; and
/// the node's own reply may be the older one when it was read (or cached) before the promotion
/// and the others after. Taking role and epoch from an older line than the slot claim would pair
/// the old role with the new slots. A replica's line shows its master's epoch, a master's its
/// own, so the two compare only when the master line claims slots: a node that says it is a
/// replica is not outvoted by observers that still list it as a master without slots (right
/// after `redis-cli --cluster create` every node has an epoch of its own, a replica's often
/// above its master's, until gossip tells the others its new role).
fn authoritative_line<'a>(
    own: Option<&'a PeerLine>,
    lines: &[(&str, &'a PeerLine)],
) -> Option<&'a PeerLine> {
    let own_replica = own.is_some_and(|o| o.flags().replica);
    // Per (replica, master): the highest epoch, the lines, the line with it; in first-seen order.
    let mut groups: Vec<(GroupKey, (u64, usize, &PeerLine))> = Vec::new();
    for (_, l) in lines {
        if own_replica && !l.flags().replica && !l.serves_slots() {
            continue;
        }
        let key = (l.flags().replica, l.master_id);
        let at = match groups.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                groups.push((key, (0, 0, l)));
                groups.len() - 1
            }
        };
        if let Some((_, g)) = groups.get_mut(at) {
            g.1 += 1;
            if l.config_epoch >= g.0 {
                g.0 = l.config_epoch;
                g.2 = l;
            }
        }
    }
    let newest = groups
        .into_iter()
        .map(|(_, g)| g)
        .max_by_key(|(epoch, n, _)| (*epoch, *n))
        .map(|(_, _, l)| l);
    match (own, newest) {
        (Some(o), Some(n)) if n.config_epoch > o.config_epoch => Some(n),
        (Some(o), _) => Some(o),
        (None, n) => n,
    }
}

/// One member of the derived view from its lines (slots are assigned later, cluster-wide;
/// reachability and offset per round).
fn view_node(
    id: NodeId,
    own: Option<OwnLine<'_>>,
    lines: &[(&str, &PeerLine)],
) -> Option<ViewNode> {
    let line = authoritative_line(own.map(|(p, _)| p), lines)?;
    let addr = line
        .addr_text()
        .or_else(|| lines.iter().find_map(|(_, l)| l.addr_text()))
        .map(str::to_string);
    let reporters = |pred: fn(&NodeFlags) -> bool| -> Vec<String> {
        let mut ids: Vec<&str> = lines
            .iter()
            .filter(|(_, l)| {
                let f = l.flags();
                !f.myself && pred(&f)
            })
            .map(|(observer, _)| *observer)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(str::to_string).collect()
    };
    let flags = line.flags();
    Some(ViewNode {
        id: id.as_str().to_string(),
        addr,
        role: if flags.replica {
            Role::Replica
        } else {
            Role::Master
        },
        master_id: line.master_id.map(|m| m.as_str().to_string()),
        config_epoch: line.config_epoch,
        slots: Vec::new(),
        pfail_reporters: reporters(|f| f.pfail),
        fail_reporters: reporters(|f| f.fail),
        reachable: false,
        repl_offset: None,
        migrating: own.map_or(0, |(_, l)| l.migrating.len()),
        importing: own.map_or(0, |(_, l)| l.importing.len()),
        nofailover: flags.nofailover,
    })
}

/// The slot map and whether every observer claims the same one: for every slot the claim with
/// the highest config epoch across observers wins, as the cluster itself resolves conflicts.
/// Observers normally agree (and then mostly share one claims list), and then the one claim
/// list is the map; only disagreeing lists are merged slot by slot.
fn slot_owners(reachable: &[(&str, &NodeData)]) -> (bool, BTreeMap<NodeId, Vec<SlotRange>>) {
    let mut distinct: Vec<(&Arc<[Claim]>, &Topology)> = Vec::new();
    for (_, data) in reachable {
        let claims = data.nodes.claims();
        if !distinct
            .iter()
            .any(|(c, _)| Arc::ptr_eq(c, claims) || **c == *claims)
        {
            distinct.push((claims, &data.nodes));
        }
    }
    let owned = match distinct.as_slice() {
        [(claims, _)] => ranges_of_claims(claims),
        _ => merge_claims(&distinct),
    };
    (distinct.len() <= 1, owned)
}

/// One observer's claims as ranges per owner, adjacent claims joined.
fn ranges_of_claims(claims: &[Claim]) -> BTreeMap<NodeId, Vec<SlotRange>> {
    let mut owned: BTreeMap<NodeId, Vec<SlotRange>> = BTreeMap::new();
    for c in claims {
        let ranges = owned.entry(c.owner).or_default();
        match ranges.last_mut() {
            Some(last) if u32::from(last.end) + 1 == u32::from(c.start) => last.end = c.end,
            _ => ranges.push(SlotRange {
                start: c.start,
                end: c.end,
            }),
        }
    }
    owned
}

/// Disagreeing observers' claims merged slot by slot: the highest config epoch wins.
fn merge_claims(distinct: &[(&Arc<[Claim]>, &Topology)]) -> BTreeMap<NodeId, Vec<SlotRange>> {
    let mut owner: Vec<Option<(NodeId, u64)>> = vec![None; usize::from(SLOT_COUNT)];
    for (claims, topology) in distinct {
        let epochs: FnvMap<NodeId, u64> = topology
            .lines()
            .iter()
            .map(|l| (l.id, l.config_epoch))
            .collect();
        for c in claims.iter() {
            let epoch = epochs.get(&c.owner).copied().unwrap_or(0);
            for slot in c.start..=c.end {
                if let Some(cell) = owner.get_mut(usize::from(slot)) {
                    match cell {
                        Some((_, e)) if *e >= epoch => {}
                        _ => *cell = Some((c.owner, epoch)),
                    }
                }
            }
        }
    }
    let mut slots: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
    for (slot, cell) in (0..SLOT_COUNT).zip(owner.iter()) {
        if let Some((id, _)) = cell {
            slots.entry(*id).or_default().push(slot);
        }
    }
    slots
        .into_iter()
        .map(|(id, s)| (id, slots_to_ranges(s)))
        .collect()
}

/// Slots nobody serves: unowned, or owned by a master flagged fail or polled without an answer.
fn uncovered_slots(view: &ClusterView, observations: &BTreeMap<String, NodeObservation>) -> u32 {
    let covered: u32 = view.nodes.values().map(ViewNode::slot_count).sum();
    let unserved: u32 = view
        .nodes
        .values()
        .filter(|n| n.is_failed() || (!n.reachable && observed(observations, n)))
        .map(ViewNode::slot_count)
        .sum();
    u32::from(SLOT_COUNT).saturating_sub(covered) + unserved
}

/// Slot-owning masters none of whose replicas is healthy (not flagged fail).
fn masters_without_replica(view: &ClusterView) -> usize {
    let backed: BTreeSet<&str> = view
        .nodes
        .values()
        .filter(|r| r.role == Role::Replica && !r.is_failed())
        .filter_map(|r| r.master_id.as_deref())
        .collect();
    view.nodes
        .values()
        .filter(|m| m.role == Role::Master && !m.slots.is_empty())
        .filter(|m| !backed.contains(m.id.as_str()))
        .count()
}

/// Whether the exporter tried to poll this node this round.
fn observed(observations: &BTreeMap<String, NodeObservation>, node: &ViewNode) -> bool {
    node.addr
        .as_deref()
        .is_some_and(|a| observations.contains_key(a))
}

/// Replication lag in bytes of every reachable replica whose master also answered:
/// `(replica addr, master addr, master offset - replica offset)`.
pub fn replication_lags(snapshot: &Snapshot) -> Vec<(String, String, i64)> {
    let view = &snapshot.view;
    view.nodes
        .values()
        .filter(|n| n.role == Role::Replica)
        .filter_map(|r| {
            let master = view.nodes.get(r.master_id.as_deref()?)?;
            let r_off = r.repl_offset?;
            let m_off = master.repl_offset?;
            if !r.reachable || !master.reachable {
                return None;
            }
            Some((
                r.addr.clone()?,
                master.addr.clone()?,
                m_off.saturating_sub(r_off),
            ))
        })
        .collect()
}
