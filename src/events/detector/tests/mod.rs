//! Unit tests of the detector, by concern; this module builds the hand-made clusters and
//! snapshots they share.

use super::*;

use crate::model::{FailureReason, NodeData, NodeObservation, NodeStats, PollFailure};

use crate::parse::{cluster_info, info};

use serde_json::Value;

use std::time::UNIX_EPOCH;

/// A node of a hand-built cluster.
#[derive(Clone)]
struct N {
    id: String,
    port: u16,
    master_of: Option<String>,
    epoch: u64,
    slots: String,
}

fn id(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

/// 3 masters a,b,c (epochs 1-3) with replicas d,e,f.
fn cluster() -> Vec<N> {
    let m = |c, port, epoch, slots: &str| N {
        id: id(c),
        port,
        master_of: None,
        epoch,
        slots: slots.into(),
    };
    let r = |c, port, of| N {
        id: id(c),
        port,
        master_of: Some(id(of)),
        epoch: 0,
        slots: String::new(),
    };
    vec![
        m('a', 7000, 1, "0-5460"),
        m('b', 7001, 2, "5461-10922"),
        m('c', 7002, 3, "10923-16383"),
        r('d', 7003, 'a'),
        r('e', 7004, 'b'),
        r('f', 7005, 'c'),
    ]
}

#[derive(Default, Clone)]
struct World {
    down: Vec<String>,
    /// (target id, flag) seen by every observer.
    flags: Vec<(String, &'static str)>,
    state_fail: bool,
    /// (id, mfstart_sent, auth_req_sent)
    counters: Vec<(String, u64, u64)>,
    /// (id, offset)
    offsets: Vec<(String, i64)>,
    second_offset: Vec<(String, i64)>,
    /// (id, cluster_stats_messages_fail_received)
    fail_received: Vec<(String, u64)>,
    /// observers that see a different owner for slot 0: (observer id, owner id)
    stale_owner_of_0: Vec<(String, String)>,
    /// (id, cluster_stats_messages_sent)
    messages_sent: Vec<(String, u64)>,
    /// (id, run_id of the telemetry): nodes without one have no telemetry
    run_ids: Vec<(String, &'static str)>,
    /// not polled this round (waiting to reconnect after failures)
    skipped: Vec<String>,
}

fn line(n: &N, all: &[N], me: bool, w: &World, observer: &str) -> String {
    let role = if n.master_of.is_some() {
        "slave"
    } else {
        "master"
    };
    let mut flags = vec![];
    if me {
        flags.push("myself");
    }
    flags.push(role);
    for (t, f) in &w.flags {
        if *t == n.id && !me {
            flags.push(f);
        }
    }
    let epoch = match &n.master_of {
        Some(m) => all.iter().find(|x| &x.id == m).map_or(0, |x| x.epoch),
        None => n.epoch,
    };
    let mut slots = n.slots.clone();
    for (obs, owner) in &w.stale_owner_of_0 {
        if obs == observer {
            if *owner == n.id {
                slots = format!("0 {slots}");
            } else if slots.starts_with("0-") {
                slots = slots.replacen("0-", "1-", 1);
            }
        }
    }
    format!(
        "{} 127.0.0.1:{}@{} {} {} 0 0 {} connected {}",
        n.id,
        n.port,
        n.port + 10000,
        flags.join(","),
        n.master_of.as_deref().unwrap_or("-"),
        epoch,
        slots
    )
}

fn snap(t: u64, all: &[N], w: &World) -> Snapshot {
    let observations = all
        .iter()
        .map(|me| {
            let addr = format!("127.0.0.1:{}", me.port);
            let result = if w.down.contains(&me.id) || w.skipped.contains(&me.id) {
                Err(PollFailure {
                    reason: FailureReason::Connect,
                    message: "refused".into(),
                    attempted: !w.skipped.contains(&me.id),
                })
            } else {
                let text: Vec<String> = all
                    .iter()
                    .map(|n| line(n, all, n.id == me.id, w, &me.id))
                    .collect();
                let (mf, ar) = w
                    .counters
                    .iter()
                    .find(|c| c.0 == me.id)
                    .map_or((0, 0), |c| (c.1, c.2));
                let fr = w.fail_received.iter().find(|c| c.0 == me.id).map_or(0, |c| c.1);
                let ms = w.messages_sent.iter().find(|c| c.0 == me.id).map_or(0, |c| c.1);
                let ci = format!(
                    "cluster_state:{}\ncluster_slots_ok:16384\ncluster_stats_messages_sent:{ms}\ncluster_stats_messages_mfstart_sent:{mf}\ncluster_stats_messages_auth-req_sent:{ar}\ncluster_stats_messages_fail_received:{fr}\ncluster_current_epoch:9\n",
                    if w.state_fail { "fail" } else { "ok" }
                );
                let off = w.offsets.iter().find(|o| o.0 == me.id).map_or(100, |o| o.1);
                let second = w.second_offset.iter().find(|o| o.0 == me.id).map_or(-1, |o| o.1);
                let role = if me.master_of.is_some() { "slave" } else { "master" };
                let inf = format!(
                    "role:{role}\nmaster_repl_offset:{off}\nslave_repl_offset:{off}\nsecond_repl_offset:{second}\n"
                );
                Ok(NodeData {
                    cluster_info: cluster_info::parse_cluster_info(&ci).unwrap(),
                    nodes: std::sync::Arc::new(
                        crate::topology::Topology::parse(&text.join("\n")).unwrap(),
                    ),
                    info: info::parse_info(&inf).unwrap(),
                    stats: w.run_ids.iter().find(|r| r.0 == me.id).map(|r| {
                        std::sync::Arc::new(NodeStats {
                            time: UNIX_EPOCH,
                            info: info::parse_info(&format!("run_id:{}\n", r.1)).unwrap(),
                            config: Default::default(),
                            slowlog: None,
                            latency_spikes: Vec::new(),
                            hot_slots: Default::default(),
                        })
                    }),
                    soft_failures: Vec::new(),
                })
            };
            NodeObservation {
                addr,
                result,
                duration: Duration::from_millis(1),
            }
        })
        .collect();
    Snapshot::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + t),
        Duration::from_millis(2),
        observations,
    )
}

/// An event's details as they appear on the wire.
fn wire(e: &NewEvent) -> serde_json::Value {
    serde_json::to_value(&e.details).unwrap()
}

fn kinds(events: &[NewEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind().as_str()).collect()
}

/// Promotes `replica` in place of `master`, bumping the epoch to 7.
fn promote(all: &mut [N], master: char, replica: char) {
    let (m, r) = (id(master), id(replica));
    let slots = all
        .iter()
        .find(|n| n.id == m)
        .map(|n| n.slots.clone())
        .unwrap();
    for n in all.iter_mut() {
        if n.id == r {
            n.master_of = None;
            n.epoch = 7;
            n.slots = slots.clone();
        } else if n.id == m {
            n.slots.clear();
        }
    }
}

fn started(all: &[N]) -> Detector {
    let mut d = Detector::new(Topology::default(), HashSet::new());
    assert!(d.observe(&snap(0, all, &World::default())).is_empty());
    d
}

#[test]
fn steady_cluster_gives_no_events() {
    let all = cluster();
    let mut d = started(&all);
    for t in 1..5 {
        assert!(d.observe(&snap(t, &all, &World::default())).is_empty());
    }
}

/// One round in which the observers `late` answered from `stale` (before a change reached
/// them) and every other node from `fresh`.
fn stale_for(fresh: &Snapshot, stale: &Snapshot, late: &[char]) -> Snapshot {
    let is_late = |o: &NodeObservation| {
        o.node_id()
            .is_some_and(|i| late.iter().any(|c| id(*c) == i))
    };
    let observations = fresh
        .observations
        .values()
        .filter(|o| !is_late(o))
        .chain(stale.observations.values().filter(|o| is_late(o)))
        .cloned()
        .collect();
    Snapshot::new(fresh.time, fresh.duration, observations)
}

/// Sets node `who` as master of `slots` at `epoch` and `demoted` as its replica.
fn promote_at(all: &mut [N], who: char, demoted: char, epoch: u64) {
    let slots = all
        .iter()
        .find(|n| n.id == id(demoted))
        .map(|n| n.slots.clone())
        .unwrap();
    for n in all.iter_mut() {
        if n.id == id(who) {
            n.master_of = None;
            n.epoch = epoch;
            n.slots = slots.clone();
        } else if n.id == id(demoted) {
            n.master_of = Some(id(who));
            n.slots.clear();
        }
    }
}

#[test]
fn nothing_reachable_gives_nothing() {
    let all = cluster();
    let mut d = started(&all);
    let w = World {
        down: all.iter().map(|n| n.id.clone()).collect(),
        ..World::default()
    };
    assert!(d.observe(&snap(1, &all, &w)).is_empty());
    assert!(d.observe(&snap(2, &all, &World::default())).is_empty());
}

mod failover;
mod golden;
mod health;
mod topology;
