//! Unit tests of the evaluation on hand-built snapshots.

use super::*;
use crate::model::{FailureReason, NodeData, NodeObservation, NodeStats, PollFailure};
use crate::parse::{cluster_info, info};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A node of a hand-built cluster.
#[derive(Clone)]
struct N {
    c: char,
    /// The host it announces: masters on 127.0.0.1, replicas on 127.0.0.2, so no replica shares
    /// its master's host (that is a topology-risk WARNING of its own).
    host: &'static str,
    port: u16,
    master: Option<char>,
    epoch: u64,
    slots: &'static str,
    /// Appended to its own (`myself`) line only: open slots.
    own_extra: &'static str,
}

fn id(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

/// What differs from a healthy 3+3 cluster.
#[derive(Default, Clone)]
struct World {
    /// Nodes that refuse connections.
    down: Vec<char>,
    /// (target, flag) seen by every other observer.
    flags: Vec<(char, &'static str)>,
    /// Observers reporting cluster_state:fail.
    state_fail: Vec<char>,
    /// (node, replication offset); default 100.
    offsets: Vec<(char, i64)>,
    /// (observer, node, slots) overrides what one observer thinks a node owns.
    slots_seen: Vec<(char, char, &'static str)>,
    /// (node, used_memory): these nodes have telemetry (INFO all) with that used_memory.
    used_memory: Vec<(char, u64)>,
}

/// 3 masters a,b,c (7000-7002, epochs 1-3) with replicas d,e,f (7003-7005).
fn healthy() -> Vec<N> {
    let m = |c, port, epoch, slots| N {
        c,
        host: "127.0.0.1",
        port,
        master: None,
        epoch,
        slots,
        own_extra: "",
    };
    let r = |c, port, of| N {
        c,
        host: "127.0.0.2",
        port,
        master: Some(of),
        epoch: 0,
        slots: "",
        own_extra: "",
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

fn line(n: &N, all: &[N], observer: char, w: &World) -> String {
    let me = n.c == observer;
    let mut flags = vec![];
    if me {
        flags.push("myself");
    }
    flags.push(if n.master.is_some() {
        "slave"
    } else {
        "master"
    });
    for (t, f) in &w.flags {
        if *t == n.c && !me {
            flags.push(f);
        }
    }
    let epoch = match n.master {
        Some(m) => all.iter().find(|x| x.c == m).map_or(0, |x| x.epoch),
        None => n.epoch,
    };
    let slots = w
        .slots_seen
        .iter()
        .find(|(o, t, _)| *o == observer && *t == n.c)
        .map_or(n.slots, |(_, _, s)| s);
    let extra = if me { n.own_extra } else { "" };
    format!(
        "{} {}:{}@{} {} {} 0 0 {} connected {} {}",
        id(n.c),
        n.host,
        n.port,
        n.port + 10000,
        flags.join(","),
        n.master.map_or("-".to_string(), id),
        epoch,
        slots,
        extra
    )
    .trim_end()
    .to_string()
}

fn snap(all: &[N], w: &World) -> Snapshot {
    let observations = all
        .iter()
        .map(|me| {
            let addr = format!("{}:{}", me.host, me.port);
            let result = if w.down.contains(&me.c) {
                Err(PollFailure {
                    reason: FailureReason::Connect,
                    message: "connection refused".into(),
                    attempted: true,
                })
            } else {
                let text: Vec<String> = all.iter().map(|n| line(n, all, me.c, w)).collect();
                let state = if w.state_fail.contains(&me.c) {
                    "fail"
                } else {
                    "ok"
                };
                let ci = format!("cluster_state:{state}\ncluster_slots_ok:16384\n");
                let off = w.offsets.iter().find(|o| o.0 == me.c).map_or(100, |o| o.1);
                let role = if me.master.is_some() {
                    "slave"
                } else {
                    "master"
                };
                let inf =
                    format!("role:{role}\nmaster_repl_offset:{off}\nslave_repl_offset:{off}\n");
                Ok(NodeData {
                    cluster_info: cluster_info::parse_cluster_info(&ci).unwrap(),
                    nodes: Arc::new(crate::topology::Topology::parse(&text.join("\n")).unwrap()),
                    info: info::parse_info(&inf).unwrap(),
                    stats: w.used_memory.iter().find(|u| u.0 == me.c).map(|u| {
                        Arc::new(NodeStats {
                            time: UNIX_EPOCH,
                            info: info::parse_info(&format!("used_memory:{}\n", u.1)).unwrap(),
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
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        Duration::from_millis(2),
        observations,
    )
}

fn check(all: &[N], w: &World) -> (Report, Snapshot) {
    let s = snap(all, w);
    (evaluate(&s, &CheckOptions::default()), s)
}

fn texts(r: &Report) -> Vec<(Status, &str)> {
    r.problems
        .iter()
        .map(|p| (p.severity, p.text.as_str()))
        .collect()
}

#[test]
fn healthy_cluster_is_ok_and_lists_every_node_master_then_replica() {
    let (r, _) = check(&healthy(), &World::default());
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.exit_code, 0);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.summary,
        "REDIS CLUSTER OK - 6 nodes (3 masters, 3 replicas), all 16384 slots covered"
    );
    let order: Vec<&str> = r.nodes.iter().map(|n| n.addr.as_deref().unwrap()).collect();
    assert_eq!(
        order,
        [
            "127.0.0.1:7000",
            "127.0.0.2:7003",
            "127.0.0.1:7001",
            "127.0.0.2:7004",
            "127.0.0.1:7002",
            "127.0.0.2:7005"
        ]
    );
    let a = &r.nodes[0];
    assert_eq!(
        (a.role, a.slots.as_str(), a.slot_count),
        ("master", "0-5460", 5461)
    );
    assert_eq!(a.config_epoch, 1);
    assert_eq!(a.cluster_state, Some("ok"));
    let d = &r.nodes[1];
    assert_eq!(d.role, "replica");
    assert_eq!(d.master_addr.as_deref(), Some("127.0.0.1:7000"));
    assert_eq!(d.master_id, Some(id('a')));
    assert_eq!(d.replication_lag_bytes, Some(0));
    assert_eq!((r.polled, r.reachable, r.uncovered_slots), (6, 6, 0));
}

#[test]
fn failed_master_without_failover_is_critical_and_names_its_slots() {
    let w = World {
        down: vec!['a'],
        flags: vec![('a', "fail")],
        state_fail: vec!['b', 'c', 'd', 'e', 'f'],
        ..World::default()
    };
    let (r, s) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Critical);
    assert_eq!(r.exit_code, 2);
    assert_eq!(r.uncovered_slots, 5461);
    assert_eq!(r.uncovered_slots, s.view.uncovered_slots);
    assert!(
        r.summary.starts_with(
            "REDIS CLUSTER CRITICAL - 5461 slots uncovered (0-5460, master 127.0.0.1:7000 failed)"
        ),
        "{}",
        r.summary
    );
    let t = texts(&r);
    assert!(
        t.contains(&(
            Status::Critical,
            "master 127.0.0.1:7000 is flagged fail by 5 nodes"
        )),
        "{t:?}"
    );
    assert!(
        t.iter().any(|(s, x)| *s == Status::Critical
            && x.starts_with("cluster_state is fail on 127.0.0.1:7001")),
        "{t:?}"
    );
    // Worst first.
    assert!(
        r.problems
            .windows(2)
            .all(|p| p[0].severity >= p[1].severity)
    );
    let a = r.nodes.iter().find(|n| n.id == id('a')).unwrap();
    assert!(!a.reachable);
    assert_eq!(a.fail_reporters, 5);
    assert!(a.error.as_deref().unwrap().contains("connect"), "{a:?}");
}

#[test]
fn unreachable_master_not_yet_flagged_is_critical_as_unreachable() {
    let w = World {
        down: vec!['b'],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Critical);
    assert!(
        r.summary
            .contains("5462 slots uncovered (5461-10922, master 127.0.0.1:7001 unreachable)"),
        "{}",
        r.summary
    );
}

#[test]
fn unowned_slots_are_critical_with_their_ranges() {
    let mut all = healthy();
    all[2].slots = "10923-16000";
    let (r, s) = check(&all, &World::default());
    assert_eq!(r.status, Status::Critical);
    assert_eq!(r.uncovered_slots, 383);
    assert_eq!(s.view.uncovered_slots, 383);
    assert_eq!(
        r.problems[0].text,
        "383 slots uncovered (16001-16383, no owner)"
    );
}

#[test]
fn several_uncovered_groups_are_listed_in_slot_order() {
    let mut all = healthy();
    all[2].slots = "10923-16000";
    let w = World {
        down: vec!['a'],
        flags: vec![('a', "fail")],
        ..World::default()
    };
    let (r, _) = check(&all, &w);
    assert_eq!(
        r.problems[0].text,
        "5844 slots uncovered (0-5460, master 127.0.0.1:7000 failed; 16001-16383, no owner)"
    );
    assert_eq!(r.problems[0].nodes, [id('a')]);
    let groups = uncovered(&check(&all, &w).1);
    let shown: Vec<(String, Option<String>)> = groups
        .iter()
        .map(|u| (format_ranges(&u.ranges), u.master.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            ("0-5460".to_string(), Some(id('a'))),
            ("16001-16383".to_string(), None)
        ]
    );
}

#[test]
fn down_replica_leaves_its_master_without_a_healthy_replica() {
    let w = World {
        down: vec!['e'],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Warning);
    assert_eq!(r.exit_code, 1);
    let t = texts(&r);
    assert!(
        t.contains(&(
            Status::Warning,
            "master 127.0.0.1:7001 (5462 slots) has no healthy replica (127.0.0.2:7004 unreachable)"
        )),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|(_, x)| x.starts_with("replica 127.0.0.2:7004 unreachable (connect")),
        "{t:?}"
    );
    assert!(
        r.summary
            .starts_with("REDIS CLUSTER WARNING - master 127.0.0.1:7001"),
        "{}",
        r.summary
    );
    assert!(r.summary.ends_with("(+1 more problem)"), "{}", r.summary);
    // Each problem names the members it is about, so a view can put it beside its shard.
    let nodes: Vec<&[String]> = r.problems.iter().map(|p| p.nodes.as_slice()).collect();
    assert_eq!(nodes, [&[id('b'), id('e')][..], &[id('e')][..]]);
}

#[test]
fn master_without_any_replica_is_a_warning() {
    let all: Vec<N> = healthy().into_iter().filter(|n| n.c != 'f').collect();
    let (r, _) = check(&all, &World::default());
    assert_eq!(r.status, Status::Warning);
    assert_eq!(
        r.problems[0].text,
        "master 127.0.0.1:7002 (5461 slots) has no healthy replica (it has none)"
    );
}

#[test]
fn pfail_is_a_warning_naming_the_node_and_reporter_count() {
    let w = World {
        flags: vec![('b', "fail?")],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Warning);
    assert_eq!(
        r.problems[0].text,
        "master 127.0.0.1:7001 is flagged pfail by 5 nodes"
    );
    assert_eq!(r.nodes[2].pfail_reporters, 5);
}

#[test]
fn flagged_replica_is_a_warning_and_its_master_loses_redundancy() {
    let w = World {
        flags: vec![('d', "fail")],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Warning);
    let t = texts(&r);
    assert!(
        t.contains(&(
            Status::Warning,
            "replica 127.0.0.2:7003 is flagged fail by 5 nodes"
        )),
        "{t:?}"
    );
    assert!(
        t.contains(&(
            Status::Warning,
            "master 127.0.0.1:7000 (5461 slots) has no healthy replica (127.0.0.2:7003 flagged fail)"
        )),
        "{t:?}"
    );
}

#[test]
fn cluster_state_fail_on_one_node_is_critical() {
    let w = World {
        state_fail: vec!['c'],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Critical);
    assert_eq!(
        r.problems[0].text,
        "cluster_state is fail on 127.0.0.1:7002"
    );
    assert_eq!(r.nodes[4].cluster_state, Some("fail"));
}

#[test]
fn open_slots_are_a_warning_naming_slot_and_peer() {
    let mut all = healthy();
    all[0].own_extra = "[42->-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb]";
    all[1].own_extra = "[42-<-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]";
    let (r, _) = check(&all, &World::default());
    assert_eq!(r.status, Status::Warning);
    let t = texts(&r);
    assert!(
        t.contains(&(
            Status::Warning,
            "open slots on 127.0.0.1:7000: migrating 42 to 127.0.0.1:7001"
        )),
        "{t:?}"
    );
    assert!(
        t.contains(&(
            Status::Warning,
            "open slots on 127.0.0.1:7001: importing 42 from 127.0.0.1:7000"
        )),
        "{t:?}"
    );
    assert_eq!((r.nodes[0].migrating, r.nodes[2].importing), (1, 1));
}

#[test]
fn inconsistent_slot_map_is_a_warning_naming_the_minority() {
    let w = World {
        slots_seen: vec![('f', 'b', "0 5461-10922"), ('f', 'a', "1-5460")],
        ..World::default()
    };
    let (r, s) = check(&healthy(), &w);
    assert!(!s.view.consistent);
    assert_eq!(r.status, Status::Warning);
    assert!(
        r.problems[0].text.starts_with(
            "slot map not consistent: 2 different maps; 127.0.0.2:7005 disagree with 127.0.0.1:7000"
        ),
        "{:?}",
        r.problems
    );
    assert_eq!(r.uncovered_slots, 0);
}

#[test]
fn replica_lag_over_the_limit_is_a_warning() {
    let w = World {
        offsets: vec![('a', 500 * 1024 * 1024), ('d', 100)],
        ..World::default()
    };
    let s = snap(&healthy(), &w);
    let r = evaluate(&s, &CheckOptions::default());
    assert_eq!(r.status, Status::Warning);
    let lag = 500 * 1024 * 1024 - 100;
    assert_eq!(
        r.problems[0].text,
        format!(
            "replica 127.0.0.2:7003 is {lag} bytes behind its master 127.0.0.1:7000 (over --max-lag-bytes 104857600)"
        )
    );
    assert_eq!(r.nodes[1].replication_lag_bytes, Some(lag));
    let relaxed = evaluate(
        &s,
        &CheckOptions {
            max_lag_bytes: u64::MAX,
        },
    );
    assert_eq!(relaxed.status, Status::Ok);
}

#[test]
fn failed_master_that_was_failed_over_is_only_a_warning() {
    // a died, d took over its slots at a newer epoch; a is still listed as master,fail.
    let mut all = healthy();
    all[0].slots = "";
    all[3].master = None;
    all[3].epoch = 7;
    all[3].slots = "0-5460";
    let w = World {
        down: vec!['a'],
        flags: vec![('a', "fail")],
        ..World::default()
    };
    let (r, _) = check(&all, &w);
    assert_eq!(r.status, Status::Warning, "{:?}", r.problems);
    let t = texts(&r);
    assert!(
        t.contains(&(
            Status::Warning,
            "master 127.0.0.1:7000 is flagged fail by 5 nodes (it owns no slots)"
        )),
        "{t:?}"
    );
    assert!(
        t.contains(&(
            Status::Warning,
            "master 127.0.0.2:7003 (5461 slots) has no healthy replica (it has none)"
        )),
        "{t:?}"
    );
}

#[test]
fn nothing_reachable_is_unknown() {
    let w = World {
        down: vec!['a', 'b', 'c', 'd', 'e', 'f'],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Unknown);
    assert_eq!(r.exit_code, 3);
    assert!(
        r.summary.starts_with(
            "REDIS CLUSTER UNKNOWN - no node reachable (127.0.0.1:7000 connect: connection refused;"
        ),
        "{}",
        r.summary
    );
    assert!(r.nodes.is_empty());
    let empty = Snapshot::new(UNIX_EPOCH, Duration::ZERO, Vec::new());
    assert_eq!(
        evaluate(&empty, &CheckOptions::default()).status,
        Status::Unknown
    );
    assert_eq!(
        unknown("x", &CheckOptions::default()).summary,
        "REDIS CLUSTER UNKNOWN - x"
    );
}

#[test]
fn unreachable_extra_seed_is_a_warning() {
    let mut s = snap(&healthy(), &World::default());
    s.observations.insert(
        "10.9.9.9:7000".into(),
        NodeObservation {
            addr: "10.9.9.9:7000".into(),
            result: Err(PollFailure {
                reason: FailureReason::Timeout,
                message: "no reply within 1s".into(),
                attempted: true,
            }),
            duration: Duration::from_secs(1),
        },
    );
    let r = evaluate(&s, &CheckOptions::default());
    assert_eq!(r.status, Status::Warning);
    assert_eq!(
        r.problems[0].text,
        "seed 10.9.9.9:7000 unreachable (timeout: no reply within 1s)"
    );
}

#[test]
fn renderings_carry_the_same_content() {
    let w = World {
        down: vec!['e'],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    let human = render_human(&r);
    assert_eq!(human.lines().next(), Some(r.summary.as_str()));
    assert!(
        human.contains("Problems:\n  WARNING   master 127.0.0.1:7001"),
        "{human}"
    );
    assert!(human.contains("ADDR"), "{human}");
    assert!(human.contains("127.0.0.2:7004"), "{human}");
    assert!(human.contains("0-5460 (5461)"), "{human}");
    let json: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
    assert_eq!(json["status"], "WARNING");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["summary"], r.summary.as_str());
    assert_eq!(json["problems"][0]["severity"], "WARNING");
    assert_eq!(json["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(json["nodes"][3]["reachable"], false);
    assert_eq!(json["nodes"][0]["slots"], "0-5460");
}

/// Every node on one host: `healthy()` moved to 127.0.0.1 entirely.
fn one_host() -> Vec<N> {
    healthy()
        .into_iter()
        .map(|n| N {
            host: "127.0.0.1",
            ..n
        })
        .collect()
}

#[test]
fn healthy_cluster_shows_its_risk_figures_without_a_warning() {
    let w = World {
        used_memory: vec![('a', 1_000_000), ('b', 1_100_000), ('c', 900_000)],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
    let co: Vec<(&str, usize, usize)> = r
        .risk
        .colocated_replicas
        .iter()
        .map(|c| (c.master.as_str(), c.colocated, c.replicas))
        .collect();
    assert_eq!(
        co,
        [
            ("127.0.0.1:7000", 0, 1),
            ("127.0.0.1:7001", 0, 1),
            ("127.0.0.1:7002", 0, 1)
        ]
    );
    assert_eq!(
        r.risk.masters_per_host,
        BTreeMap::from([("127.0.0.1".to_string(), 3)])
    );
    let skew = r.risk.slot_skew.unwrap();
    assert!((skew - 5462.0 / (16384.0 / 3.0)).abs() < 1e-9, "{skew}");
    let mem = r.risk.memory_skew.unwrap();
    assert!((mem - 1.1).abs() < 1e-9, "{mem}");
    let human = render_human(&r);
    assert!(
        human.contains(
            "Topology risk:\n  replicas on their master's host: 127.0.0.1:7000 0/1, 127.0.0.1:7001 0/1, 127.0.0.1:7002 0/1\n  slot-owning masters per host: 127.0.0.1 3\n  slot skew: 1.00 (WARNING above 1.5)\n  memory skew: 1.10 (WARNING above 2)\n"
        ),
        "{human}"
    );
    let json: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
    assert_eq!(json["risk"]["masters_per_host"]["127.0.0.1"], 3);
    assert_eq!(
        json["risk"]["colocated_replicas"][1]["master"],
        "127.0.0.1:7001"
    );
    assert_eq!(json["risk"]["colocated_replicas"][1]["replicas"], 1);
    assert!((json["risk"]["memory_skew"].as_f64().unwrap() - 1.1).abs() < 1e-9);
}

#[test]
fn replicas_on_their_masters_host_are_a_warning_per_master() {
    let (r, _) = check(&one_host(), &World::default());
    assert_eq!(r.status, Status::Warning);
    let t = texts(&r);
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(
        t[0],
        (
            Status::Warning,
            "master 127.0.0.1:7000 has all its replicas (1) on its own host 127.0.0.1: losing that host loses the shard"
        )
    );
    assert!(r.risk.colocated_replicas.iter().all(|c| c.colocated == 1));
    // One replica moved away is enough for its master; a second, colocated one does not count.
    let mut nodes = one_host();
    nodes[3].host = "127.0.0.9";
    nodes.push(N {
        c: 'g',
        host: "127.0.0.1",
        port: 7006,
        master: Some('a'),
        epoch: 0,
        slots: "",
        own_extra: "",
    });
    let (r, _) = check(&nodes, &World::default());
    let a = &r.risk.colocated_replicas[0];
    assert_eq!(
        (a.master.as_str(), a.colocated, a.replicas),
        ("127.0.0.1:7000", 1, 2)
    );
    assert_eq!(texts(&r).len(), 2, "{:?}", texts(&r));
    assert!(
        texts(&r)
            .iter()
            .all(|(_, x)| !x.contains("127.0.0.1:7000 ")),
        "{:?}",
        texts(&r)
    );
}

#[test]
fn slot_skew_over_the_alert_threshold_is_a_warning_naming_the_master() {
    let mut nodes = healthy();
    nodes[0].slots = "0-9999";
    nodes[1].slots = "10000-12999";
    nodes[2].slots = "13000-16383";
    let (r, _) = check(&nodes, &World::default());
    assert_eq!(r.status, Status::Warning);
    let skew = r.risk.slot_skew.unwrap();
    assert!((skew - 10000.0 / (16384.0 / 3.0)).abs() < 1e-9, "{skew}");
    assert_eq!(
        texts(&r),
        [(
            Status::Warning,
            "slot skew 1.83 (over 1.5): master 127.0.0.1:7000 owns 10000 slots, 1.83x the mean"
        )]
    );
    // Exactly at the threshold: the alert fires above it, and so does the check.
    let mut two = healthy();
    two.retain(|n| !matches!(n.c, 'c' | 'f'));
    two[0].slots = "0-12287";
    two[1].slots = "12288-16383";
    let (r, _) = check(&two, &World::default());
    assert_eq!(r.risk.slot_skew, Some(1.5));
    assert_eq!(r.status, Status::Ok, "{:?}", r.problems);
}

#[test]
fn memory_skew_over_the_alert_threshold_is_a_warning_naming_the_master() {
    let w = World {
        used_memory: vec![
            ('a', 10_000_000),
            ('b', 1_000_000),
            ('c', 1_000_000),
            // Replicas do not count.
            ('d', 90_000_000),
        ],
        ..World::default()
    };
    let (r, _) = check(&healthy(), &w);
    let mem = r.risk.memory_skew.unwrap();
    assert!((mem - 2.5).abs() < 1e-9, "{mem}");
    assert_eq!(
        texts(&r),
        [(
            Status::Warning,
            "memory skew 2.50 (over 2): master 127.0.0.1:7000 uses 10000000 bytes, 2.50x the mean of the slot-owning masters"
        )]
    );
    // No telemetry at all: no figure, no warning.
    let (r, _) = check(&healthy(), &World::default());
    assert_eq!(r.risk.memory_skew, None);
    assert!(render_human(&r).contains("  memory skew: -\n"));
}
