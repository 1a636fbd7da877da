//! Cluster events: the detector (pure snapshot diffing), the durable store, the `/events` API,
//! and the small persisted topology that lets a restarted exporter carry on where it stopped.

pub mod api;
pub mod detector;
pub mod store;

use detector::Topology;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the detector's topology is kept, beside the event log.
pub fn topology_path(event_log: &Path) -> PathBuf {
    let mut name = event_log
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".topology.json");
    event_log.with_file_name(name)
}

/// Failure to read or write the persisted topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Loads the saved topology; a missing or unreadable file starts from scratch (with a warning for
/// a corrupt one), never a failure.
pub fn load_topology(path: &Path) -> Topology {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable topology file");
            Topology::default()
        }),
        Err(_) => Topology::default(),
    }
}

/// Saves the topology atomically: temporary file, fsync, rename, fsync of the folder.
pub fn save_topology(path: &Path, topology: &Topology) -> Result<(), TopologyError> {
    let io = |source| TopologyError::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec(topology).map_err(|e| io(std::io::Error::other(e)))?;
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}
