//! One redis-server process (cluster node or standalone): its arguments, spawning it, waiting
//! for PING (retrying on a new port when it lost a port race), and `redis-cli` with a deadline.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::resp::{Resp, resp_command};
use super::util::{read_lossy, run_with_timeout};

/// The Redis server binary (from PATH) the harness starts unless told otherwise.
pub const REDIS_SERVER: &str = "redis-server";
/// The Redis command-line client (from PATH).
pub const REDIS_CLI: &str = "redis-cli";

/// Timeout for one `redis-cli` invocation made by `cli()`.
const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a freshly spawned redis-server may take to answer PING.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(15);

/// One started redis-server: enough to restart it with the same port, dir and arguments.
pub(super) struct ServerProc {
    pub(super) port: u16,
    pub(super) dir: PathBuf,
    /// The server binary (`redis-server`, or a Valkey one).
    pub(super) bin: PathBuf,
    pub(super) args: Vec<String>,
    /// `None` once killed.
    pub(super) child: Option<Child>,
}

/// The command line of a node on `port` keeping everything in `dir`; `cluster: Some(node timeout ms)`
/// enables cluster mode.
fn server_args(
    port: u16,
    dir: &Path,
    cluster: Option<u64>,
    password: Option<&str>,
    extra: &[String],
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--daemonize".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--logfile".into(),
        dir.join("redis.log").display().to_string(),
        "--save".into(),
        "".into(),
        "--appendonly".into(),
        "no".into(),
        "--enable-debug-command".into(),
        "yes".into(),
    ];
    if let Some(timeout) = cluster {
        a.extend([
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            dir.join("nodes.conf").display().to_string(),
            "--cluster-node-timeout".into(),
            timeout.to_string(),
        ]);
    }
    if let Some(pw) = password {
        a.extend([
            "--requirepass".into(),
            pw.into(),
            "--masterauth".into(),
            pw.into(),
        ]);
    }
    a.extend(extra.iter().cloned());
    a
}

/// 127.0.0.`n`, for `distinct_hosts`.
pub(super) fn loopback_host(n: usize) -> String {
    assert!((1..=254).contains(&n), "no loopback host 127.0.0.{n}");
    format!("127.0.0.{n}")
}

/// Spawns `bin` with `args`, stdout and stderr to `dir/stdout.log`.
pub(super) fn spawn_server(bin: &Path, dir: &Path, args: &[String]) -> Child {
    let out = File::create(dir.join("stdout.log")).expect("create stdout.log");
    let err = out.try_clone().expect("clone stdout.log");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()))
}

/// How a startup ended: answering PING, or exited because its port was taken.
pub(super) enum StartOutcome {
    Ready,
    PortTaken,
}

/// Waits until the server answers PING; detects an early exit (port lost to a race).
pub(super) fn wait_server_ready(p: &mut ServerProc, password: Option<&str>) -> StartOutcome {
    let start = Instant::now();
    loop {
        let child = p.child.as_mut().expect("server has a child");
        if let Ok(Some(status)) = child.try_wait() {
            let log = read_lossy(&p.dir.join("redis.log")) + &read_lossy(&p.dir.join("stdout.log"));
            p.child = None;
            if log.contains("Address already in use") || log.contains("Failed listening on port") {
                return StartOutcome::PortTaken;
            }
            panic!(
                "redis-server on port {} exited during startup ({status}); log:\n{log}",
                p.port
            );
        }
        if let Ok(Resp::Simple(pong)) =
            resp_command(p.port, password, &["PING"], Duration::from_millis(500))
            && pong == "PONG"
        {
            return StartOutcome::Ready;
        }
        if start.elapsed() > NODE_START_TIMEOUT {
            let log = read_lossy(&p.dir.join("redis.log"));
            panic!(
                "redis-server on port {} did not answer PING within {NODE_START_TIMEOUT:?}; log:\n{log}",
                p.port
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `n` servers in parallel under `root/<port>`; retries any that lose their port.
pub(super) fn start_servers(
    root: &Path,
    n: usize,
    cluster: Option<u64>,
    password: Option<&str>,
    extra: &[String],
) -> Vec<ServerProc> {
    start_servers_on(
        root,
        n,
        cluster,
        password,
        extra,
        None,
        Path::new(REDIS_SERVER),
    )
}

/// `start_servers` of binary `bin`; with `first_host: Some(k)`, server `j` also binds and
/// announces 127.0.0.(k+j) (see `ClusterOptions::distinct_hosts`).
pub(super) fn start_servers_on(
    root: &Path,
    n: usize,
    cluster: Option<u64>,
    password: Option<&str>,
    extra: &[String],
    first_host: Option<usize>,
    bin: &Path,
) -> Vec<ServerProc> {
    let mk = |root: &Path, j: usize| {
        let port = free_port();
        let dir = root.join(port.to_string());
        fs::create_dir_all(&dir).expect("create node dir");
        let mut args = server_args(port, &dir, cluster, password, extra);
        if let Some(k) = first_host {
            let host = loopback_host(k + j);
            // The later --bind replaces server_args' 127.0.0.1-only one.
            args.extend([
                "--bind".into(),
                format!("127.0.0.1 {host}"),
                "--cluster-announce-ip".into(),
                host.clone(),
                "--replica-announce-ip".into(),
                host,
            ]);
        }
        let child = spawn_server(bin, &dir, &args);
        ServerProc {
            port,
            dir,
            bin: bin.to_path_buf(),
            args,
            child: Some(child),
        }
    };
    let mut procs: Vec<ServerProc> = (0..n).map(|j| mk(root, j)).collect();
    for (j, p) in procs.iter_mut().enumerate() {
        let mut tries = 0;
        loop {
            match wait_server_ready(p, password) {
                StartOutcome::Ready => break,
                StartOutcome::PortTaken => {
                    tries += 1;
                    assert!(
                        tries < 10,
                        "could not start redis-server: ports keep being taken"
                    );
                    *p = mk(root, j);
                }
            }
        }
    }
    procs
}

/// `redis-cli -h 127.0.0.1 -p PORT -e ARGS...` (password via REDISCLI_AUTH); stdout trimmed.
/// Panics on a non-zero exit or after `CLI_TIMEOUT`.
pub(super) fn run_cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(REDIS_CLI);
    cmd.arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("-e")
        .args(args);
    cmd.env_remove("REDISCLI_AUTH");
    if let Some(pw) = password {
        cmd.env("REDISCLI_AUTH", pw);
    }
    let what = format!("redis-cli -p {port} {}", args.join(" "));
    let out = run_with_timeout(cmd, CLI_TIMEOUT, &what);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "`{what}` failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    stdout.trim().to_string()
}
