//! Failover detection and the durable event log against real clusters: automatic (kill -9 and
//! SIGSTOP), manual, FORCE and TAKEOVER failovers, losing a whole shard, slot moves, writes during
//! a failover, and exporter crashes and restarts around events.

mod common;

use common::{ClusterOptions, Exporter, RedisCluster, http_get, metric_value, wait_until};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn exporter(cluster: &RedisCluster, interval: &str) -> Exporter {
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            interval,
            "--node-timeout",
            "300ms",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    e
}

fn events(e: &Exporter, query: &str) -> Vec<Value> {
    let (status, _, body) = http_get(&e.url(&format!("/events{query}")));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Vec<Value>>(&body).expect("JSON array")
}

fn wait_event(e: &Exporter, timeout: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    wait_until(timeout, what, || {
        found = events(e, "").into_iter().find(|ev| f(ev));
        found.is_some()
    });
    found.unwrap()
}

fn of_kind(e: &Exporter, kind: &str) -> Vec<Value> {
    events(e, &format!("?kind={kind}"))
}

/// Time of the last "Failover election won" line in a redis log, as a SystemTime.
fn election_won_at(log: &str) -> Option<SystemTime> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("Failover election won"))?;
    // "7604:S 27 Nov 2026 06:49:12.648 # Failover election won: ..."
    let mut parts = line.split_whitespace().skip(1);
    let (d, m, y, t) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|x| *x == m)?
        + 1;
    let stamp = format!("{y}-{month:02}-{:02}T{t}Z", d.parse::<u32>().ok()?);
    humantime::parse_rfc3339_weak(&stamp).ok()
}

/// Writes keys to a master as fast as it answers until stopped; counts acknowledged writes.
fn writer(port: u16, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            // A hash tag that lands in this master's slots is not needed: MOVED replies are fine,
            // the point is traffic; keys of its own slots are acknowledged writes.
            let key = format!("w{n}");
            let cmd = format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$64\r\n{}\r\n",
                key.len(),
                "x".repeat(64)
            );
            if w.write_all(cmd.as_bytes()).is_err() {
                return;
            }
            let mut line = String::new();
            if r.read_line(&mut line).is_err() || line.is_empty() {
                return;
            }
            if line.starts_with("+OK") {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
        }
    })
}

/// The shard whose master the test kills: its master and replica, their ids, and the
/// master's slots before the failover.
struct Shard {
    master: usize,
    replica: usize,
    old_id: String,
    new_id: String,
    slots_before: String,
}

#[test]
fn killed_master_gives_one_automatic_failover_then_rejoins_as_replica() {
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    // The default 1 s poll, as users run it.
    let e = exporter(&cluster, "1s");
    let s = first_shard(&cluster);
    let (killed, seen_at) = kill_master_under_writes_until_failover_event(&mut cluster, &e, &s);
    let f = check_one_automatic_failover_event(&cluster, &e, &s);
    check_detection_latency(&cluster, &s, &f, killed, seen_at);
    check_node_fail_and_no_second_failover(&e, &s);
    old_master_rejoins_as_replica(&mut cluster, &e, &s);
    check_event_ids_metrics_and_log(&e);
}

/// The first master, its replica and the master's slots.
fn first_shard(cluster: &RedisCluster) -> Shard {
    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master).unwrap();
    let (old_id, new_id) = (cluster.node_id(master), cluster.node_id(replica));
    let slots_before: String = cluster
        .cluster_nodes(master)
        .into_iter()
        .find(|n| n.id == old_id)
        .map(|n| n.slots.join(","))
        .unwrap();
    Shard {
        master,
        replica,
        old_id,
        new_id,
        slots_before,
    }
}

/// kill -9 of the master while a writer runs against it; polls /events every 50 ms until the
/// failover shows. Returns when the master was killed and when the event was first seen.
fn kill_master_under_writes_until_failover_event(
    cluster: &mut RedisCluster,
    e: &Exporter,
    s: &Shard,
) -> (SystemTime, SystemTime) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let w = writer(cluster.port(s.master), stop.clone(), acked.clone());
    std::thread::sleep(Duration::from_millis(1500));
    cluster.kill(s.master);
    let killed = SystemTime::now();
    let mut seen_at = None;
    wait_until(Duration::from_secs(20), "failover event", || {
        let found = !of_kind(e, "failover").is_empty();
        if found {
            seen_at = Some(SystemTime::now());
        }
        found
    });
    stop.store(true, Ordering::Relaxed);
    let _ = w.join();
    assert!(acked.load(Ordering::Relaxed) > 0, "writes were running");
    (killed, seen_at.unwrap())
}

/// Exactly one failover event, naming both nodes, the slots, the trigger and its key, with a
/// plausible duration and consistent offsets and possible loss.
fn check_one_automatic_failover_event(cluster: &RedisCluster, e: &Exporter, s: &Shard) -> Value {
    let failovers = of_kind(e, "failover");
    assert_eq!(failovers.len(), 1);
    let f = &failovers[0];
    assert_eq!(f["old_master"]["id"], s.old_id);
    assert_eq!(f["old_master"]["addr"], cluster.addr(s.master));
    assert_eq!(f["new_master"]["id"], s.new_id);
    assert_eq!(f["new_master"]["addr"], cluster.addr(s.replica));
    assert_eq!(f["slots"], s.slots_before);
    assert_eq!(f["trigger"], "automatic");
    assert_eq!(f["cluster"], "default");
    assert_eq!(
        f["key"],
        format!("failover/{}/{}", s.new_id, f["config_epoch"])
    );
    let duration = f["duration_seconds"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&duration), "duration {duration}");
    assert!(f["first_failure_seen"].is_string());
    // Offsets and possible loss are consistent with each other.
    let last = f["last_master_offset_seen"].as_i64().unwrap();
    let at = f["replica_offset_at_promotion"].as_i64().unwrap();
    assert_eq!(
        f["possible_data_loss_bytes"].as_i64().unwrap(),
        (last - at).max(0)
    );
    f.clone()
}

/// With a 1 s poll interval the promotion is seen by the next poll (a generous bound for busy
/// CI), measured from the replica's "Failover election won" log line.
fn check_detection_latency(
    cluster: &RedisCluster,
    s: &Shard,
    f: &Value,
    killed: SystemTime,
    seen_at: SystemTime,
) {
    let duration = f["duration_seconds"].as_f64().unwrap();
    let won = election_won_at(&cluster.log(s.replica)).expect("election log line");
    let latency = seen_at.duration_since(won).unwrap_or_default();
    let since_kill = seen_at.duration_since(killed).unwrap_or_default();
    println!(
        "detection: failover on /events {:.3}s after 'Failover election won' ({:.3}s after kill -9), duration_seconds {duration:.3}, possible_data_loss_bytes {}",
        latency.as_secs_f64(),
        since_kill.as_secs_f64(),
        f["possible_data_loss_bytes"]
    );
    assert!(latency < Duration::from_millis(2500), "latency {latency:?}");
}

/// The same failure also gives a node_fail event; later polls do not re-announce the failover.
fn check_node_fail_and_no_second_failover(e: &Exporter, s: &Shard) {
    let fail = wait_event(e, Duration::from_secs(5), "node_fail", |ev| {
        ev["kind"] == "node_fail" && ev["node"]["id"] == s.old_id
    });
    assert!(!fail["reported_by"].as_array().unwrap().is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(of_kind(e, "failover").len(), 1);
}

/// The old master comes back as a replica of the new one: role_changed, then node_recovered.
fn old_master_rejoins_as_replica(cluster: &mut RedisCluster, e: &Exporter, s: &Shard) {
    cluster.restart(s.master);
    wait_event(
        e,
        Duration::from_secs(20),
        "role_changed of the old master",
        |ev| {
            ev["kind"] == "role_changed"
                && ev["node"]["id"] == s.old_id
                && ev["to_master_id"] == s.new_id
        },
    );
    wait_event(e, Duration::from_secs(20), "node_recovered", |ev| {
        ev["kind"] == "node_recovered" && ev["node"]["id"] == s.old_id
    });
}

/// Event ids strictly increase; the metrics count one automatic failover; every event is also
/// one structured log line.
fn check_event_ids_metrics_and_log(e: &Exporter) {
    let all = events(e, "");
    let ids: Vec<u64> = all.iter().map(|ev| ev["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let body = e.metrics();
    assert_eq!(
        metric_value(
            &body,
            "redis_cluster_failovers_total",
            &[("trigger", "automatic")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &body,
            "redis_cluster_failovers_total",
            &[("trigger", "manual")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_events_total", &[("kind", "failover")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_failover_duration_seconds_count", &[]),
        Some(1.0)
    );
    assert!(metric_value(&body, "redis_cluster_last_failover_timestamp_seconds", &[]).is_some());
    assert!(
        e.output().contains("automatic failover: replica"),
        "{}",
        e.output()
    );
}

#[test]
fn frozen_master_is_replaced_and_returns_as_replica() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = exporter(&cluster, "200ms");
    let master = cluster.masters()[1];
    let replica = cluster.replica_of(master).unwrap();
    let (old_id, new_id) = (cluster.node_id(master), cluster.node_id(replica));
    cluster.stop(master);
    let f = wait_event(&e, Duration::from_secs(20), "failover", |ev| {
        ev["kind"] == "failover"
    });
    assert_eq!(f["old_master"]["id"], old_id);
    assert_eq!(f["new_master"]["id"], new_id);
    assert_eq!(f["trigger"], "automatic");
    cluster.cont(master);
    wait_event(&e, Duration::from_secs(20), "role_changed", |ev| {
        ev["kind"] == "role_changed" && ev["node"]["id"] == old_id && ev["to_role"] == "replica"
    });
    wait_event(&e, Duration::from_secs(20), "node_recovered", |ev| {
        ev["kind"] == "node_recovered" && ev["node"]["id"] == old_id
    });
    assert_eq!(of_kind(&e, "failover").len(), 1);
}

#[test]
fn manual_force_and_takeover_triggers() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = exporter(&cluster, "200ms");
    let masters = cluster.masters();
    for (k, (arg, trigger)) in [
        (None, "manual"),
        (Some("FORCE"), "force"),
        (Some("TAKEOVER"), "takeover"),
    ]
    .into_iter()
    .enumerate()
    {
        let master = masters[k];
        let replica = cluster.replica_of(master).unwrap();
        let new_id = cluster.node_id(replica);
        let mut args = vec!["CLUSTER", "FAILOVER"];
        args.extend(arg);
        assert_eq!(cluster.cli(replica, &args), "OK");
        let f = wait_event(&e, Duration::from_secs(15), trigger, |ev| {
            ev["kind"] == "failover" && ev["new_master"]["id"] == new_id
        });
        assert_eq!(f["trigger"], trigger, "{f}");
        assert_eq!(f["old_master"]["id"], cluster.node_id(master));
        if trigger == "manual" {
            assert!(f["duration_seconds"].is_null());
            // The master paused writes until the replica caught up.
            assert_eq!(f["possible_data_loss_bytes"], 0);
        }
        // The healthy old master follows the new one.
        wait_event(
            &e,
            Duration::from_secs(15),
            "old master turns replica",
            |ev| ev["kind"] == "role_changed" && ev["node"]["id"] == cluster.node_id(master),
        );
        cluster.wait_converged(Duration::from_secs(15));
    }
    assert_eq!(of_kind(&e, "failover").len(), 3);
    let body = e.metrics();
    for t in ["manual", "force", "takeover"] {
        assert_eq!(
            metric_value(&body, "redis_cluster_failovers_total", &[("trigger", t)]),
            Some(1.0),
            "{t}"
        );
    }
}

#[test]
fn losing_a_whole_shard_fails_the_cluster_until_it_returns() {
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let e = exporter(&cluster, "200ms");
    let master = cluster.masters()[2];
    let replica = cluster.replica_of(master).unwrap();
    cluster.kill(replica);
    cluster.kill(master);
    let down = wait_event(&e, Duration::from_secs(20), "cluster_state fail", |ev| {
        ev["kind"] == "cluster_state" && ev["to"] == "fail"
    });
    assert_eq!(down["from"], "ok");
    assert!(down["slots_fail"].as_u64().unwrap() > 0 || down["slots_pfail"].as_u64().unwrap() > 0);
    assert!(of_kind(&e, "failover").is_empty());
    cluster.restart(master);
    cluster.restart(replica);
    let up = wait_event(&e, Duration::from_secs(30), "cluster_state ok", |ev| {
        ev["kind"] == "cluster_state" && ev["to"] == "ok"
    });
    assert_eq!(up["from"], "fail");
    assert_eq!(up["slots_ok"], 16384);
    assert!(of_kind(&e, "failover").is_empty());
}

#[test]
fn resharding_gives_slots_moved() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = exporter(&cluster, "200ms");
    let (from, to) = (cluster.masters()[0], cluster.masters()[1]);
    let (from_id, to_id) = (cluster.node_id(from), cluster.node_id(to));
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args([
        "--cluster",
        "reshard",
        &cluster.addr(0),
        "--cluster-from",
        &from_id,
        "--cluster-to",
        &to_id,
        "--cluster-slots",
        "100",
        "--cluster-yes",
    ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved = wait_event(&e, Duration::from_secs(15), "slots_moved", |ev| {
        ev["kind"] == "slots_moved" && ev["from"]["id"] == from_id && ev["to"]["id"] == to_id
    });
    // Every moved slot is accounted for, possibly over several polls.
    std::thread::sleep(Duration::from_secs(1));
    let total: u64 = of_kind(&e, "slots_moved")
        .iter()
        .filter(|ev| ev["from"]["id"] == from_id && ev["to"]["id"] == to_id)
        .map(|ev| ev["slot_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 100, "{moved}");
    assert!(of_kind(&e, "failover").is_empty());
}

#[test]
fn exporter_crash_and_failover_while_down() {
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let mut e = exporter(&cluster, "200ms");
    let m0 = cluster.masters()[0];
    let r0 = cluster.replica_of(m0).unwrap();
    cluster.kill(m0);
    wait_event(&e, Duration::from_secs(20), "first failover", |ev| {
        ev["kind"] == "failover"
    });
    // kill -9 right after the event.
    e.kill();
    let before = std::fs::read_to_string(e.event_log()).unwrap();
    let before_ids: Vec<u64> = before
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(!before_ids.is_empty());

    // While it is down, another master fails over.
    let m1 = cluster.masters().into_iter().find(|m| *m != r0).unwrap();
    let r1 = cluster.replica_of(m1).unwrap();
    let new_id = cluster.node_id(r1);
    cluster.kill(m1);
    cluster.wait_role(r1, "master", Duration::from_secs(20));
    let started = Instant::now();
    e.restart();
    e.wait_ready(Duration::from_secs(10));
    let f = wait_event(
        &e,
        Duration::from_secs(10),
        "failover that happened while down",
        |ev| ev["kind"] == "failover" && ev["new_master"]["id"] == new_id,
    );
    assert_eq!(
        f["trigger"], "automatic",
        "the old master is still flagged fail: {f}"
    );
    println!(
        "failover while down logged {:?} after restart",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    let all = events(&e, "");
    let failovers: Vec<_> = all.iter().filter(|ev| ev["kind"] == "failover").collect();
    assert_eq!(
        failovers.len(),
        2,
        "nothing re-announced, nothing lost: {all:#?}"
    );
    let ids: Vec<u64> = all.iter().map(|ev| ev["id"].as_u64().unwrap()).collect();
    assert_eq!(
        &ids[..before_ids.len()],
        &before_ids[..],
        "the events before the crash are kept"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let keys: std::collections::HashSet<&str> =
        all.iter().map(|ev| ev["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), all.len(), "no key twice");
}

#[test]
fn adaptive_topology_polling_still_sees_every_failover() {
    // One node per round sends CLUSTER NODES in turn (6 rounds for all), the others only when
    // their CLUSTER INFO moves: the failover must still be one event with the right fields.
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            "200ms",
            "--node-timeout",
            "300ms",
            "--full-topology-max-nodes",
            "1",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    wait_until(Duration::from_secs(10), "6 members in the view", || {
        common::metric_samples(&e.metrics(), "redis_cluster_node_info").len() == 6
    });
    let master = cluster.masters()[2];
    let replica = cluster.replica_of(master).unwrap();
    let (old_id, new_id) = (cluster.node_id(master), cluster.node_id(replica));
    cluster.kill(master);
    let f = wait_event(&e, Duration::from_secs(20), "failover", |ev| {
        ev["kind"] == "failover"
    });
    assert_eq!(f["old_master"]["id"], old_id);
    assert_eq!(f["new_master"]["id"], new_id);
    assert_eq!(f["trigger"], "automatic");
    cluster.restart(master);
    wait_event(&e, Duration::from_secs(20), "old master rejoins", |ev| {
        ev["kind"] == "role_changed" && ev["node"]["id"] == old_id
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(of_kind(&e, "failover").len(), 1);
    let body = e.metrics();
    assert_eq!(
        metric_value(&body, "redis_cluster_nodes", &[("role", "master")]),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&body, "redis_cluster_config_consistent", &[]),
        Some(1.0)
    );
}

#[test]
fn a_replica_failing_twice_gives_two_episodes_with_distinct_keys() {
    // Found by the chaos run (seed 16, 30 min): the same replica killed twice while its master's
    // config epoch stayed put gave node_fail and node_recovered twice under one key each.
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let e = exporter(&cluster, "200ms");
    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master).unwrap();
    let id = cluster.node_id(replica);
    for round in 1..=2 {
        cluster.kill(replica);
        wait_until(Duration::from_secs(20), "node_fail", || {
            of_kind(&e, "node_fail")
                .iter()
                .filter(|ev| ev["node"]["id"] == id)
                .count()
                == round
        });
        cluster.restart(replica);
        wait_until(Duration::from_secs(20), "node_recovered", || {
            of_kind(&e, "node_recovered")
                .iter()
                .filter(|ev| ev["node"]["id"] == id)
                .count()
                == round
        });
        cluster.wait_converged(Duration::from_secs(20));
    }
    let all = events(&e, "");
    let keys: std::collections::HashSet<&str> =
        all.iter().map(|ev| ev["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), all.len(), "no key twice: {all:#?}");
    assert!(of_kind(&e, "failover").is_empty());
}

/// `CLUSTER FAILOVER [opt]` on `replica`; waits for its failover event (and for the old master
/// to report itself a replica) and returns the event. A manual failover that times out on the
/// Redis side (it does, now and then, right after a replica synced: "Manual failover timed
/// out.") is asked again.
/// How many lines of node `i`'s redis-server log contain `text`.
fn log_count(cluster: &RedisCluster, i: usize, text: &str) -> usize {
    cluster.log(i).matches(text).count()
}

fn failover_on(cluster: &RedisCluster, e: &Exporter, replica: usize, opt: Option<&str>) -> Value {
    let new_id = cluster.node_id(replica);
    let before = of_kind(e, "failover").len();
    let timeouts = || log_count(cluster, replica, "Manual failover timed out");
    let mut args = vec!["CLUSTER", "FAILOVER"];
    args.extend(opt);
    // Just after a failover the node may not have taken the new config yet and still count
    // itself a master ("You should send CLUSTER FAILOVER to a replica"): ask until it does.
    cluster.wait_role(replica, "slave", Duration::from_secs(20));
    let send = || {
        let t0 = Instant::now();
        loop {
            match cluster.try_cmd(replica, &args) {
                Ok(reply) => return reply,
                Err(err)
                    if err.contains("to a replica") && t0.elapsed() < Duration::from_secs(20) =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => {
                    let log = cluster.log(replica);
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    panic!(
                        "CLUSTER FAILOVER on node {replica}: {err}\nROLE: {:?}\nCLUSTER NODES:\n{}\nlog (newest first):\n{}\nevents:\n{:#?}\nexporter output (tail):\n{}",
                        cluster.role_of(replica),
                        cluster.cli(replica, &["CLUSTER", "NODES"]),
                        tail.join("\n"),
                        events(e, ""),
                        e.output()
                            .lines()
                            .rev()
                            .take(40)
                            .collect::<Vec<_>>()
                            .join("\n")
                    )
                }
            }
        }
    };
    for _ in 0..3 {
        let timed_out = timeouts();
        assert_eq!(send(), "OK");
        let t0 = Instant::now();
        while of_kind(e, "failover").len() <= before
            && timeouts() == timed_out
            && t0.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        if of_kind(e, "failover").len() > before {
            break;
        }
    }
    let all = of_kind(e, "failover");
    assert_eq!(all.len(), before + 1, "{all:#?}");
    assert_eq!(all[before]["new_master"]["id"], new_id, "{all:#?}");
    // The exporter can tell the failover before the old master has taken the new config: a
    // CLUSTER FAILOVER sent back to it at once would find it still a master.
    let old_id = all[before]["old_master"]["id"].as_str().unwrap_or_default();
    if let Some(old) = (0..cluster.node_count()).find(|&i| cluster.node_id(i) == old_id) {
        cluster.wait_role(old, "slave", Duration::from_secs(20));
    }
    all[before].clone()
}

/// kill -9 `node`, long enough for the cluster to flag it FAIL (node timeout 2 s), then
/// restart it and wait until it is back as a replica with its link up.
fn kill_flag_restart(cluster: &mut RedisCluster, e: &Exporter, node: usize) {
    let id = cluster.node_id(node);
    let fails = |e: &Exporter| {
        of_kind(e, "node_fail")
            .iter()
            .filter(|ev| ev["node"]["id"] == id)
            .count()
    };
    let before = fails(e);
    cluster.kill(node);
    wait_until(Duration::from_secs(20), "node_fail", || fails(e) > before);
    cluster.restart(node);
    wait_until(Duration::from_secs(20), "replica link up", || {
        cluster.info(node, "replication").get("master_link_status") == Some(&"up".to_string())
    });
}

/// A cluster whose restarted replicas sync at once (no diskless-sync delay, so a failover can
/// follow a restart as closely as in the chaos run) and an exporter with the chaos run's flags
/// (1 s poll, 500 ms node timeout), ready.
fn cluster_as_in_the_chaos_run() -> (RedisCluster, Exporter) {
    let cluster = RedisCluster::start(ClusterOptions {
        extra_args: vec!["--repl-diskless-sync-delay".into(), "0".into()],
        ..ClusterOptions::default()
    });
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            "1s",
            "--node-timeout",
            "500ms",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    (cluster, e)
}

#[test]
fn failover_on_a_just_restarted_replica_has_its_trigger() {
    // Found by the chaos run (seed 16, 30 min): the promoted replica had been killed and
    // restarted 1-3 s before CLUSTER FAILOVER / TAKEOVER, and both exporters logged `unknown`:
    // the exporter, backing off from the dead address, first polled the new process when it
    // was already a master, with no replica sample to compare its counters with. The
    // exporter runs as in the chaos run (1 s poll, 500 ms node timeout).
    // No diskless-sync delay: the restarted replica's link is up at once, as with a larger
    // data set a few seconds later, and the failover follows before many polls have sampled it.
    let (mut cluster, e) = cluster_as_in_the_chaos_run();
    let cases = [
        (None, "manual", Duration::from_millis(1000)),
        (Some("TAKEOVER"), "takeover", Duration::from_millis(1500)),
    ];
    for (k, (opt, trigger, pause)) in cases.into_iter().enumerate() {
        let master = cluster.masters()[k];
        let replica = cluster.replica_of(master).unwrap();
        // A round trip first, so the replica's killed process had sent MFSTART and AUTH-REQ:
        // its counters must not be compared with the restarted process's.
        assert_eq!(
            failover_on(&cluster, &e, replica, None)["trigger"],
            "manual"
        );
        cluster.wait_converged(Duration::from_secs(20));
        assert_eq!(failover_on(&cluster, &e, master, None)["trigger"], "manual");
        cluster.wait_converged(Duration::from_secs(20));
        kill_flag_restart(&mut cluster, &e, replica);
        // The chaos run's cases came 1-3 s after the restart; the link takes part of that.
        std::thread::sleep(pause);
        let f = failover_on(&cluster, &e, replica, opt);
        assert_eq!(f["trigger"], trigger, "{f}");
        assert_eq!(f["old_master"]["id"], cluster.node_id(master));
        cluster.wait_converged(Duration::from_secs(20));
    }
}

#[test]
fn a_replica_failure_is_not_charged_to_its_later_failover_as_master() {
    // Found by the chaos run (seed 16, 30 min): a replica killed (flagged FAIL) and restarted,
    // promoted seconds later, then replaced by a manual failover: that last one was logged as
    // automatic, its failure episode of the replica days charged to it. The leftovers that did
    // it (stale flags, polls skipped in reconnect backoff) depend on timing a real cluster does
    // not repeat at will: the detector test
    // a_replica_failure_is_not_charged_to_a_later_failover_away_from_it pins each of them; this
    // one runs the whole sequence for real (diskless sync without delay, so the failover
    // follows the restart as closely as in the chaos run).
    let (mut cluster, e) = cluster_as_in_the_chaos_run();
    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master).unwrap();
    kill_flag_restart(&mut cluster, &e, replica);
    std::thread::sleep(Duration::from_millis(1000));
    let up = failover_on(&cluster, &e, replica, None);
    assert_eq!(up["trigger"], "manual", "{up}");
    let back = failover_on(&cluster, &e, master, None);
    assert_eq!(back["trigger"], "manual", "{back}");
    assert!(back["first_failure_seen"].is_null(), "{back}");
    assert!(back["duration_seconds"].is_null(), "{back}");
}

#[test]
fn a_failover_request_answered_with_old_votes_is_overruled_and_not_logged() {
    // Found by the chaos run (CI, seed 1): Redis 7.0 keeps a replica's last election (its
    // votes and time) after it won. A CLUSTER FAILOVER reaching that node again within the
    // election timeout (4 s at node timeout 2 s), after its old master took the slots back,
    // "wins" with the old votes: no new election, no new epoch. For ~100 ms the node calls
    // itself a master of the slots at its old config epoch, until the master's newer epoch
    // overrules it (and the node resyncs in full). The cluster did not fail over, and the
    // only key it could have, `failover/<node>/<old epoch>`, is the first failover's.
    let (cluster, e) = cluster_as_in_the_chaos_run();
    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master).unwrap();
    let wins = |i: usize| log_count(&cluster, i, "Failover election won");
    let elections = |i: usize| log_count(&cluster, i, "Starting a failover election");
    let timeouts = |i: usize| log_count(&cluster, i, "Manual failover timed out");
    let mut overruled = false;
    for attempt in 0..5 {
        let (won, elected) = (wins(replica), elections(replica));
        // The sequence that found it, timed by the nodes' roles, not by the exporter's events
        // (waiting for those made the third request late on a loaded machine): the third must
        // reach the replica after the way back has settled (at once, its manual failover
        // times out) and within the election timeout (4 s) of the replica's election. The
        // exporter's view of both failovers is checked below.
        // CLUSTER FAILOVER to `node` until it is a master (a manual failover can time out,
        // as on a cluster just formed); when it became one.
        let promote = |node: usize| -> Instant {
            for _ in 0..3 {
                let timed_out = timeouts(node);
                wait_until(
                    Duration::from_secs(10),
                    "CLUSTER FAILOVER to be taken",
                    || cluster.try_cmd(node, &["CLUSTER", "FAILOVER"]) == Ok("OK".into()),
                );
                let t0 = Instant::now();
                while timeouts(node) == timed_out && t0.elapsed() < Duration::from_secs(10) {
                    if matches!(cluster.role_of(node), Some((r, _)) if r == "master") {
                        return Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            panic!("node {node} did not take over after 3 requests");
        };
        let elected_at = promote(replica);
        cluster.wait_role(master, "slave", Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1000));
        promote(master);
        cluster.wait_role(replica, "slave", Duration::from_secs(10));
        let third_at = elected_at + Duration::from_millis(2500);
        std::thread::sleep(third_at.saturating_duration_since(Instant::now()));
        let timed_out = timeouts(replica);
        let late = elected_at.elapsed();
        assert_eq!(
            cluster.try_cmd(replica, &["CLUSTER", "FAILOVER"]),
            Ok("OK".into())
        );
        wait_until(
            Duration::from_secs(10),
            "the request to be answered",
            || wins(replica) == won + 2 || timeouts(replica) > timed_out,
        );
        let log = cluster.log(replica);
        overruled = wins(replica) == won + 2 && elections(replica) == elected + 1;
        if overruled {
            break;
        }
        // A real election (or a timeout) instead: start over once the node's last election
        // is older than the retry time (8 s).
        let tail: Vec<&str> = log.lines().rev().take(14).collect();
        eprintln!(
            "attempt {attempt} (third request {late:?} after the election): no win with old votes; \
             retrying; log tail (newest first):\n{}",
            tail.join("\n")
        );
        std::thread::sleep(Duration::from_secs(9));
        if cluster.masters().contains(&replica) {
            failover_on(&cluster, &e, master, None);
        }
    }
    assert!(overruled, "Redis never answered with old votes");
    // The master keeps its slots. The node is its replica again or, as Redis 7.0 sometimes
    // leaves it, a master without slots: whichever it is, the exporter must show the same.
    cluster.wait_converged(Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    let all = of_kind(&e, "failover");
    let keys: Vec<&str> = all.iter().filter_map(|f| f["key"].as_str()).collect();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    let last = all.last().expect("failovers");
    assert_eq!(
        last["new_master"]["id"],
        cluster.node_id(master),
        "{all:#?}"
    );
    let (_, _, body) = http_get(&e.url("/metrics"));
    for i in [master, replica] {
        let role = cluster.role_of(i).map(|(r, _)| r).unwrap_or_default();
        let role = if role == "slave" {
            "replica"
        } else {
            role.as_str()
        };
        let id = cluster.node_id(i);
        let shown = metric_value(
            &body,
            "redis_cluster_node_info",
            &[("node_id", id.as_str()), ("role", role)],
        );
        assert_eq!(shown, Some(1.0), "node {i} is a {role}:\n{body}");
    }
}
