//! End-to-end test of the monitoring assets against the real tools: a real 3x1 Redis Cluster, the
//! real exporter, a real Prometheus started from monitoring/prometheus/prometheus.yml (only the two
//! docker addresses substituted, rules loaded through the config's own `rule_files`) and a real
//! Alertmanager started from monitoring/alertmanager/alertmanager.yml, unchanged.
//!
//! One #[test] runs the phases in order on one stack (2-core machines: everything heavy starts once):
//! 1. wiring: Prometheus scrapes the exporter, knows Alertmanager, loaded exactly the alerts of
//!    alerts/*.rules.yml;
//! 2. one automatic failover (kill -9 a master, replica promoted, old master restarted and rejoined),
//!    then every expression printed by scripts/dashboard-exprs.py runs against Prometheus the way
//!    Grafana runs it (instant targets at "now", range targets and annotations over the test window)
//!    and must return data; every rule must evaluate without error; the failover raises the info
//!    alert RedisClusterFailover and pages nobody;
//! 3. a master AND its replica killed: RedisClusterStateFail (critical) becomes active in
//!    Alertmanager's v2 API, RedisClusterNodeDown fires for both nodes; after restarting them every
//!    one of these alerts resolves.
//!
//! Problems found along the way are collected and reported together at the end, so one run shows
//! everything that is wrong (a stack that cannot start still fails at once).

mod common;
#[path = "common/prom.rs"]
mod prom;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use prom::*;
use serde_json::Value;

const CLUSTER: &str = "e2e";

/// Dashboard expressions that may return no data in this test, with the reason. Each entry is
/// (panel title as printed by scripts/dashboard-exprs.py, expression before `$cluster`
/// substitution). Every other expression must return at least one non-NaN value.
///
/// The test produces every other situation the dashboards graph (a failover, keys with a TTL,
/// maxmemory set so the "% of maxmemory" panels have a denominator, poll errors from the killed
/// master).
const MAY_BE_EMPTY: &[(&str, &str)] = &[
    // Forecast: only nodes whose used memory grows (deriv over 30m > 0) have a time to full. The
    // short-lived test cluster writes a handful of keys, so used_memory may be flat or even shrink
    // over the window; an empty result is then the correct answer, not a broken query.
    (
        "Time to full (maxmemory)",
        "(max by (addr) (redis_memory_max_bytes{cluster=\"$cluster\"}) - max by (addr) \
         (redis_memory_used_bytes{cluster=\"$cluster\"})) / (max by (addr) \
         (deriv(redis_memory_used_bytes{cluster=\"$cluster\"}[30m])) > 0) and on (addr) max by (addr) \
         (redis_memory_max_bytes{cluster=\"$cluster\"}) > 0",
    ),
    // CLUSTER SLOT-STATS is Valkey 8+ / Redis 8.2+; this test's cluster is Redis 7.0, which does
    // not know it: no hot-slot series at all (tests/hot_slots.rs checks them on Valkey 9.1).
    (
        "Hottest slots",
        "topk(10, max by (addr, slot) (redis_cluster_slot_keys{cluster=\"$cluster\"}))",
    ),
    (
        "Hottest slots",
        "topk(10, max by (addr, slot) (rate(redis_cluster_slot_cpu_usec_total{cluster=\"$cluster\"}[5m])))",
    ),
];

/// Instant query that must succeed; its first value, or None for an empty result.
fn scalar(prom: &Prometheus, expr: &str) -> Option<f64> {
    prom.query(expr)
        .unwrap_or_else(|e| panic!("query {expr}: {e}"))
        .first()
        .map(Series::last)
}

/// Writes a few keys with a TTL to every master (keys land where CLUSTER KEYSLOT says; a MOVED
/// reply just means "another master's key"), so redis_db_keys and redis_db_keys_expiring exist.
fn write_keys(cluster: &RedisCluster) {
    for m in cluster.masters() {
        let mut stored = 0;
        for n in 0..500 {
            let key = format!("e2e:key:{n}");
            if let Ok(Resp::Simple(ok)) = cluster.raw(m, &["SET", &key, "v", "EX", "3600"]) {
                assert_eq!(ok, "OK");
                stored += 1;
                if stored == 5 {
                    break;
                }
            }
        }
        assert!(stored > 0, "could not store a key on master {m}");
    }
}

/// A hit, a miss and an error reply on every master, so the hit-ratio and errors-by-type panels
/// have data (run while Prometheus scrapes, so the counters move inside its rate() windows).
fn read_keys(cluster: &RedisCluster) {
    for m in cluster.masters() {
        for prefix in ["e2e:key", "e2e:missing"] {
            for n in 0..500 {
                let key = format!("{prefix}:{n}");
                // A key of this master's slots answers a bulk (a hit, or nil for a miss).
                if let Ok(Resp::Bulk(_)) = cluster.raw(m, &["GET", &key]) {
                    break;
                }
            }
        }
        let _ = cluster.raw(m, &["E2E-NO-SUCH-COMMAND"]);
    }
}

/// Names of the alerts defined in the repo's alerts/*.rules.yml (the files Prometheus' rule_files
/// glob `../../alerts/*.rules.yml` selects).
fn alert_names_in_repo() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for e in fs::read_dir(repo_root().join("alerts")).expect("read alerts/") {
        let p = e.expect("alerts entry").path();
        let is_rules = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".rules.yml"));
        if !is_rules {
            continue;
        }
        for line in fs::read_to_string(&p).expect("read rules").lines() {
            if let Some(name) = line.trim_start().strip_prefix("- alert:") {
                names.insert(name.trim().to_string());
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Dashboard queries
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// Panel target with `instant: true`: one instant query at "now".
    Instant,
    /// Panel target without `instant`: a range query over the test window.
    Range,
    /// Annotation query: a range query over the test window with the annotation's step.
    Annotation,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn walk_panels(panels: &Value, out: &mut BTreeMap<String, BTreeSet<Mode>>) {
    for p in panels.as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                let mode = if t["instant"].as_bool() == Some(true) {
                    Mode::Instant
                } else {
                    Mode::Range
                };
                out.entry(one_line(e)).or_default().insert(mode);
            }
        }
        walk_panels(&p["panels"], out);
    }
}

/// How Grafana runs each expression of a dashboard file: expr (one-lined) -> modes.
fn dashboard_modes(file: &str) -> BTreeMap<String, BTreeSet<Mode>> {
    let path = repo_root().join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let dash: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {file}: {e}"));
    let mut out = BTreeMap::new();
    walk_panels(&dash["panels"], &mut out);
    out
}

struct DashExpr {
    file: String,
    title: String,
    raw: String,
}

/// The output of scripts/dashboard-exprs.py: (file, panel title, expression).
fn dashboard_exprs() -> Vec<DashExpr> {
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("scripts/dashboard-exprs.py"))
        .current_dir(&root)
        .output()
        .expect("run python3 scripts/dashboard-exprs.py");
    assert!(
        out.status.success(),
        "scripts/dashboard-exprs.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("dashboard-exprs.py output is UTF-8");
    let exprs: Vec<DashExpr> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (file, title, raw) = (f.next(), f.next(), f.next());
            let (Some(file), Some(title), Some(raw)) = (file, title, raw) else {
                panic!("bad line from dashboard-exprs.py: {l:?}");
            };
            DashExpr {
                file: file.to_string(),
                title: title.to_string(),
                raw: raw.to_string(),
            }
        })
        .collect();
    assert!(!exprs.is_empty(), "dashboard-exprs.py printed nothing");
    exprs
}

/// Runs every dashboard expression; returns one problem line per expression that errors, returns
/// nothing, or returns only NaN (Grafana shows "No data"/NaN for those).
fn check_dashboards(prom: &Prometheus, window_start: f64, clock: &Clock) -> Vec<String> {
    let exprs = dashboard_exprs();
    let mut modes_by_file: BTreeMap<String, BTreeMap<String, BTreeSet<Mode>>> = BTreeMap::new();
    let mut problems = Vec::new();
    let now = unix_now();
    let range_step = 5.0;
    for d in &exprs {
        let modes: BTreeSet<Mode> = if d.title.starts_with("annotation: ") {
            [Mode::Annotation].into()
        } else {
            let by_expr = modes_by_file
                .entry(d.file.clone())
                .or_insert_with(|| dashboard_modes(&d.file));
            match by_expr.get(&d.raw) {
                Some(m) => m.clone(),
                None => {
                    problems.push(format!(
                        "{} / {}: expression not found among the dashboard's targets: {}",
                        d.file, d.title, d.raw
                    ));
                    continue;
                }
            }
        };
        let expr = d.raw.replace("$cluster", CLUSTER);
        if expr.contains('$') {
            problems.push(format!(
                "{} / {}: uses a Grafana variable the test cannot substitute: {}",
                d.file, d.title, d.raw
            ));
            continue;
        }
        let allowed = MAY_BE_EMPTY
            .iter()
            .any(|(t, e)| *t == d.title && *e == d.raw);
        for mode in modes {
            let result = match mode {
                Mode::Instant => prom.query_at(&expr, now),
                Mode::Range => prom.query_range(&expr, window_start, now, range_step),
                // The dashboards' annotations use step 15s.
                Mode::Annotation => prom.query_range(&expr, window_start, now, 15.0),
            };
            let verdict = match &result {
                Err(e) => Some(format!("ERROR {e}")),
                Ok(s) if s.is_empty() => Some("EMPTY".to_string()),
                Ok(s) if s.iter().all(|x| x.values.iter().all(|v| v.is_nan())) => {
                    Some("ONLY NaN".to_string())
                }
                Ok(_) => None,
            };
            let summary = match &result {
                Ok(s) if !s.is_empty() => {
                    format!("{} series, e.g. {}", s.len(), s[0].last())
                }
                _ => String::new(),
            };
            eprintln!(
                "  {:<4} {:<10} {:<38} {}",
                if verdict.is_some() { "FAIL" } else { "ok" },
                format!("{mode:?}"),
                d.title,
                if verdict.is_some() {
                    verdict.clone().unwrap_or_default()
                } else {
                    summary
                }
            );
            if let Some(v) = verdict {
                if allowed && v == "EMPTY" {
                    continue;
                }
                problems.push(format!("{} / {} [{mode:?}]: {v}: {expr}", d.file, d.title));
            }
        }
    }
    clock.log(&format!(
        "ran {} dashboard expressions, {} problem(s)",
        exprs.len(),
        problems.len()
    ));
    problems
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn find<'a>(alerts: &'a [AmAlert], name: &str, labels: &[(&str, &str)]) -> Vec<&'a AmAlert> {
    alerts
        .iter()
        .filter(|a| a.name() == name && labels.iter().all(|(k, v)| a.label(k) == *v))
        .collect()
}

/// Annotations of an alert must be fully expanded (Prometheus puts the template error text in the
/// annotation when expansion fails).
fn check_annotations(a: &AmAlert, problems: &mut Vec<String>) {
    for (k, v) in &a.annotations {
        if v.contains("error expanding") || v.contains("<no value>") || v.trim().is_empty() {
            problems.push(format!(
                "alert {} {:?}: annotation {k} not expanded: {v}",
                a.name(),
                a.labels
            ));
        }
    }
    for k in ["summary", "description", "runbook"] {
        if !a.annotations.contains_key(k) {
            problems.push(format!("alert {} has no {k} annotation", a.name()));
        }
    }
    let runbook = a
        .annotations
        .get("runbook")
        .map(String::as_str)
        .unwrap_or("");
    // Host and port are cut out of `addr` with reReplaceAll, or the addr is used whole.
    if let Some((host, port)) = a.label("addr").rsplit_once(':')
        && !runbook.contains(&format!("-h {host} -p {port}"))
        && !runbook.contains(a.label("addr"))
    {
        problems.push(format!(
            "alert {} {{addr={:?}}}: runbook names neither the node nor its host/port: {runbook}",
            a.name(),
            a.label("addr")
        ));
    }
    // Runbooks that look up a live node with the `query` template function fall back to a
    // placeholder only when no node is up; here most nodes are.
    if runbook.contains("<any-node:port>") {
        problems.push(format!(
            "alert {}: runbook's query for a live node found none: {runbook}",
            a.name()
        ));
    }
}

/// Everything the phases share: the stack (dropped, and so killed, when the test ends) and the
/// problems found so far.
struct Stack {
    clock: Clock,
    cluster: RedisCluster,
    exporter: Exporter,
    am: Alertmanager,
    prom: Prometheus,
    /// When Prometheus started: the start of every range query.
    window_start: f64,
    problems: Vec<String>,
}

/// The `for:` of the two outage alerts, as Prometheus loaded them.
struct OutageRules {
    state_fail_for: Duration,
    node_down_for: Duration,
}

/// The master and replica the outage phase killed, with their addresses, what Alertmanager
/// showed while they were down, and how long the test waited for it.
struct Outage {
    m2: usize,
    r2: usize,
    addr_m2: String,
    addr_r2: String,
    /// RedisClusterStateFail was active at some poll.
    state_fail_seen: bool,
    /// RedisClusterNodeDown was there for both nodes at some poll.
    node_down_seen: bool,
    state_fail_deadline: Duration,
    node_down_deadline: Duration,
}

#[test]
fn monitoring_stack_end_to_end() {
    let mut s = start_stack();
    let rules = check_wiring(&s);
    build_history(&s);
    let healed_at = automatic_failover(&mut s);
    let failover_metric = check_failover_metrics(&mut s);
    wait_prometheus_scraped_healed_cluster(&s, healed_at);
    check_failover_in_prometheus(&mut s, failover_metric);
    s.clock
        .log("Prometheus has the post-failover state; running the dashboard queries");
    let dash = check_dashboards(&s.prom, s.window_start, &s.clock);
    s.problems.extend(dash);
    check_cluster_variable_and_rule_health(&mut s);
    check_failover_alert_pages_nobody(&mut s, failover_metric);
    let (outage, alerts) = kill_master_and_replica_until_alerts(&mut s, &rules);
    check_outage_alerts(&mut s, &outage, &alerts);
    recover_and_wait_alerts_resolved(&mut s, &outage);
    check_tool_logs(&mut s);

    assert!(
        s.problems.is_empty(),
        "{} problem(s):\n  {}",
        s.problems.len(),
        s.problems.join("\n  ")
    );
}

/// The stack: a 3x1 cluster with keys, the exporter, Alertmanager and Prometheus.
fn start_stack() -> Stack {
    let clock = Clock(Instant::now());
    // maxmemory: the "Memory used vs maxmemory" / "% of maxmemory" panels only graph nodes with a
    // limit (redis_memory_max_bytes > 0); 64 MiB is far above what the test stores.
    let cluster = RedisCluster::start(ClusterOptions {
        extra_args: vec!["--maxmemory".into(), "64mb".into()],
        ..Default::default()
    });
    write_keys(&cluster);
    clock.log("cluster 3x1 up, keys written");
    let exporter = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            "1s",
            "--stats-interval",
            "2s",
            "--cluster-name",
            CLUSTER,
        ],
        &[],
    );
    exporter.wait_ready(Duration::from_secs(30));
    let am = Alertmanager::start();
    let prom = Prometheus::start(&format!("127.0.0.1:{}", exporter.port()), &am.addr());
    let window_start = unix_now();
    clock.log(&format!(
        "exporter :{}, alertmanager :{}, prometheus :{} up",
        exporter.port(),
        am.port(),
        prom.port()
    ));
    Stack {
        clock,
        cluster,
        exporter,
        am,
        prom,
        window_start,
        problems: Vec::new(),
    }
}

/// Phase 1: Prometheus scrapes the exporter, knows Alertmanager, and loaded exactly the repo's
/// alerts; returns the `for:` of the alerts phase 3 waits for.
fn check_wiring(s: &Stack) -> OutageRules {
    let exporter_url = format!("http://127.0.0.1:{}/metrics", s.exporter.port());
    let mut last_targets = Vec::new();
    let scraped = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        last_targets = s.prom.targets().unwrap_or_default();
        last_targets
            .iter()
            .any(|(url, health, _)| *url == exporter_url && health == "up")
    });
    assert!(
        scraped,
        "Prometheus does not scrape {exporter_url} successfully: targets {last_targets:?}"
    );
    let am_url_prefix = format!("http://{}/", s.am.addr());
    let mut last_ams = Vec::new();
    let am_known = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        last_ams = s.prom.alertmanagers().unwrap_or_default();
        last_ams.iter().any(|u| u.starts_with(&am_url_prefix))
    });
    assert!(
        am_known,
        "Prometheus does not know Alertmanager {am_url_prefix}: {last_ams:?}"
    );
    let rules = s.prom.rules().expect("GET /api/v1/rules");
    let loaded: BTreeSet<String> = rules
        .iter()
        .filter(|r| r.kind == "alerting")
        .map(|r| r.name.clone())
        .collect();
    let in_repo = alert_names_in_repo();
    assert!(!in_repo.is_empty(), "no alerts found in alerts/*.rules.yml");
    assert_eq!(
        loaded, in_repo,
        "Prometheus (through the config's rule_files) did not load exactly the repo's alerts"
    );
    let rule_for = |name: &str| -> Duration {
        let r = rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("rule {name} not loaded"));
        Duration::from_secs_f64(r.duration)
    };
    let out = OutageRules {
        state_fail_for: rule_for("RedisClusterStateFail"),
        node_down_for: rule_for("RedisClusterNodeDown"),
    };
    s.clock.log(&format!(
        "wiring ok: target up, alertmanager known, {} alerts loaded",
        loaded.len()
    ));
    out
}

/// A little history before the failover (rate()/increase() windows, state timelines).
fn build_history(s: &Stack) {
    let have_all = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        scalar(
            &s.prom,
            &format!("count(redis_up{{cluster=\"{CLUSTER}\"}} == 1)"),
        ) == Some(6.0)
    });
    assert!(have_all, "Prometheus never saw 6 nodes up");
    for _ in 0..3 {
        read_keys(&s.cluster);
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Phase 2: kill -9 a master, wait for its replica's promotion, restart the old master and wait
/// until it rejoined as a replica; returns when the cluster was healed (Unix seconds).
fn automatic_failover(s: &mut Stack) -> f64 {
    let cluster = &mut s.cluster;
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "masters: {masters:?}");
    let m = masters[0];
    let r = cluster.replica_of(m).expect("master has a replica");
    s.clock.log(&format!(
        "failover: kill -9 master {} (replica {})",
        cluster.addr(m),
        cluster.addr(r)
    ));
    cluster.kill(m);
    cluster.wait_role(r, "master", Duration::from_secs(30));
    wait_until(
        Duration::from_secs(30),
        "cluster_state:ok on the promoted replica",
        || {
            cluster
                .raw(r, &["CLUSTER", "INFO"])
                .map(|x| {
                    parse_info(&x.text())
                        .get("cluster_state")
                        .map(String::as_str)
                        == Some("ok")
                })
                .unwrap_or(false)
        },
    );
    s.clock
        .log("replica promoted, cluster ok; restarting the old master");
    cluster.restart(m);
    cluster.wait_healthy(Duration::from_secs(60));
    assert_eq!(
        cluster.master_of(m),
        Some(r),
        "old master should rejoin as a replica of the promoted one"
    );
    let healed_at = unix_now();
    s.clock
        .log("old master rejoined as replica, cluster healthy");
    healed_at
}

/// `redis_cluster_failovers_total` of this test's cluster by `trigger`.
fn failovers_by_trigger(body: &str) -> BTreeMap<String, f64> {
    metric_samples(body, "redis_cluster_failovers_total")
        .into_iter()
        .filter(|(l, _)| l.get("cluster").map(String::as_str) == Some(CLUSTER))
        .map(|(l, v)| (l.get("trigger").cloned().unwrap_or_default(), v))
        .collect()
}

/// The exporter's failover metrics (required by the failover dashboard and alerts): some
/// failover counted at once, and counted as what it was, `automatic`. Returns whether any
/// failover was counted.
fn check_failover_metrics(s: &mut Stack) -> bool {
    let failover_metric = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        failovers_by_trigger(&s.exporter.metrics())
            .values()
            .sum::<f64>()
            >= 1.0
    });
    // What the exporter made of it (shown for diagnosis whatever the outcome).
    let body = s.exporter.metrics();
    for l in body.lines().filter(|l| {
        !l.starts_with('#')
            && (l.starts_with("redis_cluster_failover")
                || l.starts_with("redis_cluster_last_failover")
                || (l.starts_with("redis_cluster_events_total") && !l.ends_with(" 0")))
    }) {
        eprintln!("  exporter: {l}");
    }
    let (_, _, events) = s.exporter.get("/events");
    for e in serde_json::from_str::<Value>(&events)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
    {
        eprintln!("  event: {e}");
    }
    let by_trigger = failovers_by_trigger(&s.exporter.metrics());
    if by_trigger.get("automatic").copied().unwrap_or(0.0) < 1.0 {
        s.problems.push(format!(
            "exporter: after kill -9 of a master and its replica's election, \
             redis_cluster_failovers_total{{trigger=\"automatic\"}} should be >= 1; by trigger: \
             {by_trigger:?}"
        ));
    }
    failover_metric
}

/// Prometheus must have scraped the healed cluster (a poll that started after it healed) and
/// one more scrape after that.
fn wait_prometheus_scraped_healed_cluster(s: &Stack, healed_at: f64) {
    let post_heal =
        format!("max(redis_exporter_last_poll_timestamp_seconds{{cluster=\"{CLUSTER}\"}})");
    let mut first_after = None;
    let settled = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        let Some(t) = scalar(&s.prom, &post_heal) else {
            return false;
        };
        match first_after {
            None if t > healed_at + 1.0 => {
                first_after = Some(t);
                false
            }
            Some(t1) => t > t1,
            None => false,
        }
    });
    assert!(
        settled,
        "Prometheus did not scrape the healed cluster twice"
    );
}

/// Prometheus ingested the failover counter (when the exporter counted one).
fn check_failover_in_prometheus(s: &mut Stack, failover_metric: bool) {
    if !failover_metric {
        return;
    }
    let in_prom = poll_until(Duration::from_secs(15), Duration::from_millis(500), || {
        scalar(
            &s.prom,
            &format!("sum(redis_cluster_failovers_total{{cluster=\"{CLUSTER}\"}})"),
        )
        .is_some_and(|v| v >= 1.0)
    });
    if !in_prom {
        s.problems
            .push("Prometheus did not ingest redis_cluster_failovers_total".into());
    }
}

/// The dashboards' $cluster variable offers this cluster, and every rule (evaluated several
/// times by now) evaluates without error.
fn check_cluster_variable_and_rule_health(s: &mut Stack) {
    // The dashboards' $cluster variable: label_values(redis_up, cluster).
    match s.prom.label_values("cluster", "redis_up") {
        Ok(v) if v.iter().any(|c| c == CLUSTER) => {}
        other => s.problems.push(format!(
            "variable query label_values(redis_up, cluster) does not offer {CLUSTER:?}: {other:?}"
        )),
    }
    for r in s.prom.rules().expect("GET /api/v1/rules") {
        if r.health != "ok" || !r.last_error.is_empty() {
            s.problems.push(format!(
                "rule {}/{} health {:?}: {}",
                r.group, r.name, r.health, r.last_error
            ));
        }
    }
}

/// The failover raises the info alert (no `for:`; its new-series branch catches the counter's
/// first appearance) and pages nobody: no critical alert fired at any time during it.
fn check_failover_alert_pages_nobody(s: &mut Stack, failover_metric: bool) {
    if failover_metric {
        let mut seen = Vec::new();
        let ok = poll_until(Duration::from_secs(20), Duration::from_secs(1), || {
            seen = s.am.alerts().unwrap_or_default();
            !find(
                &seen,
                "RedisClusterFailover",
                &[("cluster", CLUSTER), ("severity", "info")],
            )
            .is_empty()
        });
        if ok {
            for a in find(&seen, "RedisClusterFailover", &[("cluster", CLUSTER)]) {
                check_annotations(a, &mut s.problems);
            }
            s.clock.log("RedisClusterFailover is in Alertmanager");
        } else {
            s.problems.push(format!(
                "RedisClusterFailover{{severity=\"info\"}} not in Alertmanager after the failover; \
                 alerts: {:?}",
                seen.iter().map(|a| &a.labels).collect::<Vec<_>>()
            ));
        }
    }
    let critical =
        format!("ALERTS{{alertstate=\"firing\",severity=\"critical\",cluster=\"{CLUSTER}\"}}");
    match s
        .prom
        .query_range(&critical, s.window_start, unix_now(), 5.0)
    {
        Ok(series) if series.is_empty() => {}
        other => s.problems.push(format!(
            "an automatic failover fired a critical alert: {other:?}"
        )),
    }
    s.am.assert_running();
    s.prom.assert_running();
}

/// Phase 3: kill -9 a master and its replica, then poll Alertmanager until
/// RedisClusterStateFail is active and RedisClusterNodeDown is there for both nodes, or their
/// deadlines passed; returns the killed pair and the last alerts seen.
fn kill_master_and_replica_until_alerts(
    s: &mut Stack,
    rules: &OutageRules,
) -> (Outage, Vec<AmAlert>) {
    let m2 = *s.cluster.masters().first().expect("a master");
    let r2 = s
        .cluster
        .replica_of(m2)
        .expect("every master has a replica again");
    let (addr_m2, addr_r2) = (s.cluster.addr(m2), s.cluster.addr(r2));
    s.clock.log(&format!(
        "outage: kill -9 master {addr_m2} and its replica {addr_r2}"
    ));
    s.cluster.kill(m2);
    s.cluster.kill(r2);
    let killed_at = Instant::now();

    // Deadlines: the rule's `for:` plus detection (node timeout 2s, poll 1s), one scrape and a few
    // evaluation intervals (5s each) and the push to Alertmanager, with a generous margin.
    let state_fail_deadline = rules.state_fail_for + Duration::from_secs(90);
    let node_down_deadline = rules.node_down_for + Duration::from_secs(60);
    let mut state_fail_at = None;
    let mut node_down_at = None;
    let alerts = loop {
        let alerts =
            s.am.alerts()
                .unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}"));
        if state_fail_at.is_none()
            && find(
                &alerts,
                "RedisClusterStateFail",
                &[("cluster", CLUSTER), ("severity", "critical")],
            )
            .iter()
            .any(|a| a.state == "active")
        {
            state_fail_at = Some(killed_at.elapsed());
            s.clock.log(&format!(
                "RedisClusterStateFail active in Alertmanager {:.1}s after the kill",
                killed_at.elapsed().as_secs_f64()
            ));
        }
        if node_down_at.is_none()
            && [&addr_m2, &addr_r2].iter().all(|addr| {
                !find(
                    &alerts,
                    "RedisClusterNodeDown",
                    &[("cluster", CLUSTER), ("addr", addr.as_str())],
                )
                .is_empty()
            })
        {
            node_down_at = Some(killed_at.elapsed());
            s.clock.log(&format!(
                "RedisClusterNodeDown in Alertmanager for both nodes {:.1}s after the kill",
                killed_at.elapsed().as_secs_f64()
            ));
        }
        let e = killed_at.elapsed();
        if (state_fail_at.is_some() || e > state_fail_deadline)
            && (node_down_at.is_some() || e > node_down_deadline)
        {
            break alerts;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let outage = Outage {
        m2,
        r2,
        addr_m2,
        addr_r2,
        state_fail_seen: state_fail_at.is_some(),
        node_down_seen: node_down_at.is_some(),
        state_fail_deadline,
        node_down_deadline,
    };
    (outage, alerts)
}

/// `name{addr=...} state` of each alert, for problem messages.
fn alert_names(alerts: &[AmAlert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| format!("{}{{addr={:?}}} {}", a.name(), a.label("addr"), a.state))
        .collect()
}

/// The outage's alerts arrived, with expanded annotations, and the critical one is routed to
/// the on-call receiver; prints each alert and runbook for diagnosis.
fn check_outage_alerts(s: &mut Stack, o: &Outage, alerts: &[AmAlert]) {
    if !o.state_fail_seen {
        s.problems.push(format!(
            "RedisClusterStateFail{{cluster=\"{CLUSTER}\",severity=\"critical\"}} not active in \
             Alertmanager within {:?} of killing a master and its replica; \
             alerts: {:?}",
            o.state_fail_deadline,
            alert_names(alerts)
        ));
    }
    if !o.node_down_seen {
        s.problems.push(format!(
            "RedisClusterNodeDown not in Alertmanager for both {} and {} within \
             {:?}; alerts: {:?}",
            o.addr_m2,
            o.addr_r2,
            o.node_down_deadline,
            alert_names(alerts)
        ));
    }
    for a in alerts.iter().filter(|a| a.label("cluster") == CLUSTER) {
        check_annotations(a, &mut s.problems);
    }
    print_alerts(alerts);
    for a in find(alerts, "RedisClusterStateFail", &[("cluster", CLUSTER)]) {
        if a.receivers != ["redis-oncall"] {
            s.problems.push(format!(
                "critical RedisClusterStateFail routed to {:?}, expected redis-oncall",
                a.receivers
            ));
        }
    }
}

/// Prints each alert's runbook (once per alert name) and every alert with its routing.
fn print_alerts(alerts: &[AmAlert]) {
    let mut shown = BTreeSet::new();
    for a in alerts {
        if shown.insert(a.name().to_string()) {
            eprintln!(
                "  {} runbook: {}",
                a.name(),
                a.annotations
                    .get("runbook")
                    .map(String::as_str)
                    .unwrap_or("")
            );
        }
    }
    eprintln!("  alerts during the outage:");
    for a in alerts {
        eprintln!(
            "    {} {:?} {} receivers={:?} inhibited_by={:?}",
            a.name(),
            a.labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .collect::<BTreeMap<_, _>>(),
            a.state,
            a.receivers,
            a.inhibited_by
        );
    }
}

/// Restarts both killed nodes and waits until every outage alert resolved in Alertmanager.
fn recover_and_wait_alerts_resolved(s: &mut Stack, o: &Outage) {
    s.clock.log("restarting both nodes");
    s.cluster.restart(o.m2);
    s.cluster.restart(o.r2);
    s.cluster.wait_healthy(Duration::from_secs(60));
    s.clock
        .log("cluster healthy again; waiting for the alerts to resolve");
    let outage_alert = |a: &AmAlert| {
        a.label("cluster") == CLUSTER
            && (a.name() == "RedisClusterStateFail"
                || (matches!(a.name(), "RedisClusterNodeDown" | "RedisClusterNodeFailed")
                    && (a.label("addr") == o.addr_m2 || a.label("addr") == o.addr_r2)))
    };
    let mut left = Vec::new();
    let resolved = poll_until(Duration::from_secs(60), Duration::from_secs(1), || {
        let Ok(all) = s.am.alerts() else { return false };
        left = all.into_iter().filter(|a| outage_alert(a)).collect();
        left.is_empty()
    });
    if resolved {
        s.clock.log("outage alerts resolved in Alertmanager");
    } else {
        s.problems.push(format!(
            "alerts still active 60s after the cluster recovered: {:?}",
            alert_names(&left)
        ));
    }
}

/// The tools' own complaints: template expansion failures in Prometheus' log are problems;
/// other errors and warnings of both are printed. Both must still run.
fn check_tool_logs(s: &mut Stack) {
    let prom_log = s.prom.log();
    for l in prom_log.lines() {
        if l.contains("level=error") || l.contains("level=warn") {
            eprintln!("  prometheus: {l}");
        }
        if l.contains("Expanding alert template failed")
            || l.contains("Error expanding alert template")
        {
            s.problems.push(format!("prometheus: {l}"));
        }
    }
    for l in s.am.log().lines() {
        if l.contains("level=error") || l.contains("level=warn") {
            eprintln!("  alertmanager: {l}");
        }
    }
    s.am.assert_running();
    s.prom.assert_running();
    s.clock.log("done");
}
