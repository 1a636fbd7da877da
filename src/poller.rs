//! Discovery and polling: decides which addresses to poll (seeds plus every member the cluster
//! reports), polls them all concurrently with one persistent connection each, and turns the
//! replies into a [`Snapshot`].

use crate::client::{
    self, Ask, ClientError, ConnectOptions, ErrorKind, NodeConnection, RawReplies, RawStats,
};
use crate::config::Seed;
use crate::model::{
    ConfigValues, FailureReason, NodeData, NodeObservation, NodeStats, PollFailure, Slowlog,
    Snapshot, ViewCache,
};
use crate::parse::cluster_info::ClusterInfo;
use crate::parse::slot_stats::{SlotMetric, SlotStats};
use crate::parse::{ParseError, cluster_info, info};
use crate::topology::{Fnv, FnvMap, FnvSet, Topology};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::hash::Hasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

/// Most members a CLUSTER NODES reply may list. Redis Cluster is designed for about 1000 nodes;
/// a reply listing more is refused (reason `too_large`) before it is parsed, because every member
/// costs memory in the view and series on /metrics.
pub const MAX_CLUSTER_MEMBERS: usize = 10_000;

/// Longest wait between reconnect attempts to a failing node.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Settings the poller needs.
#[derive(Debug, Clone)]
pub struct PollerSettings {
    /// Seeds from the configuration.
    pub seeds: Vec<Seed>,
    /// How to connect to a node (credentials, TLS, reply size bound).
    pub connect: ConnectOptions,
    /// Per-node connect + reply budget.
    pub node_timeout: Duration,
    /// Poll interval (the unit of reconnect backoff).
    pub poll_interval: Duration,
    /// Password file to re-read when it changes or when `reload` is set (SIGHUP).
    pub password_file: Option<PathBuf>,
    /// Set by the SIGHUP handler: re-read the password file before the next round.
    pub reload: Arc<AtomicBool>,
    /// Up to this many nodes, every node is asked for CLUSTER NODES every round while anything
    /// is unhealthy, and every other round while all is quiet. Above it, each round asks this
    /// many nodes in turn. Always also every node whose CLUSTER INFO changed.
    pub full_topology_max_nodes: usize,
    /// How often each node's slower telemetry (INFO all, CONFIG GET, SLOWLOG) is taken; nodes
    /// are staggered over the interval.
    pub stats_interval: Duration,
    /// With the telemetry, each slot-owning master's top this many slots by each CLUSTER
    /// SLOT-STATS metric (`None`: never asked for).
    pub hot_slots: Option<u16>,
}

/// The CLUSTER INFO fields that move whenever a node's view of the topology or of failures
/// changes: a failover bumps the epochs everywhere, failures change slot states, joins and
/// departures change the known nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopologyStamp {
    state_ok: bool,
    slots: (u64, u64, u64, u64),
    known_nodes: u64,
    size: u64,
    epochs: (u64, u64),
}

impl TopologyStamp {
    fn of(ci: &ClusterInfo) -> Self {
        TopologyStamp {
            state_ok: ci.state_ok,
            slots: (
                ci.slots_assigned,
                ci.slots_ok,
                ci.slots_pfail,
                ci.slots_fail,
            ),
            known_nodes: ci.known_nodes,
            size: ci.size,
            epochs: (ci.current_epoch, ci.my_epoch),
        }
    }
}

struct NodeState {
    host: String,
    port: u16,
    conn: Option<NodeConnection>,
    /// The node's last CLUSTER NODES and the CLUSTER INFO stamp it was taken with.
    nodes_cache: Option<(Arc<Topology>, TopologyStamp)>,
    /// The poll round in which `nodes_cache` was parsed (discovery reads only fresh ones).
    nodes_round: u64,
    /// Malformed CLUSTER NODES lines in the last reply (logged when it changes).
    malformed_lines: usize,
    /// The node's latest slower telemetry.
    stats: Option<Arc<NodeStats>>,
    consecutive_failures: u32,
    /// A poll carrying the telemetry failed as too large or too slow: wait for the node's next
    /// telemetry turn instead of asking again every poll (which would fail every poll).
    stats_deferred: bool,
    /// Reasons of the last telemetry-tier problems (logged when they change).
    soft_reasons: Vec<FailureReason>,
    /// Polls to skip before the next reconnect attempt.
    skip_polls: u32,
    last_failure: Option<PollFailure>,
}

impl NodeState {
    fn new(host: String, port: u16) -> Self {
        NodeState {
            host,
            port,
            conn: None,
            nodes_cache: None,
            nodes_round: 0,
            malformed_lines: 0,
            stats: None,
            stats_deferred: false,
            soft_reasons: Vec::new(),
            consecutive_failures: 0,
            skip_polls: 0,
            last_failure: None,
        }
    }
}

/// A set of node ids hashed with [`Fnv`].
type IdSet = FnvSet<String>;
/// A map keyed by address, hashed with [`Fnv`].
type AddrMap<V> = FnvMap<String, V>;

/// The refresh group of an address (stable across rounds and restarts).
fn group_of(addr: &str, groups: u64) -> u64 {
    // FNV-1a: a fixed, well-spread hash, unlike the randomly seeded std hasher.
    let mut h = Fnv::default();
    h.write(addr.as_bytes());
    h.finish() % groups
}

/// A node's offset in the telemetry interval: the same stable hash as its CLUSTER NODES group,
/// rotated so the two turns are independent (with an even interval they would otherwise
/// coincide for every node, putting the heaviest replies in the same poll).
fn stats_offset(addr: &str, every: u64) -> u64 {
    group_of(addr, u64::MAX).rotate_left(32) % every.max(1)
}

/// Modification time and length of a file, to notice changes cheaply.
fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Splits `host:port` (the host may be a bracketed IPv6 address).
fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// The model's failure for a client error (the `reason` label is the model's vocabulary).
fn failure_of(e: &ClientError) -> PollFailure {
    let reason = match e.kind {
        ErrorKind::Connect => FailureReason::Connect,
        ErrorKind::Timeout => FailureReason::Timeout,
        ErrorKind::Auth => FailureReason::Auth,
        ErrorKind::Protocol => FailureReason::Protocol,
        ErrorKind::NotCluster => FailureReason::NotCluster,
        ErrorKind::TooLarge => FailureReason::TooLarge,
        ErrorKind::Loading => FailureReason::Loading,
        ErrorKind::ServerError => FailureReason::ServerError,
        ErrorKind::Io => FailureReason::Io,
        ErrorKind::Tls => FailureReason::Tls,
        ErrorKind::NoPerm => FailureReason::NoPerm,
    };
    PollFailure {
        reason,
        message: e.message.clone(),
        attempted: true,
    }
}

fn protocol(what: &str, e: ParseError) -> PollFailure {
    PollFailure {
        reason: FailureReason::Protocol,
        message: format!("{what}: {e}"),
        attempted: true,
    }
}

/// Parses the replies of one poll (CLUSTER INFO may come already parsed, by the check that
/// decided whether to ask for CLUSTER NODES); a node whose CLUSTER NODES was not asked for this round gets
/// its cached one, and likewise its telemetry. Any parse failure of the fast path is a protocol
/// failure of the node; a failure in the telemetry tier costs only that part.
fn parse_replies(
    raw: &RawReplies,
    parsed_info: Option<Result<ClusterInfo, ParseError>>,
    state: &mut NodeState,
    time: SystemTime,
    round: u64,
) -> Result<NodeData, PollFailure> {
    let ci = parsed_info
        .unwrap_or_else(|| cluster_info::parse_cluster_info(&raw.cluster_info))
        .map_err(|e| protocol("CLUSTER INFO", e))?;
    let stamp = TopologyStamp::of(&ci);
    let nodes = match (&raw.cluster_nodes, &state.nodes_cache) {
        (Some(text), _) => {
            let lines = text.bytes().filter(|&b| b == b'\n').count();
            if lines > MAX_CLUSTER_MEMBERS {
                return Err(PollFailure {
                    reason: FailureReason::TooLarge,
                    message: format!(
                        "CLUSTER NODES lists {lines} members, more than {MAX_CLUSTER_MEMBERS}"
                    ),
                    attempted: true,
                });
            }
            let cached = state.nodes_cache.as_ref().map(|(c, _)| &**c);
            let fresh =
                Topology::parse_after(text, cached).map_err(|e| protocol("CLUSTER NODES", e))?;
            // A reply that says what the cached one said keeps the cached `Arc`: the view
            // derived from it is then reused (see `ViewCache`).
            let parsed = match &state.nodes_cache {
                Some((cached, _)) if **cached == fresh => Arc::clone(cached),
                _ => Arc::new(fresh),
            };
            if parsed.malformed_lines != state.malformed_lines {
                state.malformed_lines = parsed.malformed_lines;
                if parsed.malformed_lines > 0 {
                    tracing::warn!(
                        host = %state.host,
                        port = state.port,
                        lines = parsed.malformed_lines,
                        "CLUSTER NODES has lines that could not be understood; they are ignored"
                    );
                }
            }
            state.nodes_cache = Some((Arc::clone(&parsed), stamp));
            state.nodes_round = round;
            parsed
        }
        (None, Some((cached, _))) => Arc::clone(cached),
        (None, None) => {
            return Err(protocol("CLUSTER NODES", ParseError::Empty));
        }
    };
    let info = info::parse_info(&raw.info).map_err(|e| protocol("INFO", e))?;
    let mut soft_failures = Vec::new();
    if let Some(stats) = &raw.stats {
        let (parsed, failures) = parse_stats(stats, time);
        soft_failures = failures;
        state.stats = Some(Arc::new(parsed));
    }
    Ok(NodeData {
        cluster_info: ci,
        nodes,
        info,
        stats: state.stats.clone(),
        soft_failures,
    })
}

/// Turns the telemetry tier's replies into [`NodeStats`]. A part that failed keeps nothing of
/// the previous round (a field the server no longer gives is absent, not stale) and is listed
/// among the soft failures, as are malformed lines.
fn parse_stats(raw: &RawStats, time: SystemTime) -> (NodeStats, Vec<PollFailure>) {
    let mut failures = Vec::new();
    let mut soft = |what: &str, f: &PollFailure| {
        failures.push(PollFailure {
            reason: f.reason,
            message: format!("{what}: {}", f.message),
            attempted: true,
        });
    };
    let info = match raw.info.as_ref().map(|t| info::parse_info(t)) {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            soft("INFO all", &protocol("INFO all", e));
            crate::parse::info::Info::default()
        }
        Err(f) => {
            soft("INFO all", &failure_of(f));
            crate::parse::info::Info::default()
        }
    };
    if info.malformed_lines > 0 {
        soft(
            "INFO all",
            &PollFailure {
                reason: FailureReason::Protocol,
                message: format!("{} malformed lines skipped", info.malformed_lines),
                attempted: true,
            },
        );
    }
    let config = match &raw.config {
        Ok(pairs) => {
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(k))
                    .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite())
            };
            ConfigValues {
                maxmemory: get("maxmemory"),
                maxclients: get("maxclients"),
                io_threads: get("io-threads"),
            }
        }
        Err(f) => {
            soft("CONFIG GET", &failure_of(f));
            ConfigValues::default()
        }
    };
    let latency_spikes = match &raw.latency_latest {
        Ok(events) => events
            .iter()
            .map(|(e, at, ms)| (e.clone(), *at as f64, *ms as f64))
            .collect(),
        Err(f) => {
            soft("LATENCY LATEST", &failure_of(f));
            Vec::new()
        }
    };
    if let Err(f) = &raw.slowlog_len {
        soft("SLOWLOG LEN", &failure_of(f));
    }
    if let Err(f) = &raw.slowlog_last {
        soft("SLOWLOG GET", &failure_of(f));
    }
    let hot_slots = hot_slots(&raw.slot_stats, &mut soft);
    let slowlog = match (&raw.slowlog_len, &raw.slowlog_last) {
        (Ok(len), Ok(last)) => Some(Slowlog {
            length: *len as f64,
            last: last.map(|(id, us)| (id as f64, us as f64)),
        }),
        _ => None,
    };
    (
        NodeStats {
            time,
            info,
            config,
            slowlog,
            latency_spikes,
            hot_slots,
        },
        failures,
    )
}

/// Each CLUSTER SLOT-STATS reply as `(slot, value)` in reply order, slots at 0 left out; a
/// failed reply, or one with malformed entries, is a soft failure.
fn hot_slots(
    replies: &[(SlotMetric, Result<SlotStats, ClientError>)],
    soft: &mut impl FnMut(&str, &PollFailure),
) -> BTreeMap<SlotMetric, Vec<(u16, u64)>> {
    let mut out = BTreeMap::new();
    for (metric, reply) in replies {
        match reply {
            Ok(stats) => {
                if stats.malformed > 0 {
                    let f = PollFailure {
                        reason: FailureReason::Protocol,
                        message: format!("{} malformed entries skipped", stats.malformed),
                        attempted: true,
                    };
                    soft("CLUSTER SLOT-STATS", &f);
                }
                let top = stats
                    .slots
                    .iter()
                    .filter_map(|s| Some((s.slot, s.get(*metric)?)))
                    .filter(|(_, v)| *v > 0)
                    .collect();
                out.insert(*metric, top);
            }
            Err(f) => soft("CLUSTER SLOT-STATS", &failure_of(f)),
        }
    }
    out
}

/// The poller: owns one connection per node and the discovery state.
pub struct Poller {
    settings: PollerSettings,
    nodes: AddrMap<NodeState>,
    /// Node id each seed address turned out to be.
    seed_ids: HashMap<String, String>,
    /// Members (by address) of the last view that had at least one reachable node.
    known: BTreeSet<String>,
    known_ids: IdSet,
    /// The known members changed in the last round (or none is known yet): discovery reads
    /// every cached CLUSTER NODES, not only those parsed in the round.
    rescan: bool,
    /// Modification time and length of the password file when last read.
    password_stamp: Option<(SystemTime, u64)>,
    /// Poll rounds so far (drives the CLUSTER NODES refresh turns and the telemetry turns).
    round: u64,
    /// The last round saw a node not answering or flagged by an observer: small clusters then
    /// take CLUSTER NODES from every node.
    unhealthy: bool,
    /// The topology part of the last derived view, reused while no node's topology changed.
    view_cache: ViewCache,
}

impl Poller {
    /// A poller that has not polled yet.
    pub fn new(settings: PollerSettings) -> Self {
        Poller {
            settings,
            nodes: AddrMap::default(),
            seed_ids: HashMap::new(),
            known: BTreeSet::new(),
            known_ids: IdSet::default(),
            rescan: true,
            password_stamp: None,
            round: 0,
            unhealthy: true,
            view_cache: ViewCache::default(),
        }
        .with_password_stamp()
    }

    /// Addresses to poll this round: every known member, plus each seed that is not (known to
    /// be) one of them.
    pub fn targets(&self) -> BTreeSet<String> {
        let mut targets = self.known.clone();
        for seed in &self.settings.seeds {
            let addr = seed.addr();
            let aliased = self
                .seed_ids
                .get(&addr)
                .is_some_and(|id| self.known_ids.contains(id));
            if !aliased {
                targets.insert(addr);
            }
        }
        targets
    }

    fn with_password_stamp(mut self) -> Self {
        self.password_stamp = self.settings.password_file.as_deref().and_then(file_stamp);
        self
    }

    /// Re-reads the password file when it changed or a reload was asked for; a new password
    /// drops every connection so the next round authenticates with it.
    fn refresh_password(&mut self) {
        let Some(path) = self.settings.password_file.clone() else {
            return;
        };
        let asked = self.settings.reload.swap(false, Ordering::Relaxed);
        let stamp = file_stamp(&path);
        if !asked && stamp == self.password_stamp {
            return;
        }
        self.password_stamp = stamp;
        match crate::config::read_password_file(&path) {
            Ok(password) => {
                let password = Some(password).filter(|p| !p.is_empty());
                if password != self.settings.connect.credentials.password {
                    self.settings.connect.credentials.password = password;
                    self.nodes.clear();
                    tracing::info!(path = %path.display(), "password file changed; reconnecting every node");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the password file; keeping the current password")
            }
        }
    }

    /// Polls every target once, concurrently, and returns the snapshot.
    pub async fn poll_once(&mut self) -> Snapshot {
        self.refresh_password();
        let started = Instant::now();
        let time = SystemTime::now();
        self.round = self.round.wrapping_add(1);
        let targets = self.targets();
        self.nodes.retain(|addr, _| targets.contains(addr));
        let mut observations = self.poll_addrs(&targets).await;
        // Members this round revealed that were not polled (the first round after start, a node
        // that just joined) are polled in the same round, so every snapshot covers the cluster.
        let extra = self.unpolled_members(&targets);
        if !extra.is_empty() {
            observations.extend(self.poll_addrs(&extra).await);
        }
        let snapshot =
            Snapshot::new_cached(time, started.elapsed(), observations, &mut self.view_cache);
        self.learn(&snapshot);
        snapshot
    }

    /// Members named in this round's CLUSTER NODES replies that are neither known nor polled.
    /// Only the replies parsed this round are read: a cached one was read in the round it was
    /// parsed, and what it names is known since (every member of every view is), unless the
    /// known members changed; then every cached reply of a node that answered is read again.
    /// At 1000 nodes this reads the ~64 fresh replies of a round (64 000 lines), not 10^6.
    fn unpolled_members(&self, targets: &BTreeSet<String>) -> BTreeSet<String> {
        let all = self.rescan;
        self.nodes
            .values()
            .filter(|s| s.last_failure.is_none() && (all || s.nodes_round == self.round))
            .filter_map(|s| s.nodes_cache.as_ref())
            .flat_map(|(nodes, _)| nodes.lines().iter())
            .filter(|l| !self.known_ids.contains(l.id.as_str()))
            .filter_map(|l| l.addr_text().map(str::to_string))
            .filter(|a| !targets.contains(a))
            .collect()
    }

    /// Addresses known from a previous run (the persisted topology), polled until the cluster
    /// answers: a restarted exporter whose seeds are down still finds the cluster.
    pub fn with_known(mut self, addrs: impl IntoIterator<Item = String>) -> Self {
        self.known.extend(addrs);
        self
    }

    async fn poll_addrs(&mut self, addrs: &BTreeSet<String>) -> Vec<NodeObservation> {
        for addr in addrs {
            if !self.nodes.contains_key(addr)
                && let Some((host, port)) = split_addr(addr)
            {
                self.nodes.insert(addr.clone(), NodeState::new(host, port));
            }
        }
        let settings = &self.settings;
        // CLUSTER NODES costs Redis a walk over all 16384 slots (about as much as everything
        // else in the poll together), so it is not asked of every node every round. Small
        // clusters: from every node while anything is unhealthy, else from half of them in turn.
        // Large ones: from one group of nodes per round in turn (each node every `groups`
        // rounds). Always from any node whose CLUSTER INFO shows a change (see TopologyStamp),
        // so a failover or a master's failure is seen in the round it happens.
        let total = self.nodes.len().max(addrs.len());
        let batch = settings.full_topology_max_nodes.max(1);
        let groups = total.div_ceil(batch).max(2) as u64;
        let everyone = total <= batch && self.unhealthy;
        let turn = self.round % groups;
        let stats_every = (settings.stats_interval.as_millis()
            / settings.poll_interval.as_millis().max(1))
        .max(1) as u64;
        let time = SystemTime::now();
        let round = self.round;
        let plans: Vec<(bool, bool)> = self
            .nodes
            .iter_mut()
            .filter(|(addr, _)| addrs.contains(*addr))
            .map(|(addr, state)| {
                let with_nodes = everyone || group_of(addr, groups) == turn;
                // Each node's telemetry turn comes once per interval, at its own offset, so no
                // round carries all of it.
                let offset = stats_offset(addr, stats_every);
                let turn_due = (round + offset).is_multiple_of(stats_every);
                let with_stats = turn_due || (state.stats.is_none() && !state.stats_deferred);
                if turn_due {
                    state.stats_deferred = false;
                }
                (with_nodes, with_stats)
            })
            .collect();
        let started = Instant::now();
        let futures = self
            .nodes
            .iter_mut()
            .filter(|(addr, _)| addrs.contains(*addr))
            .zip(&plans)
            .map(|((addr, state), &plan)| poll_node(addr, state, settings, plan, time, round));
        let done = until_deadline(futures, settings.node_timeout).await;
        // The map is unchanged since the plans were made: the same nodes in the same order.
        self.nodes
            .iter_mut()
            .filter(|(addr, _)| addrs.contains(*addr))
            .zip(plans)
            .zip(done)
            .map(|(((addr, state), (_, with_stats)), observation)| {
                observation.unwrap_or_else(|| {
                    let f = failure_of(&client::timed_out(&mut state.conn, settings.node_timeout));
                    settle(addr, state, settings, with_stats, Err(f), started)
                })
            })
            .collect()
    }

    fn learn(&mut self, snapshot: &Snapshot) {
        // Sets and maps are rebuilt only when what they hold changed: no allocation per node and
        // round in a steady cluster.
        for (addr, obs) in &snapshot.observations {
            if let Some(id) = obs.node_id()
                && self.seed_ids.get(addr).map(String::as_str) != Some(id)
            {
                self.seed_ids.insert(addr.clone(), id.to_string());
            }
        }
        self.unhealthy = snapshot.observations.values().any(|o| o.result.is_err())
            || snapshot
                .view
                .nodes
                .values()
                .any(|n| !n.pfail_reporters.is_empty() || !n.fail_reporters.is_empty());
        if snapshot.view.nodes.values().any(|n| n.reachable) {
            let view = &snapshot.view;
            let addrs: BTreeSet<&str> = view
                .nodes
                .values()
                .filter_map(|n| n.addr.as_deref())
                .collect();
            if !self
                .known
                .iter()
                .map(String::as_str)
                .eq(addrs.iter().copied())
            {
                self.known = view.addrs();
            }
            let same_ids = self.known_ids.len() == view.nodes.len()
                && view.nodes.keys().all(|id| self.known_ids.contains(id));
            self.rescan = !same_ids;
            if !same_ids {
                self.known_ids = view.nodes.keys().cloned().collect();
            }
        }
        // A node waiting out its reconnect backoff after it went away (refused, broken,
        // silent, loading) that the cluster reports back (a restarted process) is polled next
        // round: the seconds after a restart are when a replica is promoted by hand, and a
        // promotion is classified from its samples before it. A node that answers with an
        // error (credentials, permissions) keeps its backoff.
        // (The votes read every line of every view: only counted when a node is waiting.)
        if !self.nodes.values().any(waiting_after_going_away) {
            return;
        }
        let back = back_per_cluster(snapshot);
        for (addr, state) in &mut self.nodes {
            if waiting_after_going_away(state) && back.contains(addr) {
                tracing::debug!(addr, "the cluster reports the node back; reconnecting now");
                state.skip_polls = 0;
            }
        }
    }
}

/// A node in reconnect backoff after it went away (refused, broken, silent, loading).
fn waiting_after_going_away(state: &NodeState) -> bool {
    state.skip_polls > 0
        && state.last_failure.as_ref().is_some_and(|f| {
            matches!(
                f.reason,
                FailureReason::Connect
                    | FailureReason::Io
                    | FailureReason::Timeout
                    | FailureReason::Loading
            )
        })
}

/// Addresses of the nodes most of the observers listing them show with a connected cluster
/// link and no `fail?`/`fail` flag (their own line not counted).
fn back_per_cluster(snapshot: &Snapshot) -> BTreeSet<String> {
    let mut votes: FnvMap<Cow<'static, str>, (usize, usize)> = FnvMap::default();
    let mut vote = |addr: Cow<'static, str>, up: bool| {
        let v = votes.entry(addr).or_default();
        v.1 += 1;
        v.0 += usize::from(up);
    };
    for data in snapshot
        .observations
        .values()
        .filter_map(NodeObservation::data)
    {
        for line in data.nodes.lines().iter().filter(|l| !l.flags().myself) {
            if let Some(addr) = line.addr_text() {
                let f = line.flags();
                vote(Cow::Borrowed(addr), line.connected() && !f.pfail && !f.fail);
            }
        }
        for line in data.nodes.handshakes() {
            if let Some(addr) = line.addr.as_ref() {
                let up = line.connected && !line.flags.pfail && !line.flags.fail;
                vote(Cow::Owned(addr.to_string()), up);
            }
        }
    }
    votes
        .into_iter()
        .filter(|(_, (up, all))| up * 2 > *all)
        .map(|(addr, _)| addr.into_owned())
        .collect()
}

/// Whether the node's last CLUSTER NODES shows it as a master with slots, or there is none yet:
/// only those are asked for their hot slots (a replica has none of its own).
fn may_own_slots(state: &NodeState) -> bool {
    match state.nodes_cache.as_ref().map(|(n, _)| n.myself()) {
        None | Some(None) => true,
        Some(Some(me)) => me.flags.master && !me.slots.is_empty(),
    }
}

/// Runs `futures` concurrently until every one is done or `timeout` has passed, under one timer
/// for all of them: a timer per node would cost a wakeup of the poller's own thread per node and
/// round (each new timer earlier than any pending one unparks the runtime's driver). Returns each
/// future's output in order, `None` for one the deadline cut off (dropped unfinished).
async fn until_deadline<F: Future>(
    futures: impl IntoIterator<Item = F>,
    timeout: Duration,
) -> Vec<Option<F::Output>> {
    let mut running: FuturesUnordered<_> = futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| async move { (i, f.await) })
        .collect();
    let mut done: Vec<Option<F::Output>> = std::iter::repeat_with(|| None)
        .take(running.len())
        .collect();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    std::future::poll_fn(|cx| {
        while let Poll::Ready(Some((i, output))) = running.poll_next_unpin(cx) {
            if let Some(slot) = done.get_mut(i) {
                *slot = Some(output);
            }
        }
        if running.is_empty() {
            return Poll::Ready(());
        }
        deadline.as_mut().poll(cx)
    })
    .await;
    done
}

async fn poll_node(
    addr: &str,
    state: &mut NodeState,
    settings: &PollerSettings,
    (with_nodes, with_stats): (bool, bool),
    time: SystemTime,
    round: u64,
) -> NodeObservation {
    let started = Instant::now();
    if state.skip_polls > 0
        && let Some(last) = &state.last_failure
    {
        state.skip_polls -= 1;
        return NodeObservation {
            addr: addr.to_string(),
            result: Err(PollFailure {
                reason: last.reason,
                message: format!("{} (waiting to reconnect)", last.message),
                attempted: false,
            }),
            duration: Duration::ZERO,
        };
    }
    let cached_stamp = state.nodes_cache.as_ref().map(|(_, s)| s.clone());
    let with_nodes = with_nodes || cached_stamp.is_none();
    let hot_slots = settings.hot_slots.filter(|_| may_own_slots(state));
    let mut parsed_info = None;
    let result = client::poll_node(
        &mut state.conn,
        &state.host,
        state.port,
        &settings.connect,
        Ask {
            nodes: with_nodes,
            stats: with_stats,
            hot_slots,
        },
        |cluster_info_text| {
            // Ask for CLUSTER NODES when anything topology-related moved (or is unreadable).
            // The parse is kept: CLUSTER INFO is parsed once per poll.
            let ci = cluster_info::parse_cluster_info(cluster_info_text);
            let needed = ci
                .as_ref()
                .map_or(true, |ci| Some(TopologyStamp::of(ci)) != cached_stamp);
            parsed_info = Some(ci);
            needed
        },
    )
    .await
    .map_err(|e| failure_of(&e))
    .and_then(|raw| parse_replies(&raw, parsed_info.take(), state, time, round));
    settle(addr, state, settings, with_stats, result, started)
}

/// The bookkeeping after a node's poll, whether it answered, failed or was cut off by the round's
/// deadline: telemetry problems logged when they change, reconnect backoff after a failure.
fn settle(
    addr: &str,
    state: &mut NodeState,
    settings: &PollerSettings,
    with_stats: bool,
    result: Result<NodeData, PollFailure>,
    started: Instant,
) -> NodeObservation {
    match &result {
        Ok(data) => {
            if with_stats {
                let reasons: Vec<FailureReason> =
                    data.soft_failures.iter().map(|f| f.reason).collect();
                for f in &data.soft_failures {
                    if state.soft_reasons.contains(&f.reason) {
                        tracing::debug!(addr, reason = f.reason.as_str(), error = %f.message, "part of the telemetry failed again");
                    } else {
                        tracing::warn!(addr, reason = f.reason.as_str(), error = %f.message, "part of the telemetry failed; the node stays up");
                    }
                }
                state.soft_reasons = reasons;
            }
            if let Some(prev) = state.last_failure.take() {
                tracing::info!(addr, after = %prev.reason.as_str(), "node answers again");
            }
            state.consecutive_failures = 0;
            state.skip_polls = 0;
        }
        Err(f) => {
            // What the node said before it failed may be another process's by the time it
            // answers again (a restart at the same address): take the telemetry afresh then.
            state.stats = None;
            if with_stats && matches!(f.reason, FailureReason::TooLarge | FailureReason::Timeout) {
                state.stats_deferred = true;
            }
            let changed = state.last_failure.as_ref().map(|p| p.reason) != Some(f.reason);
            if changed {
                tracing::warn!(addr, reason = f.reason.as_str(), error = %f.message, "node poll failed");
            } else {
                tracing::debug!(addr, reason = f.reason.as_str(), error = %f.message, "node poll failed again");
            }
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            // Reconnect backoff: attempts 1, 2, 4, ... polls apart, at most MAX_BACKOFF apart.
            let max_skip = (MAX_BACKOFF.as_millis() / settings.poll_interval.as_millis().max(1))
                .saturating_sub(1);
            let skip = (1u64 << state.consecutive_failures.saturating_sub(1).min(16)) - 1;
            state.skip_polls =
                u32::try_from(skip.min(u64::try_from(max_skip).unwrap_or(0))).unwrap_or(0);
            state.last_failure = Some(f.clone());
        }
    }
    NodeObservation {
        addr: addr.to_string(),
        result,
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node future runs under the round's one deadline: those done by then keep their
    /// output, in order, and one still waiting is cut off there (not after its own time).
    #[tokio::test]
    async fn a_round_keeps_what_finished_by_its_deadline_and_cuts_off_the_rest() {
        let wait = |ms: u64, v: u32| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            v
        };
        let started = Instant::now();
        let done = until_deadline(
            [wait(0, 1), wait(3_600_000, 2), wait(20, 3)],
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(done, [Some(1), None, Some(3)]);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        let all_done = until_deadline([wait(10, 4), wait(0, 5)], Duration::from_secs(3600));
        assert_eq!(
            all_done.await,
            [Some(4), Some(5)],
            "no wait for the deadline"
        );
        let none: Vec<Option<u32>> =
            until_deadline(Vec::<std::future::Ready<u32>>::new(), Duration::ZERO).await;
        assert!(none.is_empty());
    }
}
