//! A standalone (non-cluster) redis-server process, killed on Drop.

use tempfile::TempDir;

use super::resp::{CMD_TIMEOUT, Resp, resp_command};
use super::server::{ServerProc, run_cli, start_servers};
use super::util::{kill_child, read_lossy};

/// A standalone redis-server on 127.0.0.1; SIGKILLed on Drop, its directory removed.
pub struct RedisStandalone {
    proc_: ServerProc,
    password: Option<String>,
    dir: TempDir,
}

impl RedisStandalone {
    /// Starts one, with `requirepass` when `password` is given.
    pub fn start(password: Option<&str>) -> Self {
        Self::start_with_args(password, &[])
    }

    /// `start` with extra `redis-server` arguments.
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

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.proc_.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// `redis-cli -e ARGS...` against it; stdout trimmed, panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(self.port(), self.password.as_deref(), args)
    }

    /// One command over RESP (3 s timeout). `Ok` includes error replies.
    pub fn raw(&self, args: &[&str]) -> Result<Resp, String> {
        resp_command(self.port(), self.password.as_deref(), args, CMD_TIMEOUT)
    }

    /// Its log file content.
    pub fn log(&self) -> String {
        read_lossy(&self.proc_.dir.join("redis.log"))
    }

    /// SIGKILL and reap.
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
