//! The shipped Prometheus scrape config (monitoring/prometheus/prometheus.yml) against the real
//! Prometheus: per-node series get `instance="<node host:port>"` (as redis_exporter's one target
//! per node would give them), `addr` stays as it is, and two exporters watching the same cluster
//! (an HA pair, both targets of the same job) do not collide.
//!
//! The stack: a real 3x1 Redis Cluster, TWO exporters on it (own ports, own event logs) and one
//! real Prometheus started from the repository's prometheus.yml with only the docker addresses
//! substituted, the same approach as tests/monitoring_e2e.rs: `redis-exporter:9121` becomes both
//! exporters' addresses (one target list), `alertmanager:9093` an unused loopback port (no alert
//! fires on a healthy cluster; nothing here needs Alertmanager).
//!
//! - `instance_label_per_node_and_ha_pair` checks the labels (must pass);
//! - `redis_exporter_dashboard_queries` runs the per-node queries a redis_exporter dashboard makes,
//!   `by (instance)`, and needs every node to answer each of them.

mod common;
#[path = "common/prom.rs"]
mod prom;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use prom::*;

const CLUSTER: &str = "inst";
const JOB: &str = "redis-cluster-exporter";

fn query(prom: &Prometheus, expr: &str) -> Vec<Series> {
    prom.query(expr)
        .unwrap_or_else(|e| panic!("query {expr}: {e}"))
}

fn label<'a>(s: &'a Series, k: &str) -> &'a str {
    s.labels.get(k).map(String::as_str).unwrap_or("")
}

/// The telemetry tier every second (default 15 s), so rate() windows fill quickly.
fn stats_interval_args() -> Vec<String> {
    vec!["--stats-interval".into(), "1s".into()]
}

/// A 3x1 cluster, two exporters on it and a Prometheus scraping both with the repo's config.
struct Stack {
    /// Kept alive (its nodes are killed on Drop).
    _cluster: RedisCluster,
    exporters: [Exporter; 2],
    prom: Prometheus,
    /// Node host:port, as the exporter labels nodes (`addr`).
    nodes: BTreeSet<String>,
    /// The exporters' target addresses (host:port), as in the scrape config.
    targets: [String; 2],
}

impl Stack {
    fn start(clock: &Clock, before_exporters: impl FnOnce(&RedisCluster)) -> Stack {
        // maxmemory: redis_memory_max_bytes > 0, so "memory used / max" has a denominator.
        let cluster = RedisCluster::start(ClusterOptions {
            extra_args: vec!["--maxmemory".into(), "64mb".into()],
            ..Default::default()
        });
        before_exporters(&cluster);
        let nodes: BTreeSet<String> = (0..cluster.node_count()).map(|i| cluster.addr(i)).collect();
        assert_eq!(nodes.len(), 6, "a 3x1 cluster has 6 nodes: {nodes:?}");
        clock.log("cluster 3x1 up");

        let stats = stats_interval_args();
        let start_exporter = || {
            let mut args: Vec<String> = vec![
                "--redis-addr".into(),
                cluster.seed_urls(),
                "--poll-interval".into(),
                "1s".into(),
                "--cluster-name".into(),
                CLUSTER.into(),
            ];
            args.extend(stats.iter().cloned());
            // The harness adds --listen-address 127.0.0.1:<free port> and --event-log in the
            // exporter's own temp dir.
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            Exporter::start(&a, &[])
        };
        let exporters = [start_exporter(), start_exporter()];
        for e in &exporters {
            e.wait_ready(Duration::from_secs(30));
        }
        assert_ne!(exporters[0].port(), exporters[1].port());
        assert_ne!(
            exporters[0].event_log(),
            exporters[1].event_log(),
            "the two exporters must not share an event log"
        );
        let targets = [0, 1].map(|k| format!("127.0.0.1:{}", exporters[k].port()));

        // Both exporters as targets of the config's one job: the config has
        // `- targets: ['redis-exporter:9121']`, which becomes `['<a>', '<b>']`.
        let config =
            std::fs::read_to_string(repo_root().join("monitoring/prometheus/prometheus.yml"))
                .expect("read monitoring/prometheus/prometheus.yml");
        let target_line = format!("- targets: ['{DOCKER_EXPORTER_ADDR}']");
        assert!(
            config.lines().any(|l| l.trim() == target_line),
            "prometheus.yml has no line `{target_line}` to put both exporters into"
        );
        let both = format!("{}', '{}", targets[0], targets[1]);
        let alertmanager = format!("127.0.0.1:{}", free_port());
        let prom = Prometheus::start(&both, &alertmanager);
        clock.log(&format!(
            "exporters {} and {}, prometheus :{} up",
            targets[0],
            targets[1],
            prom.port()
        ));
        Stack {
            _cluster: cluster,
            exporters,
            prom,
            nodes,
            targets,
        }
    }

    fn exporter_set(&self) -> BTreeSet<String> {
        self.targets.iter().cloned().collect()
    }

    /// Waits until Prometheus scraped both exporters successfully at least `n` times.
    fn wait_scrapes(&self, n: usize, timeout: Duration) {
        let expr = format!("count_over_time(up{{job=\"{JOB}\"}}[5m]) and up{{job=\"{JOB}\"}} == 1");
        let mut last = Vec::new();
        let ok = poll_until(timeout, Duration::from_millis(500), || {
            last = self.prom.query(&expr).unwrap_or_default();
            last.len() == 2 && last.iter().all(|s| s.last() >= n as f64)
        });
        assert!(
            ok,
            "Prometheus did not scrape both exporters {n} times within {timeout:?}: {last:?}; \
             targets {:?}",
            self.prom.targets()
        );
    }
}

/// Problems of one kind found on many series: the first few verbatim, then a count.
#[derive(Default)]
struct Capped(BTreeMap<&'static str, (usize, Vec<String>)>);

impl Capped {
    const SHOWN: usize = 3;

    fn push(&mut self, kind: &'static str, msg: String) {
        let (n, shown) = self.0.entry(kind).or_default();
        *n += 1;
        if shown.len() < Self::SHOWN {
            shown.push(msg);
        }
    }

    fn into_problems(self, problems: &mut Vec<String>) {
        for (kind, (n, shown)) in self.0 {
            problems.extend(shown);
            if n > Self::SHOWN {
                problems.push(format!("... {kind}: {n} series in all"));
            }
        }
    }
}

/// Prometheus' own counters of samples it rejected because two writes met in one series.
const COLLISION_COUNTERS: &[&str] = &[
    "prometheus_target_scrapes_sample_duplicate_timestamp_total",
    "prometheus_target_scrapes_sample_out_of_order_total",
    "prometheus_target_scrapes_sample_out_of_bounds_total",
];

#[test]
fn instance_label_per_node_and_ha_pair() {
    let clock = Clock(Instant::now());
    let mut stack = Stack::start(&clock, |_| {});
    let exporters = stack.exporter_set();
    let mut problems: Vec<String> = Vec::new();

    wait_both_exporters_scraped(&stack);
    check_redis_up_per_node(&stack, &exporters, &clock, &mut problems);
    check_instance_variable_offers_the_nodes(&stack, &mut problems);
    check_cluster_wide_series_keep_exporter_instance(&stack, &exporters, &mut problems);
    stack.wait_scrapes(3, Duration::from_secs(30));
    check_every_series_labels(&stack, &exporters, &clock, &mut problems);
    check_no_series_written_by_both_exporters(&stack, &clock, &mut problems);
    check_prometheus_reports_no_collision(&stack, &mut problems);

    for e in &mut stack.exporters {
        assert!(e.try_wait().is_none(), "exporter exited: {}", e.output());
    }
    stack.prom.assert_running();
    clock.log("done");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Both exporters are targets of the one job and scraped fine.
fn wait_both_exporters_scraped(stack: &Stack) {
    let mut last = Vec::new();
    let up = poll_until(Duration::from_secs(20), Duration::from_millis(250), || {
        last = stack.prom.targets().unwrap_or_default();
        stack.targets.iter().all(|t| {
            last.iter()
                .any(|(url, h, _)| *url == format!("http://{t}/metrics") && h == "up")
        })
    });
    assert!(up, "both exporters should be scraped targets: {last:?}");
}

/// redis_up per node: exactly 2 series (one per exporter), each 1, addr = instance = node.
fn check_redis_up_per_node(
    stack: &Stack,
    exporters: &BTreeSet<String>,
    clock: &Clock,
    problems: &mut Vec<String>,
) {
    let all_seen = poll_until(Duration::from_secs(20), Duration::from_millis(500), || {
        stack
            .nodes
            .iter()
            .all(|n| query(&stack.prom, &format!("redis_up{{instance=\"{n}\"}} == 1")).len() == 2)
    });
    clock.log(&format!(
        "redis_up per node instance with both exporters: {all_seen}"
    ));
    for n in &stack.nodes {
        let s = query(&stack.prom, &format!("redis_up{{instance=\"{n}\"}}"));
        let by: BTreeSet<String> = s.iter().map(|x| label(x, "exporter").to_string()).collect();
        if s.len() != 2 || by != *exporters {
            problems.push(format!(
                "redis_up{{instance=\"{n}\"}}: want 2 series, one per exporter {exporters:?}; got {:?}",
                s.iter().map(|x| &x.labels).collect::<Vec<_>>()
            ));
        }
        for x in &s {
            if x.last() != 1.0
                || label(x, "addr") != n
                || label(x, "cluster") != CLUSTER
                || label(x, "job") != JOB
            {
                problems.push(format!(
                    "redis_up{{instance=\"{n}\"}}: {:?} = {}",
                    x.labels,
                    x.last()
                ));
            }
        }
    }
}

/// One entry per node in `count by (instance)`; the redis_exporter dashboards' instance
/// variable (label_values(redis_up, instance)) offers exactly the nodes.
fn check_instance_variable_offers_the_nodes(stack: &Stack, problems: &mut Vec<String>) {
    let counts: BTreeMap<String, f64> = query(&stack.prom, "count by (instance) (redis_up)")
        .iter()
        .map(|s| (label(s, "instance").to_string(), s.last()))
        .collect();
    let want: BTreeMap<String, f64> = stack.nodes.iter().map(|n| (n.clone(), 2.0)).collect();
    if counts != want {
        problems.push(format!(
            "count by (instance) (redis_up) = {counts:?}, want {want:?}"
        ));
    }
    let offered: BTreeSet<String> = stack
        .prom
        .label_values("instance", "redis_up")
        .expect("label values")
        .into_iter()
        .collect();
    if offered != stack.nodes {
        problems.push(format!(
            "label_values(redis_up, instance) = {offered:?}, want the nodes {:?}",
            stack.nodes
        ));
    }
}

/// Cluster-wide series keep instance = the exporter (one series per exporter).
fn check_cluster_wide_series_keep_exporter_instance(
    stack: &Stack,
    exporters: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    for fam in [
        "redis_cluster_config_consistent",
        "redis_exporter_last_poll_timestamp_seconds",
        "up",
    ] {
        let s = query(&stack.prom, &format!("{fam}{{job=\"{JOB}\"}}"));
        let inst: BTreeSet<String> = s.iter().map(|x| label(x, "instance").to_string()).collect();
        if s.len() != 2 || inst != *exporters {
            problems.push(format!(
                "{fam}: want one series per exporter with instance = the exporter {exporters:?}; got {:?}",
                s.iter().map(|x| &x.labels).collect::<Vec<_>>()
            ));
        }
        for x in &s {
            if label(x, "instance") != label(x, "exporter") || !label(x, "addr").is_empty() {
                problems.push(format!(
                    "{fam}: instance should equal exporter, no addr: {:?}",
                    x.labels
                ));
            }
        }
    }
}

/// Every series the job wrote (after a few more scrapes): instance = addr where addr is set,
/// else the exporter; exporter = one of the two targets; no label of the exporter's was renamed
/// (exported_*) because it clashed with a target label.
fn check_every_series_labels(
    stack: &Stack,
    exporters: &BTreeSet<String>,
    clock: &Clock,
    problems: &mut Vec<String>,
) {
    let all = query(&stack.prom, &format!("{{job=\"{JOB}\"}}"));
    let mut per_node = 0usize;
    let mut cluster_wide = 0usize;
    let mut per_exporter: BTreeMap<String, usize> = BTreeMap::new();
    let mut capped = Capped::default();
    for s in &all {
        let name = label(s, "__name__");
        let (addr, inst, exp) = (label(s, "addr"), label(s, "instance"), label(s, "exporter"));
        *per_exporter.entry(exp.to_string()).or_default() += 1;
        if !exporters.contains(exp) {
            capped.push(
                "exporter label not a target",
                format!(
                    "{name}: exporter label {exp:?} is not a target: {:?}",
                    s.labels
                ),
            );
        }
        if addr.is_empty() {
            cluster_wide += 1;
            if inst != exp {
                capped.push(
                    "instance != exporter without addr",
                    format!("{name} (no addr): instance {inst:?} != exporter {exp:?}"),
                );
            }
        } else {
            per_node += 1;
            if inst != addr || !stack.nodes.contains(addr) {
                capped.push(
                    "instance != addr",
                    format!("{name}: instance {inst:?} != addr {addr:?} (or not a node)"),
                );
            }
        }
        if let Some(k) = s.labels.keys().find(|k| k.starts_with("exported_")) {
            capped.push(
                "exported_* label",
                format!(
                    "{name}: label {k} (a clash with a target label): {:?}",
                    s.labels
                ),
            );
        }
    }
    capped.into_problems(problems);
    clock.log(&format!(
        "{} series from the job: {per_node} per-node, {cluster_wide} cluster-wide; per exporter {per_exporter:?}",
        all.len()
    ));
    if per_exporter.len() != 2 || per_node == 0 || cluster_wide == 0 {
        problems.push(format!(
            "expected per-node and cluster-wide series from both exporters: {per_exporter:?}"
        ));
    }
}

/// No series is written by both exporters. Two targets writing one series are NOT reported by
/// Prometheus as long as their samples arrive in time order (they interleave silently: without
/// the `exporter` label a node's redis_up holds both exporters' samples, 2 per scrape
/// interval), so count raw samples: one target writes at most one sample per series per scrape,
/// so no series may hold more samples than the most-scraped target's `up` over the same window.
fn check_no_series_written_by_both_exporters(
    stack: &Stack,
    clock: &Clock,
    problems: &mut Vec<String>,
) {
    let at = unix_now();
    let window = format!("{{job=\"{JOB}\"}}[1m]");
    let raw = stack
        .prom
        .query_at(&window, at)
        .expect("raw samples of the job");
    let scrapes: BTreeMap<String, usize> = raw
        .iter()
        .filter(|s| label(s, "__name__") == "up")
        .map(|s| (label(s, "instance").to_string(), s.values.len()))
        .collect();
    let max_scrapes = scrapes.values().copied().max().unwrap_or(0);
    if scrapes.len() != 2 || max_scrapes < 3 {
        problems.push(format!("up over 1m, samples per target: {scrapes:?}"));
    }
    let mut crowded = Capped::default();
    for s in &raw {
        if s.values.len() > max_scrapes {
            crowded.push(
                "written by more than one target",
                format!(
                    "{:?}: {} samples in 1m, but no target was scraped more than {max_scrapes} \
                     times: written by more than one target",
                    s.labels,
                    s.values.len()
                ),
            );
        }
    }
    let n_crowded = crowded.0.values().map(|(n, _)| n).sum::<usize>();
    crowded.into_problems(problems);
    clock.log(&format!(
        "raw samples over 1m: {} series, scrapes per target {scrapes:?}, {n_crowded} series with more",
        raw.len()
    ));
}

/// Prometheus' own collision counters stay 0, and its log has no duplicate / out-of-order
/// complaint.
fn check_prometheus_reports_no_collision(stack: &Stack, problems: &mut Vec<String>) {
    let (status, _, body) = http_get(&stack.prom.url("/metrics"));
    assert_eq!(status, 200, "Prometheus /metrics: {status}");
    for c in COLLISION_COUNTERS {
        match metric_samples(&body, c).first() {
            None => problems.push(format!("Prometheus /metrics has no {c}")),
            Some((_, v)) => {
                eprintln!("  prometheus: {c} = {v}");
                if *v != 0.0 {
                    problems.push(format!("{c} = {v}, want 0"));
                }
            }
        }
    }
    for l in stack.prom.log().lines() {
        let lower = l.to_ascii_lowercase();
        if lower.contains("duplicate")
            || lower.contains("out of order")
            || lower.contains("out-of-order")
        {
            problems.push(format!("prometheus log: {l}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The queries a redis_exporter dashboard makes per node
// ---------------------------------------------------------------------------------------------

/// (panel, query, metric families it reads). Each is `by (instance)` and must return a finite
/// value for every node instance. Aggregated with `max` where the dashboards show one value per
/// node, so the two exporters of the HA pair give one value, not two; the per-db and per-command
/// panels `sum` as those dashboards do (with an HA pair that counts each node once per exporter).
const DASHBOARD_QUERIES: &[(&str, &str, &[&str])] = &[
    (
        "uptime",
        "max by (instance) (redis_uptime_in_seconds)",
        &["redis_uptime_in_seconds"],
    ),
    (
        "clients",
        "max by (instance) (redis_connected_clients)",
        &["redis_connected_clients"],
    ),
    (
        "memory used / max %",
        "100 * max by (instance) (redis_memory_used_bytes) / max by (instance) (redis_memory_max_bytes)",
        &["redis_memory_used_bytes", "redis_memory_max_bytes"],
    ),
    (
        "commands/s",
        "max by (instance) (rate(redis_commands_processed_total[1m]))",
        &["redis_commands_processed_total"],
    ),
    (
        "hits/s",
        "max by (instance) (rate(redis_keyspace_hits_total[1m]))",
        &["redis_keyspace_hits_total"],
    ),
    (
        "misses/s",
        "max by (instance) (rate(redis_keyspace_misses_total[1m]))",
        &["redis_keyspace_misses_total"],
    ),
    (
        "network in",
        "max by (instance) (rate(redis_net_input_bytes_total[1m]))",
        &["redis_net_input_bytes_total"],
    ),
    (
        "network out",
        "max by (instance) (rate(redis_net_output_bytes_total[1m]))",
        &["redis_net_output_bytes_total"],
    ),
    (
        "keys per db",
        "sum by (instance, db) (redis_db_keys)",
        &["redis_db_keys"],
    ),
    (
        "expiring keys",
        "max by (instance) (redis_db_keys_expiring)",
        &["redis_db_keys_expiring"],
    ),
    (
        "expired/s",
        "max by (instance) (rate(redis_expired_keys_total[1m]))",
        &["redis_expired_keys_total"],
    ),
    (
        "evicted/s",
        "max by (instance) (rate(redis_evicted_keys_total[1m]))",
        &["redis_evicted_keys_total"],
    ),
    (
        "calls/s by command",
        "sum by (instance, cmd) (rate(redis_commands_total[1m]))",
        &["redis_commands_total"],
    ),
];

/// Writes keys with a TTL to every master (a MOVED reply means another master's slot) and reads
/// some back plus some that do not exist, so keyspace, hit and miss series exist; the replicas
/// get the keys by replication.
fn write_keys(cluster: &RedisCluster) {
    for m in cluster.masters() {
        let mut stored = Vec::new();
        for n in 0..2000 {
            let key = format!("inst:key:{n}");
            if let Ok(Resp::Simple(ok)) = cluster.raw(m, &["SET", &key, "v", "EX", "3600"]) {
                assert_eq!(ok, "OK");
                stored.push(key);
                if stored.len() == 5 {
                    break;
                }
            }
        }
        assert!(!stored.is_empty(), "could not store a key on master {m}");
        for k in &stored {
            let _ = cluster.raw(m, &["GET", k]); // a hit
            let _ = cluster.raw(m, &["EXISTS", &format!("{k}:absent")]); // MOVED or a miss
        }
    }
}

/// Node instances in a query result that have a finite value.
fn answered(series: &[Series]) -> BTreeSet<String> {
    series
        .iter()
        .filter(|s| s.last().is_finite())
        .map(|s| label(s, "instance").to_string())
        .collect()
}

#[test]
fn redis_exporter_dashboard_queries() {
    let clock = Clock(Instant::now());
    let stack = Stack::start(&clock, write_keys);
    stack.wait_scrapes(2, Duration::from_secs(30));

    // rate(...[1m]) needs two samples of a series: poll until every query answers for every node
    // or the deadline passes (5s scrapes, stats every 1s: well within it).
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let complete = poll_until(Duration::from_secs(25), Duration::from_secs(1), || {
        missing.clear();
        for (panel, expr, _) in DASHBOARD_QUERIES {
            let got = answered(&query(&stack.prom, expr));
            let lack: BTreeSet<String> = stack.nodes.difference(&got).cloned().collect();
            if !lack.is_empty() {
                missing.insert(panel, lack);
            }
        }
        missing.is_empty()
    });
    clock.log(&format!("dashboard queries complete: {complete}"));

    let body = stack.exporters[0].metrics();
    let mut problems = Vec::new();
    for (panel, expr, families) in DASHBOARD_QUERIES {
        let Some(lack) = missing.get(panel) else {
            eprintln!("  ok    {panel:<20} {expr}");
            continue;
        };
        let absent: Vec<&str> = families
            .iter()
            .copied()
            .filter(|f| metric_samples(&body, f).is_empty())
            .collect();
        eprintln!(
            "  FAIL  {panel:<20} {expr}  (no value for {} node(s); absent from /metrics: {absent:?})",
            lack.len()
        );
        problems.push(format!(
            "{panel}: `{expr}` has no value for {lack:?}; families absent from the exporter's \
             /metrics: {absent:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} dashboard quer(ies) without a value for every node:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
