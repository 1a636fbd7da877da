//! Cluster events: the detector (pure snapshot diffing), the durable store (served by
//! [`crate::http::events`]), and the small persisted topology that lets a restarted exporter carry on where it stopped.

pub mod detector;
pub mod kind;
pub mod store;

use detector::Topology;
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

/// Saves the topology atomically (see [`store::replace_file`]).
pub fn save_topology(path: &Path, topology: &Topology) -> Result<(), store::StoreError> {
    store::replace_file(path, &serde_json::to_vec(topology)?)
}
