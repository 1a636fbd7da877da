//! The cluster page `/cluster` and its document `/api/cluster`: the pure builder on snapshots
//! made from captured replies, the page's own text (self-contained, text-only insertion), and a
//! real headless chromium against a real cluster (every node and slot range shown, a failover
//! appearing without a reload) and against a hostile server (its values stay text).

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/fake_redis.rs"]
mod fake_redis;

use common::{ClusterOptions, Exporter, RedisCluster, header_value, http_get};
use redis_cluster_exporter::check::Status;
use redis_cluster_exporter::events::kind::EventKind;
use redis_cluster_exporter::http::{CLUSTER_PAGE, Shared};
use redis_cluster_exporter::metrics::ExporterMetrics;
use redis_cluster_exporter::model::{
    ConfigValues, FailureReason, NodeData, NodeObservation, NodeStats, PollFailure, Snapshot,
};
use redis_cluster_exporter::overview::{ClusterOverview, build, to_json};
use redis_cluster_exporter::parse::cluster_info::parse_cluster_info;
use redis_cluster_exporter::parse::info::parse_info;
use redis_cluster_exporter::topology::Topology;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// The builder, on snapshots made from captured replies
// ---------------------------------------------------------------------------------------------

/// A healthy 3x1 cluster's CLUSTER NODES as one of its masters printed it (captured).
const NODES: &str = include_str!("fixtures/cluster_nodes_master.txt");
const INFO_MASTER: &str = include_str!("fixtures/info_master.txt");
const INFO_REPLICA: &str = include_str!("fixtures/info_replica.txt");
const INFO_ALL_MASTER: &str = include_str!("fixtures/info_all_redis7_master.txt");
const INFO_ALL_REPLICA: &str = include_str!("fixtures/info_all_redis7_replica.txt");
const MAXMEMORY: f64 = 1024.0 * 1024.0 * 1024.0;

/// `(id, addr, is replica)` of every line of the fixture.
fn members() -> Vec<(String, String, bool)> {
    NODES
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let addr = f[1].split('@').next().unwrap().to_string();
            (f[0].to_string(), addr, f[2].contains("slave"))
        })
        .collect()
}

/// The fixture as `observer` prints it: `myself` on its own line, `flag` added to `target`'s
/// line (as every other observer sees it).
fn seen_by(observer: &str, flagged: Option<(&str, &str)>) -> String {
    NODES
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
            let mut flags: Vec<&str> = f[2].split(',').filter(|x| *x != "myself").collect();
            if f[0] == observer {
                flags.insert(0, "myself");
            } else if let Some((target, flag)) = flagged
                && f[0] == target
            {
                flags.push(flag);
            }
            f[2] = flags.join(",");
            f.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every member answering with the captured replies, except the `down` one (connection
/// refused), which every other observer flags `fail` when `flag_down` says so.
fn snapshot(down: Option<&str>, flag_down: bool) -> Snapshot {
    let observations = members()
        .into_iter()
        .map(|(id, addr, replica)| {
            let result = if down == Some(id.as_str()) {
                Err(PollFailure {
                    reason: FailureReason::Connect,
                    message: "connection refused".into(),
                    attempted: true,
                })
            } else {
                let flagged = down.filter(|_| flag_down).map(|d| (d, "fail"));
                let (info, all) = if replica {
                    (INFO_REPLICA, INFO_ALL_REPLICA)
                } else {
                    (INFO_MASTER, INFO_ALL_MASTER)
                };
                Ok(NodeData {
                    cluster_info: parse_cluster_info(include_str!("fixtures/cluster_info_ok.txt"))
                        .unwrap(),
                    nodes: Arc::new(Topology::parse(&seen_by(&id, flagged)).unwrap()),
                    info: parse_info(info).unwrap(),
                    stats: Some(Arc::new(NodeStats {
                        time: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                        info: parse_info(all).unwrap(),
                        config: ConfigValues {
                            maxmemory: Some(MAXMEMORY),
                            ..ConfigValues::default()
                        },
                        slowlog: None,
                        latency_spikes: Vec::new(),
                        hot_slots: Default::default(),
                    })),
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
        UNIX_EPOCH + Duration::from_millis(1_800_000_000_250),
        Duration::from_millis(12),
        observations,
    )
}

fn info_number(text: &str, key: &str) -> i64 {
    text.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("{key}:")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in fixture"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn healthy_cluster_document_lists_every_shard_with_its_figures() {
    let doc = build(&snapshot(None, false), "orders");
    assert_eq!(doc.cluster, "orders");
    assert_eq!(doc.time, "2027-01-15T08:00:00.250Z");
    // On loopback every replica shares its master's host: the only problems are those risks.
    assert_eq!(doc.status, Status::Warning, "{:?}", doc.problems);
    assert_eq!(doc.problems.len(), 3, "{:?}", doc.problems);
    assert!(
        doc.problems
            .iter()
            .all(|p| p.text.contains("on its own host") && p.nodes.len() == 1),
        "{:?}",
        doc.problems
    );
    assert_eq!(doc.cluster_state, Some("ok"));
    assert!(doc.consistent);
    assert_eq!(
        (doc.nodes.known, doc.nodes.polled, doc.nodes.reachable),
        (6, 6, 6)
    );
    assert_eq!((doc.slots.covered, doc.slots.uncovered), (16384, 0));
    // Every member exactly once; masters in slot order, each with its one replica.
    let slots: Vec<Vec<String>> = doc.shards.iter().map(|s| s.master.slots.clone()).collect();
    assert_eq!(slots, [["0-5460"], ["5461-10922"], ["10923-16383"]]);
    let mut seen = BTreeSet::new();
    for s in &doc.shards {
        assert_eq!(s.severity, Status::Warning);
        assert_eq!(s.replicas.len(), 1);
        seen.insert(s.master.node.addr.clone().unwrap());
        seen.extend(s.replicas.iter().map(|r| r.node.addr.clone().unwrap()));
    }
    let all: BTreeSet<String> = members().into_iter().map(|m| m.1).collect();
    assert_eq!(seen, all);
    let lag = info_number(INFO_MASTER, "master_repl_offset")
        - info_number(INFO_REPLICA, "slave_repl_offset");
    let used = info_number(INFO_ALL_MASTER, "used_memory") as u64;
    for s in &doc.shards {
        let m = &s.master;
        assert_eq!(m.node.used_memory_bytes, Some(used));
        assert_eq!(m.node.maxmemory_bytes, Some(MAXMEMORY as u64));
        assert_eq!(m.node.flags.fail_observers, 0);
        // All on 127.0.0.1: each master's replica shares its host.
        assert_eq!(m.colocated_replicas, Some(1));
        let r = &s.replicas[0];
        assert_eq!(r.link, Some("up"));
        assert_eq!(r.lag_bytes, Some(lag));
        assert_eq!(r.master_id.as_deref(), Some(m.node.id.as_str()));
    }
    assert_eq!(doc.risk.host_masters.get("127.0.0.1"), Some(&3));
    let skew = doc.risk.slot_skew_ratio.unwrap();
    assert!((skew - 5462.0 * 3.0 / 16384.0).abs() < 1e-9, "{skew}");
    assert_eq!(doc.risk.memory_skew_ratio, Some(1.0));
    assert!(doc.unreachable.is_empty() && doc.orphan_replicas.is_empty());
}

#[test]
fn failed_master_puts_its_shard_first_with_the_uncovered_slots() {
    let (failed_id, failed_addr) = members()
        .into_iter()
        .find(|m| m.1 == "127.0.0.1:19250")
        .map(|m| (m.0, m.1))
        .unwrap();
    let doc = build(&snapshot(Some(&failed_id), true), "c");
    assert_eq!(doc.status, Status::Critical);
    let first = &doc.shards[0];
    assert_eq!(first.master.node.id, failed_id);
    assert_eq!(first.severity, Status::Critical);
    assert_eq!(first.master.node.flags.fail_observers, 5);
    assert!(!first.master.node.reachable);
    assert!(
        first
            .master
            .node
            .error
            .as_deref()
            .unwrap()
            .starts_with("connect"),
        "{:?}",
        first.master.node.error
    );
    // The other shards keep slot order behind it, warned only for their colocated replicas.
    let rest: Vec<&str> = doc.shards[1..]
        .iter()
        .map(|s| s.master.slots[0].as_str())
        .collect();
    assert_eq!(rest, ["0-5460", "10923-16383"]);
    assert!(
        doc.shards[1..]
            .iter()
            .all(|s| s.severity == Status::Warning)
    );
    assert_eq!(doc.slots.uncovered, 5462);
    let u = &doc.slots.uncovered_ranges;
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].slots, ["5461-10922"]);
    assert_eq!(u[0].master_id.as_deref(), Some(failed_id.as_str()));
    assert_eq!(u[0].reason, format!("master {failed_addr} failed"));
    assert_eq!(doc.unreachable.len(), 1);
    assert_eq!(doc.unreachable[0].addr, failed_addr);
    assert_eq!(doc.unreachable[0].reason, "connect");
    assert_eq!(doc.unreachable[0].role, Some("master"));
    // The problems are check's, worst first, and name the failed master.
    assert_eq!(doc.problems[0].severity, Status::Critical);
    assert!(doc.problems[0].nodes.contains(&failed_id));
    assert!(
        doc.summary
            .starts_with("REDIS CLUSTER CRITICAL - 5462 slots uncovered")
    );
}

#[test]
fn announced_hostnames_are_shown() {
    let text = include_str!("fixtures/cluster_nodes_hostname.txt");
    let obs = NodeObservation {
        addr: "10.1.0.11:6379".into(),
        result: Ok(NodeData {
            cluster_info: parse_cluster_info(include_str!("fixtures/cluster_info_ok.txt")).unwrap(),
            nodes: Arc::new(Topology::parse(text).unwrap()),
            info: parse_info(INFO_MASTER).unwrap(),
            stats: None,
            soft_failures: Vec::new(),
        }),
        duration: Duration::from_millis(1),
    };
    let doc = build(&Snapshot::new(UNIX_EPOCH, Duration::ZERO, vec![obs]), "c");
    let hostname = |addr: &str| {
        doc.shards
            .iter()
            .flat_map(|s| std::iter::once(&s.master.node).chain(s.replicas.iter().map(|r| &r.node)))
            .find(|n| n.addr.as_deref() == Some(addr))
            .and_then(|n| n.hostname.clone())
    };
    assert_eq!(
        hostname("10.1.0.11:6379").as_deref(),
        Some("redis-0.redis.prod.svc.cluster.local")
    );
    assert_eq!(
        hostname("10.1.0.16:6379").as_deref(),
        Some("redis-5.redis.prod.svc.cluster.local")
    );
    // An empty hostname field is no hostname.
    assert_eq!(hostname("10.1.0.13:6379"), None);
    // No memory known without the telemetry tier.
    assert_eq!(doc.shards[0].master.node.used_memory_bytes, None);
}

#[test]
fn nothing_polled_is_unknown_with_no_shards() {
    let doc = build(&Snapshot::new(UNIX_EPOCH, Duration::ZERO, vec![]), "c");
    assert_eq!(doc.status, Status::Unknown);
    assert_eq!(doc.cluster_state, None);
    assert!(doc.shards.is_empty());
    assert_eq!(doc.slots.covered, 0);
    assert_eq!(doc.problems.len(), 1);
    assert_eq!(doc.risk.slot_skew_ratio, None);
}

/// The field names are a contract (README "Cluster page"): pin them.
#[test]
fn json_field_names_are_the_documented_ones() {
    let (down, _) = members()
        .into_iter()
        .find(|m| m.2)
        .map(|m| (m.0, m.1))
        .unwrap();
    let doc: ClusterOverview = build(&snapshot(Some(&down), false), "c");
    let v: Value = serde_json::from_slice(&to_json(&doc)).unwrap();
    let set = |names: &[&'static str]| names.iter().copied().collect::<BTreeSet<&str>>();
    assert_eq!(
        keys(&v),
        set(&[
            "cluster",
            "time",
            "poll_duration_seconds",
            "status",
            "summary",
            "cluster_state",
            "consistent",
            "nodes",
            "slots",
            "shards",
            "orphan_replicas",
            "unreachable",
            "risk",
            "problems",
        ])
    );
    assert_eq!(keys(&v["nodes"]), set(&["known", "polled", "reachable"]));
    assert_eq!(
        keys(&v["slots"]),
        set(&["covered", "uncovered", "uncovered_ranges"])
    );
    assert_eq!(
        keys(&v["shards"][0]),
        set(&["severity", "master", "replicas"])
    );
    let node = [
        "id",
        "addr",
        "hostname",
        "reachable",
        "error",
        "cluster_state",
        "flags",
        "used_memory_bytes",
        "maxmemory_bytes",
        "severity",
    ];
    let mut master = set(&node);
    master.extend([
        "slots",
        "slot_count",
        "config_epoch",
        "migrating",
        "importing",
        "colocated_replicas",
    ]);
    assert_eq!(keys(&v["shards"][0]["master"]), master);
    let mut replica = set(&node);
    replica.extend(["master_id", "link", "lag_bytes"]);
    assert_eq!(keys(&v["shards"][0]["replicas"][0]), replica);
    assert_eq!(
        keys(&v["shards"][0]["master"]["flags"]),
        set(&["pfail_observers", "fail_observers", "nofailover"])
    );
    assert_eq!(
        keys(&v["risk"]),
        set(&[
            "colocated_replicas",
            "host_masters",
            "slot_skew_ratio",
            "memory_skew_ratio"
        ])
    );
    assert_eq!(
        keys(&v["unreachable"][0]),
        set(&["addr", "id", "role", "reason", "message"])
    );
    assert_eq!(keys(&v["problems"][0]), set(&["severity", "text", "nodes"]));
    // The down replica's shard comes first, a WARNING; values are typed.
    assert_eq!(v["shards"][0]["severity"], "WARNING");
    assert_eq!(v["status"], "WARNING");
    assert!(v["poll_duration_seconds"].is_f64());
    assert!(v["shards"][0]["master"]["slot_count"].is_u64());
}

#[test]
fn the_document_is_built_once_per_poll() {
    let shared = Shared::new(ExporterMetrics::default(), "c");
    assert!(shared.overview().is_none(), "nothing before the first poll");
    let snap = Arc::new(snapshot(None, false));
    shared.publish(Arc::clone(&snap));
    let a = shared.overview().unwrap();
    let b = shared.overview().unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.json.as_ref(), to_json(&build(&snap, "c")).as_slice());
    shared.publish(Arc::new(snapshot(None, false)));
    assert!(!Arc::ptr_eq(&a, &shared.overview().unwrap()));
}

// ---------------------------------------------------------------------------------------------
// The page's own text
// ---------------------------------------------------------------------------------------------

#[test]
fn page_is_self_contained_and_inserts_only_text() {
    let page = CLUSTER_PAGE;
    // No outside asset: no URL, no linked file, no src/href attribute, no CSS import.
    for needle in [
        "http:", "https:", "//cdn", "<link", "src=", "href=", "@import", "url(",
    ] {
        assert!(!page.contains(needle), "page contains {needle:?}");
    }
    // Nothing from the cluster may be parsed as markup.
    for needle in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!page.contains(needle), "page contains {needle:?}");
    }
    // Relative URLs, so TLS, basic auth and path-prefixing proxies keep working.
    assert!(page.contains("fetch(\"api/cluster\""));
    assert!(page.contains("new EventSource(\"events/stream"));
    assert!(page.contains("fetch(\"events?limit="));
    // Every event kind is a named SSE event the page must listen for.
    for kind in EventKind::ALL.map(EventKind::as_str) {
        assert!(
            page.contains(&format!("\"{kind}\"")),
            "page does not listen for {kind}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A real browser
// ---------------------------------------------------------------------------------------------

/// The page's live state, as JSON: the marker set before a change (gone after a reload), the
/// recent events (kind, text), and the addresses shown as masters and as replicas.
const PAGE_STATE: &str = r##"JSON.stringify({
  marker: window.__marker === undefined ? null : window.__marker,
  events: [...document.querySelectorAll("#events li")].map((li) => [li.dataset.kind || "", li.textContent]),
  masters: [...document.querySelectorAll("tr.master")].map((tr) => tr.dataset.addr),
  replicas: [...document.querySelectorAll("tr.replica")].map((tr) => tr.dataset.addr),
  text: document.body.innerText,
})"##;

fn page_state(v: &Value) -> Value {
    serde_json::from_str(v.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn api(e: &Exporter) -> Value {
    let (status, _, body) = e.get("/api/cluster");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON document")
}

#[test]
fn browser_shows_every_node_and_slot_range_and_a_failover_without_reload() {
    let Some(chromium) = browser::chromium_or_skip("cluster page browser test") else {
        return;
    };
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            "200ms",
            "--node-timeout",
            "300ms",
            "--stats-interval",
            "1s",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    common::wait_until(Duration::from_secs(10), "all six nodes answered", || {
        api(&e)["nodes"]["reachable"] == 6
    });
    let (status, headers, _) = http_get(&e.url("/cluster"));
    assert_eq!(status, 200);
    assert!(
        header_value(&headers, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(header_value(&headers, "content-security-policy").is_some());

    // The page, once its scripts ran: every node and every master's slot ranges are shown.
    let addrs: Vec<String> = (0..cluster.node_count()).map(|i| cluster.addr(i)).collect();
    let ranges: Vec<String> = cluster
        .masters()
        .into_iter()
        .flat_map(|m| {
            let me = cluster
                .cluster_nodes(m)
                .into_iter()
                .find(|l| l.flags.iter().any(|f| f == "myself"));
            me.map(|l| l.slots).unwrap_or_default()
        })
        .collect();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    let mut b = browser::Browser::open(&chromium, &e.url("/cluster"));
    let state = b.wait_for(
        Duration::from_secs(20),
        "every node and slot range on the page",
        PAGE_STATE,
        |v| {
            let s = page_state(v);
            let shown: Vec<String> = [strings(&s["masters"]), strings(&s["replicas"])].concat();
            let text = s["text"].as_str().unwrap_or("");
            addrs.iter().all(|a| shown.contains(a))
                && ranges.iter().all(|r| text.contains(r.as_str()))
        },
    );
    let text = page_state(&state)["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(text.contains("3 of 3 shown"), "{text}");
    for a in &addrs {
        assert!(
            text.contains(a.as_str()),
            "{a} not in the page text:\n{text}"
        );
    }

    // A failover shows up in the open page, live.
    b.eval("window.__marker = 42");
    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master).expect("a replica");
    let (old, new) = (cluster.addr(master), cluster.addr(replica));
    assert_eq!(cluster.cli(replica, &["CLUSTER", "FAILOVER"]), "OK");
    let state = b.wait_for(
        Duration::from_secs(30),
        "the failover on the page",
        PAGE_STATE,
        |v| {
            let s = page_state(v);
            let failover_shown = s["events"].as_array().is_some_and(|evs| {
                evs.iter().any(|ev| {
                    ev[0] == "failover" && ev[1].as_str().is_some_and(|t| t.contains(&new))
                })
            });
            failover_shown
                && strings(&s["masters"]).contains(&new)
                && strings(&s["replicas"]).contains(&old)
        },
    );
    let s = page_state(&state);
    assert_eq!(s["marker"], 42, "the page was reloaded");
    assert!(!strings(&s["masters"]).contains(&old), "{s}");
}

const HOSTILE_HOSTNAME: &str = "<b>hostile-host</b><script>window.pwned++</script>";
const HOSTILE_SUMMARY: &str =
    "<img src=x onerror=\"window.pwned=1\"></script><script>window.pwned=2</script> hostile-event";

#[test]
fn hostile_values_end_up_as_text_not_markup() {
    let Some(chromium) = browser::chromium_or_skip("cluster page escaping test") else {
        return;
    };
    let fake =
        fake_redis::FakeRedis::start(fake_redis::Behavior::Hostname(HOSTILE_HOSTNAME.into()));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let event = serde_json::json!({
        "id": 1, "key": "hostile/1", "time": "2026-01-01T00:00:00.000Z", "cluster": "default",
        "kind": "node_added", "summary": HOSTILE_SUMMARY, "master_id": null,
        "node": { "addr": HOSTILE_HOSTNAME, "id": HOSTILE_HOSTNAME }, "role": "master",
    });
    std::fs::write(&log, format!("{event}\n")).unwrap();
    let e = Exporter::start(
        &[
            "--redis-addr",
            &fake.url(),
            "--poll-interval",
            "200ms",
            "--event-log",
            log.to_str().unwrap(),
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    // The hostile value really reaches the page's data.
    common::wait_until(Duration::from_secs(10), "hostname in /api/cluster", || {
        api(&e)["shards"][0]["master"]["hostname"] == HOSTILE_HOSTNAME
    });
    let mut b = browser::Browser::open(&chromium, &e.url("/cluster"));
    let state = b.wait_for(
        Duration::from_secs(15),
        "the hostile values on the page",
        r#"JSON.stringify({
          text: document.body.innerText,
          pwned: window.pwned === undefined ? null : window.pwned,
          elements: document.querySelectorAll("b, img, iframe, svg").length,
          scripts: document.scripts.length,
        })"#,
        |v| {
            let s = page_state(v);
            s["text"]
                .as_str()
                .is_some_and(|t| t.contains("hostile-host") && t.contains("hostile-event"))
        },
    );
    let s = page_state(&state);
    let text = s["text"].as_str().unwrap();
    assert!(
        text.contains(HOSTILE_HOSTNAME),
        "hostname not shown verbatim:\n{text}"
    );
    assert!(
        text.contains(HOSTILE_SUMMARY),
        "summary not shown verbatim:\n{text}"
    );
    assert_eq!(s["pwned"], Value::Null, "a hostile script ran");
    assert_eq!(s["elements"], 0, "hostile markup became elements");
    assert_eq!(s["scripts"], 1, "only the page's own script");
}
