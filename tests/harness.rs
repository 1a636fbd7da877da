//! Self-test of the real-process harness in tests/common (no exporter logic involved).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn cluster_3x1_starts_and_fails_over() {
    let mut c = RedisCluster::start(ClusterOptions::default());
    assert_eq!(c.node_count(), 6);
    let masters = c.masters();
    let replicas = c.replicas();
    assert_eq!(masters.len(), 3, "masters: {masters:?}");
    assert_eq!(replicas.len(), 3, "replicas: {replicas:?}");
    assert!(c.seed_url().starts_with("redis://127.0.0.1:"));
    assert_eq!(c.addr(0), format!("127.0.0.1:{}", c.port(0)));
    assert_eq!(c.node_id(0).len(), 40);
    assert_eq!(
        c.cli(0, &["CLUSTER", "INFO"]).lines().next(),
        Some("cluster_state:ok")
    );
    let log = c.log(0);
    assert!(log.contains("Ready to accept connections"), "log: {log}");

    // Kill a master and wait for its replica to take over.
    let m = masters[0];
    let r = c.replica_of(m).expect("master has a replica");
    let old_id = c.node_id(m);
    c.kill(m);
    assert_eq!(c.node_id(m), old_id, "id is cached after kill");
    let t = Instant::now();
    c.wait_role(r, "master", Duration::from_secs(30));
    eprintln!("replica promoted {:?} after kill", t.elapsed());
    assert!(c.masters().contains(&r));
    assert!(!c.masters().contains(&m));
    assert!(
        c.log(r).contains("Failover election won"),
        "log:\n{}",
        c.log(r)
    );

    // The old master comes back as a replica of the promoted one.
    c.restart(m);
    c.wait_role(m, "slave", Duration::from_secs(30));
    c.wait_healthy(Duration::from_secs(30));
    assert_eq!(c.master_of(m), Some(r));
    assert_eq!(c.replica_of(r), Some(m));
}

#[test]
fn two_clusters_start_concurrently() {
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let c = RedisCluster::start(ClusterOptions::default());
                let ports: Vec<u16> = (0..c.node_count()).map(|i| c.port(i)).collect();
                assert_eq!(c.masters().len(), 3);
                assert_eq!(c.replicas().len(), 3);
                (ports, c.node_id(0))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    eprintln!("two clusters up in {:?}", t.elapsed());
    let mut all: Vec<u16> = results.iter().flat_map(|(p, _)| p.clone()).collect();
    for p in all.clone() {
        all.push(p + 10000);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "ports (and bus ports) overlap between clusters"
    );
    assert_ne!(results[0].1, results[1].1);
}

#[test]
fn password_stop_cont_add_and_forget() {
    let mut c = RedisCluster::start(ClusterOptions {
        password: Some("s3cret pw".into()),
        ..Default::default()
    });
    assert_eq!(c.cli(0, &["PING"]), "PONG");
    // Without the password the server refuses.
    let r = resp_command(c.port(0), None, &["GET", "x"], Duration::from_secs(2)).unwrap();
    assert!(
        matches!(r, Resp::Error(ref e) if e.starts_with("NOAUTH")),
        "{r:?}"
    );

    // SIGSTOP: the port still accepts connections, nothing answers.
    let victim = c.replicas()[0];
    c.stop(victim);
    assert!(
        resp_command(
            c.port(victim),
            Some("s3cret pw"),
            &["PING"],
            Duration::from_millis(300)
        )
        .is_err()
    );
    assert!(!c.running().contains(&victim));
    c.cont(victim);
    assert_eq!(c.cli(victim, &["PING"]), "PONG");
    c.wait_healthy(Duration::from_secs(30));

    let n = c.add_node();
    assert_eq!(n, 6);
    c.wait_converged(Duration::from_secs(30));
    assert_eq!(c.cluster_nodes(0).len(), 7);
    assert_eq!(c.masters().len(), 4, "an empty new node is a master");
    c.forget(n);
    c.wait_converged(Duration::from_secs(30));
    assert_eq!(c.cluster_nodes(0).len(), 6);
}

#[test]
fn small_cluster_without_replicas() {
    let c = RedisCluster::start(ClusterOptions {
        masters: 1,
        replicas: 1,
        ..Default::default()
    });
    assert_eq!(c.node_count(), 2);
    assert_eq!(c.masters(), vec![0]);
    assert_eq!(c.replica_of(0), Some(1));
}

#[test]
#[should_panic(expected = "failed")]
fn cli_panics_on_error_reply() {
    let s = RedisStandalone::start(None);
    s.cli(&["CLUSTER", "INFO"]);
}

#[test]
fn standalone_with_password() {
    let s = RedisStandalone::start(Some("pw"));
    assert_eq!(s.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(s.cli(&["GET", "k"]), "v");
    assert_eq!(s.addr(), format!("127.0.0.1:{}", s.port()));
}

#[test]
fn free_ports_are_distinct_and_bus_safe() {
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let mut all: Vec<u16> = ports.iter().flat_map(|&p| [p, p + 10000]).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 100);
    assert!(ports.iter().all(|&p| p + 10000 < 55535));
}

fn serve_once(response: &'static [u8]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8_lossy(&req);
        assert!(req.contains("Connection: close"));
        s.write_all(response).unwrap();
    });
    format!("http://127.0.0.1:{port}/metrics")
}

#[test]
fn http_get_dechunks() {
    let url = serve_once(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n world\n\r\n0\r\n\r\n",
    );
    let (status, headers, body) = http_get_with_headers(&url, &[("Accept", "text/plain")]);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/plain\n"), "{headers}");
    assert_eq!(
        header_value(&headers, "Content-Type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(body, "hello world\n");

    let url = serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nno!");
    assert_eq!(
        http_get(&url),
        (503, "content-length: 3\n".to_string(), "no!".to_string())
    );
}

#[test]
fn metric_parsing() {
    let body = "# HELP redis_up Up\n# TYPE redis_up gauge\nredis_up{addr=\"127.0.0.1:7000\"} 1\n\
redis_up{addr=\"127.0.0.1:7001\"} 0\n\
redis_cluster_node_info{addr=\"a:1\",node_id=\"x\",role=\"master\",master_id=\"\"} 1\n\
weird{l=\"a \\\"q\\\" ,}b\",m=\"2\"} 2.5e3 1700000000000\n\
h_bucket{le=\"+Inf\"} 7\nplain 42\nnan_metric NaN\n# EOF\n";
    assert_eq!(
        metric_value(body, "redis_up", &[("addr", "127.0.0.1:7001")]),
        Some(0.0)
    );
    assert_eq!(metric_value(body, "redis_up", &[]), Some(1.0));
    assert_eq!(metric_value(body, "redis_up", &[("addr", "nope")]), None);
    assert_eq!(
        metric_value(
            body,
            "redis_cluster_node_info",
            &[("master_id", ""), ("role", "master")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(body, "weird", &[("l", "a \"q\" ,}b")]),
        Some(2500.0)
    );
    assert_eq!(metric_value(body, "h_bucket", &[("le", "+Inf")]), Some(7.0));
    assert_eq!(metric_value(body, "plain", &[]), Some(42.0));
    assert!(metric_value(body, "nan_metric", &[]).unwrap().is_nan());
    assert_eq!(metric_value(body, "redis", &[]), None);
    assert_eq!(metric_samples(body, "redis_up").len(), 2);
}

#[test]
fn exporter_binary_spawns() {
    // Works whatever the binary currently does with --help (prints something and exits).
    let mut e = Exporter::start(&["--help"], &[]);
    assert!(e.port() > 0);
    assert!(
        e.url("/metrics")
            .ends_with(&format!(":{}/metrics", e.port()))
    );
    assert!(e.args().iter().any(|a| a == "--event-log"));
    e.wait_exit(Duration::from_secs(30));
    assert!(!e.output().is_empty());
}
