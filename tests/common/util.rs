//! Small process utilities shared by the harness modules: waiting for a condition, random
//! numbers without a crate, signals, reading a log that may not exist yet, killing a child,
//! and running a command with a deadline.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A random number (std only: a randomly keyed hasher over a counter, the pid and the time).
pub(super) fn random_u64() -> u64 {
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

/// Sends signal `sig` (e.g. `STOP`) to `pid` with `kill`; panics when that fails.
pub(super) fn send_signal(pid: u32, sig: &str) {
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

/// The file as text (lossy UTF-8); empty when it cannot be read (e.g. not written yet).
pub(super) fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    }
}

/// SIGKILLs and reaps `child`.
pub(super) fn kill_child(child: &mut Child) {
    // SIGKILL also ends a SIGSTOPped process.
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` to completion (stdout/stderr captured through files); panics naming `what`
/// with the output so far when it takes longer than `timeout`.
pub(super) fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    what: &str,
) -> std::process::Output {
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
