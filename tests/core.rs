//! Exporter core against real redis-server clusters: discovery, roles, replication lag,
//! metric format checks with the real promtool and a strict OpenMetrics parser, nodes joining
//! and leaving, dead and frozen nodes, non-cluster servers, and wrong credentials.

mod common;

use common::{
    ClusterOptions, Exporter, RedisCluster, RedisStandalone, http_get, http_get_with_headers,
    metric_samples, metric_value, up_count, wait_until,
};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAST: &[&str] = &["--poll-interval", "200ms", "--node-timeout", "300ms"];

fn start_exporter(seed: &str, extra: &[&str]) -> Exporter {
    let mut args = vec!["--redis-addr", seed];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    let e = Exporter::start(&args, &[]);
    e.wait_ready(Duration::from_secs(10));
    e
}

fn metrics(e: &Exporter) -> String {
    let (status, _, body) = http_get(&e.url("/metrics"));
    assert_eq!(status, 200);
    body
}

/// Waits until `/metrics` satisfies `f`, returning the body that did.
fn wait_metrics(e: &Exporter, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    wait_until(timeout, what, || {
        last = metrics(e);
        f(&last)
    });
    last
}

#[test]
fn one_seed_shows_every_node_with_roles_state_memory_and_lag() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    // Seed with a replica: any node of the cluster will do.
    let replica = cluster.replicas()[0];
    let e = start_exporter(&format!("redis://{}", cluster.addr(replica)), &[]);
    let body = wait_metrics(&e, Duration::from_secs(10), "all 6 nodes up", |b| {
        up_count(b) == 6
    });

    for i in 0..cluster.node_count() {
        let addr = cluster.addr(i);
        let id = cluster.node_id(i);
        let info = metric_samples(&body, "redis_cluster_node_info");
        let mine: Vec<_> = info.iter().filter(|(l, _)| l["addr"] == addr).collect();
        assert_eq!(mine.len(), 1, "{addr}: {info:?}");
        let labels = &mine[0].0;
        assert_eq!(labels["node_id"], id);
        assert_eq!(labels["cluster"], "default");
        if cluster.masters().contains(&i) {
            assert_eq!(labels["role"], "master");
            assert_eq!(labels["master_id"], "");
            assert_eq!(
                metric_value(&body, "redis_cluster_node_slots", &[("addr", &addr)])
                    .map(|v| v > 5000.0),
                Some(true)
            );
        } else {
            let master = cluster.master_of(i).expect("replica has a master");
            assert_eq!(labels["role"], "replica");
            assert_eq!(labels["master_id"], cluster.node_id(master));
            let lag = metric_value(
                &body,
                "redis_replication_lag_bytes",
                &[("addr", &addr), ("master_addr", &cluster.addr(master))],
            );
            assert!(lag.is_some_and(|l| l >= 0.0), "lag of {addr}: {lag:?}");
            assert_eq!(
                metric_value(&body, "redis_master_link_up", &[("addr", &addr)]),
                Some(1.0)
            );
        }
        assert_eq!(
            metric_value(&body, "redis_cluster_state", &[("addr", &addr)]),
            Some(1.0)
        );
        assert_eq!(
            metric_value(&body, "redis_cluster_known_nodes", &[("addr", &addr)]),
            Some(6.0)
        );
        assert_eq!(
            metric_value(&body, "redis_cluster_slots_ok", &[("addr", &addr)]),
            Some(16384.0)
        );
        assert!(
            metric_value(&body, "redis_memory_used_bytes", &[("addr", &addr)])
                .is_some_and(|v| v > 100_000.0)
        );
        assert!(metric_value(&body, "redis_replication_offset", &[("addr", &addr)]).is_some());
        assert!(
            metric_value(&body, "redis_commands_processed_total", &[("addr", &addr)]).is_some()
        );
    }
    assert_eq!(
        metric_value(&body, "redis_cluster_nodes", &[("role", "master")]),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_nodes", &[("role", "replica")]),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_masters_without_replica", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_config_consistent", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_slots_uncovered", &[]),
        Some(0.0)
    );
    // Masters list their replicas the way redis_exporter labels them (a replica that just
    // attached may still be in wait_bgsave for a moment).
    let body = wait_metrics(&e, Duration::from_secs(10), "3 online replicas", |b| {
        let slaves = metric_samples(b, "redis_connected_slave_offset_bytes");
        slaves.len() == 3
            && slaves
                .iter()
                .all(|(l, _)| l["slave_state"] == "online" && l.contains_key("slave_ip"))
    });
    assert_eq!(
        metric_samples(&body, "redis_connected_slave_lag_seconds").len(),
        3
    );

    // Keys written through the cluster show up per db, with redis_exporter's db label.
    for m in cluster.masters() {
        for k in 0..50 {
            // Keys of other masters' slots are refused with MOVED; the rest land.
            let _ = cluster.raw(m, &["SET", &format!("k{k}"), "v"]);
        }
    }
    // INFO keyspace is part of the telemetry each node sends once per --stats-interval (15 s by
    // default, at its own offset): the keys show at the next turn of any node holding them.
    let body = wait_metrics(&e, Duration::from_secs(20), "db keys", |b| {
        metric_samples(b, "redis_db_keys")
            .iter()
            .any(|(l, v)| l["db"] == "db0" && *v >= 1.0)
    });
    assert!(!metric_samples(&body, "redis_instance_info").is_empty());
}

/// redis_exporter names promtool's linter objects to (abbreviated units, a gauge called
/// `_total`, counters without `_total`); kept because users' dashboards and alert packs use them.
const REDIS_EXPORTER_NAMES_LINTED: &[&str] = &[
    "redis_aof_current_rewrite_duration_sec",
    "redis_aof_last_rewrite_duration_sec",
    "redis_rdb_current_bgsave_duration_sec",
    "redis_rdb_last_bgsave_duration_sec",
    "redis_migrate_cached_sockets_total",
    "redis_defrag_hits",
    "redis_defrag_misses",
    "redis_defrag_key_hits",
    "redis_defrag_key_misses",
    "redis_replica_resyncs_full",
    "redis_replica_partial_resync_accepted",
    "redis_replica_partial_resync_denied",
    "redis_unexpected_error_replies",
    "redis_total_error_replies",
    "redis_dump_payload_sanitizations",
    "redis_total_reads_processed",
    "redis_total_writes_processed",
    "redis_io_threaded_reads_processed",
    "redis_io_threaded_writes_processed",
];

#[test]
fn metrics_pass_promtool_and_strict_openmetrics_parser() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url(), &[]);
    wait_metrics(&e, Duration::from_secs(10), "all nodes", |b| {
        metric_samples(b, "redis_up").len() == 6
    });
    let (status, headers, text) = http_get(&e.url("/metrics"));
    assert_eq!(status, 200);
    assert!(headers.contains("text/plain; version=0.0.4"), "{headers}");
    assert!(!text.contains("# EOF"));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The only findings allowed are promtool's naming lints on names kept exactly as
    // redis_exporter spells them (its users' dashboards and alerts query them), each listed.
    let unexpected: Vec<&str> = findings
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            // Per-type bus message counters: redis_exporter names them without `_total`.
            !REDIS_EXPORTER_NAMES_LINTED.contains(&name)
                && !name.starts_with("redis_cluster_stats_messages_")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool findings beyond the redis_exporter-compatible names:\n{}",
        unexpected.join("\n")
    );

    let (status, headers, om) = http_get_with_headers(
        &e.url("/metrics"),
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert_eq!(status, 200);
    assert!(
        headers.contains("application/openmetrics-text"),
        "{headers}"
    );
    assert!(om.ends_with("# EOF\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("om.txt");
    std::fs::write(&path, &om).unwrap();
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nfams=list(p(open(sys.argv[1]).read()))\nprint(len(fams))\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("python3 with prometheus_client");
    assert!(
        out.status.success(),
        "strict OpenMetrics parser rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn node_added_later_appears_and_forgotten_node_disappears() {
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url(), &[]);
    wait_metrics(&e, Duration::from_secs(10), "6 nodes", |b| {
        metric_samples(b, "redis_up").len() == 6
    });
    let new = cluster.add_node();
    let addr = cluster.addr(new);
    let body = wait_metrics(&e, Duration::from_secs(15), "the new node is polled", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(1.0)
    });
    assert_eq!(metric_samples(&body, "redis_up").len(), 7);
    let info = metric_samples(&body, "redis_cluster_node_info");
    assert!(
        info.iter()
            .any(|(l, _)| l["addr"] == addr && l["role"] == "master")
    );

    cluster.wait_converged(Duration::from_secs(15));
    cluster.forget(new);
    wait_metrics(
        &e,
        Duration::from_secs(15),
        "the forgotten node is no longer polled",
        |b| {
            metric_value(b, "redis_up", &[("addr", &addr)]).is_none()
                && metric_samples(b, "redis_up").len() == 6
        },
    );
}

#[test]
fn killed_node_goes_down_quickly_while_others_stay_fresh() {
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url(), &[]);
    wait_metrics(&e, Duration::from_secs(10), "6 nodes up", |b| {
        up_count(b) == 6
    });
    let victim = cluster.replicas()[0];
    let addr = cluster.addr(victim);
    cluster.kill(victim);
    let killed = Instant::now();
    // Interval (200ms) + timeout (300ms), plus scheduling slack.
    let body = wait_metrics(&e, Duration::from_secs(3), "killed node down", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(0.0)
    });
    let took = killed.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    // The open connection breaks first (io), then reconnecting is refused (connect).
    let errors = |b: &str, reason: &str| {
        metric_value(
            b,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", reason)],
        )
    };
    assert!(errors(&body, "io").or(errors(&body, "connect")).is_some());
    wait_metrics(&e, Duration::from_secs(3), "connect errors", |b| {
        errors(b, "connect").is_some()
    });
    let up = up_count(&body);
    assert_eq!(up, 5);
    // The other nodes' values keep moving: their uptime and the poll timestamp advance.
    let t0 = metric_value(&body, "redis_exporter_last_poll_timestamp_seconds", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let later = metrics(&e);
    assert!(
        metric_value(&later, "redis_exporter_last_poll_timestamp_seconds", &[]).unwrap() > t0 + 0.5
    );
    assert_eq!(up_count(&later), 5);
}

#[test]
fn frozen_node_does_not_slow_the_others() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url(), &[]);
    wait_metrics(&e, Duration::from_secs(10), "6 nodes up", |b| {
        up_count(b) == 6
    });
    let victim = cluster.masters()[1];
    let addr = cluster.addr(victim);
    cluster.stop(victim);
    let body = wait_metrics(&e, Duration::from_secs(3), "frozen node down", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(0.0)
    });
    assert!(
        metric_value(
            &body,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "timeout")]
        )
        .is_some(),
        "a frozen node times out"
    );
    // Every poll round is bounded by the node timeout, and the other nodes answer in
    // milliseconds: the frozen one does not hold them up.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(250));
        let body = metrics(&e);
        for (labels, secs) in metric_samples(&body, "redis_exporter_node_poll_duration_seconds") {
            if labels["addr"] != addr {
                assert!(secs < 0.2, "{} took {secs}s to poll", labels["addr"]);
            }
        }
        assert_eq!(up_count(&body), 5);
    }
    let ts = |b: &str| metric_value(b, "redis_exporter_last_poll_timestamp_seconds", &[]).unwrap();
    let a = ts(&metrics(&e));
    std::thread::sleep(Duration::from_millis(2000));
    let b = ts(&metrics(&e));
    // 200ms interval, rounds capped at 300ms: at least 3 rounds in 2 s.
    assert!(b - a >= 1.0, "poll rounds stalled: {a} -> {b}");
    cluster.cont(victim);
    wait_metrics(&e, Duration::from_secs(10), "thawed node back", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(1.0)
    });
}

#[test]
fn non_cluster_server_is_reported_not_cluster() {
    let server = RedisStandalone::start(None);
    let e = start_exporter(&server.url(), &[]);
    let addr = server.addr();
    let body = wait_metrics(&e, Duration::from_secs(5), "not_cluster reason", |b| {
        metric_value(
            b,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "not_cluster")],
        )
        .is_some()
    });
    assert_eq!(
        metric_value(&body, "redis_up", &[("addr", &addr)]),
        Some(0.0)
    );
    assert!(e.output().contains("not_cluster"), "{}", e.output());
}

#[test]
fn wrong_password_is_auth_and_never_leaks() {
    let secret = "S3cret-Wrong-Pa55word-xyz";
    let cluster = RedisCluster::start(ClusterOptions {
        password: Some("right-password-123".into()),
        ..ClusterOptions::default()
    });
    let seed = cluster.seed_url();
    let e = Exporter::start(
        &[
            "--redis-addr",
            &seed,
            "--poll-interval",
            "200ms",
            "--node-timeout",
            "300ms",
        ],
        &[("REDIS_PASSWORD", secret)],
    );
    e.wait_ready(Duration::from_secs(10));
    let addr = cluster.addr(0);
    let body = wait_metrics(&e, Duration::from_secs(5), "auth reason", |b| {
        metric_value(
            b,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "auth")],
        )
        .is_some()
    });
    assert_eq!(
        metric_value(&body, "redis_up", &[("addr", &addr)]),
        Some(0.0)
    );
    let (_, _, om) = http_get_with_headers(
        &e.url("/metrics"),
        &[("Accept", "application/openmetrics-text")],
    );
    let (_, _, index) = http_get(&e.url("/"));
    for (what, text) in [
        ("metrics", &body),
        ("openmetrics", &om),
        ("index", &index),
        ("logs", &e.output()),
    ] {
        assert!(!text.contains(secret), "the password leaked into {what}");
    }
    assert!(e.output().contains("auth"), "{}", e.output());

    // The right password, from a file, works.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "right-password-123\n").unwrap();
    let good = start_exporter(&seed, &["--redis-password-file", file.to_str().unwrap()]);
    wait_metrics(
        &good,
        Duration::from_secs(10),
        "6 nodes up with the password file",
        |b| up_count(b) == 6,
    );
}

#[test]
fn unreachable_seed_keeps_retrying_then_finds_the_cluster() {
    // Reserve ports for a cluster that does not exist yet.
    let port = common::free_port();
    let seed = format!("redis://127.0.0.1:{port}");
    let e = start_exporter(&seed, &[]);
    let addr = format!("127.0.0.1:{port}");
    wait_metrics(&e, Duration::from_secs(5), "seed reported down", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(0.0)
    });
    let (status, _, _) = http_get(&e.url("/health"));
    assert_eq!(status, 200);
    // The exporter is still running and answering.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http_get(&e.url("/ready")).0, 200);
}

#[test]
fn ready_is_503_until_the_first_poll_completes() {
    // A frozen server: the first poll takes the whole node timeout.
    let server = RedisStandalone::start(None);
    let pid = common::parse_info(&server.cli(&["INFO", "server"]))["process_id"].clone();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let e = Exporter::start(
        &[
            "--redis-addr",
            &server.url(),
            "--poll-interval",
            "5s",
            "--node-timeout",
            "3s",
        ],
        &[],
    );
    wait_until(Duration::from_secs(5), "http up", || {
        common::try_http_get(&e.url("/health"), &[]).is_ok()
    });
    assert_eq!(http_get(&e.url("/ready")).0, 503);
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    e.wait_ready(Duration::from_secs(10));
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        vec!["--poll-interval", "soon"],
        vec!["--redis-addr", "http://x:1"],
        vec!["--redis-password-file", "/nonexistent/pw"],
        vec!["--log-format", "xml"],
    ] {
        let out = Command::new(Exporter::bin())
            .args(&args)
            .env_remove("REDIS_ADDR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    // A password given in the URL is refused without echoing it.
    let out = Command::new(Exporter::bin())
        .args(["--redis-addr", "redis://user:hunter2@127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn metrics_are_gzipped_for_clients_that_ask() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url(), &[]);
    wait_metrics(&e, Duration::from_secs(10), "6 nodes", |b| {
        metric_samples(b, "redis_up").len() == 6
    });
    // curl --compressed sends Accept-Encoding: gzip and inflates the body, as Prometheus does.
    let out = Command::new("curl")
        .args(["-s", "--compressed", "-D", "-", &e.url("/metrics")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("content-encoding: gzip"), "{text}");
    assert!(text.contains("redis_cluster_node_info{"), "inflated body");
    let raw = Command::new("curl")
        .args(["-s", "-H", "Accept-Encoding: gzip", &e.url("/metrics")])
        .output()
        .unwrap();
    assert!(
        raw.stdout.len() * 3 < metrics(&e).len(),
        "compressed on the wire"
    );
    assert!(
        !String::from_utf8_lossy(
            &Command::new("curl")
                .args(["-s", "-D", "-", &e.url("/metrics")])
                .output()
                .unwrap()
                .stdout
        )
        .to_lowercase()
        .contains("content-encoding")
    );

    // Rendered on scrape, not on poll: 2 s without a scrape at a 200 ms poll is ~10 polls and
    // no render; then one render per scrape at most, whatever the number of polls.
    let renders =
        |b: &str| metric_value(b, "redis_exporter_metrics_renders_total", &[]).unwrap_or(0.0);
    let polls =
        |b: &str| metric_value(b, "redis_exporter_poll_duration_seconds_count", &[]).unwrap_or(0.0);
    let before = metrics(&e);
    std::thread::sleep(Duration::from_secs(2));
    let after = metrics(&e);
    assert!(polls(&after) >= polls(&before) + 5.0, "polls went on");
    assert_eq!(
        renders(&after),
        renders(&before) + 1.0,
        "one render for one scrape"
    );
}
