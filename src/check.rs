//! `redis-cluster-exporter check`: a one-shot health check of the whole cluster for CI and
//! Nagios-style monitoring. [`evaluate`] is pure (a [`Snapshot`] in, a [`Report`] out); [`poll`]
//! is the only IO: one or two poll rounds, bounded as a whole.
//!
//! Exit codes follow the monitoring-plugin contract: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use crate::config::{Config, DEFAULT_MAX_LAG_BYTES};
use crate::model::{NodeObservation, Role, Snapshot, ViewNode, replication_lags};
use crate::parse::cluster_nodes::{SLOT_COUNT, SlotRange, format_ranges, slots_to_ranges};
use crate::poller::{Poller, PollerSettings};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

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
        vec![Problem {
            severity: Status::Unknown,
            text: text.into(),
        }],
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
            vec![Problem {
                severity: Status::Unknown,
                text,
            }],
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
            vec![Problem {
                severity: Status::Unknown,
                text: "no node gave a usable CLUSTER NODES reply".into(),
            }],
            Vec::new(),
            Risk::default(),
            0,
            polled,
            answered,
            opts,
        );
    }

    let name = |id: &str| -> String {
        view.nodes
            .get(id)
            .and_then(|n| n.addr.clone())
            .unwrap_or_else(|| format!("node {}", id.get(..8).unwrap_or(id)))
    };
    let observed = |n: &ViewNode| n.addr.as_deref().is_some_and(|a| obs.contains_key(a));
    let poll_error = |n: &ViewNode| -> Option<String> {
        if n.reachable {
            return None;
        }
        let o = obs.get(n.addr.as_deref()?)?;
        Some(failure_text(o).unwrap_or_else(|| "answered as another node".into()))
    };
    let mut problems = Vec::new();
    let mut warn = |text: String| {
        problems.push(Problem {
            severity: Status::Warning,
            text,
        })
    };
    let mut crit: Vec<Problem> = Vec::new();

    // Uncovered slots, grouped by why.
    let mut groups: Vec<(Vec<SlotRange>, String)> = Vec::new();
    let mut owned = vec![false; usize::from(SLOT_COUNT)];
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
    for m in &masters {
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
        } else if !m.reachable && observed(m) {
            Some("unreachable")
        } else {
            None
        };
        if let Some(why) = why {
            groups.push((m.slots.clone(), format!("master {} {why}", name(&m.id))));
        }
    }
    let unowned = slots_to_ranges(
        (0..SLOT_COUNT).filter(|&s| !owned.get(usize::from(s)).copied().unwrap_or(true)),
    );
    if !unowned.is_empty() {
        groups.push((unowned, "no owner".into()));
    }
    groups.sort_by_key(|(r, _)| r.first().map_or(0, |r| r.start));
    let uncovered: u32 = groups
        .iter()
        .flat_map(|(r, _)| r.iter())
        .map(SlotRange::len)
        .sum();
    if uncovered > 0 {
        let parts: Vec<String> = groups
            .iter()
            .map(|(r, why)| format!("{}, {why}", format_ranges(r)))
            .collect();
        crit.push(Problem {
            severity: Status::Critical,
            text: format!(
                "{} uncovered ({})",
                plural(uncovered as usize, "slot", "slots"),
                parts.join("; ")
            ),
        });
    }

    // cluster_state as each node reports it.
    let failing: Vec<&str> = obs
        .values()
        .filter(|o| o.data().is_some_and(|d| !d.cluster_info.state_ok))
        .map(|o| o.addr.as_str())
        .collect();
    if !failing.is_empty() {
        crit.push(Problem {
            severity: Status::Critical,
            text: format!("cluster_state is fail on {}", failing.join(", ")),
        });
    }

    // Failure flags.
    for n in view.nodes.values() {
        let role = n.role.as_str();
        if n.is_failed() {
            let text = format!(
                "{role} {} is flagged fail by {}",
                name(&n.id),
                plural(n.fail_reporters.len(), "node", "nodes")
            );
            if n.role == Role::Master && !n.slots.is_empty() {
                crit.push(Problem {
                    severity: Status::Critical,
                    text,
                });
            } else if n.role == Role::Master {
                warn(format!("{text} (it owns no slots)"));
            } else {
                warn(text);
            }
        } else if !n.pfail_reporters.is_empty() {
            warn(format!(
                "{role} {} is flagged pfail by {}",
                name(&n.id),
                plural(n.pfail_reporters.len(), "node", "nodes")
            ));
        }
    }

    // Masters without a healthy replica.
    let healthy = |r: &ViewNode| {
        !r.is_failed() && r.pfail_reporters.is_empty() && (r.reachable || !observed(r))
    };
    for m in masters.iter().filter(|m| !m.slots.is_empty()) {
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
                    format!("{} {state}", name(&r.id))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        warn(format!(
            "master {} ({}) has no healthy replica ({why})",
            name(&m.id),
            plural(m.slot_count() as usize, "slot", "slots")
        ));
    }

    // Nodes the check could not poll (slot-owning masters are already CRITICAL above).
    for n in view.nodes.values() {
        if n.role == Role::Master && !n.slots.is_empty() {
            continue;
        }
        if let Some(err) = poll_error(n) {
            warn(format!(
                "{} {} unreachable ({err})",
                n.role.as_str(),
                name(&n.id)
            ));
        }
    }
    let members = view.addrs();
    for o in obs.values().filter(|o| !members.contains(&o.addr)) {
        if let Some(err) = failure_text(o) {
            warn(format!("seed {} unreachable ({err})", o.addr));
        }
    }

    // Open slots, from each node's own line.
    for n in view.nodes.values() {
        let Some(me) = snapshot.data_of(&n.id).and_then(|d| d.nodes.myself()) else {
            continue;
        };
        let list = |slots: &[crate::parse::cluster_nodes::OpenSlot], dir: &str| {
            let mut parts: Vec<String> = slots
                .iter()
                .take(5)
                .map(|s| format!("{} {dir} {}", s.slot, name(&s.peer)))
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
            warn(format!(
                "open slots on {}: {}",
                name(&n.id),
                parts.join("; ")
            ));
        }
    }

    // Slot map agreement.
    if !view.consistent {
        let mut maps: BTreeMap<Vec<(u16, u16, String)>, Vec<&str>> = BTreeMap::new();
        for o in obs.values() {
            let Some(d) = o.data() else { continue };
            let mut claims: Vec<(u16, u16, String)> = d
                .nodes
                .nodes
                .iter()
                .filter(|l| l.flags.master && !l.flags.handshake)
                .flat_map(|l| l.slots.iter().map(|r| (r.start, r.end, l.id.clone())))
                .collect();
            claims.sort_unstable();
            maps.entry(claims).or_default().push(o.addr.as_str());
        }
        let mut sides: Vec<Vec<&str>> = maps.into_values().collect();
        sides.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let minority: Vec<&str> = sides.iter().skip(1).flatten().copied().collect();
        warn(format!(
            "slot map not consistent: {} different maps; {} disagree with {}",
            sides.len(),
            minority.join(", "),
            sides.first().map(|s| s.join(", ")).unwrap_or_default()
        ));
    }

    // Replication lag.
    let lags: HashMap<String, i64> = replication_lags(snapshot)
        .into_iter()
        .map(|(r, m, lag)| {
            if u64::try_from(lag).unwrap_or(0) > opts.max_lag_bytes {
                warn(format!(
                    "replica {r} is {lag} bytes behind its master {m} (over --max-lag-bytes {})",
                    opts.max_lag_bytes
                ));
            }
            (r, lag)
        })
        .collect();

    problems.splice(0..0, crit);

    // The node list: each master (by first slot), then its replicas, then anything left.
    let mut order: Vec<&ViewNode> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for m in &masters {
        order.push(m);
        placed.insert(&m.id);
        let mut reps: Vec<&ViewNode> = view
            .nodes
            .values()
            .filter(|r| r.role == Role::Replica && r.master_id.as_deref() == Some(&m.id))
            .collect();
        reps.sort_by_key(|r| &r.addr);
        for r in reps {
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
    let nodes = order
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
            error: poll_error(n),
            cluster_state: snapshot.data_of(&n.id).filter(|_| n.reachable).map(|d| {
                if d.cluster_info.state_ok {
                    "ok"
                } else {
                    "fail"
                }
            }),
            replication_lag_bytes: n.addr.as_ref().and_then(|a| lags.get(a)).copied(),
            migrating: n.migrating,
            importing: n.importing,
        })
        .collect();
    let risk = Risk::of(snapshot);
    problems.extend(risk.problems(snapshot));
    finish(problems, nodes, risk, uncovered, polled, answered, opts)
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

/// Polls the cluster for the check: a first round (which already polls the members the seeds
/// reveal) and, when that round named members it did not poll, a second one whose observations
/// override the first's. The whole run ends within [`BUDGET_NODE_TIMEOUTS`] `--node-timeout`s;
/// `None` when not even the first round completed in that time.
pub async fn poll(config: &Config) -> Option<Snapshot> {
    let budget = config.node_timeout * BUDGET_NODE_TIMEOUTS;
    let deadline = tokio::time::Instant::now() + budget;
    let mut poller = Poller::new(PollerSettings {
        seeds: config.seeds.clone(),
        connect: config.connect.clone(),
        node_timeout: config.node_timeout,
        poll_interval: config.node_timeout,
        password_file: None,
        reload: Arc::new(AtomicBool::new(false)),
        full_topology_max_nodes: config.full_topology_max_nodes,
        stats_interval: Duration::from_secs(24 * 3600),
        hot_slots: None,
    });
    let first = tokio::time::timeout_at(deadline, poller.poll_once())
        .await
        .ok()?;
    let missing = first
        .view
        .addrs()
        .into_iter()
        .any(|a| !first.observations.contains_key(&a));
    if !missing {
        return Some(first);
    }
    match tokio::time::timeout_at(deadline, poller.poll_once()).await {
        Ok(second) => {
            let mut merged = first.observations;
            merged.extend(second.observations);
            Some(Snapshot::new(
                first.time,
                first.duration + second.duration,
                merged.into_values().collect(),
            ))
        }
        Err(_) => Some(first),
    }
}

mod risk;
pub use risk::{Colocated, Risk, risk_thresholds};

#[cfg(test)]
mod tests;
