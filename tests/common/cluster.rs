//! A real Redis Cluster of redis-server processes on loopback: `ClusterOptions`, starting and
//! creating it, node addresses, ids and roles, faults (kill, SIGSTOP/SIGCONT, restart, add,
//! forget) and waiting until it is healthy again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::resp::{CMD_TIMEOUT, NodeLine, Resp, parse_cluster_nodes, parse_info, resp_command};
use super::server::{
    REDIS_CLI, REDIS_SERVER, ServerProc, StartOutcome, loopback_host, run_cli, spawn_server,
    start_servers_on, wait_server_ready,
};
use super::util::{kill_child, read_lossy, run_with_timeout, send_signal, wait_until};

/// How long a new cluster may take to become healthy after `--cluster create`.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the harness last did to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Stopped,
    Killed,
    Forgotten,
}

/// How `RedisCluster::start` builds the cluster (default: 3 masters with 1 replica each).
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

/// A running cluster; every node is SIGKILLed and its directory removed on Drop.
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
    pub fn try_cmd(&self, i: usize, args: &[&str]) -> Result<String, String> {
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

    /// The options the cluster was started with.
    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// The `requirepass` of every node, if any.
    pub fn password(&self) -> Option<&str> {
        self.opts.password.as_deref()
    }

    /// Number of node indices ever created (killed/forgotten nodes keep their index).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s client port on 127.0.0.1.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].proc_.port
    }

    /// `127.0.0.1:<port>` of node `i` (how the harness reaches it).
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

    /// `redis://` URL of node 0.
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

    /// Node `i`'s state as the harness left it.
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

    /// Process id of node `i` while its process exists.
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

    /// Index of the node listening on `port`, if the harness started it.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.proc_.port == port)
    }

    /// ROLE as the node itself reports it: ("master", None) or ("slave", Some(master port)).
    pub fn role_of(&self, i: usize) -> Option<(String, Option<u16>)> {
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

    /// Node `i`'s working directory (log, nodes.conf).
    pub fn node_dir(&self, i: usize) -> &Path {
        &self.nodes[i].proc_.dir
    }

    /// The cluster's temp directory (one folder per node port).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The harness' `wait_until`, reachable as `RedisCluster::wait_until`.
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
