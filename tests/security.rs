//! Security against real servers: TLS and mutual TLS to a real TLS cluster (certificates made by
//! the test with openssl), the minimal ACL, password rotation through the password file (change
//! and SIGHUP), and secrets that must not appear in any output or in the process arguments.

mod common;

use common::{
    ClusterOptions, Exporter, RedisCluster, free_port, http_get, http_get_with_headers,
    metric_samples, metric_value, up_count, wait_until,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = |n: &str| d.join(n).display().to_string();
        for (name, cn) in [("ca", "test-ca"), ("other-ca", "other-ca")] {
            run(Command::new("openssl").args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &p(&format!("{name}.key")),
                "-out",
                &p(&format!("{name}.crt")),
                "-subj",
                &format!("/CN={cn}"),
            ]));
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for name in ["server", "client"] {
            run(Command::new("openssl").args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &p(&format!("{name}.key")),
                "-out",
                &p(&format!("{name}.csr")),
                "-subj",
                &format!("/CN={name}"),
            ]));
            run(Command::new("openssl").args([
                "x509",
                "-req",
                "-in",
                &p(&format!("{name}.csr")),
                "-CA",
                &p("ca.crt"),
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &p(&format!("{name}.crt")),
                "-extfile",
                &p(&format!("{name}.ext")),
            ]));
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Three TLS-only cluster masters requiring client certificates.
struct TlsCluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl TlsCluster {
    fn start(certs: &Certs) -> TlsCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let node_dir: PathBuf = dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--tls-cluster",
                    "yes",
                    "--tls-replication",
                    "yes",
                    "--tls-auth-clients",
                    "yes",
                    "--tls-cert-file",
                    &certs.path("server.crt"),
                    "--tls-key-file",
                    &certs.path("server.key"),
                    "--tls-ca-cert-file",
                    &certs.path("ca.crt"),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    node_dir.to_str().unwrap(),
                    "--logfile",
                    node_dir.join("redis.log").to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            children.push(child);
            ports.push(port);
        }
        let cluster = TlsCluster {
            children,
            ports,
            _dir: dir,
        };
        let tls = cluster.tls_args(certs);
        for port in &cluster.ports {
            wait_until(Duration::from_secs(10), "TLS node answers", || {
                Command::new("redis-cli")
                    .args(&tls)
                    .args(["-p", &port.to_string(), "PING"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
            });
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        run(Command::new("redis-cli")
            .args(&tls)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .arg("--cluster-yes"));
        wait_until(Duration::from_secs(20), "TLS cluster ok", || {
            cluster.ports.iter().all(|p| {
                Command::new("redis-cli")
                    .args(&tls)
                    .args(["-p", &p.to_string(), "CLUSTER", "INFO"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            })
        });
        cluster
    }

    fn tls_args(&self, certs: &Certs) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            certs.path("ca.crt"),
            "--cert".into(),
            certs.path("client.crt"),
            "--key".into(),
            certs.path("client.key"),
        ]
    }

    fn seed(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.ports[0])
    }
}

fn wait_metrics(e: &Exporter, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    wait_until(Duration::from_secs(15), what, || {
        last = e.metrics();
        f(&last)
    });
    last
}

#[test]
fn mutual_tls_cluster() {
    let certs = Certs::new();
    let cluster = TlsCluster::start(&certs);
    let seed = cluster.seed();
    let fast = ["--poll-interval", "200ms", "--node-timeout", "500ms"];

    // CA + client certificate: every node, discovered ones included, over TLS.
    let mut args = vec!["--redis-addr", &seed];
    args.extend(fast);
    let (ca, cert, key) = (
        certs.path("ca.crt"),
        certs.path("client.crt"),
        certs.path("client.key"),
    );
    let good = [
        "--tls-ca-cert-file",
        ca.as_str(),
        "--tls-client-cert-file",
        cert.as_str(),
        "--tls-client-key-file",
        key.as_str(),
    ];
    let mut with_client = args.clone();
    with_client.extend(good);
    let e = Exporter::start(&with_client, &[]);
    e.wait_ready(Duration::from_secs(10));
    let body = wait_metrics(&e, "3 TLS nodes up", |b| up_count(b) == 3);
    assert_eq!(metric_samples(&body, "redis_cluster_node_info").len(), 3);
    drop(e);

    // The same through the environment variables.
    let e = Exporter::start(
        &args,
        &[
            ("REDIS_TLS_CA_CERT_FILE", &ca),
            ("REDIS_TLS_CLIENT_CERT_FILE", &cert),
            ("REDIS_TLS_CLIENT_KEY_FILE", &key),
        ],
    );
    e.wait_ready(Duration::from_secs(10));
    wait_metrics(&e, "3 TLS nodes up (env)", |b| up_count(b) == 3);
    drop(e);

    // A server certificate from an unknown CA is refused: reason tls.
    let other = certs.path("other-ca.crt");
    let mut wrong_ca = args.clone();
    wrong_ca.extend([
        "--tls-ca-cert-file",
        other.as_str(),
        "--tls-client-cert-file",
        cert.as_str(),
        "--tls-client-key-file",
        key.as_str(),
    ]);
    let e = Exporter::start(&wrong_ca, &[]);
    e.wait_ready(Duration::from_secs(10));
    let addr = format!("127.0.0.1:{}", cluster.ports[0]);
    let body = wait_metrics(&e, "tls reason", |b| {
        metric_value(
            b,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "tls")],
        )
        .is_some()
    });
    assert_eq!(
        metric_value(&body, "redis_up", &[("addr", &addr)]),
        Some(0.0)
    );
    assert!(e.output().contains("certificate"), "{}", e.output());
    drop(e);

    // --skip-tls-verification accepts it (the client certificate is still required).
    let mut skip = wrong_ca.clone();
    skip.push("--skip-tls-verification");
    let e = Exporter::start(&skip, &[]);
    e.wait_ready(Duration::from_secs(10));
    wait_metrics(&e, "up without verification", |b| up_count(b) == 3);
    drop(e);

    // Without a client certificate the server refuses us.
    let mut no_client = args.clone();
    no_client.extend(["--tls-ca-cert-file", ca.as_str()]);
    let e = Exporter::start(&no_client, &[]);
    e.wait_ready(Duration::from_secs(10));
    let body = wait_metrics(&e, "refused without client cert", |b| {
        metric_value(b, "redis_up", &[("addr", &addr)]) == Some(0.0)
            && metric_samples(b, "redis_exporter_node_poll_errors_total")
                .iter()
                .any(|(l, _)| l["addr"] == addr)
    });
    let reasons: Vec<String> = metric_samples(&body, "redis_exporter_node_poll_errors_total")
        .into_iter()
        .map(|(l, _)| l["reason"].clone())
        .collect();
    assert!(
        reasons.iter().all(|r| r == "tls" || r == "io"),
        "{reasons:?}"
    );

    // TLS options with a redis:// seed are a configuration error.
    let out = Command::new(Exporter::bin())
        .args([
            "--redis-addr",
            "redis://127.0.0.1:1",
            "--tls-ca-cert-file",
            &ca,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn write_pw(path: &Path, pw: &str) {
    std::fs::write(path, format!("{pw}\n")).unwrap();
}

#[test]
fn minimal_acl_user_and_password_rotation() {
    let admin = "admin-secret-pw";
    let cluster = RedisCluster::start(ClusterOptions {
        password: Some(admin.into()),
        ..ClusterOptions::default()
    });
    // Exactly the commands the exporter sends (AUTH is always allowed).
    let acl = ["-@all", "+cluster|info", "+cluster|nodes", "+info"];
    let set_user = |pw: &str| {
        for i in 0..cluster.node_count() {
            let mut args = vec!["ACL", "SETUSER", "exporter", "reset", "on"];
            let pass = format!(">{pw}");
            args.push(&pass);
            args.extend(acl);
            assert_eq!(cluster.cli(i, &args), "OK");
            // Drop the exporter's authenticated connections so the change takes effect now.
            let _ = cluster.raw(i, &["CLIENT", "KILL", "USER", "exporter"]);
        }
    };
    let pw1 = "Rotate-Me-One-1111";
    set_user(pw1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis-password");
    write_pw(&file, pw1);
    let e = Exporter::start(
        &[
            "--redis-addr",
            &cluster.seed_url(),
            "--redis-user",
            "exporter",
            "--redis-password-file",
            file.to_str().unwrap(),
            "--poll-interval",
            "200ms",
            "--node-timeout",
            "500ms",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    let body = wait_metrics(&e, "6 nodes up with the minimal ACL", |b| up_count(b) == 6);
    // Everything the metrics need is there with that ACL.
    for name in [
        "redis_cluster_state",
        "redis_memory_used_bytes",
        "redis_replication_offset",
    ] {
        assert_eq!(metric_samples(&body, name).len(), 6, "{name}");
    }
    assert_eq!(metric_samples(&body, "redis_cluster_node_info").len(), 6);

    // The password changes on the servers: auth failures until the file follows.
    let pw2 = "Rotate-Me-Two-2222";
    set_user(pw2);
    let addr = cluster.addr(0);
    wait_metrics(&e, "auth failures after rotation", |b| {
        metric_value(
            b,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "auth")],
        )
        .is_some()
            && up_count(b) == 0
    });
    write_pw(&file, pw2);
    wait_metrics(&e, "up again after the file changed", |b| up_count(b) == 6);

    // SIGHUP re-reads the file even when its size and mtime look unchanged.
    let pw3 = "Rotate-Me-Six-3333";
    let reference = dir.path().join("reference");
    std::fs::copy(&file, &reference).unwrap();
    run(Command::new("touch").arg("-r").arg(&file).arg(&reference));
    set_user(pw3);
    wait_metrics(&e, "auth failures again", |b| up_count(b) == 0);
    // Written beside it with the old stamp and renamed over it, so no poll can ever see the
    // file with a new stamp (writing in place, then touching, left a window of a few ms).
    let staged = dir.path().join("redis-password.new");
    write_pw(&staged, pw3);
    run(Command::new("touch").arg("-r").arg(&reference).arg(&staged));
    std::fs::rename(&staged, &file).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        up_count(&e.metrics()),
        0,
        "unchanged stamp: not re-read without SIGHUP"
    );
    run(Command::new("kill").args(["-HUP", &e.pid().unwrap().to_string()]));
    wait_metrics(&e, "up after SIGHUP", |b| up_count(b) == 6);

    // A user without INFO is refused per command: reason auth (NOPERM), never a panic.
    for i in 0..cluster.node_count() {
        let _ = cluster.cli(i, &["ACL", "SETUSER", "exporter", "-info"]);
        let _ = cluster.raw(i, &["CLIENT", "KILL", "USER", "exporter"]);
    }
    wait_metrics(&e, "NOPERM is auth", |b| up_count(b) == 0);

    // No secret anywhere.
    let (_, _, om) = http_get_with_headers(
        &e.url("/metrics"),
        &[("Accept", "application/openmetrics-text")],
    );
    let (_, _, index) = http_get(&e.url("/"));
    let (_, _, events) = http_get(&e.url("/events"));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", e.pid().unwrap())).unwrap();
    for pw in [pw1, pw2, pw3, admin] {
        for (what, text) in [
            ("metrics", e.metrics()),
            ("openmetrics", om.clone()),
            ("index", index.clone()),
            ("events", events.clone()),
            ("logs", e.output()),
            ("cmdline", String::from_utf8_lossy(&cmdline).into_owned()),
        ] {
            assert!(!text.contains(pw), "a password leaked into {what}");
        }
    }
}

#[test]
fn password_on_the_command_line_is_warned_about() {
    let e = Exporter::start(
        &[
            "--redis-addr",
            "redis://127.0.0.1:1",
            "--redis-password",
            "visible-in-ps-9999",
        ],
        &[],
    );
    e.wait_ready(Duration::from_secs(10));
    wait_until(Duration::from_secs(5), "warning", || {
        e.output().contains("process list")
    });
    assert!(!e.output().contains("visible-in-ps-9999"));
    let e = Exporter::start(
        &["--redis-addr", "redis://127.0.0.1:1"],
        &[("REDIS_PASSWORD", "from-the-environment-7777")],
    );
    e.wait_ready(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!e.output().contains("process list"), "{}", e.output());
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/stderr",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .output()
        .expect("curl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exporter_https_and_basic_auth() {
    let certs = Certs::new();
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("scrape-pass-42", 8).unwrap();
    let config = dir.path().join("web.yml");
    std::fs::write(
        &config,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  prometheus: {hash}\n",
            certs.path("server.crt"),
            certs.path("server.key")
        ),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let e = Exporter::start(
        &[
            "--redis-addr",
            "redis://127.0.0.1:1",
            "--listen-address",
            &listen,
            "--web-config-file",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let ca = certs.path("ca.crt");
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    wait_until(Duration::from_secs(10), "https up", || {
        curl(&[
            "--cacert",
            &ca,
            "-u",
            "prometheus:scrape-pass-42",
            &url("/ready"),
        ])
        .0 == "200"
    });
    for path in [
        "/metrics",
        "/events",
        "/health",
        "/",
        "/cluster",
        "/api/cluster",
    ] {
        let (code, body) = curl(&[
            "--cacert",
            &ca,
            "-u",
            "prometheus:scrape-pass-42",
            &url(path),
        ]);
        assert_eq!(code, "200", "{path}: {body}");
        // Every endpoint needs the credentials.
        assert_eq!(
            curl(&["--cacert", &ca, &url(path)]).0,
            "401",
            "{path} without auth"
        );
        assert_eq!(
            curl(&["--cacert", &ca, "-u", "prometheus:wrong", &url(path)]).0,
            "401",
            "{path}"
        );
        assert_eq!(
            curl(&["--cacert", &ca, "-u", "nobody:scrape-pass-42", &url(path)]).0,
            "401"
        );
    }
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "-u",
        "prometheus:scrape-pass-42",
        &url("/metrics"),
    ]);
    assert_eq!(code, "200");
    assert!(body.contains("redis_up"), "{body}");
    // Plain HTTP on the TLS port gets no answer, and the certificate is checked by the client.
    assert_ne!(curl(&[&format!("http://127.0.0.1:{port}/health")]).0, "200");
    assert_ne!(
        curl(&["-u", "prometheus:scrape-pass-42", &url("/health")]).0,
        "200"
    );
    assert!(!e.output().contains("scrape-pass-42"));

    // A broken web config is a one-line configuration error.
    std::fs::write(&config, "basic_auth_users:\n  prometheus: not-a-hash\n").unwrap();
    let out = Command::new(Exporter::bin())
        .args(["--web-config-file", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

/// The ACL the README documents for the full telemetry, and the older minimal one.
const TELEMETRY_ACL: &[&str] = &[
    "-@all",
    "+cluster|info",
    "+cluster|nodes",
    "+info",
    "+config|get",
    "+latency|latest",
    "+slowlog|len",
    "+slowlog|get",
];
const OLD_ACL: &[&str] = &["-@all", "+cluster|info", "+cluster|nodes", "+info"];

fn noperm_count(body: &str, addr: &str) -> f64 {
    metric_value(
        body,
        "redis_exporter_node_poll_errors_total",
        &[("addr", addr), ("reason", "noperm")],
    )
    .unwrap_or(0.0)
}

#[test]
fn telemetry_acl_and_the_older_minimal_acl() {
    let admin = "admin-secret-pw";
    let cluster = RedisCluster::start(ClusterOptions {
        password: Some(admin.into()),
        ..ClusterOptions::default()
    });
    for i in 0..cluster.node_count() {
        for (user, acl) in [("full", TELEMETRY_ACL), ("old", OLD_ACL)] {
            let mut args = vec!["ACL", "SETUSER", user, "reset", "on", ">user-pw-1234"];
            args.extend(acl);
            assert_eq!(cluster.cli(i, &args), "OK");
        }
    }
    let start = |user: &str| {
        Exporter::start(
            &[
                "--redis-addr",
                &cluster.seed_url(),
                "--redis-user",
                user,
                "--poll-interval",
                "200ms",
                "--stats-interval",
                "1s",
            ],
            &[("REDIS_PASSWORD", "user-pw-1234")],
        )
    };
    let (full, old) = (start("full"), start("old"));
    full.wait_ready(Duration::from_secs(15));
    old.wait_ready(Duration::from_secs(15));
    let addr = cluster.addr(0);
    // The telemetry ACL: everything, no refused command.
    let body = wait_metrics(&full, "full telemetry on 6 nodes", |b| {
        up_count(b) == 6
            && metric_samples(b, "redis_config_maxclients").len() == 6
            && metric_samples(b, "redis_slowlog_length").len() == 6
    });
    assert_eq!(noperm_count(&body, &addr), 0.0, "no refused command");
    for name in [
        "redis_commands_total",
        "redis_memory_used_bytes",
        "redis_keyspace_hits_total",
    ] {
        assert!(!metric_samples(&body, name).is_empty(), "{name}");
    }
    // The older ACL: still up, INFO-based telemetry exported, CONFIG GET, LATENCY LATEST and
    // SLOWLOG missing and counted as noperm, each refused command once per stats interval.
    let body = wait_metrics(&old, "6 nodes up with the old ACL", |b| {
        up_count(b) == 6 && noperm_count(b, &addr) > 0.0
    });
    let first = noperm_count(&body, &addr);
    assert!(!metric_samples(&body, "redis_memory_used_bytes").is_empty());
    assert!(!metric_samples(&body, "redis_commands_total").is_empty());
    assert!(metric_samples(&body, "redis_config_maxclients").is_empty());
    assert!(metric_samples(&body, "redis_slowlog_length").is_empty());
    std::thread::sleep(Duration::from_secs(4));
    let body = old.metrics();
    assert_eq!(up_count(&body), 6, "the fast path shows no error");
    let grown = noperm_count(&body, &addr) - first;
    // 4 s at a 1 s stats interval: about 4 telemetry polls x 4 refused commands.
    assert!(
        (8.0..=24.0).contains(&grown),
        "noperm counted once per refused command per interval: +{grown} in 4 s"
    );
    assert!(
        metric_value(
            &body,
            "redis_exporter_node_poll_errors_total",
            &[("addr", &addr), ("reason", "auth")]
        )
        .is_none(),
        "no auth failure"
    );
    assert!(old.output().contains("noperm"), "the refusal is logged");
}
