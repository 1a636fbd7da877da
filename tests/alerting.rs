//! Direct alerting against a real Alertmanager, with no Prometheus at all: a dead shard pages
//! through `--alertmanager-url` once cluster_state:fail has lasted the hold time, resolves when
//! the shard returns, and a failover is announced with the rule's labels.

mod common;
#[path = "common/prom.rs"]
mod prom;

use common::{ClusterOptions, Exporter, RedisCluster, wait_until};
use std::time::Duration;

#[test]
fn direct_alerts_reach_alertmanager_without_prometheus() {
    let am = prom::Alertmanager::start();
    let mut cluster = RedisCluster::start(ClusterOptions::default());
    let am_url = format!("http://{}", am.addr());
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--poll-interval",
            "250ms",
            "--node-timeout",
            "300ms",
            "--cluster-name",
            "direct",
            "--alertmanager-url",
            &am_url,
            "--alert-state-fail-for",
            "2s",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));

    // A failover: one info alert with the rule's labels.
    let m0 = cluster.masters()[0];
    let r0 = cluster.replica_of(m0).unwrap();
    cluster.kill(m0);
    let mut failover = None;
    wait_until(
        Duration::from_secs(20),
        "RedisClusterFailover in Alertmanager",
        || {
            failover = am
                .alerts()
                .unwrap_or_default()
                .into_iter()
                .find(|a| a.name() == "RedisClusterFailover" && a.label("cluster") == "direct");
            failover.is_some()
        },
    );
    let f = failover.unwrap();
    assert_eq!(f.label("trigger"), "automatic");
    assert_eq!(f.label("severity"), "info");
    // The ~1 s cluster_state:fail of that failover did not page (hold time 2 s).
    assert!(
        !am.alerts()
            .unwrap_or_default()
            .iter()
            .any(|a| a.name() == "RedisClusterStateFail"),
        "a failover blip paged"
    );
    cluster.restart(m0);
    cluster.wait_converged(Duration::from_secs(20));

    // A whole shard dies: cluster_state:fail lasts, the page goes out directly.
    let master = cluster.masters().into_iter().find(|m| *m != r0).unwrap();
    let replica = cluster.replica_of(master).unwrap();
    cluster.kill(replica);
    cluster.kill(master);
    let mut fired = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "RedisClusterStateFail in Alertmanager",
        || {
            fired = am
                .alerts()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.name() == "RedisClusterStateFail")
                .collect();
            !fired.is_empty()
        },
    );
    for a in &fired {
        assert_eq!(a.label("cluster"), "direct");
        assert_eq!(a.label("severity"), "critical");
        assert!(!a.label("addr").is_empty());
    }
    cluster.restart(master);
    cluster.restart(replica);
    wait_until(Duration::from_secs(40), "the alert resolves", || {
        !am.alerts()
            .unwrap_or_default()
            .iter()
            .any(|a| a.name() == "RedisClusterStateFail")
    });
    assert!(!e.output().contains("cannot post alerts"), "{}", e.output());
}
