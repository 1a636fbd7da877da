//! `redis-cluster-exporter check`: a one-shot health check of the whole cluster for CI and
//! Nagios-style monitoring. [`evaluate`] is pure (a [`Snapshot`] in, a [`Report`] out);
//! [`crate::app::poll_for_check`] is its IO: one or two poll rounds, bounded as a whole.
//!
//! Exit codes follow the monitoring-plugin contract: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use crate::model::{ClusterView, NodeObservation, Role, Snapshot, ViewNode, replication_lags};
use crate::parse::cluster_nodes::{
    OpenSlot, SLOT_COUNT, SlotRange, format_ranges, slots_to_ranges,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The whole check (discovery round, plus a second round when the first revealed members it
/// could not poll) ends within this many `--node-timeout`s.
pub const BUDGET_NODE_TIMEOUTS: u32 = 3;

/// Overall result, and the severity of one problem. Ordered by how bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Nothing wrong.
    Ok,
    /// Degraded: the cluster serves every slot but has lost redundancy or is mid-change.
    Warning,
    /// The check could not tell (no node reachable).
    Unknown,
    /// Slots are not served, or a node reports `cluster_state:fail`.
    Critical,
}

impl Status {
    /// The monitoring-plugin exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// How bad.
    pub severity: Status,
    /// What, naming the nodes involved.
    pub text: String,
    /// Ids of the cluster members the problem is about (empty when it concerns no member, e.g.
    /// an unreachable seed): lets a view put each problem beside its shard.
    pub nodes: Vec<String>,
}

impl Problem {
    fn new(severity: Status, text: impl Into<String>, nodes: Vec<String>) -> Problem {
        Problem {
            severity,
            text: text.into(),
            nodes,
        }
    }
}

/// Slots that are not served, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    /// The slots.
    pub ranges: Vec<SlotRange>,
    /// The master that owns them but does not serve them; `None` for slots no master owns.
    pub master: Option<String>,
    /// Why, naming the master: `master 10.0.0.1:7000 failed`, `... unreachable`, `no owner`.
    pub why: String,
}

/// One cluster member as the check saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    /// Node id.
    pub id: String,
    /// `host:port`, when known.
    pub addr: Option<String>,
    /// `master` or `replica`.
    pub role: &'static str,
    /// The master's id, for replicas.
    pub master_id: Option<String>,
    /// The master's address, for replicas.
    pub master_addr: Option<String>,
    /// Owned slots as ranges (`0-5460,5462`), empty when none.
    pub slots: String,
    /// Number of owned slots.
    pub slot_count: u32,
    /// Config epoch.
    pub config_epoch: u64,
    /// Reachable nodes flagging it `fail?`.
    pub pfail_reporters: usize,
    /// Reachable nodes flagging it `fail`.
    pub fail_reporters: usize,
    /// The check polled it successfully.
    pub reachable: bool,
    /// Why polling it failed.
    pub error: Option<String>,
    /// `cluster_state` as the node itself reports it (`ok`/`fail`), when reachable.
    pub cluster_state: Option<&'static str>,
    /// Master's offset minus this replica's, when both answered.
    pub replication_lag_bytes: Option<i64>,
    /// Slots it is migrating away.
    pub migrating: usize,
    /// Slots it is importing.
    pub importing: usize,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Worst severity among the problems (OK when there are none).
    pub status: Status,
    /// The monitoring-plugin exit code of `status`.
    pub exit_code: i32,
    /// The Nagios-style status line.
    pub summary: String,
    /// Problems, worst first.
    pub problems: Vec<Problem>,
    /// Every member, each master followed by its replicas.
    pub nodes: Vec<NodeReport>,
    /// Topology-risk figures.
    pub risk: Risk,
    /// Slots not served (no owner, owner failed or unreachable).
    pub uncovered_slots: u32,
    /// Addresses polled.
    pub polled: usize,
    /// Addresses that answered.
    pub reachable: usize,
    /// The `--max-lag-bytes` threshold applied.
    pub max_lag_bytes: u64,
}

/// Default `--max-lag-bytes`: 100 MiB. A replica further behind than that would need a long
/// catch-up (or a full resync) before it could safely take over.
pub const DEFAULT_MAX_LAG_BYTES: u64 = 100 * 1024 * 1024;

/// Thresholds of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Replica lag above this many bytes is a WARNING.
    pub max_lag_bytes: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_lag_bytes: DEFAULT_MAX_LAG_BYTES,
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn failure_text(obs: &NodeObservation) -> Option<String> {
    obs.result
        .as_ref()
        .err()
        .map(|f| format!("{}: {}", f.reason.as_str(), f.message))
}

/// A report that says only that the check could not tell.
pub fn unknown(text: impl Into<String>, opts: &CheckOptions) -> Report {
    finish(
        vec![Problem::new(Status::Unknown, text, Vec::new())],
        Vec::new(),
        Risk::default(),
        0,
        0,
        0,
        opts,
    )
}

fn finish(
    mut problems: Vec<Problem>,
    nodes: Vec<NodeReport>,
    risk: Risk,
    uncovered_slots: u32,
    polled: usize,
    reachable: usize,
    opts: &CheckOptions,
) -> Report {
    // Worst first; the order of equals is the order they were found in.
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    let status = problems
        .iter()
        .map(|p| p.severity)
        .max()
        .unwrap_or(Status::Ok);
    let headline = match problems.split_first() {
        None => {
            let masters = nodes.iter().filter(|n| n.role == "master").count();
            format!(
                "{} ({}, {}), all {SLOT_COUNT} slots covered",
                plural(nodes.len(), "node", "nodes"),
                plural(masters, "master", "masters"),
                plural(nodes.len() - masters, "replica", "replicas"),
            )
        }
        Some((first, [])) => first.text.clone(),
        Some((first, rest)) => format!(
            "{} (+{} more {})",
            first.text,
            rest.len(),
            if rest.len() == 1 {
                "problem"
            } else {
                "problems"
            }
        ),
    };
    Report {
        status,
        exit_code: status.exit_code(),
        summary: format!("REDIS CLUSTER {} - {headline}", status.as_str()),
        problems,
        nodes,
        risk,
        uncovered_slots,
        polled,
        reachable,
        max_lag_bytes: opts.max_lag_bytes,
    }
}

/// Evaluates one snapshot (every member polled) into a report.
pub fn evaluate(snapshot: &Snapshot, opts: &CheckOptions) -> Report {
    let view = &snapshot.view;
    let obs = &snapshot.observations;
    let polled = obs.len();
    let answered = obs.values().filter(|o| o.result.is_ok()).count();
    if answered == 0 {
        let why: Vec<String> = obs
            .values()
            .map(|o| format!("{} {}", o.addr, failure_text(o).unwrap_or_default()))
            .collect();
        let text = if why.is_empty() {
            "no node to poll".to_string()
        } else {
            format!("no node reachable ({})", why.join("; "))
        };
        return finish(
            vec![Problem::new(Status::Unknown, text, Vec::new())],
            Vec::new(),
            Risk::default(),
            0,
            polled,
            0,
            opts,
        );
    }
    if view.nodes.is_empty() {
        return finish(
            vec![Problem::new(
                Status::Unknown,
                "no node gave a usable CLUSTER NODES reply",
                Vec::new(),
            )],
            Vec::new(),
            Risk::default(),
            0,
            polled,
            answered,
            opts,
        );
    }

    let uncovered = uncovered(snapshot);
    let mut problems = slot_problems(snapshot, &uncovered);
    problems.extend(flag_problems(snapshot));
    problems.extend(redundancy_problems(snapshot));
    problems.extend(reachability_problems(snapshot));
    problems.extend(open_slot_problems(snapshot));
    problems.extend(consistency_problem(snapshot));
    let (lag_problems, lags) = lag_problems(snapshot, opts);
    problems.extend(lag_problems);
    let uncovered_slots = uncovered
        .iter()
        .flat_map(|u| u.ranges.iter())
        .map(SlotRange::len)
        .sum();
    let nodes = node_reports(snapshot, &lags);
    let risk = Risk::of(snapshot);
    problems.extend(risk.problems(snapshot));
    finish(
        problems,
        nodes,
        risk,
        uncovered_slots,
        polled,
        answered,
        opts,
    )
}

/// How a problem names a member: its address, else `node <id prefix>`.
fn name(view: &ClusterView, id: &str) -> String {
    view.nodes
        .get(id)
        .and_then(|n| n.addr.clone())
        .unwrap_or_else(|| format!("node {}", id.get(..8).unwrap_or(id)))
}

/// The exporter tried to poll this member this round.
fn observed(snapshot: &Snapshot, n: &ViewNode) -> bool {
    n.addr
        .as_deref()
        .is_some_and(|a| snapshot.observations.contains_key(a))
}

/// Why polling an unreachable member failed (`None` when it answered or was not polled).
pub fn poll_error(snapshot: &Snapshot, n: &ViewNode) -> Option<String> {
    if n.reachable {
        return None;
    }
    let o = snapshot.observations.get(n.addr.as_deref()?)?;
    Some(failure_text(o).unwrap_or_else(|| "answered as another node".into()))
}

/// Masters ordered by their first slot (slotless ones last), then address.
pub fn masters_in_slot_order(view: &ClusterView) -> Vec<&ViewNode> {
    let mut masters: Vec<&ViewNode> = view
        .nodes
        .values()
        .filter(|n| n.role == Role::Master)
        .collect();
    masters.sort_by_key(|m| {
        (
            m.slots.first().map_or(u32::MAX, |r| u32::from(r.start)),
            &m.addr,
        )
    });
    masters
}

/// The replicas of a master, by address.
pub fn replicas_of<'a>(view: &'a ClusterView, master: &str) -> Vec<&'a ViewNode> {
    let mut reps: Vec<&ViewNode> = view
        .nodes
        .values()
        .filter(|r| r.role == Role::Replica && r.master_id.as_deref() == Some(master))
        .collect();
    reps.sort_by_key(|r| &r.addr);
    reps
}

/// Slots not served, in slot order: those of each slot-owning master flagged `fail` or not
/// answering, and those no master owns.
pub fn uncovered(snapshot: &Snapshot) -> Vec<Uncovered> {
    let view = &snapshot.view;
    let mut groups: Vec<Uncovered> = Vec::new();
    let mut owned = vec![false; usize::from(SLOT_COUNT)];
    for m in masters_in_slot_order(view) {
        for r in &m.slots {
            for s in r.start..=r.end {
                if let Some(cell) = owned.get_mut(usize::from(s)) {
                    *cell = true;
                }
            }
        }
        if m.slots.is_empty() {
            continue;
        }
        let why = if m.is_failed() {
            Some("failed")
        } else if !m.reachable && observed(snapshot, m) {
            Some("unreachable")
        } else {
            None
        };
        if let Some(why) = why {
            groups.push(Uncovered {
                ranges: m.slots.clone(),
                master: Some(m.id.clone()),
                why: format!("master {} {why}", name(view, &m.id)),
            });
        }
    }
    let unowned = slots_to_ranges(
        (0..SLOT_COUNT).filter(|&s| !owned.get(usize::from(s)).copied().unwrap_or(true)),
    );
    if !unowned.is_empty() {
        groups.push(Uncovered {
            ranges: unowned,
            master: None,
            why: "no owner".into(),
        });
    }
    groups.sort_by_key(|u| u.ranges.first().map_or(0, |r| r.start));
    groups
}

/// CRITICAL: uncovered slots, and nodes reporting `cluster_state:fail`.
fn slot_problems(snapshot: &Snapshot, uncovered: &[Uncovered]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let count: u32 = uncovered
        .iter()
        .flat_map(|u| u.ranges.iter())
        .map(SlotRange::len)
        .sum();
    if count > 0 {
        let parts: Vec<String> = uncovered
            .iter()
            .map(|u| format!("{}, {}", format_ranges(&u.ranges), u.why))
            .collect();
        problems.push(Problem::new(
            Status::Critical,
            format!(
                "{} uncovered ({})",
                plural(count as usize, "slot", "slots"),
                parts.join("; ")
            ),
            uncovered.iter().filter_map(|u| u.master.clone()).collect(),
        ));
    }
    let failing: Vec<&NodeObservation> = snapshot
        .observations
        .values()
        .filter(|o| o.data().is_some_and(|d| !d.cluster_info.state_ok))
        .collect();
    if !failing.is_empty() {
        let addrs: Vec<&str> = failing.iter().map(|o| o.addr.as_str()).collect();
        problems.push(Problem::new(
            Status::Critical,
            format!("cluster_state is fail on {}", addrs.join(", ")),
            failing
                .iter()
                .filter_map(|o| o.node_id().map(str::to_string))
                .collect(),
        ));
    }
    problems
}

/// `fail` and `fail?` flags: CRITICAL for a slot-owning master, else WARNING.
fn flag_problems(snapshot: &Snapshot) -> Vec<Problem> {
    let view = &snapshot.view;
    let mut problems = Vec::new();
    for n in view.nodes.values() {
        let role = n.role.as_str();
        let (severity, text) = if n.is_failed() {
            let text = format!(
                "{role} {} is flagged fail by {}",
                name(view, &n.id),
                plural(n.fail_reporters.len(), "node", "nodes")
            );
            match (n.role, n.slots.is_empty()) {
                (Role::Master, false) => (Status::Critical, text),
                (Role::Master, true) => (Status::Warning, format!("{text} (it owns no slots)")),
                (Role::Replica, _) => (Status::Warning, text),
            }
        } else if !n.pfail_reporters.is_empty() {
            let text = format!(
                "{role} {} is flagged pfail by {}",
                name(view, &n.id),
                plural(n.pfail_reporters.len(), "node", "nodes")
            );
            (Status::Warning, text)
        } else {
            continue;
        };
        problems.push(Problem::new(severity, text, vec![n.id.clone()]));
    }
    problems
}

/// WARNING: slot-owning masters without a healthy replica.
fn redundancy_problems(snapshot: &Snapshot) -> Vec<Problem> {
    let view = &snapshot.view;
    let healthy = |r: &ViewNode| {
        !r.is_failed() && r.pfail_reporters.is_empty() && (r.reachable || !observed(snapshot, r))
    };
    let mut problems = Vec::new();
    for m in masters_in_slot_order(view)
        .into_iter()
        .filter(|m| !m.slots.is_empty())
    {
        let replicas: Vec<&ViewNode> = view
            .nodes
            .values()
            .filter(|r| r.role == Role::Replica && r.master_id.as_deref() == Some(&m.id))
            .collect();
        if replicas.iter().any(|r| healthy(r)) {
            continue;
        }
        let why = if replicas.is_empty() {
            "it has none".to_string()
        } else {
            replicas
                .iter()
                .map(|r| {
                    let state = if r.is_failed() {
                        "flagged fail"
                    } else if !r.pfail_reporters.is_empty() {
                        "flagged pfail"
                    } else {
                        "unreachable"
                    };
                    format!("{} {state}", name(view, &r.id))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut ids = vec![m.id.clone()];
        ids.extend(replicas.iter().map(|r| r.id.clone()));
        problems.push(Problem::new(
            Status::Warning,
            format!(
                "master {} ({}) has no healthy replica ({why})",
                name(view, &m.id),
                plural(m.slot_count() as usize, "slot", "slots")
            ),
            ids,
        ));
    }
    problems
}

/// WARNING: members (other than slot-owning masters, already CRITICAL) and seeds that did not
/// answer.
fn reachability_problems(snapshot: &Snapshot) -> Vec<Problem> {
    let view = &snapshot.view;
    let mut problems = Vec::new();
    for n in view.nodes.values() {
        if n.role == Role::Master && !n.slots.is_empty() {
            continue;
        }
        if let Some(err) = poll_error(snapshot, n) {
            problems.push(Problem::new(
                Status::Warning,
                format!(
                    "{} {} unreachable ({err})",
                    n.role.as_str(),
                    name(view, &n.id)
                ),
                vec![n.id.clone()],
            ));
        }
    }
    let members = view.addrs();
    for o in snapshot
        .observations
        .values()
        .filter(|o| !members.contains(&o.addr))
    {
        if let Some(err) = failure_text(o) {
            problems.push(Problem::new(
                Status::Warning,
                format!("seed {} unreachable ({err})", o.addr),
                Vec::new(),
            ));
        }
    }
    problems
}

/// WARNING: slots migrating or importing, from each node's own line.
fn open_slot_problems(snapshot: &Snapshot) -> Vec<Problem> {
    let view = &snapshot.view;
    let mut problems = Vec::new();
    for n in view.nodes.values() {
        let Some(me) = snapshot.data_of(&n.id).and_then(|d| d.nodes.myself()) else {
            continue;
        };
        let list = |slots: &[OpenSlot], dir: &str| {
            let mut parts: Vec<String> = slots
                .iter()
                .take(5)
                .map(|s| format!("{} {dir} {}", s.slot, name(view, &s.peer)))
                .collect();
            if slots.len() > 5 {
                parts.push(format!("{} more", slots.len() - 5));
            }
            parts.join(", ")
        };
        let mut parts = Vec::new();
        if !me.migrating.is_empty() {
            parts.push(format!("migrating {}", list(&me.migrating, "to")));
        }
        if !me.importing.is_empty() {
            parts.push(format!("importing {}", list(&me.importing, "from")));
        }
        if !parts.is_empty() {
            problems.push(Problem::new(
                Status::Warning,
                format!("open slots on {}: {}", name(view, &n.id), parts.join("; ")),
                vec![n.id.clone()],
            ));
        }
    }
    problems
}

/// WARNING: the answering nodes do not agree on the slot map (naming the minority).
fn consistency_problem(snapshot: &Snapshot) -> Option<Problem> {
    if snapshot.view.consistent {
        return None;
    }
    let mut maps: BTreeMap<Vec<(u16, u16, String)>, Vec<&NodeObservation>> = BTreeMap::new();
    for o in snapshot.observations.values() {
        let Some(d) = o.data() else { continue };
        let claims: Vec<(u16, u16, String)> = d
            .nodes
            .claims()
            .iter()
            .map(|c| (c.start, c.end, c.owner.as_str().to_string()))
            .collect();
        maps.entry(claims).or_default().push(o);
    }
    let mut sides: Vec<Vec<&NodeObservation>> = maps.into_values().collect();
    sides.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let minority: Vec<&NodeObservation> = sides.iter().skip(1).flatten().copied().collect();
    let addrs = |side: &[&NodeObservation]| {
        side.iter()
            .map(|o| o.addr.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(Problem::new(
        Status::Warning,
        format!(
            "slot map not consistent: {} different maps; {} disagree with {}",
            sides.len(),
            addrs(&minority),
            sides.first().map(|s| addrs(s)).unwrap_or_default()
        ),
        minority
            .iter()
            .filter_map(|o| o.node_id().map(str::to_string))
            .collect(),
    ))
}

/// WARNING: replicas further behind than `--max-lag-bytes`; also every known lag by replica
/// address.
fn lag_problems(snapshot: &Snapshot, opts: &CheckOptions) -> (Vec<Problem>, HashMap<String, i64>) {
    let mut problems = Vec::new();
    let lags = replication_lags(snapshot)
        .into_iter()
        .map(|(r, m, lag)| {
            if u64::try_from(lag).unwrap_or(0) > opts.max_lag_bytes {
                let ids = [&r, &m]
                    .iter()
                    .filter_map(|a| snapshot.view.by_addr(a).map(|n| n.id.clone()))
                    .collect();
                problems.push(Problem::new(
                    Status::Warning,
                    format!(
                        "replica {r} is {lag} bytes behind its master {m} (over --max-lag-bytes {})",
                        opts.max_lag_bytes
                    ),
                    ids,
                ));
            }
            (r, lag)
        })
        .collect();
    (problems, lags)
}

/// Every member: each master (by first slot), then its replicas, then anything left.
fn node_reports(snapshot: &Snapshot, lags: &HashMap<String, i64>) -> Vec<NodeReport> {
    let view = &snapshot.view;
    let mut order: Vec<&ViewNode> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for m in masters_in_slot_order(view) {
        order.push(m);
        placed.insert(&m.id);
        for r in replicas_of(view, &m.id) {
            order.push(r);
            placed.insert(&r.id);
        }
    }
    let mut rest: Vec<&ViewNode> = view
        .nodes
        .values()
        .filter(|n| !placed.contains(n.id.as_str()))
        .collect();
    rest.sort_by_key(|n| &n.addr);
    order.extend(rest);
    order
        .into_iter()
        .map(|n| NodeReport {
            id: n.id.clone(),
            addr: n.addr.clone(),
            role: n.role.as_str(),
            master_id: n.master_id.clone(),
            master_addr: n
                .master_id
                .as_deref()
                .and_then(|m| view.nodes.get(m))
                .and_then(|m| m.addr.clone()),
            slots: format_ranges(&n.slots),
            slot_count: n.slot_count(),
            config_epoch: n.config_epoch,
            pfail_reporters: n.pfail_reporters.len(),
            fail_reporters: n.fail_reporters.len(),
            reachable: n.reachable,
            error: poll_error(snapshot, n),
            cluster_state: node_cluster_state(snapshot, n),
            replication_lag_bytes: n.addr.as_ref().and_then(|a| lags.get(a)).copied(),
            migrating: n.migrating,
            importing: n.importing,
        })
        .collect()
}

/// `cluster_state` as a reachable member reports it (`ok`/`fail`).
pub fn node_cluster_state(snapshot: &Snapshot, n: &ViewNode) -> Option<&'static str> {
    snapshot.data_of(&n.id).filter(|_| n.reachable).map(|d| {
        if d.cluster_info.state_ok {
            "ok"
        } else {
            "fail"
        }
    })
}

/// The human report: the status line, the problems, then a table of every node.
pub fn render_human(report: &Report) -> String {
    let mut out = format!("{}\n", report.summary);
    if !report.problems.is_empty() {
        out.push_str("\nProblems:\n");
        for p in &report.problems {
            out.push_str(&format!("  {:<8}  {}\n", p.severity.as_str(), p.text));
        }
    }
    if report.nodes.is_empty() {
        return out;
    }
    out.push_str(&report.risk.render_human());
    out.push_str(&format!(
        "\nNodes: {} ({} of {} polled addresses answered)\n",
        report.nodes.len(),
        report.reachable,
        report.polled
    ));
    let dash = || "-".to_string();
    let mut rows: Vec<[String; 10]> = vec![[
        "ADDR".into(),
        "ID".into(),
        "ROLE".into(),
        "MASTER".into(),
        "SLOTS".into(),
        "EPOCH".into(),
        "STATE".into(),
        "PFAIL/FAIL".into(),
        "LAG".into(),
        "NOTE".into(),
    ]];
    for n in &report.nodes {
        let mut note = Vec::new();
        if let Some(e) = &n.error {
            note.push(format!("unreachable: {e}"));
        }
        if n.migrating + n.importing > 0 {
            note.push(format!(
                "migrating {}, importing {}",
                n.migrating, n.importing
            ));
        }
        rows.push([
            n.addr.clone().unwrap_or_else(dash),
            n.id.get(..8).unwrap_or(&n.id).to_string(),
            n.role.to_string(),
            n.master_addr
                .clone()
                .or_else(|| n.master_id.clone())
                .unwrap_or_else(dash),
            if n.slot_count == 0 {
                dash()
            } else {
                format!("{} ({})", n.slots, n.slot_count)
            },
            n.config_epoch.to_string(),
            n.cluster_state.map_or_else(dash, str::to_string),
            format!("{}/{}", n.pfail_reporters, n.fail_reporters),
            n.replication_lag_bytes
                .map_or_else(dash, |l| format!("{l} B")),
            note.join("; "),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::from(" ");
        for (cell, w) in row.iter().zip(widths.iter()) {
            line.push_str(&format!(" {cell:<w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The JSON report (one document).
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        format!("{{\"status\":\"UNKNOWN\",\"exit_code\":3,\"summary\":\"cannot render: {e}\"}}")
    })
}

mod risk;
pub use risk::{Colocated, Risk, risk_thresholds};

#[cfg(test)]
mod tests;
