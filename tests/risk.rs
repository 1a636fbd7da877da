//! Topology-risk metrics against real redis-server clusters: the default harness cluster has
//! every node on 127.0.0.1 (each master's replica on its own host, all masters on one host), and
//! a `distinct_hosts` cluster puts node i on 127.0.0.(2+i), so no replica shares its master's host.

mod common;

use common::{ClusterOptions, Exporter, RedisCluster, http_get, metric_samples, metric_value};
use std::time::Duration;

fn start_exporter(seed: &str) -> Exporter {
    let args = [
        "--redis-addr",
        seed,
        "--poll-interval",
        "200ms",
        "--node-timeout",
        "300ms",
        "--stats-interval",
        "200ms",
    ];
    let e = Exporter::start(&args, &[]);
    e.wait_ready(Duration::from_secs(10));
    e
}

/// Waits until `/metrics` satisfies `f`, returning the body that did.
fn wait_metrics(e: &Exporter, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    common::wait_until(Duration::from_secs(15), what, || {
        let (status, _, body) = http_get(&e.url("/metrics"));
        last = body;
        status == 200 && f(&last)
    });
    last
}

/// Every master's colocated count, once the exporter shows all of them with their replicas.
fn settled(cluster: &RedisCluster, body: &str) -> bool {
    let masters = cluster.masters();
    metric_samples(body, "redis_cluster_node_info").len() == cluster.node_count()
        && metric_samples(body, "redis_cluster_master_colocated_replicas").len() == masters.len()
        && metric_value(body, "redis_cluster_memory_skew_ratio", &[]).is_some()
}

#[test]
fn all_on_one_host_every_master_has_a_colocated_replica() {
    let cluster = RedisCluster::start(ClusterOptions::default());
    let e = start_exporter(&cluster.seed_url());
    let body = wait_metrics(&e, "risk families for 3 masters", |b| settled(&cluster, b));

    for m in cluster.masters() {
        let addr = cluster.addr(m);
        assert_eq!(
            metric_value(
                &body,
                "redis_cluster_master_colocated_replicas",
                &[("addr", &addr)]
            ),
            Some(1.0),
            "{addr}"
        );
    }
    let hosts = metric_samples(&body, "redis_cluster_host_masters");
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(
        metric_value(
            &body,
            "redis_cluster_host_masters",
            &[("host", "127.0.0.1")]
        ),
        Some(3.0)
    );
    let skew = metric_value(&body, "redis_cluster_slot_skew_ratio", &[]).expect("slot skew");
    assert!((1.0..1.001).contains(&skew), "slot skew {skew}");
    let mem = metric_value(&body, "redis_cluster_memory_skew_ratio", &[]).expect("memory skew");
    assert!((1.0..2.0).contains(&mem), "memory skew {mem}");
    assert!(
        body.contains("# HELP redis_cluster_slot_skew_ratio "),
        "help text"
    );
}

#[test]
fn replicas_on_other_hosts_are_not_colocated() {
    let cluster = RedisCluster::start(ClusterOptions {
        distinct_hosts: true,
        ..ClusterOptions::default()
    });
    let e = start_exporter(&format!("redis://{}", cluster.host_addr(0)));
    let body = wait_metrics(&e, "risk families for 3 masters", |b| settled(&cluster, b));

    let masters = cluster.masters();
    for &m in &masters {
        let addr = cluster.host_addr(m);
        assert_eq!(
            metric_value(
                &body,
                "redis_cluster_master_colocated_replicas",
                &[("addr", &addr)]
            ),
            Some(0.0),
            "{addr}: {:?}",
            metric_samples(&body, "redis_cluster_master_colocated_replicas")
        );
        let host = addr.rsplit_once(':').expect("host:port").0;
        assert_eq!(
            metric_value(&body, "redis_cluster_host_masters", &[("host", host)]),
            Some(1.0),
            "{host}"
        );
    }
    assert_eq!(
        metric_samples(&body, "redis_cluster_host_masters").len(),
        masters.len()
    );
    // The harness still reaches every node on 127.0.0.1, but the cluster announces its own hosts.
    assert!(
        metric_samples(&body, "redis_up")
            .iter()
            .all(|(l, _)| !l["addr"].starts_with("127.0.0.1:")),
        "addr labels are the announced hosts"
    );
    let skew = metric_value(&body, "redis_cluster_slot_skew_ratio", &[]).expect("slot skew");
    assert!((1.0..1.001).contains(&skew), "slot skew {skew}");
}
