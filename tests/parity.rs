//! Parity with Debian's prometheus-redis-exporter 1.45 (redis_exporter), checked against the
//! real peer binary on a real redis-server cluster.
//!
//! `every_peer_family_exists_with_the_same_labels_per_node`: for one master and its replica,
//! every metric family the peer emits for that node (its multi-target `/scrape?target=`, with
//! `-include-system-metrics`) must exist in our `/metrics` among the series whose `addr` label
//! is that node, with the same label names once our `cluster` and `addr` are set aside, and
//! the same type unless `TYPE_DIFFERENCES` says why not. Only `EXCLUSIONS` are exempt.
//!
//! `command_and_error_labels_stay_capped_per_node`: thousands of distinct commands and error
//! codes on one node leave at most `CMD_CAP` series of `redis_commands_total` and `ERR_CAP`
//! of `redis_errors_total` for it, and the errors still add up to INFO's total_error_replies.
//!
//! The first needs `/usr/bin/prometheus-redis-exporter` (apt-get install
//! prometheus-redis-exporter): without it, it is skipped with a message, unless `CI` is set,
//! where it fails.

mod common;

use common::peer::{self, Family, PeerExporter};
use common::{ClusterOptions, Exporter, RedisCluster, metric_samples, up_count, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Families of the peer that we do not have to emit, and why. A pattern ending in `*` is a
/// prefix. Everything else the peer emits for a cluster node is a node quantity we must export.
const EXCLUSIONS: &[(&str, &str)] = &[
    (
        "redis_exporter_*",
        "redis_exporter's self-metrics (the peer process: build, scrapes, scrape time and errors)",
    ),
    (
        "redis_target_scrape_request_errors_total",
        "redis_exporter self-metric: failed /scrape HTTP requests of the peer process",
    ),
    (
        "redis_last_key_groups_scrape_duration_milliseconds",
        "redis_exporter self-metric: time the peer spent on -check-key-groups",
    ),
    (
        "redis_key_*",
        "key-level check (-check-keys, -check-single-keys, -check-key-groups): values of chosen keys, not of the node",
    ),
    (
        "redis_keys_count",
        "key-level check (-count-keys): not a node quantity",
    ),
    (
        "redis_number_of_distinct_key_groups",
        "key-level check (-check-key-groups): not a node quantity",
    ),
    (
        "redis_stream_*",
        "key-level check (-check-streams / -check-single-streams): per-stream values, not of the node",
    ),
];

/// Type differences we accept: (family pattern, peer's type, our type, why). A pattern ending in
/// `*` is a prefix. Any other type difference fails the test.
const TYPE_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    // Real counters the peer types gauge; the names already end in _total.
    (
        "redis_cluster_messages_sent_total",
        "gauge",
        "counter",
        "CLUSTER INFO cluster_stats_messages_sent only grows: a counter",
    ),
    (
        "redis_cluster_messages_received_total",
        "gauge",
        "counter",
        "CLUSTER INFO cluster_stats_messages_received only grows: a counter",
    ),
    (
        "redis_expired_time_cap_reached_total",
        "gauge",
        "counter",
        "INFO expired_time_cap_reached_count only grows: a counter",
    ),
    // Real counters the peer types gauge, under the peer's names (without _total): a counter in
    // the classic text format we compare here (OpenMetrics has them as `unknown`, since it would
    // rename a counter's samples to <name>_total).
    (
        "redis_cluster_stats_messages_*",
        "gauge",
        "counter",
        "per-type cluster bus message counts only grow",
    ),
    (
        "redis_defrag_*",
        "gauge",
        "counter",
        "active_defrag_hits/misses/key_hits/key_misses only grow",
    ),
    (
        "redis_replica_resyncs_full",
        "gauge",
        "counter",
        "sync_full only grows",
    ),
    (
        "redis_replica_partial_resync_*",
        "gauge",
        "counter",
        "sync_partial_ok/err only grow",
    ),
];

/// The exporter keeps at most this many `redis_commands_total` series per node: the busiest
/// commands get their own `cmd` label, the rest are summed under `cmd="other"` (which counts
/// as one of the CMD_CAP series).
const CMD_CAP: usize = 256;
/// At most this many `redis_errors_total` series per node (the rest summed, likewise).
const ERR_CAP: usize = 64;

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn exclusion(name: &str) -> Option<&'static str> {
    EXCLUSIONS
        .iter()
        .find(|(p, _)| matches(p, name))
        .map(|(_, r)| *r)
}

fn allowed_type_difference(name: &str, theirs: &str, ours: &str) -> Option<&'static str> {
    TYPE_DIFFERENCES
        .iter()
        .find(|(p, t, o, _)| matches(p, name) && *t == theirs && *o == ours)
        .map(|(_, _, _, r)| *r)
}

/// INFO ALL, CONFIG GET, SLOWLOG and LATENCY every second instead of every 15 s.
fn stats_interval_args() -> Vec<&'static str> {
    vec!["--stats-interval", "1s"]
}

fn start_ours(cluster: &RedisCluster) -> Exporter {
    let seed = cluster.seed_url();
    let mut args = vec!["--redis-addr", seed.as_str(), "--poll-interval", "1s"];
    args.extend(stats_interval_args());
    let e = Exporter::start(&args, &[]);
    e.wait_ready(Duration::from_secs(15));
    let n = cluster.node_count();
    wait_until(
        Duration::from_secs(15),
        "our exporter to see every node up",
        || up_count(&e.metrics()) == n,
    );
    e
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A hash tag (`{pN}`) whose slot master `m` owns, so `{pN}:key` lands on `m` without MOVED.
fn tag_on(cluster: &RedisCluster, m: usize) -> String {
    for n in 0..1000 {
        let tag = format!("{{p{n}}}");
        match cluster.raw(m, &["GET", &format!("{tag}:probe")]) {
            Ok(common::Resp::Error(e)) if e.starts_with("MOVED") => continue,
            Ok(_) => return tag,
            Err(e) => panic!("GET on node {m}: {e}"),
        }
    }
    panic!("no hash tag of node {m} among 1000");
}

/// Traffic after which every conditional family of the peer exists on the master and the
/// replica: keyspace hits and misses, keys with a TTL, commandstats and latencystats, errorstats
/// (an unknown command, WRONGTYPE), a slowlog entry and a latency-monitor spike.
fn generate_traffic(cluster: &RedisCluster, master: usize, replica: usize) {
    let tag = tag_on(cluster, master);
    let k = |name: String| format!("{tag}:{name}");
    let mut m: Vec<Vec<String>> = Vec::new();
    for n in 0..50 {
        m.push(s(&["SET", &k(format!("k{n}")), "v"]));
        m.push(s(&["SETEX", &k(format!("ttl{n}")), "3600", "v"]));
    }
    for n in 0..50 {
        m.push(s(&["GET", &k(format!("k{n}"))]));
        m.push(s(&["GET", &k(format!("miss{n}"))]));
    }
    // An unknown command (errorstat_ERR), a WRONGTYPE, a slowlog entry, a latency spike.
    let oddities = |v: &mut Vec<Vec<String>>, wrongtype: &str| {
        v.push(s(&["FOOBARPARITY", "x"]));
        v.push(s(&[wrongtype, &k("k0".into())]));
        v.push(s(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]));
        v.push(s(&["PING"]));
        v.push(s(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]));
        v.push(s(&["CONFIG", "SET", "latency-monitor-threshold", "1"]));
        v.push(s(&["DEBUG", "SLEEP", "0.02"]));
        v.push(s(&["CONFIG", "SET", "latency-monitor-threshold", "0"]));
    };
    oddities(&mut m, "LPUSH");
    let r = peer::pipe_commands(cluster.port(master), cluster.password(), &m);
    assert!(r.errors >= 2, "master traffic: {r:?}");

    // The replica: reads (READONLY lets it answer for its master's slots), the same oddities
    // with a read command for the WRONGTYPE (a write would be redirected to the master).
    wait_until(Duration::from_secs(10), "keys replicated", || {
        cluster
            .info(replica, "keyspace")
            .get("db0")
            .is_some_and(|v| v.starts_with("keys=100,"))
    });
    let mut rp: Vec<Vec<String>> = vec![s(&["READONLY"])];
    for n in 0..20 {
        rp.push(s(&["GET", &k(format!("k{n}"))]));
        rp.push(s(&["GET", &k(format!("miss{n}"))]));
    }
    oddities(&mut rp, "LLEN");
    let r = peer::pipe_commands(cluster.port(replica), cluster.password(), &rp);
    assert!(r.errors >= 2, "replica traffic: {r:?}");

    // db_avg_ttl is sampled by the active expire cycle (10 times a second).
    wait_until(Duration::from_secs(10), "avg_ttl > 0 on the master", || {
        cluster
            .info(master, "keyspace")
            .get("db0")
            .and_then(|v| v.split(',').find_map(|f| f.strip_prefix("avg_ttl=")))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|t| t > 0)
    });
}

#[derive(Debug, Default)]
struct NodeReport {
    table: Vec<String>,
    missing: Vec<String>,
    label_diffs: Vec<String>,
    type_diffs: Vec<String>,
    no_cluster_label: Vec<String>,
    matched: usize,
    checked: usize,
}

impl NodeReport {
    fn problems(&self) -> usize {
        self.missing.len()
            + self.label_diffs.len()
            + self.type_diffs.len()
            + self.no_cluster_label.len()
    }
}

fn fmt_labels(l: &BTreeSet<String>) -> String {
    format!("{{{}}}", l.iter().cloned().collect::<Vec<_>>().join(","))
}

fn compare(theirs: &BTreeMap<String, Family>, ours: &BTreeMap<String, Family>) -> NodeReport {
    let mut r = NodeReport::default();
    for (name, t) in theirs {
        if let Some(reason) = exclusion(name) {
            r.table.push(format!(
                "  {:<10} {:<56} {:<8} {:<8} {}  ({reason})",
                "excluded",
                name,
                t.kind,
                "-",
                fmt_labels(&t.labels)
            ));
            continue;
        }
        r.checked += 1;
        let Some(o) = ours.get(name) else {
            r.missing
                .push(format!("{name} {} {}", t.kind, fmt_labels(&t.labels)));
            r.table.push(format!(
                "  {:<10} {:<56} {:<8} {:<8} {}",
                "MISSING",
                name,
                t.kind,
                "-",
                fmt_labels(&t.labels)
            ));
            continue;
        };
        let mut status: Vec<&str> = Vec::new();
        let mut note = String::new();
        if o.labels != t.labels {
            status.push("LABELS");
            r.label_diffs.push(format!(
                "{name}: theirs {} ours {}",
                fmt_labels(&t.labels),
                fmt_labels(&o.labels)
            ));
        }
        if o.kind != t.kind {
            match allowed_type_difference(name, &t.kind, &o.kind) {
                Some(reason) => note = format!("  (type: {reason})"),
                None => {
                    status.push("TYPE");
                    r.type_diffs
                        .push(format!("{name}: theirs {} ours {}", t.kind, o.kind));
                }
            }
        }
        if !o.on_every_sample.contains("cluster") {
            status.push("NOCLUSTER");
            r.no_cluster_label.push(name.clone());
        }
        if status.is_empty() {
            r.matched += 1;
        }
        let labels = if o.labels == t.labels {
            fmt_labels(&t.labels)
        } else {
            format!(
                "theirs {} ours {}",
                fmt_labels(&t.labels),
                fmt_labels(&o.labels)
            )
        };
        r.table.push(format!(
            "  {:<10} {:<56} {:<8} {:<8} {labels}{note}",
            if status.is_empty() {
                "ok".to_string()
            } else {
                status.join("+")
            },
            name,
            t.kind,
            o.kind
        ));
    }
    r
}

fn node_families(
    cluster: &RedisCluster,
    peer_body: &str,
    our_body: &str,
    i: usize,
) -> (BTreeMap<String, Family>, BTreeMap<String, Family>) {
    let addr = cluster.addr(i);
    let theirs = peer::families(peer_body, |_| true, &[]);
    let ours = peer::families(
        our_body,
        |l| l.get("addr").map(String::as_str) == Some(addr.as_str()),
        &["cluster", "addr"],
    );
    (theirs, ours)
}

#[test]
fn every_peer_family_exists_with_the_same_labels_per_node() {
    let Some(_) =
        peer::peer_binary_or_skip("every_peer_family_exists_with_the_same_labels_per_node")
    else {
        return;
    };
    let started = Instant::now();
    let cluster = RedisCluster::start(ClusterOptions::default()); // 3 masters, 1 replica each
    let master = cluster.masters()[0];
    let replica = cluster
        .replica_of(master)
        .expect("the master has a replica");
    wait_replica_online_on_master(&cluster, master);
    let ours = start_ours(&cluster);
    generate_traffic(&cluster, master, replica);

    let peer = PeerExporter::start(&["-include-system-metrics"]);
    let nodes = [("master", master), ("replica", replica)];
    let peer_bodies: Vec<String> = nodes
        .iter()
        .map(|&(_, i)| peer.scrape(cluster.port(i)))
        .collect();
    let scraped = Instant::now();
    check_peer_output_covers_the_traffic(&nodes, &peer_bodies);
    let reports = compare_until_clean(&cluster, &ours, &nodes, &peer_bodies, scraped);
    let failure = print_reports_and_collect_failures(&cluster, &nodes, &reports);
    println!("\n(took {:?})", started.elapsed());
    assert!(
        failure.is_empty(),
        "our /metrics lacks redis_exporter 1.45 parity:{failure}"
    );
}

/// RedisCluster::start waited for master_link_status:up on every replica; the master must
/// also list the replica as online (redis_connected_slave_* carry slave_state).
fn wait_replica_online_on_master(cluster: &RedisCluster, master: usize) {
    wait_until(
        Duration::from_secs(15),
        "replica online on the master",
        || {
            cluster
                .info(master, "replication")
                .get("slave0")
                .is_some_and(|v| v.contains("state=online"))
        },
    );
}

/// Coverage of the traffic: the families it exists for are in the peer's output.
fn check_peer_output_covers_the_traffic(nodes: &[(&str, usize); 2], peer_bodies: &[String]) {
    for (fam, node) in [
        ("redis_errors_total", 0),
        ("redis_errors_total", 1),
        ("redis_latency_spike_last", 0),
        ("redis_latency_spike_last", 1),
        ("redis_db_avg_ttl_seconds", 0),
        ("redis_connected_slave_offset_bytes", 0),
        ("redis_slave_info", 1),
        ("redis_commands_total", 0),
        ("redis_latency_percentiles_usec_count", 0),
        ("redis_total_system_memory_bytes", 0),
    ] {
        assert!(
            !metric_samples(&peer_bodies[node], fam).is_empty(),
            "the peer's {} output has no {fam}; traffic or peer flags are off",
            nodes[node].0
        );
    }
    let slowlog = metric_samples(&peer_bodies[0], "redis_slowlog_length");
    assert!(
        slowlog.first().is_some_and(|(_, v)| *v >= 1.0),
        "{slowlog:?}"
    );
}

/// Our view must be at least as new as the peer's (conditional families only appear, never
/// vanish, during this test): read until every family matches, at most ~8 s after the peer.
fn compare_until_clean(
    cluster: &RedisCluster,
    ours: &Exporter,
    nodes: &[(&str, usize); 2],
    peer_bodies: &[String],
    scraped: Instant,
) -> Vec<NodeReport> {
    loop {
        let our_body = ours.metrics();
        let reports: Vec<NodeReport> = nodes
            .iter()
            .zip(peer_bodies)
            .map(|(&(_, i), pb)| {
                let (t, o) = node_families(cluster, pb, &our_body, i);
                compare(&t, &o)
            })
            .collect();
        let clean = reports.iter().all(|r| r.problems() == 0);
        if clean || scraped.elapsed() > Duration::from_secs(8) {
            return reports;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Prints each node's comparison table; returns the problems of every node, by section
/// (empty when all matched).
fn print_reports_and_collect_failures(
    cluster: &RedisCluster,
    nodes: &[(&str, usize); 2],
    reports: &[NodeReport],
) -> String {
    let mut failure = String::new();
    for ((role, i), r) in nodes.iter().zip(reports) {
        let addr = cluster.addr(*i);
        println!(
            "\n== {role} {addr}: {} of {} peer families match ({} excluded)",
            r.matched,
            r.checked,
            r.table.len() - r.checked
        );
        println!(
            "  {:<10} {:<56} {:<8} {:<8} labels (without cluster, addr)",
            "status", "family", "theirs", "ours"
        );
        for line in &r.table {
            println!("{line}");
        }
        if r.problems() == 0 {
            continue;
        }
        failure.push_str(&format!("\n{role} {addr}:\n"));
        let mut section = |title: &str, items: &[String]| {
            if !items.is_empty() {
                failure.push_str(&format!("  {title} ({}):\n", items.len()));
                for it in items {
                    failure.push_str(&format!("    {it}\n"));
                }
            }
        };
        section("missing in ours", &r.missing);
        section("label names differ", &r.label_diffs);
        section("type differs (not in TYPE_DIFFERENCES)", &r.type_diffs);
        section(
            "series of this node without a cluster label",
            &r.no_cluster_label,
        );
    }
    failure
}

fn info_u64(cluster: &RedisCluster, i: usize, section: &str, key: &str) -> u64 {
    cluster
        .info(i, section)
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} of node {i} has no numeric {key}"))
}

#[test]
fn command_and_error_labels_stay_capped_per_node() {
    // Needs no peer: only our exporter and the node's own INFO.
    let cluster = RedisCluster::start(ClusterOptions {
        masters: 3,
        replicas: 0,
        ..ClusterOptions::default()
    });
    let ours = start_ours(&cluster);
    let m = cluster.masters()[0];
    let addr = cluster.addr(m);

    // 3000 distinct unknown commands (each an ERR reply; unknown commands get no cmdstat line),
    // every real command and subcommand with a wrong number of arguments (each a cmdstat line
    // with rejected_calls=1 and an ERR, and no effect), 200 distinct error codes from scripts.
    let mut cmds: Vec<Vec<String>> = (0..3000).map(|n| vec![format!("FOOBAR{n}")]).collect();
    let command_reply = cluster.raw(m, &["COMMAND"]).expect("COMMAND");
    let rejected = peer::arity_rejected_commands(&command_reply);
    assert!(rejected.len() > CMD_CAP, "{} commands", rejected.len());
    cmds.extend(rejected.iter().cloned());
    for n in 0..200 {
        cmds.push(s(&[
            "EVAL",
            &format!("return redis.error_reply('PARITYERR{n} from a script')"),
            "0",
        ]));
    }
    let r = peer::pipe_commands(cluster.port(m), cluster.password(), &cmds);
    assert_eq!(r.errors, cmds.len() as u64, "every command errs: {r:?}");

    let cmdstats = cluster.info(m, "commandstats").len();
    let errorstats = cluster.info(m, "errorstats").len();
    assert!(
        cmdstats > CMD_CAP && errorstats > ERR_CAP,
        "the node must have more distinct commands ({cmdstats}) than {CMD_CAP} and error codes \
         ({errorstats}) than {ERR_CAP} for this test to prove anything"
    );

    // Our numbers come from the last stats collection, up to one stats interval old: read the
    // node's total before and after each scrape, retry until a collection after the traffic.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut cmd_series, mut err_series, mut err_sum, mut before, mut after, mut other);
    loop {
        before = info_u64(&cluster, m, "stats", "total_error_replies");
        let body = ours.metrics();
        after = info_u64(&cluster, m, "stats", "total_error_replies");
        let mine = |name: &str| -> Vec<(BTreeMap<String, String>, f64)> {
            metric_samples(&body, name)
                .into_iter()
                .filter(|(l, _)| l.get("addr") == Some(&addr))
                .collect()
        };
        let cmd = mine("redis_commands_total");
        let err = mine("redis_errors_total");
        cmd_series = cmd.len();
        other = cmd
            .iter()
            .any(|(l, _)| l.get("cmd").map(String::as_str) == Some("other"));
        err_series = err.len();
        err_sum = err.iter().fold(0.0, |a, (_, v)| a + v);
        let settled =
            cmd_series > 0 && err_sum >= before as f64 && err_sum <= after as f64 && other;
        if settled || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "node {addr}: {cmdstats} cmdstat lines -> {cmd_series} redis_commands_total series \
         (other: {other}); {errorstats} errorstat lines -> {err_series} redis_errors_total series, \
         sum {err_sum}, total_error_replies {before}..{after}"
    );
    assert!(
        cmd_series > 0,
        "no redis_commands_total series for {addr} (cap {CMD_CAP})"
    );
    assert!(
        cmd_series <= CMD_CAP,
        "{cmd_series} redis_commands_total series for {addr}, cap {CMD_CAP}"
    );
    assert!(
        other,
        "{cmdstats} commands on {addr} but no redis_commands_total{{cmd=\"other\"}}"
    );
    assert!(
        err_series > 0 && err_series <= ERR_CAP,
        "{err_series} redis_errors_total series for {addr}, cap {ERR_CAP}"
    );
    assert!(
        err_sum >= before as f64 && err_sum <= after as f64,
        "sum of redis_errors_total for {addr} is {err_sum}; INFO total_error_replies was \
         {before} before and {after} after the scrape"
    );
}

/// The comparison itself, on small expositions: no false alarms for our styles (extra labels,
/// OpenMetrics-style counter TYPE lines, allowed type differences, other nodes' series), and the
/// right complaints for a missing family, other label names and an unlisted type change.
#[test]
fn comparison_reads_families_labels_and_types() {
    let theirs = "\
# TYPE redis_up gauge
redis_up 1
# TYPE redis_commands_total counter
redis_commands_total{cmd=\"get\"} 3
# TYPE redis_latency_percentiles_usec summary
redis_latency_percentiles_usec{cmd=\"get\",quantile=\"50\"} 1
redis_latency_percentiles_usec_sum{cmd=\"get\"} 3
redis_latency_percentiles_usec_count{cmd=\"get\"} 3
# TYPE redis_cluster_messages_sent_total gauge
redis_cluster_messages_sent_total 9
# TYPE redis_total_error_replies counter
redis_total_error_replies 2
# TYPE redis_exporter_scrapes_total counter
redis_exporter_scrapes_total 1
# TYPE redis_master_link_up gauge
redis_master_link_up{master_host=\"h\",master_port=\"1\"} 1
# TYPE redis_slowlog_length gauge
redis_slowlog_length 0
# TYPE redis_pubsub_channels gauge
redis_pubsub_channels 0
";
    let a = "cluster=\"c\",addr=\"127.0.0.1:1\"";
    let b = "cluster=\"c\",addr=\"127.0.0.1:2\"";
    let ours = format!(
        "\
# TYPE redis_up gauge
redis_up{{{a}}} 1
# TYPE redis_commands counter
redis_commands_total{{{a},cmd=\"other\"}} 3
# TYPE redis_latency_percentiles_usec summary
redis_latency_percentiles_usec{{{a},cmd=\"get\",quantile=\"50\"}} 1
redis_latency_percentiles_usec_sum{{{a},cmd=\"get\"}} 3
redis_latency_percentiles_usec_count{{{a},cmd=\"get\"}} 3
# TYPE redis_cluster_messages_sent_total counter
redis_cluster_messages_sent_total{{{a}}} 9
# TYPE redis_total_error_replies counter
redis_total_error_replies{{{a}}} 2
# TYPE redis_master_link_up gauge
redis_master_link_up{{{a}}} 1
# TYPE redis_slowlog_length counter
redis_slowlog_length{{{a}}} 0
# TYPE redis_pubsub_channels gauge
redis_pubsub_channels{{{b}}} 0
# TYPE redis_exporter_poll_duration_seconds gauge
redis_exporter_poll_duration_seconds{{{a}}} 0.1
"
    );
    let t = peer::families(theirs, |_| true, &[]);
    assert_eq!(t["redis_latency_percentiles_usec"].kind, "summary");
    assert_eq!(
        t["redis_latency_percentiles_usec"].labels,
        BTreeSet::from(["cmd".to_string(), "quantile".to_string()])
    );
    let o = peer::families(
        &ours,
        |l| l.get("addr").map(String::as_str) == Some("127.0.0.1:1"),
        &["cluster", "addr"],
    );
    assert_eq!(o["redis_commands_total"].kind, "counter");
    assert_eq!(o["redis_total_error_replies"].kind, "counter");
    assert!(!o.contains_key("redis_pubsub_channels"), "another node's");
    let r = compare(&t, &o);
    assert_eq!(
        r.missing,
        vec!["redis_pubsub_channels gauge {}".to_string()]
    );
    assert_eq!(
        r.label_diffs,
        vec!["redis_master_link_up: theirs {master_host,master_port} ours {}".to_string()]
    );
    assert_eq!(
        r.type_diffs,
        vec!["redis_slowlog_length: theirs gauge ours counter".to_string()]
    );
    assert!(r.no_cluster_label.is_empty());
    // up, commands, latency summary, messages_sent (allowed), total_error_replies
    assert_eq!(r.matched, 5, "{:#?}", r.table);
    assert_eq!(r.checked, 8); // redis_exporter_scrapes_total is excluded
}
