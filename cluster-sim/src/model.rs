//! The simulated cluster's state and every reply rendered from it. Pure: the current time is an
//! argument everywhere, so views, flags and offsets are deterministic in tests.
//!
//! The topology (roles, slots, config epochs) is kept as a short list of versions; each node
//! answers from the newest version it has "heard of" (a version reaches node `o` after
//! `--propagation × frac(o)`, and at once for the node that caused it), so views briefly disagree
//! after a promotion as they do in a real cluster. Failure flags are derived from the time a node
//! went down, with the same per-observer lag. Replies are rendered lazily per request:
//! `CLUSTER NODES` is written straight into the output buffer from precomputed per-node prefixes,
//! so N = 1000 nodes polled once a second fits in a fraction of one core.

use super::resp::push_u64;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Hash slots in a cluster.
pub const SLOTS: u32 = 16384;

/// Settings fixed when the simulator starts.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Address every node binds and announces (`127.0.0.1`).
    pub host: String,
    /// Client port of each node; the node count is its length. The bus port is `port + 10000`.
    pub ports: Vec<u16>,
    /// Replicas per master (the first `N / (R + 1)` nodes are masters).
    pub replicas_per_master: usize,
    /// Time after a node goes down until other nodes flag it `fail?`.
    pub pfail_after: Duration,
    /// Time after a node goes down until other nodes flag it `fail`.
    pub fail_after: Duration,
    /// Longest extra delay before a node sees a change (spread over nodes deterministically).
    pub propagation: Duration,
    /// Replication bytes per second each master's offset grows by.
    pub write_rate: u64,
    /// Seed of node ids and other random-looking values.
    pub seed: u64,
}

/// How a failed node stops answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownMode {
    /// Like `kill -9`: connections are closed and new ones refused.
    Close,
    /// Like `SIGSTOP`: connections are accepted by the kernel but nothing is read or answered.
    Stall,
}

impl DownMode {
    /// `close` / `stall`.
    pub fn as_str(self) -> &'static str {
        match self {
            DownMode::Close => "close",
            DownMode::Stall => "stall",
        }
    }
}

/// What the network side of a node should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Accept and answer.
    Up,
    /// Keep the listener and connections, answer nothing.
    Stalled,
    /// Close the listener and every connection.
    Closed,
}

/// How a promotion looks from outside (which cluster-bus counters of the promoted replica rise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An election after the master failed: `auth-req` sent.
    Auto,
    /// `CLUSTER FAILOVER`: `mfstart` and `auth-req` sent; a live old master becomes a replica.
    Manual,
    /// `CLUSTER FAILOVER FORCE`: `auth-req` sent.
    Force,
    /// `CLUSTER FAILOVER TAKEOVER`: no election messages.
    Takeover,
}

impl Trigger {
    /// Parses `auto|manual|force|takeover`.
    pub fn parse(s: &str) -> Option<Trigger> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "automatic" => Some(Trigger::Auto),
            "manual" => Some(Trigger::Manual),
            "force" => Some(Trigger::Force),
            "takeover" => Some(Trigger::Takeover),
            _ => None,
        }
    }
}

/// A node's role in one topology version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Master owning these inclusive slot ranges (possibly none).
    Master(Vec<(u16, u16)>),
    /// Replica of the node with this index.
    Replica(usize),
}

/// Roles, slots and epochs as of one moment.
#[derive(Debug, Clone)]
struct Topology {
    roles: Vec<Role>,
    /// Each node's own config epoch (a replica's line shows its master's).
    epochs: Vec<u64>,
    current_epoch: u64,
    /// ` 0-5460 ...` per node, empty for replicas and masters without slots.
    slot_text: Vec<Vec<u8>>,
}

impl Topology {
    fn refresh_slot_text(&mut self) {
        self.slot_text = self
            .roles
            .iter()
            .map(|r| match r {
                Role::Master(ranges) => {
                    let mut t = Vec::new();
                    for &(a, b) in ranges {
                        t.push(b' ');
                        push_u64(&mut t, u64::from(a));
                        if b != a {
                            t.push(b'-');
                            push_u64(&mut t, u64::from(b));
                        }
                    }
                    t
                }
                Role::Replica(_) => Vec::new(),
            })
            .collect();
    }

    /// The epoch a node's line shows.
    fn shown_epoch(&self, n: usize) -> u64 {
        match self.roles.get(n) {
            Some(Role::Replica(m)) => self.epochs.get(*m).copied().unwrap_or(0),
            _ => self.epochs.get(n).copied().unwrap_or(0),
        }
    }

    fn master_of(&self, n: usize) -> Option<usize> {
        match self.roles.get(n) {
            Some(Role::Replica(m)) => Some(*m),
            _ => None,
        }
    }
}

struct Version {
    at: Instant,
    /// The node that made the change sees it at once.
    origin: Option<usize>,
    topo: Arc<Topology>,
}

/// What never changes about a node.
struct Fixed {
    id: String,
    /// `id ip:port@cport ` (the start of every CLUSTER NODES line about it).
    prefix: Vec<u8>,
    port: u16,
    /// Keys of its shard (replicas show their master's).
    keys: u64,
    /// Bytes this node lags behind its master while a replica.
    lag: i64,
}

/// What changes about a node outside the topology.
struct Dynamic {
    down: Option<(Instant, DownMode)>,
    /// Start of the current process (a recovery after `close` is a restart).
    process_started: Instant,
    run_id: String,
    pid: u32,
    offset_base: i64,
    offset_since: Instant,
    replid: String,
    replid2: String,
    second_offset: i64,
    superseded_by: Option<usize>,
    extra_sent: BTreeMap<&'static str, u64>,
}

/// Per-node traffic counters, updated by connection tasks without taking the cluster lock.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections open now.
    pub clients: AtomicI64,
    /// Commands answered.
    pub commands: AtomicU64,
    /// Request bytes read.
    pub net_in: AtomicU64,
    /// Reply bytes written.
    pub net_out: AtomicU64,
}

/// Reply bytes and counts by command over the whole simulator (the `stats` control command).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Connections accepted on any node.
    pub connections: AtomicU64,
    /// `CLUSTER INFO` replies.
    pub cluster_info_replies: AtomicU64,
    /// Their bytes.
    pub cluster_info_bytes: AtomicU64,
    /// `CLUSTER NODES` replies.
    pub cluster_nodes_replies: AtomicU64,
    /// Their bytes.
    pub cluster_nodes_bytes: AtomicU64,
    /// `INFO` replies.
    pub info_replies: AtomicU64,
    /// Their bytes.
    pub info_bytes: AtomicU64,
    /// Any other replies.
    pub other_replies: AtomicU64,
    /// Their bytes.
    pub other_bytes: AtomicU64,
}

impl Traffic {
    /// The counters as JSON.
    pub fn to_json(&self) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "connections": g(&self.connections),
            "replies": {
                "cluster_info": g(&self.cluster_info_replies),
                "cluster_nodes": g(&self.cluster_nodes_replies),
                "info": g(&self.info_replies),
                "other": g(&self.other_replies),
            },
            "reply_bytes": {
                "cluster_info": g(&self.cluster_info_bytes),
                "cluster_nodes": g(&self.cluster_nodes_bytes),
                "info": g(&self.info_bytes),
                "other": g(&self.other_bytes),
            },
            "total_reply_bytes": g(&self.cluster_info_bytes) + g(&self.cluster_nodes_bytes)
                + g(&self.info_bytes) + g(&self.other_bytes),
        })
    }
}

/// Failure flag one node puts on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    None,
    Pfail,
    Fail,
}

/// The whole simulated cluster.
pub struct Cluster {
    settings: SimSettings,
    started: Instant,
    started_unix_ms: u64,
    fixed: Vec<Fixed>,
    dynamic: Vec<Dynamic>,
    versions: Vec<Version>,
    rng: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hex40(state: &mut u64) -> String {
    let mut s = String::with_capacity(48);
    for _ in 0..3 {
        let _ = write!(s, "{:016x}", splitmix(state));
    }
    s.truncate(40);
    s
}

/// Deterministic fraction in `[0, 1)` per node index: how late that node hears of changes.
fn spread(n: usize) -> f64 {
    let h = (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    h as f64 / f64::from(1u32 << 24)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn slot_count(ranges: &[(u16, u16)]) -> u32 {
    ranges
        .iter()
        .map(|&(a, b)| u32::from(b.saturating_sub(a)) + 1)
        .sum()
}

/// Formats slot ranges as `0-5460,5461`.
pub fn format_slots(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// INFO sections in the order Redis prints them.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];
/// Sections plain `INFO` (or `INFO default`) prints.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Commands a busy cache node has served, with their share of the load (per mille) and mean
/// µs per call: a few dozen, as a real node's INFO commandstats lists, so the exporter parses
/// and publishes as many series per node as it would in production. The exporter's own
/// commands come first; the workload's are counted from uptime (a node serving ~50 calls/s).
const WORKLOAD: &[(&str, u64, f64)] = &[
    ("get", 300, 1.2),
    ("set", 180, 2.1),
    ("mget", 40, 4.5),
    ("mset", 10, 6.0),
    ("del", 30, 1.9),
    ("unlink", 8, 1.4),
    ("exists", 20, 0.9),
    ("expire", 25, 1.1),
    ("ttl", 6, 0.8),
    ("incr", 30, 1.3),
    ("incrby", 10, 1.3),
    ("decr", 4, 1.3),
    ("hget", 45, 1.4),
    ("hset", 35, 2.2),
    ("hgetall", 15, 7.5),
    ("hdel", 6, 1.6),
    ("hincrby", 12, 1.7),
    ("hmget", 10, 2.9),
    ("lpush", 12, 1.8),
    ("rpop", 10, 1.5),
    ("lrange", 8, 9.5),
    ("llen", 3, 0.7),
    ("sadd", 14, 1.9),
    ("srem", 4, 1.8),
    ("smembers", 6, 8.0),
    ("sismember", 9, 1.0),
    ("zadd", 16, 3.1),
    ("zrange", 9, 6.4),
    ("zrangebyscore", 5, 8.8),
    ("zrem", 4, 2.5),
    ("zincrby", 6, 2.9),
    ("zscore", 5, 1.1),
    ("eval", 4, 25.0),
    ("evalsha", 9, 18.0),
    ("publish", 3, 3.3),
    ("scan", 2, 45.0),
    ("ping", 60, 0.3),
    ("auth", 1, 4.0),
    ("client|setname", 1, 1.0),
    ("select", 1, 0.5),
];

/// `# Commandstats`: the exporter's own commands (`served` in all), then [`WORKLOAD`].
fn command_stats(s: &mut String, served: u64, uptime: u64) {
    s.push_str("# Commandstats\r\n");
    let own = [
        ("cluster|info", 0.45, 22.0),
        ("cluster|nodes", 0.2, 85.0),
        ("info", 0.35, 35.0),
    ];
    let mut line = |name: &str, calls: u64, per_call: f64, rejected: u64, failed: u64| {
        let usec = (calls as f64 * per_call) as u64;
        let _ = write!(
            s,
            "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},\
             rejected_calls={rejected},failed_calls={failed}\r\n"
        );
    };
    for (name, share, per_call) in own {
        line(name, (served as f64 * share) as u64, per_call, 0, 0);
    }
    let total = uptime * 50 + 1000;
    for (name, per_mille, per_call) in WORKLOAD {
        let calls = total * per_mille / 1000 + 1;
        line(name, calls, *per_call, calls / 5000, calls / 20000);
    }
}

/// `# Errorstats`: the errors such a workload meets.
fn error_stats(s: &mut String, uptime: u64) {
    s.push_str("# Errorstats\r\n");
    for (name, per_hour) in [
        ("ERR", 30),
        ("MOVED", 120),
        ("ASK", 6),
        ("WRONGTYPE", 3),
        ("NOSCRIPT", 2),
    ] {
        let _ = write!(
            s,
            "errorstat_{name}:count={}\r\n",
            uptime * per_hour / 3600 + 1
        );
    }
}

/// `# Latencystats`: p50, p99 and p99.9 of every command in [`WORKLOAD`].
fn latency_stats(s: &mut String) {
    s.push_str("# Latencystats\r\n");
    for (name, _, per_call) in WORKLOAD {
        let _ = write!(
            s,
            "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
            per_call * 0.8,
            per_call * 4.0,
            per_call * 9.0
        );
    }
}

impl Cluster {
    /// A healthy cluster: the first `N / (R + 1)` nodes are masters with contiguous slot ranges
    /// covering all 16384 slots, the others replicas assigned round-robin; epochs as
    /// `redis-cli --cluster create` leaves them (node `i` has epoch `i + 1`).
    pub fn new(settings: SimSettings, now: Instant, wall: SystemTime) -> Result<Self, String> {
        let n = settings.ports.len();
        if n == 0 {
            return Err("at least one node is needed".into());
        }
        let masters = (n / (settings.replicas_per_master + 1)).max(1);
        if masters > SLOTS as usize {
            return Err(format!("{masters} masters: at most {SLOTS} fit"));
        }
        let mut rng = settings.seed ^ 0x5EED_0FC1_u64;
        let roles: Vec<Role> = (0..n)
            .map(|i| {
                if i < masters {
                    let slots = SLOTS as usize;
                    let a = i * slots / masters;
                    let b = (i + 1) * slots / masters - 1;
                    let a = u16::try_from(a).unwrap_or(u16::MAX);
                    let b = u16::try_from(b).unwrap_or(u16::MAX);
                    Role::Master(vec![(a, b)])
                } else {
                    Role::Replica((i - masters) % masters)
                }
            })
            .collect();
        let mut fixed = Vec::with_capacity(n);
        let mut dynamic = Vec::with_capacity(n);
        let shard_keys: Vec<u64> = (0..masters)
            .map(|_| 100 + splitmix(&mut rng) % 5000)
            .collect();
        for (i, &port) in settings.ports.iter().enumerate() {
            let id = hex40(&mut rng);
            let cport = u32::from(port) + 10000;
            let prefix = format!("{id} {}:{port}@{cport} ", settings.host).into_bytes();
            let shard = match roles.get(i) {
                Some(Role::Replica(m)) => *m,
                _ => i,
            };
            fixed.push(Fixed {
                id,
                prefix,
                port,
                keys: shard_keys.get(shard).copied().unwrap_or(0),
                lag: i64::try_from(splitmix(&mut rng) % 5 * 17).unwrap_or(0),
            });
            dynamic.push(Dynamic {
                down: None,
                process_started: now,
                run_id: hex40(&mut rng),
                pid: 20000 + u32::try_from(splitmix(&mut rng) % 40000).unwrap_or(0),
                offset_base: i64::try_from(1000 + splitmix(&mut rng) % 100_000).unwrap_or(0),
                offset_since: now,
                replid: hex40(&mut rng),
                replid2: "0".repeat(40),
                second_offset: -1,
                superseded_by: None,
                extra_sent: BTreeMap::new(),
            });
        }
        let mut topo = Topology {
            roles,
            epochs: (1..=n as u64).collect(),
            current_epoch: n as u64,
            slot_text: Vec::new(),
        };
        topo.refresh_slot_text();
        let started_unix_ms = wall
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
            .unwrap_or(0);
        Ok(Cluster {
            settings,
            started: now,
            started_unix_ms,
            fixed,
            dynamic,
            versions: vec![Version {
                at: now,
                origin: None,
                topo: Arc::new(topo),
            }],
            rng,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.fixed.len()
    }

    /// Always false (a cluster has at least one node).
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }

    /// The settings.
    pub fn settings(&self) -> &SimSettings {
        &self.settings
    }

    /// Node id of node `n`.
    pub fn id(&self, n: usize) -> Option<&str> {
        self.fixed.get(n).map(|f| f.id.as_str())
    }

    /// Client port of node `n`.
    pub fn port(&self, n: usize) -> Option<u16> {
        self.fixed.get(n).map(|f| f.port)
    }

    fn latest(&self) -> &Topology {
        // `versions` is never empty: `new` starts it with one and pruning keeps the last.
        match self.versions.last() {
            Some(v) => &v.topo,
            None => unreachable_topology(),
        }
    }

    fn delay(&self, o: usize) -> Duration {
        self.settings.propagation.mul_f64(spread(o))
    }

    fn view_of(&self, o: usize, now: Instant) -> &Topology {
        let delay = self.delay(o);
        for v in self.versions.iter().rev() {
            if v.origin == Some(o) || v.at + delay <= now {
                return &v.topo;
            }
        }
        match self.versions.first() {
            Some(v) => &v.topo,
            None => unreachable_topology(),
        }
    }

    fn push_version(&mut self, topo: Topology, origin: Option<usize>, now: Instant) {
        let mut topo = topo;
        topo.refresh_slot_text();
        self.versions.push(Version {
            at: now,
            origin,
            topo: Arc::new(topo),
        });
        // Drop versions every node has moved past.
        let horizon = self.settings.propagation;
        while self.versions.len() > 1 && self.versions.get(1).is_some_and(|v| v.at + horizon <= now)
        {
            self.versions.remove(0);
        }
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        self.started_unix_ms
            + u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(0)
    }

    fn flag(&self, o: usize, j: usize, now: Instant) -> Flag {
        if o == j {
            return Flag::None;
        }
        let Some((since, _)) = self.dynamic.get(j).and_then(|d| d.down) else {
            return Flag::None;
        };
        let elapsed = now.saturating_duration_since(since);
        let lag = self.delay(o);
        let pfail = self.settings.pfail_after + lag;
        let fail = self.settings.fail_after.max(self.settings.pfail_after) + lag;
        if elapsed >= fail {
            Flag::Fail
        } else if elapsed >= pfail {
            Flag::Pfail
        } else {
            Flag::None
        }
    }

    /// What the network side of node `n` should do now.
    pub fn status(&self, n: usize) -> NodeStatus {
        match self.dynamic.get(n).and_then(|d| d.down) {
            None => NodeStatus::Up,
            Some((_, DownMode::Stall)) => NodeStatus::Stalled,
            Some((_, DownMode::Close)) => NodeStatus::Closed,
        }
    }

    /// A master's replication offset at `at` (frozen while it is down).
    fn master_offset(&self, m: usize, at: Instant) -> i64 {
        let Some(d) = self.dynamic.get(m) else {
            return 0;
        };
        let until = d.down.map_or(at, |(t, _)| t.min(at));
        let elapsed = millis(until.saturating_duration_since(d.offset_since));
        let rate = i64::try_from(self.settings.write_rate).unwrap_or(i64::MAX);
        d.offset_base
            .saturating_add(elapsed.saturating_mul(rate) / 1000)
    }

    /// Node `n`'s own replication offset (a replica's stops when it or its master goes down).
    pub fn offset(&self, n: usize, now: Instant) -> i64 {
        match self.latest().master_of(n) {
            None => self.master_offset(n, now),
            Some(m) => {
                let mut t = now;
                for k in [n, m] {
                    if let Some((d, _)) = self.dynamic.get(k).and_then(|d| d.down) {
                        t = t.min(d);
                    }
                }
                let lag = self.fixed.get(n).map_or(0, |f| f.lag);
                (self.master_offset(m, t) - lag).max(0)
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Control operations
    // ------------------------------------------------------------------------------------

    fn check_index(&self, n: usize) -> Result<(), String> {
        if n < self.len() {
            Ok(())
        } else {
            Err(format!(
                "no node {n} (nodes are 0..{})",
                self.len().saturating_sub(1)
            ))
        }
    }

    /// Node `n` stops answering.
    pub fn fail(&mut self, n: usize, mode: DownMode, now: Instant) -> Result<String, String> {
        self.check_index(n)?;
        let d = &mut self.dynamic[n];
        if d.down.is_some() {
            return Err(format!("node {n} is already down"));
        }
        d.down = Some((now, mode));
        Ok(format!(
            "node {n} ({}) down ({})",
            self.fixed[n].id,
            mode.as_str()
        ))
    }

    /// Node `n` answers again. After `close` it is a restarted process (new run id, uptime 0);
    /// a master whose slots were taken over meanwhile comes back as a replica of the new owner.
    pub fn recover(&mut self, n: usize, now: Instant) -> Result<String, String> {
        self.check_index(n)?;
        let Some((_, mode)) = self.dynamic[n].down else {
            return Err(format!("node {n} is not down"));
        };
        let latest = self.latest().clone();
        let was_master = latest.master_of(n).is_none();
        if was_master {
            // Its offset continues from where it stopped.
            let off = self.master_offset(n, now);
            let d = &mut self.dynamic[n];
            d.offset_base = off;
            d.offset_since = now;
        }
        let restart = mode == DownMode::Close;
        if restart {
            let run_id = hex40(&mut self.rng);
            let pid = 20000 + u32::try_from(splitmix(&mut self.rng) % 40000).unwrap_or(0);
            let d = &mut self.dynamic[n];
            d.run_id = run_id;
            d.pid = pid;
            d.process_started = now;
        }
        self.dynamic[n].down = None;
        let superseded = self.dynamic[n].superseded_by.take();
        let mut msg = format!("node {n} ({}) up", self.fixed[n].id);
        if let (true, Some(r)) = (was_master, superseded) {
            let owner = latest.master_of(r).unwrap_or(r);
            if owner != n && matches!(latest.roles.get(n), Some(Role::Master(s)) if s.is_empty()) {
                let mut topo = latest;
                topo.roles[n] = Role::Replica(owner);
                self.push_version(topo, Some(n), now);
                let _ = write!(msg, ", now a replica of node {owner}");
            }
        }
        Ok(msg)
    }

    /// Replica `r` takes over its master's slots with config epoch `max + 1`. Other replicas of
    /// the old master follow the new one; the old master keeps `master` with no slots (and
    /// becomes a replica when it recovers), or becomes a replica at once if it is up.
    pub fn promote(&mut self, r: usize, trigger: Trigger, now: Instant) -> Result<String, String> {
        self.check_index(r)?;
        let latest = self.latest().clone();
        let Some(m) = latest.master_of(r) else {
            return Err(format!("node {r} is not a replica"));
        };
        if self.dynamic[r].down.is_some() {
            return Err(format!("node {r} is down"));
        }
        let slots = match latest.roles.get(m) {
            Some(Role::Master(s)) => s.clone(),
            _ => Vec::new(),
        };
        let off = self.offset(r, now);
        let epoch = latest.current_epoch + 1;
        let mut topo = latest;
        topo.current_epoch = epoch;
        topo.epochs[r] = epoch;
        topo.roles[r] = Role::Master(slots.clone());
        let master_up = self.dynamic[m].down.is_none();
        for k in 0..topo.roles.len() {
            if k != r && topo.roles[k] == Role::Replica(m) {
                topo.roles[k] = Role::Replica(r);
            }
        }
        topo.roles[m] = if master_up {
            Role::Replica(r)
        } else {
            Role::Master(Vec::new())
        };
        let new_replid = hex40(&mut self.rng);
        let old_replid = self.dynamic[m].replid.clone();
        {
            let d = &mut self.dynamic[r];
            d.offset_base = off;
            d.offset_since = now;
            d.replid = new_replid;
            d.replid2 = old_replid;
            d.second_offset = off + 1;
            let bump: &[&'static str] = match trigger {
                Trigger::Auto | Trigger::Force => &["auth-req"],
                Trigger::Manual => &["mfstart", "auth-req"],
                Trigger::Takeover => &[],
            };
            for k in bump {
                *d.extra_sent.entry(k).or_insert(0) += 1;
            }
        }
        if !master_up {
            self.dynamic[m].superseded_by = Some(r);
        }
        self.push_version(topo, Some(r), now);
        Ok(format!(
            "node {r} ({}) is master of {} at config epoch {epoch} (was replica of node {m} ({}))",
            self.fixed[r].id,
            format_slots(&slots),
            self.fixed[m].id
        ))
    }

    /// Masters that own slots and have been down at least `after`, each with the replica that
    /// should take over (the first one that is up), for `--auto-failover`.
    pub fn due_failovers(&self, after: Duration, now: Instant) -> Vec<usize> {
        let topo = self.latest();
        let mut out = Vec::new();
        for (m, role) in topo.roles.iter().enumerate() {
            let Role::Master(slots) = role else { continue };
            let down_long = self
                .dynamic
                .get(m)
                .and_then(|d| d.down)
                .is_some_and(|(t, _)| now.saturating_duration_since(t) >= after);
            if slots.is_empty() || !down_long {
                continue;
            }
            if let Some(r) = (0..self.len()).find(|&k| {
                topo.roles.get(k) == Some(&Role::Replica(m))
                    && self.dynamic.get(k).is_some_and(|d| d.down.is_none())
            }) {
                out.push(r);
            }
        }
        out
    }

    /// The whole state as JSON (the `state` control command).
    pub fn state_json(&self, now: Instant) -> Value {
        let topo = self.latest();
        let nodes: Vec<Value> = (0..self.len())
            .map(|n| {
                let (role, master, slots) = match topo.roles.get(n) {
                    Some(Role::Master(s)) => ("master", None, format_slots(s)),
                    Some(Role::Replica(m)) => ("replica", Some(*m), String::new()),
                    None => ("unknown", None, String::new()),
                };
                let d = &self.dynamic[n];
                json!({
                    "index": n,
                    "id": self.fixed[n].id,
                    "addr": format!("{}:{}", self.settings.host, self.fixed[n].port),
                    "port": self.fixed[n].port,
                    "role": role,
                    "master": master,
                    "master_id": master.map(|m| self.fixed[m].id.clone()),
                    "slots": slots,
                    "slot_count": match topo.roles.get(n) { Some(Role::Master(s)) => slot_count(s), _ => 0 },
                    "config_epoch": topo.shown_epoch(n),
                    "down": d.down.map(|(_, m)| m.as_str()),
                    "down_for_ms": d.down.map(|(t, _)| millis(now.saturating_duration_since(t))),
                    "offset": self.offset(n, now),
                })
            })
            .collect();
        json!({
            "nodes": nodes,
            "current_epoch": topo.current_epoch,
            "versions": self.versions.len(),
            "uptime_ms": millis(now.saturating_duration_since(self.started)),
        })
    }

    // ------------------------------------------------------------------------------------
    // Replies
    // ------------------------------------------------------------------------------------

    /// `CLUSTER MYID` of node `o`.
    pub fn myid(&self, o: usize) -> &str {
        self.fixed.get(o).map_or("", |f| f.id.as_str())
    }

    /// Appends node `o`'s `CLUSTER NODES` text (lines end with a bare `\n`, as Redis sends them).
    pub fn cluster_nodes(&self, o: usize, now: Instant, out: &mut Vec<u8>) {
        let view = self.view_of(o, now);
        let now_ms = self.unix_ms(now);
        out.reserve(self.len() * 150);
        for (j, fixed) in self.fixed.iter().enumerate() {
            out.extend_from_slice(&fixed.prefix);
            if j == o {
                out.extend_from_slice(b"myself,");
            }
            let master = view.master_of(j);
            out.extend_from_slice(if master.is_some() {
                b"slave"
            } else {
                b"master"
            });
            let flag = self.flag(o, j, now);
            match flag {
                Flag::None => {}
                Flag::Pfail => out.extend_from_slice(b",fail?"),
                Flag::Fail => out.extend_from_slice(b",fail"),
            }
            out.push(b' ');
            match master.and_then(|m| self.fixed.get(m)) {
                Some(mf) => out.extend_from_slice(mf.id.as_bytes()),
                None => out.push(b'-'),
            }
            out.push(b' ');
            let down = if j == o {
                None
            } else {
                self.dynamic.get(j).and_then(|d| d.down)
            };
            let wobble = ((o as u64).wrapping_mul(7919) ^ (j as u64).wrapping_mul(104_729)) % 900;
            let (ping, pong, connected) = match down {
                _ if j == o => (0, now_ms / 1000 * 1000, true),
                None => (0, now_ms.saturating_sub(wobble), true),
                Some((since, mode)) => {
                    let since_ms = self.unix_ms(since);
                    let connected = mode == DownMode::Stall && flag == Flag::None;
                    (
                        since_ms + wobble % 100 + 1,
                        since_ms.saturating_sub(wobble),
                        connected,
                    )
                }
            };
            push_u64(out, ping);
            out.push(b' ');
            push_u64(out, pong);
            out.push(b' ');
            push_u64(out, view.shown_epoch(j));
            out.extend_from_slice(if connected {
                b" connected"
            } else {
                b" disconnected"
            });
            if let Some(text) = view.slot_text.get(j) {
                out.extend_from_slice(text);
            }
            out.push(b'\n');
        }
    }

    /// Node `o`'s `CLUSTER INFO` text (`\r\n` line ends).
    pub fn cluster_info(&self, o: usize, now: Instant) -> String {
        let view = self.view_of(o, now);
        let (mut assigned, mut pfail, mut fail, mut size) = (0u32, 0u32, 0u32, 0u32);
        for (j, role) in view.roles.iter().enumerate() {
            if let Role::Master(slots) = role {
                let c = slot_count(slots);
                if c == 0 {
                    continue;
                }
                size += 1;
                assigned += c;
                match self.flag(o, j, now) {
                    Flag::None => {}
                    Flag::Pfail => pfail += c,
                    Flag::Fail => fail += c,
                }
            }
        }
        let state = if fail == 0 && assigned == SLOTS {
            "ok"
        } else {
            "fail"
        };
        let ticks = u64::try_from(now.saturating_duration_since(self.started).as_millis() / 100)
            .unwrap_or(0);
        let salt = o as u64 % 7;
        let mut sent: Vec<(&str, u64)> = vec![("ping", ticks + salt), ("pong", ticks + 3 + salt)];
        let mut received: Vec<(&str, u64)> =
            vec![("ping", ticks + 2 + salt), ("pong", ticks + salt)];
        if o == 0 {
            sent.push(("meet", self.len() as u64 - 1));
        } else {
            received.push(("meet", 1));
        }
        if let Some(d) = self.dynamic.get(o) {
            sent.extend(d.extra_sent.iter().map(|(k, v)| (*k, *v)));
        }
        let mut s = String::with_capacity(640);
        let _ = write!(
            s,
            "cluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\n\
             cluster_slots_ok:{}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\n\
             cluster_known_nodes:{}\r\ncluster_size:{size}\r\ncluster_current_epoch:{}\r\n\
             cluster_my_epoch:{}\r\n",
            assigned - pfail - fail,
            self.len(),
            view.current_epoch,
            view.shown_epoch(o),
        );
        for (k, v) in &sent {
            let _ = write!(s, "cluster_stats_messages_{k}_sent:{v}\r\n");
        }
        let total: u64 = sent.iter().map(|(_, v)| v).sum();
        let _ = write!(s, "cluster_stats_messages_sent:{total}\r\n");
        for (k, v) in &received {
            let _ = write!(s, "cluster_stats_messages_{k}_received:{v}\r\n");
        }
        let total: u64 = received.iter().map(|(_, v)| v).sum();
        let _ = write!(s, "cluster_stats_messages_received:{total}\r\n");
        s.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
        s
    }

    /// Node `o`'s `INFO` text for the requested sections (lowercase names; empty means default).
    pub fn info(
        &self,
        o: usize,
        sections: &[String],
        now: Instant,
        counters: &NodeCounters,
    ) -> String {
        let wanted = |name: &str| -> bool {
            if sections.is_empty() {
                return DEFAULT_SECTIONS.contains(&name);
            }
            sections.iter().any(|s| match s.as_str() {
                "all" | "everything" => true,
                "default" => DEFAULT_SECTIONS.contains(&name),
                other => other == name,
            })
        };
        let mut s = String::with_capacity(4096);
        for name in SECTIONS {
            if !wanted(name) {
                continue;
            }
            if !s.is_empty() {
                s.push_str("\r\n");
            }
            self.info_section(&mut s, name, o, now, counters);
        }
        s
    }

    fn info_section(
        &self,
        s: &mut String,
        name: &str,
        o: usize,
        now: Instant,
        counters: &NodeCounters,
    ) {
        let (Some(f), Some(d)) = (self.fixed.get(o), self.dynamic.get(o)) else {
            return;
        };
        let view = self.view_of(o, now);
        let uptime = now.saturating_duration_since(d.process_started).as_secs();
        let now_ms = self.unix_ms(now);
        let used_memory = 1_600_000 + f.keys * 96;
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match name {
            "server" => {
                let _ = write!(
                    s,
                    "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n\
                     redis_git_dirty:0\r\nredis_build_id:ae4d7c971a948f0\r\nredis_mode:cluster\r\n\
                     os:Linux 6.1.0-sim x86_64\r\narch_bits:64\r\n\
                     monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\n\
                     atomicvar_api:c11-builtin\r\ngcc_version:12.2.0\r\nprocess_id:{}\r\n\
                     process_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\n\
                     server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
                     hz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\n\
                     executable:/usr/bin/redis-server\r\nconfig_file:\r\nio_threads_active:0\r\n",
                    d.pid,
                    d.run_id,
                    f.port,
                    now_ms * 1000,
                    uptime / 86400,
                    (now_ms / 1000) & 0xFF_FFFF,
                );
            }
            "clients" => {
                let _ = write!(
                    s,
                    "# Clients\r\nconnected_clients:{}\r\ncluster_connections:{}\r\n\
                     maxclients:10000\r\nclient_recent_max_input_buffer:20480\r\n\
                     client_recent_max_output_buffer:0\r\nblocked_clients:0\r\n\
                     tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                    counters.clients.load(Ordering::Relaxed).max(0),
                    2 * self.len().saturating_sub(1),
                );
            }
            "memory" => {
                let rss = used_memory * 6 + 4_000_000;
                let _ = write!(
                    s,
                    "# Memory\r\nused_memory:{used_memory}\r\nused_memory_human:{:.2}M\r\n\
                     used_memory_rss:{rss}\r\nused_memory_rss_human:{:.2}M\r\n\
                     used_memory_peak:{}\r\nused_memory_peak_human:{:.2}M\r\n\
                     used_memory_peak_perc:98.00%\r\nused_memory_overhead:1633956\r\n\
                     used_memory_startup:1600416\r\nused_memory_dataset:{}\r\n\
                     total_system_memory:25276510208\r\ntotal_system_memory_human:23.54G\r\n\
                     maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
                     mem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\n\
                     mem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\n\
                     lazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
                    used_memory as f64 / 1_048_576.0,
                    rss as f64 / 1_048_576.0,
                    used_memory + 40_000,
                    (used_memory + 40_000) as f64 / 1_048_576.0,
                    used_memory.saturating_sub(1_600_416),
                    rss as f64 / used_memory as f64,
                    rss - used_memory,
                );
            }
            "persistence" => {
                let _ = write!(
                    s,
                    "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\n\
                     current_cow_size:0\r\nrdb_changes_since_last_save:0\r\n\
                     rdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\n\
                     rdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\n\
                     rdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\naof_enabled:0\r\n\
                     aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n\
                     aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n\
                     aof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n",
                    self.started_unix_ms / 1000,
                );
            }
            "stats" => {
                let _ = write!(
                    s,
                    "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                     instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\n\
                     total_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\n\
                     total_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\n\
                     instantaneous_output_kbps:0.00\r\nrejected_connections:0\r\nsync_full:1\r\n\
                     sync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:0\r\n\
                     expired_stale_perc:0.00\r\nevicted_keys:0\r\nevicted_clients:0\r\n\
                     keyspace_hits:0\r\nkeyspace_misses:0\r\npubsub_channels:0\r\n\
                     pubsub_patterns:0\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\n\
                     total_error_replies:0\r\ntotal_reads_processed:{}\r\n\
                     total_writes_processed:{}\r\n",
                    c(&counters.connections_received),
                    c(&counters.commands),
                    c(&counters.net_in),
                    c(&counters.net_out),
                    c(&counters.commands),
                    c(&counters.commands),
                );
            }
            "replication" => self.info_replication(s, o, view, now),
            "cpu" => {
                let cpu = uptime as f64 * 0.002;
                let _ = write!(
                    s,
                    "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\n\
                     used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n\
                     used_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
                    cpu,
                    cpu * 1.5,
                    cpu,
                    cpu * 1.5
                );
            }
            "modules" => s.push_str("# Modules\r\n"),
            "commandstats" => command_stats(s, c(&counters.commands), uptime),
            "errorstats" => error_stats(s, uptime),
            "latencystats" => latency_stats(s),
            "cluster" => s.push_str("# Cluster\r\ncluster_enabled:1\r\n"),
            "keyspace" => {
                s.push_str("# Keyspace\r\n");
                if f.keys > 0 {
                    let replica = view.master_of(o).is_some();
                    let _ = write!(
                        s,
                        "db0:keys={},expires={},avg_ttl={}\r\n",
                        f.keys,
                        f.keys / 3,
                        if replica { 0 } else { 3_599_000 }
                    );
                }
            }
            _ => {}
        }
    }

    fn info_replication(&self, s: &mut String, o: usize, view: &Topology, now: Instant) {
        let Some(d) = self.dynamic.get(o) else {
            return;
        };
        let offset = self.offset(o, now);
        let host = &self.settings.host;
        s.push_str("# Replication\r\n");
        match view.master_of(o) {
            None => {
                let replicas: Vec<usize> = (0..self.len())
                    .filter(|&k| view.roles.get(k) == Some(&Role::Replica(o)))
                    .filter(|&k| self.dynamic.get(k).is_some_and(|d| d.down.is_none()))
                    .collect();
                let _ = write!(s, "role:master\r\nconnected_slaves:{}\r\n", replicas.len());
                for (i, &k) in replicas.iter().enumerate() {
                    let _ = write!(
                        s,
                        "slave{i}:ip={host},port={},state=online,offset={},lag=0\r\n",
                        self.fixed[k].port,
                        self.offset(k, now)
                    );
                }
                let _ = write!(
                    s,
                    "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\n\
                     master_repl_offset:{offset}\r\nsecond_repl_offset:{}\r\n",
                    d.replid, d.replid2, d.second_offset
                );
            }
            Some(m) => {
                let md = self.dynamic.get(m);
                let master_down = md.and_then(|d| d.down);
                let _ = write!(
                    s,
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{}\r\n\
                     master_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\n\
                     master_sync_in_progress:0\r\nslave_read_repl_offset:{offset}\r\n\
                     slave_repl_offset:{offset}\r\n",
                    self.fixed.get(m).map_or(0, |f| f.port),
                    if master_down.is_some() { "down" } else { "up" },
                    if master_down.is_some() { -1 } else { 0 },
                );
                if let Some((since, _)) = master_down {
                    let _ = write!(
                        s,
                        "master_link_down_since_seconds:{}\r\n",
                        now.saturating_duration_since(since).as_secs()
                    );
                }
                let _ = write!(
                    s,
                    "slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n\
                     connected_slaves:0\r\nmaster_failover_state:no-failover\r\n\
                     master_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\n\
                     second_repl_offset:{}\r\n",
                    md.map_or("", |d| d.replid.as_str()),
                    d.replid2,
                    d.second_offset
                );
            }
        }
        let first = (offset - 1_048_576).max(1);
        let _ = write!(
            s,
            "repl_backlog_active:1\r\nrepl_backlog_size:1048576\r\n\
             repl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{}\r\n",
            (offset - first + 1).max(0)
        );
    }
}

/// Never reached: the version list is never empty. A static empty topology keeps the renderers
/// total without a panic path.
fn unreachable_topology() -> &'static Topology {
    static EMPTY: std::sync::OnceLock<Topology> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Topology {
        roles: Vec::new(),
        epochs: Vec::new(),
        current_epoch: 0,
        slot_text: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_cluster_exporter::parse::cluster_info::parse_cluster_info;
    use redis_cluster_exporter::parse::cluster_nodes::parse_cluster_nodes;
    use redis_cluster_exporter::parse::info::parse_info;

    fn settings(n: usize, propagation: Duration) -> SimSettings {
        SimSettings {
            host: "127.0.0.1".into(),
            ports: (0..n).map(|i| 30000 + i as u16).collect(),
            replicas_per_master: 1,
            pfail_after: Duration::from_secs(1),
            fail_after: Duration::from_secs(2),
            propagation,
            write_rate: 1000,
            seed: 7,
        }
    }

    #[test]
    fn info_all_lists_commands_errors_and_latencies_as_a_busy_node_does() {
        let t0 = Instant::now();
        let c = Cluster::new(settings(6, Duration::ZERO), t0, SystemTime::now()).expect("new");
        let info = parse_info(&c.info(0, &["all".into()], t0, &NodeCounters::default()))
            .expect("INFO all");
        assert_eq!(
            info.commands.len(),
            3 + WORKLOAD.len(),
            "the exporter's and the workload's"
        );
        assert!(info.commands.iter().any(|c| c.cmd == "client|setname"));
        assert_eq!(info.latencies.len(), WORKLOAD.len());
        assert!(info.errors.iter().any(|e| e.err == "MOVED"));
        let default = parse_info(&c.info(0, &[], t0, &NodeCounters::default())).expect("INFO");
        assert!(
            default.commands.is_empty(),
            "plain INFO has no commandstats"
        );
        assert!(!default.errors.is_empty(), "but errorstats, as Redis 7");
    }

    fn nodes_text(c: &Cluster, o: usize, now: Instant) -> String {
        let mut out = Vec::new();
        c.cluster_nodes(o, now, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn healthy_views_parse_and_cover_all_slots() {
        let t0 = Instant::now();
        let c = Cluster::new(settings(6, Duration::ZERO), t0, SystemTime::now()).expect("new");
        for o in 0..6 {
            let text = nodes_text(&c, o, t0);
            let parsed = parse_cluster_nodes(&text).expect("parse nodes");
            assert_eq!(parsed.nodes.len(), 6);
            assert_eq!(parsed.myself().map(|m| m.id.as_str()), c.id(o));
            let slots: u32 = parsed
                .nodes
                .iter()
                .flat_map(|l| l.slots.iter())
                .map(|r| r.len())
                .sum();
            assert_eq!(slots, SLOTS);
            let ci = parse_cluster_info(&c.cluster_info(o, t0)).expect("parse info");
            assert!(ci.state_ok);
            assert_eq!(ci.size, 3);
            let info = parse_info(&c.info(o, &[], t0, &NodeCounters::default())).expect("INFO");
            assert_eq!(info.role, if o < 3 { "master" } else { "slave" });
        }
        let text = nodes_text(&c, 3, t0);
        assert!(text.contains("myself,slave"), "{text}");
    }

    #[test]
    fn fail_then_promote_then_recover() {
        let t0 = Instant::now();
        let mut c = Cluster::new(
            settings(6, Duration::from_millis(500)),
            t0,
            SystemTime::now(),
        )
        .expect("new");
        let old_slots = "0-5460";
        c.fail(0, DownMode::Close, t0).expect("fail");
        assert_eq!(c.status(0), NodeStatus::Closed);
        // Before pfail_after: nobody flags it.
        assert!(!nodes_text(&c, 1, t0 + Duration::from_millis(900)).contains("fail"));
        let late = t0 + Duration::from_secs(3);
        let text = nodes_text(&c, 1, late);
        assert!(text.contains("master,fail -"), "{text}");
        assert!(c.cluster_info(1, late).starts_with("cluster_state:fail"));
        // Node 3 is node 0's replica.
        let msg = c.promote(3, Trigger::Auto, late).expect("promote");
        assert!(msg.contains(old_slots), "{msg}");
        // The promoted node sees it at once, with epoch 7.
        let own = nodes_text(&c, 3, late);
        assert!(own.contains("myself,master - 0 "), "{own}");
        assert!(
            own.contains(&format!(" 7 connected {old_slots}\n")),
            "{own}"
        );
        assert!(
            c.cluster_info(3, late)
                .contains("cluster_stats_messages_auth-req_sent:1")
        );
        // After the propagation delay everybody does, and the state is ok again.
        let later = late + Duration::from_secs(1);
        for o in 1..6 {
            let text = nodes_text(&c, o, later);
            let lines = parse_cluster_nodes(&text).expect("parse");
            let new = lines.nodes.iter().find(|l| Some(l.id.as_str()) == c.id(3));
            assert_eq!(new.map(|l| l.config_epoch), Some(7), "observer {o}");
            assert!(c.cluster_info(o, later).starts_with("cluster_state:ok"));
        }
        let info = parse_info(&c.info(3, &["replication".into()], later, &NodeCounters::default()))
            .expect("INFO");
        assert_eq!(info.role, "master");
        assert!(info.second_repl_offset.unwrap_or(-1) > 0);
        c.recover(0, later).expect("recover");
        let text = nodes_text(&c, 0, later);
        assert!(
            text.contains(&format!("myself,slave {}", c.id(3).unwrap_or(""))),
            "{text}"
        );
        assert_eq!(c.status(0), NodeStatus::Up);
    }

    #[test]
    fn offsets_grow_and_freeze() {
        let t0 = Instant::now();
        let mut c = Cluster::new(settings(6, Duration::ZERO), t0, SystemTime::now()).expect("new");
        let a = c.offset(0, t0);
        let b = c.offset(0, t0 + Duration::from_secs(2));
        assert_eq!(b - a, 2000);
        assert!(c.offset(3, t0 + Duration::from_secs(2)) <= b);
        c.fail(0, DownMode::Stall, t0 + Duration::from_secs(2))
            .expect("fail");
        assert_eq!(c.offset(0, t0 + Duration::from_secs(9)), b);
        assert_eq!(c.status(0), NodeStatus::Stalled);
    }
}
