//! The cluster overview: one JSON document (`GET /api/cluster`, and what the `/cluster` page
//! shows) built from the latest snapshot by a pure function. Shards are masters with their
//! replicas; problems come from the `check` evaluation (one notion of "problem" for both), and
//! each shard and node carries the worst severity of the problems that name it, so a view can
//! put problems first. The field names are a documented contract (README, "Cluster page").

use crate::check::{self, CheckOptions, Problem, Status};
use crate::events::store::format_time;
use crate::metrics::risk;
use crate::model::{ClusterView, Role, Snapshot, ViewNode, replication_lags};
use crate::parse::cluster_nodes::SlotRange;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterOverview {
    /// `--cluster-name`.
    pub cluster: String,
    /// Start of the poll the document describes, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Wall time of that poll round, in seconds.
    pub poll_duration_seconds: f64,
    /// Worst severity among `problems` (`OK` when there are none), as `check` reports it.
    pub status: Status,
    /// `check`'s one-line summary.
    pub summary: String,
    /// `ok` or `fail` as most answering nodes report `cluster_state` (a tie is `fail`); `null`
    /// when no node answered.
    pub cluster_state: Option<&'static str>,
    /// Every answering node maps every slot to the same owner.
    pub consistent: bool,
    /// How many nodes.
    pub nodes: NodeCounts,
    /// Slot coverage.
    pub slots: SlotCoverage,
    /// Masters with their replicas: the worst `severity` first, then by first slot.
    pub shards: Vec<Shard>,
    /// Replicas whose master is not a known member.
    pub orphan_replicas: Vec<ReplicaEntry>,
    /// Every polled address that did not answer (members and seeds alike).
    pub unreachable: Vec<UnreachableNode>,
    /// Topology-risk figures (the same as the `redis_cluster_*` risk metrics).
    pub risk: RiskFigures,
    /// Problems, worst first (the `check` evaluation).
    pub problems: Vec<Problem>,
}

/// Node counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NodeCounts {
    /// Members known from any answering node's CLUSTER NODES.
    pub known: usize,
    /// Addresses polled this round.
    pub polled: usize,
    /// Addresses that answered (the observers whose flags are counted).
    pub reachable: usize,
}

/// Which slots are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotCoverage {
    /// Slots served (owned by a master that is neither flagged `fail` nor silent).
    pub covered: u32,
    /// Slots not served.
    pub uncovered: u32,
    /// The uncovered slots, grouped by why, in slot order.
    pub uncovered_ranges: Vec<UncoveredRange>,
}

/// One group of uncovered slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UncoveredRange {
    /// Ranges as text, e.g. `0-5460`.
    pub slots: Vec<String>,
    /// Number of slots.
    pub slot_count: u32,
    /// The master that owns them, `null` when none does.
    pub master_id: Option<String>,
    /// Why, e.g. `master 10.0.0.1:7000 failed`, `no owner`.
    pub reason: String,
}

/// A master and its replicas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shard {
    /// Worst severity of the problems naming the master or one of its replicas.
    pub severity: Status,
    /// The master.
    pub master: MasterEntry,
    /// Its replicas, by address.
    pub replicas: Vec<ReplicaEntry>,
}

/// What every node entry has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEntry {
    /// Node id.
    pub id: String,
    /// `host:port`, when known.
    pub addr: Option<String>,
    /// Announced hostname (Redis 7+ `cluster-announce-hostname`), when set.
    pub hostname: Option<String>,
    /// The exporter polled it successfully this round.
    pub reachable: bool,
    /// Why polling it failed (`reason: message`), when it did.
    pub error: Option<String>,
    /// `cluster_state` as the node itself reports it, when it answered.
    pub cluster_state: Option<&'static str>,
    /// Failure flags and how many answering nodes report them.
    pub flags: NodeFlags,
    /// `used_memory` from the latest INFO all, bytes.
    pub used_memory_bytes: Option<u64>,
    /// `maxmemory` (0 = no limit), bytes.
    pub maxmemory_bytes: Option<u64>,
    /// Worst severity of the problems naming this node.
    pub severity: Status,
}

/// Failure flags of one node, as the answering nodes report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NodeFlags {
    /// Answering nodes that flag it `fail?` (PFAIL).
    pub pfail_observers: usize,
    /// Answering nodes that flag it `fail`.
    pub fail_observers: usize,
    /// Flagged `nofailover`.
    pub nofailover: bool,
}

/// A master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MasterEntry {
    /// The common fields.
    #[serde(flatten)]
    pub node: NodeEntry,
    /// Owned slot ranges as text, e.g. `["0-5460"]`.
    pub slots: Vec<String>,
    /// Number of owned slots.
    pub slot_count: u32,
    /// Config epoch.
    pub config_epoch: u64,
    /// Slots it is migrating away.
    pub migrating: usize,
    /// Slots it is importing.
    pub importing: usize,
    /// Replicas on the master's own host (only for masters that own slots).
    pub colocated_replicas: Option<usize>,
}

/// A replica.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaEntry {
    /// The common fields.
    #[serde(flatten)]
    pub node: NodeEntry,
    /// Its master's id.
    pub master_id: Option<String>,
    /// `master_link_status` from its own INFO (`up`/`down`), when it answered.
    pub link: Option<&'static str>,
    /// Master's replication offset minus this replica's, when both answered.
    pub lag_bytes: Option<i64>,
}

/// A polled address that did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreachableNode {
    /// The address.
    pub addr: String,
    /// The member at that address, when it is one.
    pub id: Option<String>,
    /// `master` / `replica`, for members.
    pub role: Option<&'static str>,
    /// The failure category (the `reason` label of the poll-error metric).
    pub reason: &'static str,
    /// Detail.
    pub message: String,
}

/// Topology-risk figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskFigures {
    /// Per slot-owning master address: replicas on the same host.
    pub colocated_replicas: BTreeMap<String, usize>,
    /// Per host: slot-owning masters on it.
    pub host_masters: BTreeMap<String, usize>,
    /// Most slots of one master / mean (1 = balanced); `null` without slot owners.
    pub slot_skew_ratio: Option<f64>,
    /// Largest `used_memory` of a slot-owning master / mean; `null` when unknown.
    pub memory_skew_ratio: Option<f64>,
}

/// Builds the document from a snapshot. Pure.
pub fn build(snapshot: &Snapshot, cluster: &str) -> ClusterOverview {
    let report = check::evaluate(snapshot, &CheckOptions::default());
    let view = &snapshot.view;
    let cx = Context::new(snapshot, &report.problems);
    let mut shards: Vec<Shard> = check::masters_in_slot_order(view)
        .into_iter()
        .map(|m| cx.shard(m))
        .collect();
    // Stable: equals keep slot order.
    shards.sort_by_key(|s| std::cmp::Reverse(s.severity));
    let orphan_replicas = view
        .nodes
        .values()
        .filter(|n| n.role == Role::Replica)
        .filter(|n| {
            n.master_id
                .as_deref()
                .and_then(|m| view.nodes.get(m))
                .is_none_or(|m| m.role != Role::Master)
        })
        .map(|r| cx.replica(r))
        .collect();
    let uncovered = uncovered_ranges(snapshot);
    let uncovered_count = uncovered.iter().map(|u| u.slot_count).sum();
    ClusterOverview {
        cluster: cluster.to_string(),
        time: format_time(snapshot.time),
        poll_duration_seconds: snapshot.duration.as_secs_f64(),
        status: report.status,
        summary: report.summary.clone(),
        cluster_state: majority_state(snapshot),
        consistent: view.consistent,
        nodes: NodeCounts {
            known: view.nodes.len(),
            polled: report.polled,
            reachable: report.reachable,
        },
        slots: SlotCoverage {
            covered: u32::from(crate::parse::cluster_nodes::SLOT_COUNT)
                .saturating_sub(uncovered_count),
            uncovered: uncovered_count,
            uncovered_ranges: uncovered,
        },
        shards,
        orphan_replicas,
        unreachable: unreachable(snapshot),
        risk: risk_figures(snapshot),
        problems: report.problems,
    }
}

/// What the entry builders share: the snapshot, lags by replica address, hostnames and
/// colocation by node, and the severity of each node.
struct Context<'a> {
    snapshot: &'a Snapshot,
    lags: HashMap<String, i64>,
    hostnames: HashMap<&'a str, &'a str>,
    colocated: BTreeMap<String, usize>,
    severity: HashMap<&'a str, Status>,
}

impl<'a> Context<'a> {
    fn new(snapshot: &'a Snapshot, problems: &'a [Problem]) -> Self {
        let mut severity: HashMap<&str, Status> = HashMap::new();
        for p in problems {
            for id in &p.nodes {
                let s = severity.entry(id.as_str()).or_insert(Status::Ok);
                *s = (*s).max(p.severity);
            }
        }
        Context {
            snapshot,
            lags: replication_lags(snapshot)
                .into_iter()
                .map(|(r, _, lag)| (r, lag))
                .collect(),
            hostnames: hostnames(snapshot),
            colocated: risk::colocated_replicas(&snapshot.view),
            severity,
        }
    }

    fn severity_of(&self, id: &str) -> Status {
        self.severity.get(id).copied().unwrap_or(Status::Ok)
    }

    fn node(&self, n: &ViewNode) -> NodeEntry {
        let stats = self
            .snapshot
            .data_of(&n.id)
            .and_then(|d| d.stats.as_deref());
        let bytes = |v: f64| (v.is_finite() && v >= 0.0).then_some(v as u64);
        NodeEntry {
            id: n.id.clone(),
            addr: n.addr.clone(),
            hostname: self.hostnames.get(n.id.as_str()).map(|h| (*h).to_string()),
            reachable: n.reachable,
            error: check::poll_error(self.snapshot, n),
            cluster_state: check::node_cluster_state(self.snapshot, n),
            flags: NodeFlags {
                pfail_observers: n.pfail_reporters.len(),
                fail_observers: n.fail_reporters.len(),
                nofailover: n.nofailover,
            },
            used_memory_bytes: stats
                .and_then(|s| s.info.field("used_memory"))
                .and_then(bytes),
            maxmemory_bytes: stats
                .and_then(|s| s.config.maxmemory.or_else(|| s.info.field("maxmemory")))
                .and_then(bytes),
            severity: self.severity_of(&n.id),
        }
    }

    fn replica(&self, r: &ViewNode) -> ReplicaEntry {
        let link = self
            .snapshot
            .data_of(&r.id)
            .filter(|_| r.reachable)
            .and_then(|d| d.info.master_link_up)
            .map(|up| if up { "up" } else { "down" });
        ReplicaEntry {
            node: self.node(r),
            master_id: r.master_id.clone(),
            link,
            lag_bytes: r.addr.as_ref().and_then(|a| self.lags.get(a)).copied(),
        }
    }

    fn shard(&self, m: &ViewNode) -> Shard {
        let replicas: Vec<ReplicaEntry> = check::replicas_of(&self.snapshot.view, &m.id)
            .into_iter()
            .map(|r| self.replica(r))
            .collect();
        let master = MasterEntry {
            node: self.node(m),
            slots: ranges_text(&m.slots),
            slot_count: m.slot_count(),
            config_epoch: m.config_epoch,
            migrating: m.migrating,
            importing: m.importing,
            colocated_replicas: m.addr.as_ref().and_then(|a| self.colocated.get(a)).copied(),
        };
        let severity = replicas
            .iter()
            .map(|r| r.node.severity)
            .fold(master.node.severity, Status::max);
        Shard {
            severity,
            master,
            replicas,
        }
    }
}

fn ranges_text(ranges: &[SlotRange]) -> Vec<String> {
    ranges.iter().map(ToString::to_string).collect()
}

/// Announced hostnames by node id: a node's own line wins, else the first observer's.
fn hostnames(snapshot: &Snapshot) -> HashMap<&str, &str> {
    let mut own: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for data in snapshot.observations.values().filter_map(|o| o.data()) {
        for line in data.nodes.lines() {
            let Some(h) = line.endpoint.hostname.as_deref() else {
                continue;
            };
            let map = if line.flags().myself {
                &mut own
            } else {
                &mut seen
            };
            map.entry(line.id.as_str()).or_insert(h);
        }
    }
    seen.extend(own);
    seen
}

/// The uncovered slot groups as the document shows them.
fn uncovered_ranges(snapshot: &Snapshot) -> Vec<UncoveredRange> {
    check::uncovered(snapshot)
        .into_iter()
        .map(|u| UncoveredRange {
            slots: ranges_text(&u.ranges),
            slot_count: u.ranges.iter().map(SlotRange::len).sum(),
            master_id: u.master,
            reason: u.why,
        })
        .collect()
}

/// `cluster_state` as most answering nodes report it; a tie is `fail`.
fn majority_state(snapshot: &Snapshot) -> Option<&'static str> {
    let (ok, fail) = snapshot
        .observations
        .values()
        .filter_map(|o| o.data())
        .fold((0usize, 0usize), |(ok, fail), d| {
            if d.cluster_info.state_ok {
                (ok + 1, fail)
            } else {
                (ok, fail + 1)
            }
        });
    match (ok, fail) {
        (0, 0) => None,
        (ok, fail) if ok > fail => Some("ok"),
        _ => Some("fail"),
    }
}

fn unreachable(snapshot: &Snapshot) -> Vec<UnreachableNode> {
    let view: &ClusterView = &snapshot.view;
    snapshot
        .observations
        .values()
        .filter_map(|o| {
            let f = o.result.as_ref().err()?;
            let member = view.by_addr(&o.addr);
            Some(UnreachableNode {
                addr: o.addr.clone(),
                id: member.map(|n| n.id.clone()),
                role: member.map(|n| n.role.as_str()),
                reason: f.reason.as_str(),
                message: f.message.clone(),
            })
        })
        .collect()
}

fn risk_figures(snapshot: &Snapshot) -> RiskFigures {
    RiskFigures {
        colocated_replicas: risk::colocated_replicas(&snapshot.view),
        host_masters: risk::host_masters(&snapshot.view),
        slot_skew_ratio: risk::slot_skew(&snapshot.view),
        memory_skew_ratio: risk::memory_skew(snapshot),
    }
}

/// The document as JSON bytes.
pub fn to_json(overview: &ClusterOverview) -> Vec<u8> {
    serde_json::to_vec(overview).unwrap_or_else(|e| {
        let error = format!("cannot encode the overview: {e}");
        serde_json::json!({ "error": error })
            .to_string()
            .into_bytes()
    })
}
