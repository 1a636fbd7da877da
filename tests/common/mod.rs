//! Real-process test harness: Redis Cluster nodes, standalone Redis, the exporter binary,
//! a tiny HTTP client and a Prometheus text-format reader.
//!
//! Everything here is blocking (std only, plus `tempfile`) and panics with a clear message on
//! failure or timeout. Every process started here is SIGKILLed on Drop and its temp dir removed.
//!
//! Ports: `free_port()` picks a random port `p` such that both `p` and `p + 10000` (the cluster
//! bus) bind on 127.0.0.1, have not been handed out in this process, and are not reserved by
//! another test process (an advisory lock file per port under the system temp dir, held until
//! the process exits). Redis startups that still lose a race for a port are retried on a new one.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

pub mod peer;
pub mod valkey;

pub const REDIS_SERVER: &str = "redis-server";
pub const REDIS_CLI: &str = "redis-cli";

/// Timeout for one internal command to a node (a SIGSTOPped node never answers).
const CMD_TIMEOUT: Duration = Duration::from_secs(3);
/// Timeout for one `redis-cli` invocation made by `cli()`.
const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a freshly spawned redis-server may take to answer PING.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a new cluster may take to become healthy after `--cluster create`.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/// Polls `f` every 50 ms until it returns true; panics after `timeout` naming `what`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn send_signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run `kill -{sig} {pid}`: {e}"));
    assert!(status.success(), "`kill -{sig} {pid}` failed: {status}");
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    }
}

fn kill_child(child: &mut Child) {
    // SIGKILL also ends a SIGSTOPped process.
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

struct PortRegistry {
    handed_out: HashSet<u16>,
    /// Advisory locks held for the life of the process (released by the OS at exit).
    locks: Vec<File>,
}

fn registry() -> &'static Mutex<PortRegistry> {
    static REG: OnceLock<Mutex<PortRegistry>> = OnceLock::new();
    REG.get_or_init(|| {
        Mutex::new(PortRegistry {
            handed_out: HashSet::new(),
            locks: Vec::new(),
        })
    })
}

// The port range and the lock-file protocol are the simulator's, so harness and simulator
// processes running side by side never pick the same port.
use cluster_sim::server::{lock_port as lock_port_file, port_range};

fn can_bind(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port `p` (< 55535) such that `p` and `p + 10000` are both free on 127.0.0.1 and reserved
/// for this caller (never handed out twice in this process, locked against other processes).
pub fn free_port() -> u16 {
    let (lo, hi) = port_range();
    let span = (hi - lo) as u64;
    for _ in 0..1000 {
        let p = lo + (random_u64() % span) as u16;
        let bus = p + 10000;
        debug_assert!(bus < 65535);
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if reg.handed_out.contains(&p) || reg.handed_out.contains(&bus) {
            continue;
        }
        let Some(l1) = lock_port_file(p) else {
            continue;
        };
        let Some(l2) = lock_port_file(bus) else {
            continue;
        };
        if !can_bind(p) || !can_bind(bus) {
            continue; // locks dropped here; someone else (not a harness) uses the port
        }
        reg.handed_out.insert(p);
        reg.handed_out.insert(bus);
        reg.locks.push(l1);
        reg.locks.push(l2);
        return p;
    }
    panic!("free_port: no free port pair (p, p+10000) found in {lo}..{hi} after 1000 tries");
}

// ---------------------------------------------------------------------------------------------
// Minimal RESP2 client (used for internal polling: bounded timeouts, no process spawn)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The text of a simple/bulk string reply, or the integer as text; arrays are joined by `\n`.
    pub fn text(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) => s.clone(),
            Resp::Int(i) => i.to_string(),
            Resp::Bulk(Some(s)) => s.clone(),
            Resp::Bulk(None) | Resp::Array(None) => String::new(),
            Resp::Array(Some(v)) => v.iter().map(|x| x.text()).collect::<Vec<_>>().join("\n"),
        }
    }
}

fn read_resp(r: &mut impl BufRead) -> Result<Resp, String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return Err("empty reply line".into());
    }
    let (t, rest) = line.split_at(1);
    match t {
        "+" => Ok(Resp::Simple(rest.to_string())),
        "-" => Ok(Resp::Error(rest.to_string())),
        ":" => rest
            .parse()
            .map(Resp::Int)
            .map_err(|e| format!("bad int {rest:?}: {e}")),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|e| format!("bad bulk len {rest:?}: {e}"))?;
            if len < 0 {
                return Ok(Resp::Bulk(None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf)
                .map_err(|e| format!("read bulk: {e}"))?;
            buf.truncate(len as usize);
            Ok(Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned())))
        }
        "*" => {
            let len: i64 = rest
                .parse()
                .map_err(|e| format!("bad array len {rest:?}: {e}"))?;
            if len < 0 {
                return Ok(Resp::Array(None));
            }
            let mut v = Vec::with_capacity(len as usize);
            for _ in 0..len {
                v.push(read_resp(r)?);
            }
            Ok(Resp::Array(Some(v)))
        }
        _ => Err(format!("unexpected reply line {line:?}")),
    }
}

fn encode_cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command (after AUTH when a password is given) to 127.0.0.1:`port`.
/// `Ok` holds the reply, including `Resp::Error` replies; `Err` is a connection/timeout problem.
pub fn resp_command(
    port: u16,
    password: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> Result<Resp, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    if let Some(pw) = password {
        w.write_all(&encode_cmd(&["AUTH", pw]))
            .map_err(|e| format!("write {addr}: {e}"))?;
        if let Resp::Error(e) = read_resp(&mut r).map_err(|e| format!("{addr}: {e}"))? {
            return Err(format!("{addr}: AUTH failed: {e}"));
        }
    }
    w.write_all(&encode_cmd(args))
        .map_err(|e| format!("write {addr}: {e}"))?;
    let reply = read_resp(&mut r).map_err(|e| format!("{addr} {args:?}: {e}"))?;
    let _ = w.shutdown(Shutdown::Both);
    Ok(reply)
}

/// Parses `key:value` lines (INFO, CLUSTER INFO) into a map; `#` lines are skipped.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One line of CLUSTER NODES, split into its fields (test-side parsing only).
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    /// `host:port` without `@cport` and `,hostname`.
    pub host_port: String,
    pub flags: Vec<String>,
    pub master: String,
    pub link: String,
    pub slots: Vec<String>,
}

pub fn parse_cluster_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 8 {
                return None;
            }
            let host_port = f[1].split(['@', ',']).next().unwrap_or("").to_string();
            Some(NodeLine {
                id: f[0].to_string(),
                addr: f[1].to_string(),
                host_port,
                flags: f[2].split(',').map(str::to_string).collect(),
                master: f[3].to_string(),
                link: f[7].to_string(),
                slots: f[8..].iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// One redis-server process
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Stopped,
    Killed,
    Forgotten,
}

struct ServerProc {
    port: u16,
    dir: PathBuf,
    /// The server binary (`redis-server`, or a Valkey one).
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

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
fn loopback_host(n: usize) -> String {
    assert!((1..=254).contains(&n), "no loopback host 127.0.0.{n}");
    format!("127.0.0.{n}")
}

fn spawn_server(bin: &Path, dir: &Path, args: &[String]) -> Child {
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

enum StartOutcome {
    Ready,
    PortTaken,
}

/// Waits until the server answers PING; detects an early exit (port lost to a race).
fn wait_server_ready(p: &mut ServerProc, password: Option<&str>) -> StartOutcome {
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
fn start_servers(
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
fn start_servers_on(
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

// ---------------------------------------------------------------------------------------------
// Redis Cluster
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub masters: usize,
    pub replicas: usize,
    pub node_timeout_ms: u64,
    pub password: Option<String>,
    /// Extra `redis-server` arguments, e.g. `["--cluster-require-full-coverage", "no"]`.
    pub extra_args: Vec<String>,
    /// Node `i` also binds 127.0.0.(2+i) and announces it (cluster bus and replication), so
    /// every node is on its own "host" (all of 127.0.0.0/8 is local on Linux). The harness
    /// still talks to every node on 127.0.0.1; `host_addr(i)` is the announced address.
    pub distinct_hosts: bool,
    /// The server binary; `None` is `redis-server` from PATH (e.g. `valkey::valkey91_or_skip`).
    pub server: Option<PathBuf>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            masters: 3,
            replicas: 1,
            node_timeout_ms: 2000,
            password: None,
            extra_args: Vec::new(),
            distinct_hosts: false,
            server: None,
        }
    }
}

struct ClusterNode {
    proc_: ServerProc,
    state: NodeState,
    id: Option<String>,
}

pub struct RedisCluster {
    opts: ClusterOptions,
    nodes: Vec<ClusterNode>,
    /// Stopped flags live behind a mutex so `stop`/`cont` can take `&self`.
    stopped: Mutex<HashSet<usize>>,
    dir: TempDir,
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas)` nodes, creates the cluster with
    /// `redis-cli --cluster create` (or ADDSLOTSRANGE/MEET/REPLICATE for fewer than 3 masters),
    /// and waits until it is healthy (`wait_healthy`). Node `i < masters` starts as a master.
    pub fn start(opts: ClusterOptions) -> RedisCluster {
        assert!(opts.masters >= 1, "ClusterOptions.masters must be >= 1");
        let dir = tempfile::Builder::new()
            .prefix("rce-cluster-")
            .tempdir()
            .expect("create cluster temp dir");
        let n = opts.masters * (1 + opts.replicas);
        let procs = start_servers_on(
            dir.path(),
            n,
            Some(opts.node_timeout_ms),
            opts.password.as_deref(),
            &opts.extra_args,
            opts.distinct_hosts.then_some(2),
            opts.server.as_deref().unwrap_or(Path::new(REDIS_SERVER)),
        );
        let mut c = RedisCluster {
            nodes: procs
                .into_iter()
                .map(|p| ClusterNode {
                    proc_: p,
                    state: NodeState::Running,
                    id: None,
                })
                .collect(),
            opts,
            stopped: Mutex::new(HashSet::new()),
            dir,
        };
        for i in 0..n {
            let id = c.node_id(i);
            c.nodes[i].id = Some(id);
        }
        if c.opts.masters >= 3 {
            c.create_with_cli();
        } else {
            c.create_manually();
        }
        c.wait_healthy(CLUSTER_READY_TIMEOUT);
        c
    }

    fn create_with_cli(&self) {
        let mut cmd = Command::new(REDIS_CLI);
        cmd.arg("--cluster").arg("create");
        for i in 0..self.nodes.len() {
            cmd.arg(self.addr(i));
        }
        cmd.arg("--cluster-replicas")
            .arg(self.opts.replicas.to_string())
            .arg("--cluster-yes");
        self.auth_env(&mut cmd);
        let out = run_with_timeout(cmd, Duration::from_secs(60), "redis-cli --cluster create");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("[OK] All 16384 slots covered") {
            panic!(
                "redis-cli --cluster create failed ({}):\nstdout:\n{}\nstderr:\n{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn create_manually(&self) {
        let m = self.opts.masters;
        let per = 16384 / m;
        for k in 0..m {
            let lo = k * per;
            let hi = if k == m - 1 { 16383 } else { (k + 1) * per - 1 };
            self.cmd_ok(
                k,
                &["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
            );
            self.cmd_ok(k, &["CLUSTER", "SET-CONFIG-EPOCH", &(k + 1).to_string()]);
        }
        for i in 1..self.nodes.len() {
            self.cmd_ok(
                0,
                &["CLUSTER", "MEET", "127.0.0.1", &self.port(i).to_string()],
            );
        }
        let n = self.nodes.len();
        wait_until(Duration::from_secs(30), "all nodes to meet", || {
            (0..n).all(|i| {
                self.try_cmd(i, &["CLUSTER", "NODES"])
                    .map(|t| {
                        let ls = parse_cluster_nodes(&t);
                        ls.len() == n
                            && ls.iter().all(|l| !l.flags.iter().any(|f| f == "handshake"))
                    })
                    .unwrap_or(false)
            })
        });
        for i in m..n {
            let master = (i - m) % m;
            let id = self.node_id(master);
            self.cmd_ok(i, &["CLUSTER", "REPLICATE", &id]);
        }
    }

    fn auth_env(&self, cmd: &mut Command) {
        cmd.env_remove("REDISCLI_AUTH");
        if let Some(pw) = &self.opts.password {
            cmd.env("REDISCLI_AUTH", pw);
        }
    }

    /// Internal command via RESP; `Err` on connection problems or error replies.
    fn try_cmd(&self, i: usize, args: &[&str]) -> Result<String, String> {
        match resp_command(
            self.port(i),
            self.opts.password.as_deref(),
            args,
            CMD_TIMEOUT,
        )? {
            Resp::Error(e) => Err(format!("{} {args:?}: {e}", self.addr(i))),
            r => Ok(r.text()),
        }
    }

    fn cmd_ok(&self, i: usize, args: &[&str]) -> String {
        self.try_cmd(i, args)
            .unwrap_or_else(|e| panic!("command {args:?} on node {i} failed: {e}"))
    }

    /// Sends a command to node `i` over RESP (3 s timeout). `Ok` includes error replies.
    pub fn raw(&self, i: usize, args: &[&str]) -> Result<Resp, String> {
        resp_command(
            self.port(i),
            self.opts.password.as_deref(),
            args,
            CMD_TIMEOUT,
        )
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    pub fn password(&self) -> Option<&str> {
        self.opts.password.as_deref()
    }

    /// Number of node indices ever created (killed/forgotten nodes keep their index).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].proc_.port
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port(i))
    }

    /// The address node `i` announces (`addr` label): `addr(i)` unless `distinct_hosts`.
    pub fn host_addr(&self, i: usize) -> String {
        if self.opts.distinct_hosts {
            format!("{}:{}", loopback_host(2 + i), self.port(i))
        } else {
            self.addr(i)
        }
    }

    pub fn seed_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port(0))
    }

    /// `redis://` URLs of all running nodes, comma separated (for `--redis-addr`).
    pub fn seed_urls(&self) -> String {
        self.running()
            .iter()
            .map(|&i| format!("redis://{}", self.addr(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn state(&self, i: usize) -> NodeState {
        if self.nodes[i].state == NodeState::Running
            && self
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&i)
        {
            NodeState::Stopped
        } else {
            self.nodes[i].state
        }
    }

    /// Indices of nodes that are running and not SIGSTOPped.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state(i) == NodeState::Running)
            .collect()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].proc_.child.as_ref().map(|c| c.id())
    }

    /// The node's id (CLUSTER MYID when reachable; the cached id when it is down).
    pub fn node_id(&self, i: usize) -> String {
        if self.state(i) == NodeState::Running
            && let Ok(id) = self.try_cmd(i, &["CLUSTER", "MYID"])
        {
            return id;
        }
        self.nodes[i]
            .id
            .clone()
            .unwrap_or_else(|| panic!("node {i} is down and its id was never read"))
    }

    /// Index of the node with this id, if the harness started it.
    pub fn index_of_id(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.as_deref() == Some(id))
    }

    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.proc_.port == port)
    }

    /// ROLE as the node itself reports it: ("master", None) or ("slave", Some(master port)).
    fn role_of(&self, i: usize) -> Option<(String, Option<u16>)> {
        match self.raw(i, &["ROLE"]).ok()? {
            Resp::Array(Some(v)) if !v.is_empty() => {
                let role = v[0].text();
                let mport = if role == "slave" {
                    v.get(2).and_then(|p| p.text().parse().ok())
                } else {
                    None
                };
                Some((role, mport))
            }
            _ => None,
        }
    }

    /// Running (not stopped) nodes that report themselves master (ROLE), queried live.
    pub fn masters(&self) -> Vec<usize> {
        self.running()
            .into_iter()
            .filter(|&i| matches!(self.role_of(i), Some((r, _)) if r == "master"))
            .collect()
    }

    /// Running (not stopped) nodes that report themselves replica (ROLE), queried live.
    pub fn replicas(&self) -> Vec<usize> {
        self.running()
            .into_iter()
            .filter(|&i| matches!(self.role_of(i), Some((r, _)) if r == "slave"))
            .collect()
    }

    /// A running replica whose ROLE names `master`'s port (lowest index if several).
    pub fn replica_of(&self, master: usize) -> Option<usize> {
        let mp = self.port(master);
        self.running().into_iter().find(|&i| {
            i != master && matches!(self.role_of(i), Some((r, Some(p))) if r == "slave" && p == mp)
        })
    }

    /// The master index a running replica follows (from its ROLE).
    pub fn master_of(&self, replica: usize) -> Option<usize> {
        match self.role_of(replica)? {
            (r, Some(p)) if r == "slave" => self.index_of_port(p),
            _ => None,
        }
    }

    /// `redis-cli -h 127.0.0.1 -p PORT -e ARGS...` (password via REDISCLI_AUTH); stdout trimmed.
    /// Panics on a non-zero exit (error reply, connection failure) or after 15 s.
    pub fn cli(&self, i: usize, args: &[&str]) -> String {
        run_cli(self.port(i), self.opts.password.as_deref(), args)
    }

    /// SIGKILL node `i` and reap it. Its dir and nodes.conf stay, so `restart` can bring it back.
    pub fn kill(&mut self, i: usize) {
        if let Some(id) = self.try_cached_id(i) {
            self.nodes[i].id = Some(id);
        }
        if let Some(mut c) = self.nodes[i].proc_.child.take() {
            kill_child(&mut c);
        }
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i);
        if self.nodes[i].state != NodeState::Forgotten {
            self.nodes[i].state = NodeState::Killed;
        }
    }

    fn try_cached_id(&self, i: usize) -> Option<String> {
        if self.state(i) == NodeState::Running {
            self.try_cmd(i, &["CLUSTER", "MYID"]).ok()
        } else {
            None
        }
    }

    /// SIGSTOP node `i`: its sockets still accept connections, nothing answers.
    pub fn stop(&self, i: usize) {
        let pid = self
            .pid(i)
            .unwrap_or_else(|| panic!("node {i} is not running"));
        send_signal(pid, "STOP");
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(i);
    }

    /// SIGCONT node `i`.
    pub fn cont(&self, i: usize) {
        let pid = self
            .pid(i)
            .unwrap_or_else(|| panic!("node {i} is not running"));
        send_signal(pid, "CONT");
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i);
    }

    /// Starts node `i` again (same port, dir and nodes.conf) so it rejoins the cluster.
    /// Kills it first if it is still running. Waits until it answers PING.
    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].proc_.child.is_some() {
            self.kill(i);
        }
        let password = self.opts.password.clone();
        let p = &mut self.nodes[i].proc_;
        // Keep the previous log around for debugging; redis appends to it anyway.
        let mut tries = 0;
        loop {
            p.child = Some(spawn_server(&p.bin, &p.dir, &p.args));
            match wait_server_ready(p, password.as_deref()) {
                StartOutcome::Ready => break,
                StartOutcome::PortTaken => {
                    // Port (or bus port) still held by a closing socket: wait and retry.
                    tries += 1;
                    assert!(
                        tries < 20,
                        "restart of node {i}: port {} stays taken",
                        p.port
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
        self.nodes[i].state = NodeState::Running;
    }

    /// Starts a new empty cluster-enabled node and `CLUSTER MEET`s it from node 0 (or the first
    /// running node). Does not wait for the handshake to finish; see `wait_converged`.
    pub fn add_node(&mut self) -> usize {
        let mut procs = start_servers_on(
            self.dir.path(),
            1,
            Some(self.opts.node_timeout_ms),
            self.opts.password.as_deref(),
            &self.opts.extra_args,
            self.opts.distinct_hosts.then_some(2 + self.nodes.len()),
            self.opts
                .server
                .as_deref()
                .unwrap_or(Path::new(REDIS_SERVER)),
        );
        let p = procs.pop().unwrap();
        let idx = self.nodes.len();
        self.nodes.push(ClusterNode {
            proc_: p,
            state: NodeState::Running,
            id: None,
        });
        let id = self.node_id(idx);
        self.nodes[idx].id = Some(id);
        let via = if self.state(0) == NodeState::Running {
            0
        } else {
            *self
                .running()
                .iter()
                .find(|&&j| j != idx)
                .expect("no running node to MEET from")
        };
        self.cmd_ok(
            via,
            &["CLUSTER", "MEET", "127.0.0.1", &self.port(idx).to_string()],
        );
        idx
    }

    /// Kills node `i`, then runs `CLUSTER FORGET <id>` on every other running node.
    pub fn forget(&mut self, i: usize) {
        let id = self.node_id(i);
        self.kill(i);
        self.nodes[i].state = NodeState::Forgotten;
        for j in self.running() {
            self.cmd_ok(j, &["CLUSTER", "FORGET", &id]);
        }
    }

    /// The node's log file content.
    pub fn log(&self, i: usize) -> String {
        read_lossy(&self.nodes[i].proc_.dir.join("redis.log"))
    }

    pub fn node_dir(&self, i: usize) -> &Path {
        &self.nodes[i].proc_.dir
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn wait_until(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
        wait_until(timeout, what, f)
    }

    /// CLUSTER INFO of node `i` as a map.
    pub fn cluster_info(&self, i: usize) -> HashMap<String, String> {
        parse_info(&self.cmd_ok(i, &["CLUSTER", "INFO"]))
    }

    /// CLUSTER NODES of node `i`, parsed.
    pub fn cluster_nodes(&self, i: usize) -> Vec<NodeLine> {
        parse_cluster_nodes(&self.cmd_ok(i, &["CLUSTER", "NODES"]))
    }

    /// INFO [section] of node `i` as a map.
    pub fn info(&self, i: usize, section: &str) -> HashMap<String, String> {
        parse_info(&self.cmd_ok(i, &["INFO", section]))
    }

    /// Why the running nodes are not (yet) a healthy, converged cluster; `None` when they are:
    /// every running node says `cluster_state:ok`, lists exactly the running nodes, all
    /// `connected` and without `fail`/`fail?`/`handshake`/`noaddr`, and every replica has
    /// `master_link_status:up`.
    pub fn health_problem(&self) -> Option<String> {
        let running = self.running();
        let mut ports: Vec<u16> = running.iter().map(|&i| self.port(i)).collect();
        ports.sort();
        for &i in &running {
            let info = match self.try_cmd(i, &["CLUSTER", "INFO"]) {
                Ok(t) => parse_info(&t),
                Err(e) => return Some(format!("node {i}: {e}")),
            };
            if info.get("cluster_state").map(String::as_str) != Some("ok") {
                return Some(format!(
                    "node {i}: cluster_state={:?}",
                    info.get("cluster_state")
                ));
            }
            let nodes = match self.try_cmd(i, &["CLUSTER", "NODES"]) {
                Ok(t) => parse_cluster_nodes(&t),
                Err(e) => return Some(format!("node {i}: {e}")),
            };
            let mut seen: Vec<u16> = nodes
                .iter()
                .filter_map(|l| {
                    l.host_port
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse().ok())
                })
                .collect();
            seen.sort();
            if seen != ports {
                return Some(format!(
                    "node {i} knows ports {seen:?}, running are {ports:?}"
                ));
            }
            for l in &nodes {
                if l.flags
                    .iter()
                    .any(|f| f == "fail" || f == "fail?" || f == "handshake" || f == "noaddr")
                    || l.link != "connected"
                {
                    return Some(format!(
                        "node {i} sees {} as {} {}",
                        l.addr,
                        l.flags.join(","),
                        l.link
                    ));
                }
            }
            let repl = match self.try_cmd(i, &["INFO", "replication"]) {
                Ok(t) => parse_info(&t),
                Err(e) => return Some(format!("node {i}: {e}")),
            };
            if repl.get("role").map(String::as_str) == Some("slave")
                && repl.get("master_link_status").map(String::as_str) != Some("up")
            {
                return Some(format!(
                    "node {i}: master_link_status={:?}",
                    repl.get("master_link_status")
                ));
            }
        }
        None
    }

    /// Waits until `health_problem()` is `None`; panics with the last problem on timeout.
    pub fn wait_healthy(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            match self.health_problem() {
                None => return,
                Some(p) if start.elapsed() >= timeout => {
                    panic!("cluster not healthy after {timeout:?}: {p}")
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Alias of `wait_healthy` (e.g. after `add_node`, `restart`, `forget`).
    pub fn wait_converged(&self, timeout: Duration) {
        self.wait_healthy(timeout)
    }

    /// Waits until node `i` (after a failover) reports itself master.
    pub fn wait_role(&self, i: usize, role: &str, timeout: Duration) {
        wait_until(
            timeout,
            &format!("node {i} to have role {role}"),
            || matches!(self.role_of(i), Some((r, _)) if r == role),
        );
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in self.nodes.iter_mut() {
            if let Some(mut c) = n.proc_.child.take() {
                kill_child(&mut c);
            }
        }
        // TempDir removes the directories when it drops after this.
    }
}

fn run_with_timeout(mut cmd: Command, timeout: Duration, what: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir for command output");
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create out"))
        .stderr(File::create(&err_path).expect("create err"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > timeout {
            kill_child(&mut child);
            panic!(
                "{what} did not finish within {timeout:?}; stdout so far:\n{}\nstderr:\n{}",
                read_lossy(&out_path),
                read_lossy(&err_path)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    }
}

fn run_cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
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

// ---------------------------------------------------------------------------------------------
// Standalone (non-cluster) redis-server
// ---------------------------------------------------------------------------------------------

pub struct RedisStandalone {
    proc_: ServerProc,
    password: Option<String>,
    dir: TempDir,
}

impl RedisStandalone {
    pub fn start(password: Option<&str>) -> Self {
        Self::start_with_args(password, &[])
    }

    pub fn start_with_args(password: Option<&str>, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rce-standalone-")
            .tempdir()
            .expect("create temp dir");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let p = start_servers(dir.path(), 1, None, password, &extra)
            .pop()
            .unwrap();
        RedisStandalone {
            proc_: p,
            password: password.map(str::to_string),
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.proc_.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(self.port(), self.password.as_deref(), args)
    }

    pub fn raw(&self, args: &[&str]) -> Result<Resp, String> {
        resp_command(self.port(), self.password.as_deref(), args, CMD_TIMEOUT)
    }

    pub fn log(&self) -> String {
        read_lossy(&self.proc_.dir.join("redis.log"))
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.proc_.child.take() {
            kill_child(&mut c);
        }
    }
}

impl Drop for RedisStandalone {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// The exporter binary
// ---------------------------------------------------------------------------------------------

/// Environment variables of the exporter's own configuration; removed from the child's
/// environment (so the developer's shell cannot leak into tests) unless passed in `envs`.
pub const EXPORTER_ENV_VARS: &[&str] = &[
    "REDIS_ADDR",
    "REDIS_USER",
    "REDIS_PASSWORD",
    "REDIS_PASSWORD_FILE",
    "REDIS_TLS_CA_CERT_FILE",
    "REDIS_TLS_CLIENT_CERT_FILE",
    "REDIS_TLS_CLIENT_KEY_FILE",
    "REDIS_TLS_SKIP_VERIFY",
    "REDIS_TLS_SKIP_VERIFICATION",
    "SKIP_TLS_VERIFICATION",
    "POLL_INTERVAL",
    "NODE_TIMEOUT",
    "LISTEN_ADDRESS",
    "EVENT_LOG",
    "EVENT_RETENTION",
    "CLUSTER_NAME",
    "LOG_FORMAT",
    "STATS_INTERVAL",
    "FULL_TOPOLOGY_MAX_NODES",
    "MAX_REPLY_BYTES",
    "WEB_CONFIG_FILE",
    "ALERTMANAGER_URL",
    "ALERT_STATE_FAIL_FOR",
    "CHECK_MAX_LAG_BYTES",
    "HOT_SLOTS",
];

pub struct Exporter {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    event_log: PathBuf,
    dir: TempDir,
    starts: usize,
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    for (k, a) in args.iter().enumerate() {
        if a == flag {
            return args.get(k + 1).cloned();
        }
        if let Some(v) = a.strip_prefix(&eq) {
            return Some(v.to_string());
        }
    }
    None
}

/// The `cluster-sim` binary (the workspace's simulator crate), built once per test process
/// with the profile of the exporter under test, so a test never runs a stale simulator.
pub fn cluster_sim_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exporter = Path::new(Exporter::bin());
            let dir = exporter.parent().expect("the exporter binary's folder");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "cluster-sim",
                "--bin",
                "cluster-sim",
            ]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build -p cluster-sim");
            assert!(status.success(), "cargo build -p cluster-sim failed");
            dir.join("cluster-sim")
        })
        .clone()
}

impl Exporter {
    /// Path of the binary under test.
    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_redis-cluster-exporter")
    }

    /// Spawns the exporter. Appends `--listen-address 127.0.0.1:<free port>` and
    /// `--event-log <tempdir>/events.jsonl` unless given as flags (or LISTEN_ADDRESS / EVENT_LOG
    /// in `envs`). stdout and stderr go to files in the temp dir (see `output`).
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::Builder::new()
            .prefix("rce-exporter-")
            .tempdir()
            .expect("create exporter temp dir");
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env_of = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

        let listen = flag_value(&args, "--listen-address").or_else(|| env_of("LISTEN_ADDRESS"));
        let port = match listen {
            Some(l) => l
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or_else(|| panic!("cannot read a port from listen address {l:?}")),
            None => {
                let p = free_port();
                args.push("--listen-address".into());
                args.push(format!("127.0.0.1:{p}"));
                p
            }
        };
        let event_log = match flag_value(&args, "--event-log").or_else(|| env_of("EVENT_LOG")) {
            Some(p) => PathBuf::from(p),
            None => {
                let p = dir.path().join("events.jsonl");
                args.push("--event-log".into());
                args.push(p.display().to_string());
                p
            }
        };
        let mut e = Exporter {
            child: None,
            port,
            args,
            envs,
            event_log,
            dir,
            starts: 0,
        };
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let out_path = self.dir.path().join(format!("stdout.{}.log", self.starts));
        let err_path = self.dir.path().join(format!("stderr.{}.log", self.starts));
        let mut cmd = Command::new(Self::bin());
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("create stdout file"))
            .stderr(File::create(&err_path).expect("create stderr file"));
        for k in EXPORTER_ENV_VARS {
            cmd.env_remove(k);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", Self::bin())),
        );
    }

    /// Kills (if running) and starts the exporter again with the same args, envs, port and
    /// event log. `output()` keeps the previous runs' output too.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// GET `path` on the exporter.
    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_get(&self.url(path))
    }

    /// Body of GET /metrics (panics unless 200).
    pub fn metrics(&self) -> String {
        let (status, _, body) = self.get("/metrics");
        assert_eq!(status, 200, "GET /metrics returned {status}: {body}");
        body
    }

    /// Polls /metrics until `f` accepts the body, returning that body; panics after `timeout`
    /// naming `what`, with the start of the last body seen.
    pub fn wait_metrics(&self, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let body = self.metrics();
            if f(&body) {
                return body;
            }
            if start.elapsed() >= timeout {
                let head: String = body.chars().take(8000).collect();
                panic!("timed out after {timeout:?} waiting for {what}; last /metrics:\n{head}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn event_log(&self) -> &Path {
        &self.event_log
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// stdout followed by stderr of every run so far.
    pub fn output(&self) -> String {
        let mut s = String::new();
        for k in 1..=self.starts {
            let out = read_lossy(&self.dir.path().join(format!("stdout.{k}.log")));
            let err = read_lossy(&self.dir.path().join(format!("stderr.{k}.log")));
            if self.starts > 1 {
                s.push_str(&format!("--- run {k} ---\n"));
            }
            s.push_str(&out);
            s.push_str(&err);
        }
        s
    }

    /// `Some(exit status)` once the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the process to exit on its own (e.g. bad flags); panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "exporter did not exit within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls GET /ready until 200. Panics if the process exits or on timeout (with its output).
    pub fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        let mut last: String;
        loop {
            if let Some(c) = self.child.as_ref() {
                // try_wait needs &mut; check liveness through /proc instead.
                if !Path::new(&format!("/proc/{}", c.id())).exists() || is_zombie(c.id()) {
                    panic!(
                        "exporter exited before becoming ready; output:\n{}",
                        self.output()
                    );
                }
            } else {
                panic!("exporter is not running");
            }
            match try_http_get(&self.url("/ready"), &[]) {
                Ok((200, _, _)) => return,
                Ok((s, _, b)) => last = format!("status {s}: {b}"),
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                panic!(
                    "exporter not ready after {timeout:?} (last: {last}); output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client (raw HTTP/1.1 over TcpStream)
// ---------------------------------------------------------------------------------------------

/// GET `url` (`http://host:port/path`). Returns (status, headers as `name: value\n` lines with
/// lowercased names, body with chunked transfer-encoding removed). Panics on I/O errors.
pub fn http_get(url: &str) -> (u16, String, String) {
    http_get_with_headers(url, &[])
}

pub fn http_get_with_headers(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    try_http_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn try_http_get(url: &str, headers: &[(&str, &str)]) -> Result<(u16, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(k) => (&rest[..k], &rest[k..]),
        None => (rest, "/"),
    };
    let timeout = Duration::from_secs(5);
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("resolve {hostport}: {e}"))?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| format!("no address for {hostport}"))?;
    let mut s =
        TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse_http_response(&raw)
}

fn parse_http_response(raw: &[u8]) -> Result<(u16, String, String), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut body = raw[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = String::new();
    let mut chunked = false;
    let mut content_length: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                content_length = v.parse().ok();
            }
            headers.push_str(&format!("{k}: {v}\n"));
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(n) = content_length {
        body.truncate(n);
    }
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body: missing chunk size line")?;
        let size_line = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("chunked body: bad size {size_hex:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(format!(
                "chunked body truncated: want {size}, have {}",
                data.len()
            ));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size..];
        if data.starts_with(b"\r\n") {
            data = &data[2..];
        }
    }
}

/// Value of header `name` (case-insensitive) from the headers string of `http_get`.
pub fn header_value(headers: &str, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    headers
        .lines()
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format reading
// ---------------------------------------------------------------------------------------------

fn parse_sample_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let mut chars = rest[1..].char_indices().peekable();
        let mut consumed = 1usize;
        loop {
            // skip separators/space
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some(&(k, '}')) => {
                    consumed += k + 1;
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            match chars.next() {
                Some((_, '"')) => {}
                _ => return None,
            }
            let mut val = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, other)) => val.push(other),
                        None => return None,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => val.push(c),
                }
            }
            if !closed {
                return None;
            }
            labels.insert(key.trim().to_string(), val);
        }
        rest = &rest[consumed..];
    }
    let value_tok = rest.split_whitespace().next()?;
    let value = match value_tok {
        "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" | "nan" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// All samples of metric `name` (exact sample name, e.g. `redis_up`, `x_total`, `h_bucket`).
pub fn metric_samples(body: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    body.lines()
        .filter_map(parse_sample_line)
        .filter(|(n, _, _)| n == name)
        .map(|(_, l, v)| (l, v))
        .collect()
}

/// Value of the first sample named `name` whose labels include all of `labels`.
/// How many nodes `/metrics` reports `redis_up 1` for.
pub fn up_count(body: &str) -> usize {
    metric_samples(body, "redis_up")
        .iter()
        .filter(|(_, v)| *v == 1.0)
        .count()
}

pub fn metric_value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(body, name)
        .into_iter()
        .find(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
}
