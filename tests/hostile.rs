//! The exporter against hostile or broken servers: a scripted fake Redis (see
//! `common/fake_redis.rs`) is one seed, a real 6-node cluster the other. For every behavior the
//! exporter must survive (`/health` 200, process alive), report the fake with `redis_up 0` and
//! one more `redis_exporter_node_poll_errors_total{reason}` per failed poll with the expected
//! reason, log one line naming the address and the reason, keep its memory bounded (VmHWM), and
//! keep polling the 6 real nodes every round.
//!
//! One cluster is shared by every case (one test function), the exporter is restarted per case.
//! `HOSTILE_CASES=garbage,stall_mid_reply cargo test --test hostile -- --nocapture` runs a subset.

mod common;
#[path = "common/fake_redis.rs"]
mod fake_redis;

use common::{ClusterOptions, Exporter, RedisCluster, http_get, metric_samples, metric_value};
use fake_redis::{Behavior, FakeRedis, fake_node_id};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

const POLL_INTERVAL: &str = "250ms";
const NODE_TIMEOUT: &str = "1s";
/// The default `--max-reply-bytes`.
const DEFAULT_CAP: usize = 4 * 1024 * 1024;
/// Members of a CLUSTER NODES reply just under the default cap (about 4.09 MB).
const JUST_UNDER_CAP_MEMBERS: usize = 36_000;
/// Peak RSS allowed for the exporter while the default 4 MiB cap is in force.
const MAX_HWM_KB: u64 = 100 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The fake must show `redis_up 0` and poll errors with this reason, and only this one.
    Down(&'static str),
    /// The fake must show `redis_up 1` (its `myself` line in `redis_cluster_node_info`).
    Up,
}

struct Case {
    name: &'static str,
    behavior: Behavior,
    extra: &'static [&'static str],
    node_timeout: &'static str,
    expect: Expect,
    max_hwm_kb: u64,
}

fn case(name: &'static str, behavior: Behavior, expect: Expect) -> Case {
    Case {
        name,
        behavior,
        extra: &[],
        node_timeout: NODE_TIMEOUT,
        expect,
        max_hwm_kb: MAX_HWM_KB,
    }
}

fn cases() -> Vec<Case> {
    use Expect::{Down, Up};
    let many = 100_000;
    vec![
        case("healthy_baseline", Behavior::Healthy, Up),
        // Not RESP at all (a TLS or HTTP port, say): the reply cannot be parsed.
        case("garbage", Behavior::Garbage, Down("protocol")),
        // The server goes away before a reply is complete: the connection failed, not the
        // protocol.
        case(
            "truncated_then_close",
            Behavior::TruncatedThenClose,
            Down("io"),
        ),
        // A length header alone allocates nothing and the bytes that follow never reach the
        // cap: it is the time bound that ends the poll.
        case(
            "gib_bulk_header_trickle",
            Behavior::HugeBulkHeader { trickle: true },
            Down("timeout"),
        ),
        case(
            "gib_bulk_header_silent",
            Behavior::HugeBulkHeader { trickle: false },
            Down("timeout"),
        ),
        // Bytes without end: the byte bound ends the poll, long before the time bound.
        case(
            "endless_simple_string",
            Behavior::EndlessSimpleString,
            Down("too_large"),
        ),
        case(
            "endless_bulk_body",
            Behavior::EndlessBulkBody,
            Down("too_large"),
        ),
        case("stall_mid_reply", Behavior::StallMidReply, Down("timeout")),
        case("close_mid_reply", Behavior::CloseMidReply, Down("io")),
        case(
            "unknown_cluster_command",
            Behavior::UnknownClusterCommand,
            Down("server_error"),
        ),
        case("loading", Behavior::Loading, Down("loading")),
        case("noauth", Behavior::NoAuth, Down("auth")),
        // Malformed CLUSTER NODES lines are skipped (a newer server's format must not blind the
        // exporter); the node answered everything and its own `myself` line is good, so it is up,
        // and no member or address is made up from the bad lines.
        case("malformed_nodes_lines", Behavior::MalformedNodes, Up),
        // Every member costs memory in the view and series on /metrics (about 50 times its
        // bytes), so besides the byte cap a reply may list at most 10,000 members (Redis Cluster
        // is built for ~1000): a CLUSTER NODES just under 4 MiB (36,000 members) is refused
        // before it is parsed, and 9,000 members are still accepted within a bounded memory.
        Case {
            name: "nodes_36k_just_under_cap",
            behavior: Behavior::ManyNodes(JUST_UNDER_CAP_MEMBERS),
            extra: &[],
            node_timeout: "3s",
            expect: Down("too_large"),
            max_hwm_kb: MAX_HWM_KB,
        },
        Case {
            name: "nodes_9k_under_member_cap",
            behavior: Behavior::ManyNodes(9_000),
            extra: &[],
            node_timeout: "3s",
            expect: Up,
            max_hwm_kb: 160 * 1024,
        },
        case(
            "nodes_100k_default_cap",
            Behavior::ManyNodes(many),
            Down("too_large"),
        ),
        Case {
            name: "nodes_100k_raised_cap",
            behavior: Behavior::ManyNodes(many),
            extra: &["--max-reply-bytes", "67108864"],
            node_timeout: "3s",
            // Read whole (10 MB under the raised byte cap), then refused for its member count.
            expect: Down("too_large"),
            max_hwm_kb: 200 * 1024,
        },
        // Valid RESP of the wrong type: the reply is not what the command returns.
        case("integer_for_bulk", Behavior::IntegerReply, Down("protocol")),
        case("nil_for_bulk", Behavior::NilReply, Down("protocol")),
        // An unsolicited push frame is out-of-band by definition: skipped, the replies after it
        // are used.
        case("resp3_push_frame", Behavior::PushThenReplies, Up),
        // Slower than redis-rs' own 500 ms default response timeout, well within
        // --node-timeout: must be up (the exporter's timeout is the only one that applies).
        Case {
            name: "slow_but_within_node_timeout",
            behavior: Behavior::SlowReply(Duration::from_millis(900)),
            extra: &[],
            node_timeout: "2s",
            expect: Up,
            max_hwm_kb: MAX_HWM_KB,
        },
    ]
}

#[derive(Debug)]
struct Report {
    name: &'static str,
    reasons: BTreeMap<String, f64>,
    log_line: String,
    hwm_kb: u64,
    metrics_bytes: usize,
    elapsed: Duration,
    fake_connections: usize,
    fake_polls: usize,
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM for pid {pid}"))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn reasons_of(body: &str, addr: &str) -> BTreeMap<String, f64> {
    metric_samples(body, "redis_exporter_node_poll_errors_total")
        .into_iter()
        .filter(|(l, _)| l.get("addr").map(String::as_str) == Some(addr))
        .filter_map(|(l, v)| Some((l.get("reason")?.clone(), v)))
        .collect()
}

/// The metric families this test reads.
const READ: &[&str] = &[
    "redis_up{",
    "redis_exporter_node_poll_errors_total{",
    "redis_exporter_last_poll_timestamp_seconds",
    "redis_commands_processed_total{",
    "redis_cluster_node_info{",
];

/// GET /metrics, keeping only the lines of the families in [`READ`] (and of those, no member
/// without an address): the bodies of the many-members cases run to megabytes.
fn scrape(e: &Exporter) -> String {
    scrape_sized(e).0
}

/// [`scrape`], plus the size of the whole body.
fn scrape_sized(e: &Exporter) -> (String, usize) {
    let (status, _, body) = http_get(&e.url("/metrics"));
    assert_eq!(status, 200, "GET /metrics: {body}");
    let kept = body
        .lines()
        .filter(|l| READ.iter().any(|p| l.starts_with(p)) && !l.contains("addr=\"\""))
        .collect::<Vec<_>>()
        .join("\n");
    (kept, body.len())
}

/// Polls /metrics until `f` holds; panics with `what`, the last body's relevant lines and the
/// exporter output otherwise.
fn wait_metrics(e: &Exporter, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let body = scrape(e);
        if f(&body) {
            return body;
        }
        if start.elapsed() > timeout {
            let relevant: Vec<&str> = body
                .lines()
                .filter(|l| l.starts_with("redis_up") || l.contains("poll_errors_total"))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}\nmetrics:\n{}\noutput:\n{}",
                relevant.join("\n"),
                tail(&strip_ansi(&e.output()), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn real_up_and_counts(body: &str, real: &[String]) -> Option<Vec<f64>> {
    real.iter()
        .map(|a| {
            let up = metric_value(body, "redis_up", &[("addr", a)])?;
            (up == 1.0).then_some(())?;
            metric_value(body, "redis_commands_processed_total", &[("addr", a)])
        })
        .collect()
}

fn run_case(cluster: &RedisCluster, c: &Case) -> Report {
    let started = Instant::now();
    let fake = FakeRedis::start(c.behavior.clone());
    let addr = fake.addr();
    let real: Vec<String> = (0..cluster.node_count()).map(|i| cluster.addr(i)).collect();
    let seeds = format!("{},{}", fake.url(), cluster.seed_url());
    let mut args = vec![
        "--redis-addr",
        &seeds,
        "--poll-interval",
        POLL_INTERVAL,
        // The telemetry tier every poll too: hostile replies meet every parser, and
        // redis_commands_processed_total (an INFO stats field) moves every round.
        "--stats-interval",
        POLL_INTERVAL,
        "--node-timeout",
        c.node_timeout,
    ];
    args.extend_from_slice(c.extra);
    let mut e = Exporter::start(&args, &[]);
    e.wait_ready(Duration::from_secs(20));
    let pid = e.pid().expect("exporter pid");

    // 1. The fake's own series.
    let body = match c.expect {
        Expect::Down(reason) => {
            // At least two attempted polls failed (the second after the first reconnect): the
            // counter keeps counting, not just once.
            wait_metrics(
                &e,
                Duration::from_secs(20),
                &format!("{addr}: two {reason} poll errors"),
                |b| {
                    metric_value(
                        b,
                        "redis_exporter_node_poll_errors_total",
                        &[("addr", &addr), ("reason", reason)],
                    )
                    .is_some_and(|v| v >= 2.0)
                },
            )
        }
        Expect::Up => wait_metrics(
            &e,
            Duration::from_secs(20),
            &format!("{addr} up with its node id in the view"),
            |b| {
                metric_value(b, "redis_up", &[("addr", &addr)]) == Some(1.0)
                    && metric_value(
                        b,
                        "redis_cluster_node_info",
                        &[("addr", &addr), ("node_id", &fake_node_id(fake.port()))],
                    ) == Some(1.0)
            },
        ),
    };
    let up = metric_value(&body, "redis_up", &[("addr", &addr)]);
    let reasons = reasons_of(&body, &addr);
    // Nothing but the fake and the 6 real nodes is polled: no address is made up from a bad
    // reply (malformed lines, `noaddr` members).
    let polled: Vec<String> = metric_samples(&body, "redis_up")
        .into_iter()
        .filter_map(|(l, _)| l.get("addr").cloned())
        .collect();
    assert_eq!(
        polled.len(),
        real.len() + 1,
        "{}: polled addresses {polled:?}",
        c.name
    );
    if c.behavior == Behavior::MalformedNodes {
        // Only well-formed lines make members: the fake itself and the real cluster's 6.
        let members = metric_samples(&body, "redis_cluster_node_info");
        assert_eq!(members.len(), real.len() + 1, "{}: {members:?}", c.name);
    }
    match c.expect {
        Expect::Down(reason) => {
            assert_eq!(up, Some(0.0), "{}: redis_up{{addr={addr}}}", c.name);
            let others: Vec<_> = reasons.keys().filter(|r| *r != reason).collect();
            assert!(
                others.is_empty(),
                "{}: only reason {reason} expected for {addr}, got {reasons:?}",
                c.name
            );
        }
        Expect::Up => {
            assert_eq!(up, Some(1.0), "{}: redis_up{{addr={addr}}}", c.name);
            assert!(
                reasons.is_empty(),
                "{}: no poll errors expected for {addr}, got {reasons:?}",
                c.name
            );
        }
    }

    // 2. The real cluster keeps being polled: all 6 up, and over the next rounds the poll
    //    timestamp and every node's own command counter (each poll is 3 commands) advance.
    let before = real_up_and_counts(&body, &real).unwrap_or_else(|| {
        panic!(
            "{}: real nodes not all up while {addr} misbehaves:\n{}",
            c.name,
            body.lines()
                .filter(|l| l.starts_with("redis_up"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let ts_before = metric_value(&body, "redis_exporter_last_poll_timestamp_seconds", &[])
        .expect("last poll timestamp");
    for round in 1..=2 {
        let prev = scrape(&e);
        let prev_ts = metric_value(&prev, "redis_exporter_last_poll_timestamp_seconds", &[])
            .expect("last poll timestamp");
        let prev_counts = real_up_and_counts(&prev, &real);
        wait_metrics(
            &e,
            Duration::from_secs(10),
            &format!("round {round}: every real node polled again"),
            |b| {
                let ts = metric_value(b, "redis_exporter_last_poll_timestamp_seconds", &[]);
                let Some(now) = real_up_and_counts(b, &real) else {
                    return false;
                };
                ts.is_some_and(|t| t > prev_ts)
                    && prev_counts
                        .as_ref()
                        .is_some_and(|p| now.iter().zip(p).all(|(n, p)| n > p))
            },
        );
    }
    let (body, metrics_bytes) = scrape_sized(&e);
    let after = real_up_and_counts(&body, &real).expect("real nodes up");
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "{}: command counters did not advance: {before:?} -> {after:?}",
        c.name
    );
    assert!(
        metric_value(&body, "redis_exporter_last_poll_timestamp_seconds", &[])
            .is_some_and(|t| t > ts_before)
    );
    let reasons = reasons_of(&body, &addr);
    if let Expect::Down(reason) = c.expect {
        assert_eq!(
            metric_value(&body, "redis_up", &[("addr", &addr)]),
            Some(0.0),
            "{}: still down",
            c.name
        );
        assert_eq!(
            reasons.keys().collect::<Vec<_>>(),
            vec![reason],
            "{}: reasons for {addr}",
            c.name
        );
    }

    // 3. Alive and healthy.
    assert!(e.try_wait().is_none(), "{}: exporter exited", c.name);
    let (status, _, _) = http_get(&e.url("/health"));
    assert_eq!(status, 200, "{}: /health", c.name);

    // 4. One clear log line naming the address and the reason.
    let output = strip_ansi(&e.output());
    assert!(
        !output.contains("panicked"),
        "{}: a panic in the exporter output:\n{output}",
        c.name
    );
    let log_line = match c.expect {
        Expect::Down(reason) => output
            .lines()
            .find(|l| {
                l.contains("WARN")
                    && l.contains("node poll failed")
                    && l.contains(&format!("addr=\"{addr}\""))
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: no WARN line naming {addr} and reason {reason}:\n{}",
                    c.name,
                    tail(&output, 40)
                )
            })
            .to_string(),
        Expect::Up => {
            let warned = output
                .lines()
                .find(|l| l.contains(&addr) && (l.contains("WARN") || l.contains("ERROR")));
            assert!(
                warned.is_none(),
                "{}: unexpected warning about {addr}: {warned:?}",
                c.name
            );
            String::new()
        }
    };

    // 5. Bounded memory, and no connection left behind.
    let hwm_kb = vm_hwm_kb(pid);
    assert!(
        hwm_kb < c.max_hwm_kb,
        "{}: exporter VmHWM {hwm_kb} kB exceeds {} kB",
        c.name,
        c.max_hwm_kb
    );
    let fake_connections = fake.connections();
    let fake_polls = fake.polls();
    e.kill();
    common::wait_until(
        Duration::from_secs(5),
        "the fake to see every exporter connection closed",
        || fake.open_connections() == 0,
    );
    Report {
        name: c.name,
        reasons,
        log_line,
        hwm_kb,
        metrics_bytes,
        elapsed: started.elapsed(),
        fake_connections,
        fake_polls,
    }
}

#[test]
fn hostile_servers_degrade_one_node_and_never_the_rest() {
    let wall = Instant::now();
    let only: Option<Vec<String>> = std::env::var("HOSTILE_CASES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    // The 100k-member CLUSTER NODES really is over the default cap, the 36k one just under it
    // (with room for CLUSTER INFO and INFO, about 5 KB).
    let many = fake_redis::many_nodes_text(65535, 100_000).len();
    assert!(many > DEFAULT_CAP, "{many} bytes");
    let under = fake_redis::many_nodes_text(65535, JUST_UNDER_CAP_MEMBERS).len();
    assert!(under + 16 * 1024 < DEFAULT_CAP, "{under} bytes");
    let cluster = RedisCluster::start(ClusterOptions::default());
    eprintln!("cluster ready after {:?}", wall.elapsed());
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for c in cases() {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == c.name))
        {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| run_case(&cluster, &c))) {
            Ok(r) => {
                eprintln!(
                    "[ok] {:<28} {:>5.1}s  VmHWM {:>6} kB  /metrics {:>8} B  conns {:>2} polls {:>3}  reasons {:?}\n     {}",
                    r.name,
                    r.elapsed.as_secs_f64(),
                    r.hwm_kb,
                    r.metrics_bytes,
                    r.fake_connections,
                    r.fake_polls,
                    r.reasons,
                    r.log_line
                );
                reports.push(r);
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("[FAILED] {}: {msg}", c.name);
                failures.push(c.name);
            }
        }
    }
    eprintln!(
        "{} cases passed, {} failed, wall time {:?}",
        reports.len(),
        failures.len(),
        wall.elapsed()
    );
    assert!(failures.is_empty(), "failed cases: {failures:?}");
}
