//! The exporter binary under test as a process: its flags and a clean environment, a free
//! listen port and a temp event log, /metrics and /ready helpers, restart, output and exit;
//! and the `cluster-sim` binary built for the same profile.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http::{http_get, try_http_get};
use super::ports::free_port;
use super::util::{kill_child, read_lossy};

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

/// The exporter process under test; SIGKILLed on Drop, its temp dir removed.
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

    /// The HTTP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>` (a leading `/` is added when missing).
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

    /// Path of its event log.
    pub fn event_log(&self) -> &Path {
        &self.event_log
    }

    /// Its temp directory (working directory, output files, default event log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its command-line arguments, including the ones the harness added.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Its process id while it runs.
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
