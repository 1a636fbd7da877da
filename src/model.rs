//! The snapshot model: what one poll round saw on every node, plus the cluster-wide view derived
//! from all those observations (pure functions, no IO).

use crate::parse::cluster_info::ClusterInfo;
use crate::parse::cluster_nodes::{ClusterNodes, NodeLine, SLOT_COUNT, SlotRange, slots_to_ranges};
use crate::parse::info::Info;
use crate::parse::slot_stats::SlotMetric;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// CLUSTER NODES (shared: a node's last reply is reused until its CLUSTER INFO shows a
    /// change or its refresh turn comes).
    pub nodes: Arc<ClusterNodes>,
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
        let observations: BTreeMap<String, NodeObservation> = observations
            .into_iter()
            .map(|o| (o.addr.clone(), o))
            .collect();
        let view = derive_view(&observations);
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

/// Slot ranges one observer assigns, as `(first, last, owner id)`, sorted.
type Claims<'a> = Vec<(u16, u16, &'a str)>;

/// The ordered list of `(first, last, owner)` claims one observer makes.
fn slot_claims(nodes: &ClusterNodes) -> Claims<'_> {
    let mut claims: Claims<'_> = nodes
        .nodes
        .iter()
        .filter(|n| n.flags.master && !n.flags.handshake)
        .flat_map(|n| n.slots.iter().map(move |r| (r.start, r.end, n.id.as_str())))
        .collect();
    claims.sort_unstable();
    claims
}

fn addr_of(line: &NodeLine) -> Option<String> {
    line.addr.as_ref().map(ToString::to_string)
}

/// The line that describes a node: the newest one (highest config epoch) any observer has, its
/// own `myself` line among equals, then the one most observers agree on. A node's role, slots
/// and epoch travel together in its gossip, so observers that have heard of a promotion show
/// the node as a master at the new epoch while the rest still show the old replica line; and
/// the node's own reply may be the older one when it was read (or cached) before the promotion
/// and the others after. Taking role and epoch from an older line than the slot claim would pair
/// the old role with the new slots.
fn authoritative_line<'a>(
    own: Option<&'a NodeLine>,
    lines: &[(&str, &'a NodeLine)],
) -> Option<&'a NodeLine> {
    let mut groups: HashMap<(bool, Option<&str>), (u64, usize, &NodeLine)> = HashMap::new();
    for (_, l) in lines {
        let g = groups
            .entry((l.flags.replica, l.master_id.as_deref()))
            .or_insert((0, 0, l));
        g.1 += 1;
        if l.config_epoch >= g.0 {
            g.0 = l.config_epoch;
            g.2 = l;
        }
    }
    let newest = groups
        .into_values()
        .max_by_key(|(epoch, n, _)| (*epoch, *n))
        .map(|(_, _, l)| l);
    match (own, newest) {
        (Some(o), Some(n)) if n.config_epoch > o.config_epoch => Some(n),
        (Some(o), _) => Some(o),
        (None, n) => n,
    }
}

/// Derives the cluster view from one round's observations.
pub fn derive_view(observations: &BTreeMap<String, NodeObservation>) -> ClusterView {
    let reachable: Vec<(&str, &NodeData)> = observations
        .values()
        .filter_map(|o| Some((o.node_id()?, o.data()?)))
        .collect();
    let (own, seen) = lines_by_node(&reachable);
    let mut view = ClusterView {
        consistent: true,
        ..ClusterView::default()
    };
    for (id, lines) in &seen {
        let own_line = own.get(id).copied();
        if let Some(node) = view_node(id, own_line, lines, observations) {
            view.nodes.insert((*id).to_string(), node);
        }
    }
    let (consistent, owned) = slot_owners(&reachable);
    view.consistent = consistent;
    assign_slots(&mut view, owned, observations);
    view.masters_without_replica = masters_without_replica(&view);
    view
}

/// Lines of one node id: the node's own (`myself`) line, and every observer's line about it.
type LinesByNode<'a> = (
    HashMap<&'a str, &'a NodeLine>,
    HashMap<&'a str, Vec<(&'a str, &'a NodeLine)>>,
);

/// Every reachable observer's CLUSTER NODES lines grouped by the node they are about
/// (handshake entries left out).
fn lines_by_node<'a>(reachable: &[(&'a str, &'a NodeData)]) -> LinesByNode<'a> {
    let mut own: HashMap<&str, &NodeLine> = HashMap::new();
    let mut seen: HashMap<&str, Vec<(&str, &NodeLine)>> = HashMap::new();
    for (observer, data) in reachable {
        for line in &data.nodes.nodes {
            if line.flags.handshake {
                continue;
            }
            if line.flags.myself {
                own.insert(line.id.as_str(), line);
            }
            seen.entry(line.id.as_str())
                .or_default()
                .push((*observer, line));
        }
    }
    (own, seen)
}

/// One member of the derived view from its lines (slots are assigned later, cluster-wide).
fn view_node(
    id: &str,
    own_line: Option<&NodeLine>,
    lines: &[(&str, &NodeLine)],
    observations: &BTreeMap<String, NodeObservation>,
) -> Option<ViewNode> {
    let line = authoritative_line(own_line, lines)?;
    let addr = addr_of(line).or_else(|| lines.iter().find_map(|(_, l)| addr_of(l)));
    let reporters = |pred: fn(&NodeLine) -> bool| -> Vec<String> {
        let mut ids: Vec<String> = lines
            .iter()
            .filter(|(_, l)| !l.flags.myself && pred(l))
            .map(|(observer, _)| (*observer).to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let obs = addr.as_deref().and_then(|a| observations.get(a));
    let data = obs.and_then(NodeObservation::data);
    Some(ViewNode {
        id: id.to_string(),
        addr,
        role: if line.flags.replica {
            Role::Replica
        } else {
            Role::Master
        },
        master_id: line.master_id.clone(),
        config_epoch: line.config_epoch,
        slots: Vec::new(),
        pfail_reporters: reporters(|l| l.flags.pfail),
        fail_reporters: reporters(|l| l.flags.fail),
        reachable: data.is_some() && obs.and_then(NodeObservation::node_id) == Some(id),
        repl_offset: data.and_then(|d| d.info.replication_offset()),
        migrating: own_line.map_or(0, |l| l.migrating.len()),
        importing: own_line.map_or(0, |l| l.importing.len()),
        nofailover: line.flags.nofailover,
    })
}

/// The slot map and whether every observer claims the same one: for every slot the claim with
/// the highest config epoch across observers wins, as the cluster itself resolves conflicts.
/// Observers normally agree, and then the one claim list is the map; only disagreeing lists
/// are merged slot by slot.
fn slot_owners<'a>(
    reachable: &[(&'a str, &'a NodeData)],
) -> (bool, BTreeMap<&'a str, Vec<SlotRange>>) {
    let mut distinct: Vec<(Claims<'a>, &'a NodeData)> = Vec::new();
    for (_, data) in reachable {
        let claims = slot_claims(&data.nodes);
        if !distinct.iter().any(|(c, _)| *c == claims) {
            distinct.push((claims, data));
        }
    }
    let owned = match distinct.as_slice() {
        [(claims, _)] => ranges_of_claims(claims),
        _ => merge_claims(&distinct),
    };
    (distinct.len() <= 1, owned)
}

/// One observer's claims as ranges per owner, adjacent claims joined.
fn ranges_of_claims<'a>(claims: &Claims<'a>) -> BTreeMap<&'a str, Vec<SlotRange>> {
    let mut owned: BTreeMap<&str, Vec<SlotRange>> = BTreeMap::new();
    for &(start, end, id) in claims {
        let ranges = owned.entry(id).or_default();
        match ranges.last_mut() {
            Some(last) if u32::from(last.end) + 1 == u32::from(start) => last.end = end,
            _ => ranges.push(SlotRange { start, end }),
        }
    }
    owned
}

/// Disagreeing observers' claims merged slot by slot: the highest config epoch wins.
fn merge_claims<'a>(distinct: &[(Claims<'a>, &'a NodeData)]) -> BTreeMap<&'a str, Vec<SlotRange>> {
    let mut owner: Vec<Option<(&str, u64)>> = vec![None; usize::from(SLOT_COUNT)];
    for (claims, data) in distinct {
        let epochs: HashMap<&str, u64> = data
            .nodes
            .nodes
            .iter()
            .map(|l| (l.id.as_str(), l.config_epoch))
            .collect();
        for &(start, end, id) in claims {
            let epoch = epochs.get(id).copied().unwrap_or(0);
            for slot in start..=end {
                if let Some(cell) = owner.get_mut(usize::from(slot)) {
                    match cell {
                        Some((_, e)) if *e >= epoch => {}
                        _ => *cell = Some((id, epoch)),
                    }
                }
            }
        }
    }
    let mut slots: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for (slot, cell) in (0..SLOT_COUNT).zip(owner.iter()) {
        if let Some((id, _)) = cell {
            slots.entry(id).or_default().push(slot);
        }
    }
    slots
        .into_iter()
        .map(|(id, s)| (id, slots_to_ranges(s)))
        .collect()
}

/// Gives each master its ranges and counts the slots nobody serves: unowned, or owned by a
/// master flagged fail or polled without an answer.
fn assign_slots(
    view: &mut ClusterView,
    owned: BTreeMap<&str, Vec<SlotRange>>,
    observations: &BTreeMap<String, NodeObservation>,
) {
    let covered: u32 = owned.values().flatten().map(SlotRange::len).sum();
    view.uncovered_slots = u32::from(SLOT_COUNT).saturating_sub(covered);
    for (id, ranges) in owned {
        let count: u32 = ranges.iter().map(SlotRange::len).sum();
        let served = view
            .nodes
            .get(id)
            .is_some_and(|n| !n.is_failed() && (n.reachable || !observed(observations, n)));
        if let Some(node) = view.nodes.get_mut(id) {
            node.slots = ranges;
        }
        if !served {
            view.uncovered_slots += count;
        }
    }
}

/// Slot-owning masters none of whose replicas is healthy (not flagged fail).
fn masters_without_replica(view: &ClusterView) -> usize {
    view.nodes
        .values()
        .filter(|m| m.role == Role::Master && !m.slots.is_empty())
        .filter(|m| {
            !view.nodes.values().any(|r| {
                r.role == Role::Replica && r.master_id.as_deref() == Some(&m.id) && !r.is_failed()
            })
        })
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
