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

#[test]
fn monitoring_stack_end_to_end() {
    let clock = Clock(Instant::now());
    let mut problems: Vec<String> = Vec::new();

    // ---- the stack ------------------------------------------------------------------------
    // maxmemory: the "Memory used vs maxmemory" / "% of maxmemory" panels only graph nodes with a
    // limit (redis_memory_max_bytes > 0); 64 MiB is far above what the test stores.
    let mut cluster = RedisCluster::start(ClusterOptions {
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
    let mut am = Alertmanager::start();
    let mut prom = Prometheus::start(&format!("127.0.0.1:{}", exporter.port()), &am.addr());
    let window_start = unix_now();
    clock.log(&format!(
        "exporter :{}, alertmanager :{}, prometheus :{} up",
        exporter.port(),
        am.port(),
        prom.port()
    ));

    // ---- 1. wiring --------------------------------------------------------------------------
    let exporter_url = format!("http://127.0.0.1:{}/metrics", exporter.port());
    let mut last_targets = Vec::new();
    let scraped = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        last_targets = prom.targets().unwrap_or_default();
        last_targets
            .iter()
            .any(|(url, health, _)| *url == exporter_url && health == "up")
    });
    assert!(
        scraped,
        "Prometheus does not scrape {exporter_url} successfully: targets {last_targets:?}"
    );
    let am_url_prefix = format!("http://{}/", am.addr());
    let mut last_ams = Vec::new();
    let am_known = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        last_ams = prom.alertmanagers().unwrap_or_default();
        last_ams.iter().any(|u| u.starts_with(&am_url_prefix))
    });
    assert!(
        am_known,
        "Prometheus does not know Alertmanager {am_url_prefix}: {last_ams:?}"
    );
    let rules = prom.rules().expect("GET /api/v1/rules");
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
    let state_fail_for = rule_for("RedisClusterStateFail");
    let node_down_for = rule_for("RedisClusterNodeDown");
    clock.log(&format!(
        "wiring ok: target up, alertmanager known, {} alerts loaded",
        loaded.len()
    ));

    // A little history before the failover (rate()/increase() windows, state timelines).
    let have_all = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        scalar(
            &prom,
            &format!("count(redis_up{{cluster=\"{CLUSTER}\"}} == 1)"),
        ) == Some(6.0)
    });
    assert!(have_all, "Prometheus never saw 6 nodes up");
    for _ in 0..3 {
        read_keys(&cluster);
        std::thread::sleep(Duration::from_secs(3));
    }

    // ---- 2. one automatic failover, then the dashboards --------------------------------------
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3, "masters: {masters:?}");
    let m = masters[0];
    let r = cluster.replica_of(m).expect("master has a replica");
    clock.log(&format!(
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
    clock.log("replica promoted, cluster ok; restarting the old master");
    cluster.restart(m);
    cluster.wait_healthy(Duration::from_secs(60));
    assert_eq!(
        cluster.master_of(m),
        Some(r),
        "old master should rejoin as a replica of the promoted one"
    );
    let healed_at = unix_now();
    clock.log("old master rejoined as replica, cluster healthy");

    // The exporter's failover metrics (required by the failover dashboard and alerts).
    // The exporter's failover metrics (required by the failover dashboard and alerts): some
    // failover counted at once, and counted as what it was, `automatic`.
    let failovers_by_trigger = |body: &str| -> BTreeMap<String, f64> {
        metric_samples(body, "redis_cluster_failovers_total")
            .into_iter()
            .filter(|(l, _)| l.get("cluster").map(String::as_str) == Some(CLUSTER))
            .map(|(l, v)| (l.get("trigger").cloned().unwrap_or_default(), v))
            .collect()
    };
    let failover_metric = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        failovers_by_trigger(&exporter.metrics())
            .values()
            .sum::<f64>()
            >= 1.0
    });
    // What the exporter made of it (shown for diagnosis whatever the outcome).
    let body = exporter.metrics();
    for l in body.lines().filter(|l| {
        !l.starts_with('#')
            && (l.starts_with("redis_cluster_failover")
                || l.starts_with("redis_cluster_last_failover")
                || (l.starts_with("redis_cluster_events_total") && !l.ends_with(" 0")))
    }) {
        eprintln!("  exporter: {l}");
    }
    let (_, _, events) = exporter.get("/events");
    for e in serde_json::from_str::<Value>(&events)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
    {
        eprintln!("  event: {e}");
    }
    let by_trigger = failovers_by_trigger(&exporter.metrics());
    if by_trigger.get("automatic").copied().unwrap_or(0.0) < 1.0 {
        problems.push(format!(
            "exporter: after kill -9 of a master and its replica's election, \
             redis_cluster_failovers_total{{trigger=\"automatic\"}} should be >= 1; by trigger: \
             {by_trigger:?}"
        ));
    }
    // Prometheus must have scraped the healed cluster (a poll that started after it healed) and
    // one more scrape after that.
    let post_heal =
        format!("max(redis_exporter_last_poll_timestamp_seconds{{cluster=\"{CLUSTER}\"}})");
    let mut first_after = None;
    let settled = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        let Some(t) = scalar(&prom, &post_heal) else {
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
    if failover_metric {
        let in_prom = poll_until(Duration::from_secs(15), Duration::from_millis(500), || {
            scalar(
                &prom,
                &format!("sum(redis_cluster_failovers_total{{cluster=\"{CLUSTER}\"}})"),
            )
            .is_some_and(|v| v >= 1.0)
        });
        if !in_prom {
            problems.push("Prometheus did not ingest redis_cluster_failovers_total".into());
        }
    }
    clock.log("Prometheus has the post-failover state; running the dashboard queries");

    problems.extend(check_dashboards(&prom, window_start, &clock));

    // The dashboards' $cluster variable: label_values(redis_up, cluster).
    match prom.label_values("cluster", "redis_up") {
        Ok(v) if v.iter().any(|c| c == CLUSTER) => {}
        other => problems.push(format!(
            "variable query label_values(redis_up, cluster) does not offer {CLUSTER:?}: {other:?}"
        )),
    }

    // Every rule has been evaluated several times by now, and none may fail to evaluate.
    for r in prom.rules().expect("GET /api/v1/rules") {
        if r.health != "ok" || !r.last_error.is_empty() {
            problems.push(format!(
                "rule {}/{} health {:?}: {}",
                r.group, r.name, r.health, r.last_error
            ));
        }
    }

    // The failover raises the info alert (no `for:`; its new-series branch catches the counter's
    // first appearance) ...
    if failover_metric {
        let mut seen = Vec::new();
        let ok = poll_until(Duration::from_secs(20), Duration::from_secs(1), || {
            seen = am.alerts().unwrap_or_default();
            !find(
                &seen,
                "RedisClusterFailover",
                &[("cluster", CLUSTER), ("severity", "info")],
            )
            .is_empty()
        });
        if ok {
            for a in find(&seen, "RedisClusterFailover", &[("cluster", CLUSTER)]) {
                check_annotations(a, &mut problems);
            }
            clock.log("RedisClusterFailover is in Alertmanager");
        } else {
            problems.push(format!(
                "RedisClusterFailover{{severity=\"info\"}} not in Alertmanager after the failover; \
                 alerts: {:?}",
                seen.iter().map(|a| &a.labels).collect::<Vec<_>>()
            ));
        }
    }
    // ... and pages nobody: no critical alert fired at any time during it.
    let critical =
        format!("ALERTS{{alertstate=\"firing\",severity=\"critical\",cluster=\"{CLUSTER}\"}}");
    match prom.query_range(&critical, window_start, unix_now(), 5.0) {
        Ok(s) if s.is_empty() => {}
        other => problems.push(format!(
            "an automatic failover fired a critical alert: {other:?}"
        )),
    }
    am.assert_running();
    prom.assert_running();

    // ---- 3. outage: a master and its replica down --------------------------------------------
    let m2 = *cluster.masters().first().expect("a master");
    let r2 = cluster
        .replica_of(m2)
        .expect("every master has a replica again");
    let (addr_m2, addr_r2) = (cluster.addr(m2), cluster.addr(r2));
    clock.log(&format!(
        "outage: kill -9 master {addr_m2} and its replica {addr_r2}"
    ));
    cluster.kill(m2);
    cluster.kill(r2);
    let killed_at = Instant::now();

    // Deadlines: the rule's `for:` plus detection (node timeout 2s, poll 1s), one scrape and a few
    // evaluation intervals (5s each) and the push to Alertmanager, with a generous margin.
    let state_fail_deadline = state_fail_for + Duration::from_secs(90);
    let node_down_deadline = node_down_for + Duration::from_secs(60);
    let mut state_fail_at = None;
    let mut node_down_at = None;
    let alerts = loop {
        let alerts = am
            .alerts()
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
            clock.log(&format!(
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
            clock.log(&format!(
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
    let names = |alerts: &[AmAlert]| -> Vec<String> {
        alerts
            .iter()
            .map(|a| format!("{}{{addr={:?}}} {}", a.name(), a.label("addr"), a.state))
            .collect()
    };
    if state_fail_at.is_none() {
        problems.push(format!(
            "RedisClusterStateFail{{cluster=\"{CLUSTER}\",severity=\"critical\"}} not active in \
             Alertmanager within {state_fail_deadline:?} of killing a master and its replica; \
             alerts: {:?}",
            names(&alerts)
        ));
    }
    if node_down_at.is_none() {
        problems.push(format!(
            "RedisClusterNodeDown not in Alertmanager for both {addr_m2} and {addr_r2} within \
             {node_down_deadline:?}; alerts: {:?}",
            names(&alerts)
        ));
    }
    for a in alerts.iter().filter(|a| a.label("cluster") == CLUSTER) {
        check_annotations(a, &mut problems);
    }
    let mut shown = BTreeSet::new();
    for a in &alerts {
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
    for a in &alerts {
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
    for a in find(&alerts, "RedisClusterStateFail", &[("cluster", CLUSTER)]) {
        if a.receivers != ["redis-oncall"] {
            problems.push(format!(
                "critical RedisClusterStateFail routed to {:?}, expected redis-oncall",
                a.receivers
            ));
        }
    }

    // ---- recovery ----------------------------------------------------------------------------
    clock.log("restarting both nodes");
    cluster.restart(m2);
    cluster.restart(r2);
    cluster.wait_healthy(Duration::from_secs(60));
    clock.log("cluster healthy again; waiting for the alerts to resolve");
    let outage_alert = |a: &AmAlert| {
        a.label("cluster") == CLUSTER
            && (a.name() == "RedisClusterStateFail"
                || (matches!(a.name(), "RedisClusterNodeDown" | "RedisClusterNodeFailed")
                    && (a.label("addr") == addr_m2 || a.label("addr") == addr_r2)))
    };
    let mut left = Vec::new();
    let resolved = poll_until(Duration::from_secs(60), Duration::from_secs(1), || {
        let Ok(all) = am.alerts() else { return false };
        left = all.into_iter().filter(|a| outage_alert(a)).collect();
        left.is_empty()
    });
    if resolved {
        clock.log("outage alerts resolved in Alertmanager");
    } else {
        problems.push(format!(
            "alerts still active 60s after the cluster recovered: {:?}",
            names(&left)
        ));
    }

    // ---- the tools' own complaints ------------------------------------------------------------
    let prom_log = prom.log();
    for l in prom_log.lines() {
        if l.contains("level=error") || l.contains("level=warn") {
            eprintln!("  prometheus: {l}");
        }
        if l.contains("Expanding alert template failed")
            || l.contains("Error expanding alert template")
        {
            problems.push(format!("prometheus: {l}"));
        }
    }
    for l in am.log().lines() {
        if l.contains("level=error") || l.contains("level=warn") {
            eprintln!("  alertmanager: {l}");
        }
    }
    am.assert_running();
    prom.assert_running();
    clock.log("done");

    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
