//! `redis-cluster-exporter check` end to end: a real cluster (healthy, a stopped replica, a
//! killed master with its replica), one with every replica on its master's host, an unreachable
//! seed, bad flags, and hostile fake servers as the only seed. Exit codes are the
//! monitoring-plugin ones: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad flags too, unlike the
//! server's 2).

mod common;
#[path = "common/fake_redis.rs"]
mod fake_redis;

use common::{ClusterOptions, EXPORTER_ENV_VARS, Exporter, RedisCluster, free_port};
use fake_redis::{Behavior, FakeRedis};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE_TIMEOUT: &str = "500ms";
/// The whole check ends within 3 node timeouts; this adds process start and slack.
const MAX_RUN: Duration = Duration::from_millis(3 * 500 + 1500);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }
}

/// Runs the binary with `args` (killed and failed after 15 s).
fn run(args: &[&str]) -> Run {
    let mut cmd = Command::new(Exporter::bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The exporter's configuration variables, and LOG_LEVEL (check logs nothing unless set).
    for k in EXPORTER_ENV_VARS.iter().chain(&["LOG_LEVEL"]) {
        cmd.env_remove(k);
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn the exporter");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(out) => out.expect("wait for the exporter"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{args:?} did not end within 15 s");
        }
    };
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

fn check(seed: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "check",
        "--redis-addr",
        seed,
        "--node-timeout",
        NODE_TIMEOUT,
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    if std::env::var_os("CHECK_SHOW").is_some() {
        eprintln!(
            "$ check {extra:?} ({:?}) -> {}\n{}",
            r.took, r.code, r.stdout
        );
    }
    assert!(
        r.took < MAX_RUN,
        "check took {:?} (bound {MAX_RUN:?}):\n{}",
        r.took,
        r.stdout
    );
    r
}

fn problem_texts(json: &serde_json::Value) -> Vec<String> {
    json["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["severity"].as_str().unwrap_or("?"),
                p["text"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn real_cluster_ok_then_warning_then_critical() {
    // Each node on its own loopback host: no replica shares its master's host (on one host that
    // alone is a WARNING, see below).
    let mut cluster = RedisCluster::start(ClusterOptions {
        distinct_hosts: true,
        ..ClusterOptions::default()
    });
    let seed = format!("redis://{}", cluster.host_addr(0));
    healthy_cluster_is_ok_from_a_replica_seed(&cluster);
    healthy_cluster_human_report_is_ok(&seed);
    frozen_replica_is_a_warning(&cluster, &seed);
    dead_master_and_replica_are_critical(&mut cluster, &seed);
}

/// Seeded with one replica, the check discovers and polls every member: OK, every node with
/// its id, role, master, slots and lag, and no replica on its master's host.
fn healthy_cluster_is_ok_from_a_replica_seed(cluster: &RedisCluster) {
    let replica_seed = format!("redis://{}", cluster.host_addr(cluster.replicas()[0]));
    let r = check(&replica_seed, &["--output", "json"]);
    let json = r.json();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(json["status"], "OK");
    assert_eq!(json["exit_code"], 0);
    assert!(
        json["problems"].as_array().unwrap().is_empty(),
        "{}",
        r.stdout
    );
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{}", r.stdout);
    for i in 0..cluster.node_count() {
        let addr = cluster.host_addr(i);
        let n = nodes
            .iter()
            .find(|n| n["addr"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr} missing:\n{}", r.stdout));
        assert_eq!(n["id"], cluster.node_id(i).as_str());
        assert_eq!(n["reachable"], true, "{n}");
        assert_eq!(n["cluster_state"], "ok", "{n}");
        if cluster.masters().contains(&i) {
            assert_eq!(n["role"], "master");
            assert!(n["slot_count"].as_u64().unwrap() > 5000, "{n}");
        } else {
            let m = cluster.master_of(i).unwrap();
            assert_eq!(n["role"], "replica");
            assert_eq!(n["master_addr"], cluster.host_addr(m).as_str());
            assert!(
                n["replication_lag_bytes"].as_i64().is_some_and(|l| l >= 0),
                "{n}"
            );
        }
    }
    let colocated = json["risk"]["colocated_replicas"].as_array().unwrap();
    assert_eq!(colocated.len(), 3);
    assert!(
        colocated
            .iter()
            .all(|c| c["colocated"] == 0 && c["replicas"] == 1),
        "{}",
        r.stdout
    );
    assert_eq!(
        json["risk"]["masters_per_host"].as_object().unwrap().len(),
        3
    );
}

/// The human report of the healthy cluster: the OK status line and the node table.
fn healthy_cluster_human_report_is_ok(seed: &str) {
    let human = check(seed, &[]);
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert_eq!(
        human.first_line(),
        "REDIS CLUSTER OK - 6 nodes (3 masters, 3 replicas), all 16384 slots covered"
    );
    assert!(human.stdout.contains("ADDR"), "{}", human.stdout);
}

/// A frozen replica: its master has no healthy replica -> WARNING naming both.
fn frozen_replica_is_a_warning(cluster: &RedisCluster, seed: &str) {
    let m1 = cluster.masters()[1];
    let r1 = cluster.replica_of(m1).unwrap();
    cluster.stop(r1);
    let r = check(seed, &["--output", "json"]);
    cluster.cont(r1);
    let json = r.json();
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(json["status"], "WARNING");
    let texts = problem_texts(&json);
    let master_addr = cluster.host_addr(m1);
    let replica_addr = cluster.host_addr(r1);
    assert!(
        texts.iter().any(
            |t| t.starts_with(&format!("WARNING master {master_addr} ("))
                && t.contains("has no healthy replica")
                && t.contains(&replica_addr)
        ),
        "{texts:?}"
    );
    assert!(
        json["summary"]
            .as_str()
            .unwrap()
            .starts_with("REDIS CLUSTER WARNING - ")
    );
}

/// A master and its replica killed: their slots are uncovered -> CRITICAL naming the master,
/// in the status line and in the JSON (uncovered slots, the dead master unreachable).
fn dead_master_and_replica_are_critical(cluster: &mut RedisCluster, seed: &str) {
    let m2 = cluster.masters()[2];
    let r2 = cluster.replica_of(m2).unwrap();
    let dead = cluster.host_addr(m2);
    cluster.kill(m2);
    cluster.kill(r2);
    let r = check(seed, &[]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let first = r.first_line();
    assert!(
        first.starts_with("REDIS CLUSTER CRITICAL - ")
            && first.contains(" slots uncovered (")
            && first.contains(&format!("master {dead} ")),
        "{}",
        r.stdout
    );
    let r = check(seed, &["--output", "json"]);
    let json = r.json();
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(json["status"], "CRITICAL");
    assert!(
        json["uncovered_slots"].as_u64().unwrap() > 5000,
        "{}",
        r.stdout
    );
    let n = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["addr"] == dead.as_str())
        .cloned()
        .unwrap();
    assert_eq!(n["reachable"], false);
    assert!(n["error"].as_str().is_some_and(|e| !e.is_empty()), "{n}");
}

#[test]
fn one_host_cluster_warns_about_colocated_replicas_and_shows_the_risk_figures() {
    // The harness default: every node on 127.0.0.1, so each master's replica is on its host.
    let cluster = RedisCluster::start(ClusterOptions::default());
    let r = check(&cluster.seed_url(), &["--output", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let json = r.json();
    let texts = problem_texts(&json);
    assert_eq!(texts.len(), 3, "{texts:?}");
    for m in cluster.masters() {
        let want = format!(
            "WARNING master {} has all its replicas (1) on its own host 127.0.0.1: losing that host loses the shard",
            cluster.addr(m)
        );
        assert!(texts.contains(&want), "{want} not in {texts:?}");
    }
    let risk = &json["risk"];
    assert_eq!(risk["masters_per_host"]["127.0.0.1"], 3, "{risk}");
    let slot_skew = risk["slot_skew"].as_f64().expect("slot skew");
    assert!((1.0..1.001).contains(&slot_skew), "{slot_skew}");
    // INFO all is taken in the check's poll too: memory skew of three near-empty masters.
    let mem = risk["memory_skew"].as_f64().expect("memory skew");
    assert!((1.0..2.0).contains(&mem), "{mem}");
    let human = check(&cluster.seed_url(), &[]);
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains("\nTopology risk:\n  replicas on their master's host: ")
            && human
                .stdout
                .contains("  slot-owning masters per host: 127.0.0.1 3\n"),
        "{}",
        human.stdout
    );
}

#[test]
fn unreachable_seed_and_bad_flags_are_unknown() {
    let seed = format!("redis://127.0.0.1:{}", free_port());
    let r = check(&seed, &[]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.first_line()
            .starts_with("REDIS CLUSTER UNKNOWN - no node reachable (127.0.0.1:"),
        "{}",
        r.stdout
    );
    let j = check(&seed, &["--output", "json"]).json();
    assert_eq!(j["status"], "UNKNOWN");
    assert_eq!(j["exit_code"], 3);

    for bad in [
        &["check", "--no-such-flag"][..],
        &["check", "--output", "xml"],
        &["check", "--node-timeout", "0s"],
        &["check", "--redis-addr", "http://nope:1"],
        &["check", "--max-lag-bytes", "lots"],
    ] {
        let r = run(bad);
        assert_eq!(r.code, 3, "{bad:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.first_line().starts_with("REDIS CLUSTER UNKNOWN - "),
            "{bad:?}: {}",
            r.stdout
        );
        assert_eq!(r.stderr.lines().count(), 1, "{bad:?}: {}", r.stderr);
    }
    // The server keeps its own contract: a bad flag exits 2.
    assert_eq!(run(&["--no-such-flag"]).code, 2);
    assert_eq!(run(&["check", "--help"]).code, 0);
}

#[test]
fn hostile_only_seed_is_unknown_within_the_timeout() {
    for behavior in [
        Behavior::StallMidReply,
        Behavior::Garbage,
        Behavior::EndlessBulkBody,
    ] {
        let fake = FakeRedis::start(behavior.clone());
        let r = check(&fake.url(), &["--output", "json"]);
        assert_eq!(r.code, 3, "{behavior:?}: {}", r.stdout);
        let j = r.json();
        assert_eq!(j["status"], "UNKNOWN", "{behavior:?}");
        let texts = problem_texts(&j);
        assert!(
            texts.iter().any(|t| t.contains(&fake.addr())),
            "{behavior:?}: {texts:?}"
        );
    }
}
