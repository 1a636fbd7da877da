//! A small tmpfs for one exporter's event log, and a ballast file that fills it up (ENOSPC for
//! every write) and frees it. Needs `mount -t tmpfs` (root); without it the fault is skipped and
//! the score says so.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Size of the filesystem.
const SIZE: &str = "8m";

/// The mounted tmpfs (unmounted on drop).
pub struct Tmpfs {
    dir: TempDir,
    ballast: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs on a new temp dir; `None` when mounting is not allowed here.
    pub fn mount() -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("rce-chaos-fs-")
            .tempdir()
            .ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={SIZE}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        let ballast = dir.path().join("ballast");
        ok.then_some(Tmpfs { dir, ballast })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the ballast until the filesystem is full; returns the bytes written.
    pub fn fill(&mut self) -> u64 {
        let Ok(mut f) = File::create(&self.ballast) else {
            return 0;
        };
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while f.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        // The last partial page: a byte at a time until nothing fits.
        while f.write_all(&[0]).is_ok() {
            written += 1;
        }
        let _ = f.sync_all();
        written
    }

    /// Removes the ballast.
    pub fn free(&mut self) {
        let _ = fs::remove_file(&self.ballast);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
