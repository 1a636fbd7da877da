//! A real Alertmanager process for the end-to-end monitoring tests, run from the repository's
//! own monitoring/alertmanager/alertmanager.yml (clustering off, state in a temp dir), and a
//! client for its v2 alerts API. Part of `prom.rs` (declared there with `#[path]`), whose
//! `Daemon` and JSON helpers it uses.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::{Daemon, binary, get_json, labels_of, repo_root};
use crate::common::free_port;

/// A running Alertmanager; SIGKILLed on Drop, its temp dir removed.
pub struct Alertmanager {
    daemon: Daemon,
    port: u16,
    dir: TempDir,
}

/// One alert as Alertmanager's v2 API (`GET /api/v2/alerts`) lists it.
#[derive(Debug, Clone)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
    pub inhibited_by: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub receivers: Vec<String>,
}

impl AmAlert {
    pub fn name(&self) -> &str {
        self.label("alertname")
    }

    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map(String::as_str).unwrap_or("")
    }
}

impl Alertmanager {
    /// Starts Alertmanager with the repo's monitoring/alertmanager/alertmanager.yml, unchanged,
    /// clustering off, state in a temp dir. Waits for /-/ready.
    pub fn start() -> Alertmanager {
        let config = repo_root().join("monitoring/alertmanager/alertmanager.yml");
        let dir = tempfile::Builder::new()
            .prefix("rce-alertmanager-")
            .tempdir()
            .expect("create alertmanager temp dir");
        let port = free_port();
        let args: Vec<String> = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".into(),
        ];
        let bin = binary("/usr/bin/prometheus-alertmanager", "alertmanager");
        let daemon = Daemon::spawn(
            "alertmanager",
            &bin,
            &args,
            dir.path(),
            dir.path().join("alertmanager.log"),
        );
        let mut am = Alertmanager { daemon, port, dir };
        let ready = am.url("/-/ready");
        am.daemon.wait_http_ok(&ready, Duration::from_secs(30));
        am
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn assert_running(&mut self) {
        self.daemon.assert_running()
    }

    /// `GET /api/v2/alerts`: every alert Alertmanager holds that has not resolved (active,
    /// suppressed by an inhibition/silence, or unprocessed).
    pub fn alerts(&self) -> Result<Vec<AmAlert>, String> {
        let v = get_json(&self.url("/api/v2/alerts"))?;
        let arr = v
            .as_array()
            .ok_or_else(|| format!("/api/v2/alerts: not an array: {v}"))?;
        let strings = |x: &Value| -> Vec<String> {
            x.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        Ok(arr
            .iter()
            .map(|a| AmAlert {
                labels: labels_of(&a["labels"]),
                annotations: labels_of(&a["annotations"]),
                state: a["status"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                inhibited_by: strings(&a["status"]["inhibitedBy"]),
                starts_at: a["startsAt"].as_str().unwrap_or_default().to_string(),
                ends_at: a["endsAt"].as_str().unwrap_or_default().to_string(),
                receivers: a["receivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["name"].as_str().map(str::to_string))
                    .collect(),
            })
            .collect())
    }
}
