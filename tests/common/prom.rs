//! Real Prometheus and Alertmanager processes for the end-to-end monitoring test, plus small
//! clients for their HTTP APIs (blocking, std + serde_json, over the harness' raw HTTP client).
//! Alertmanager's part is `alertmanager.rs`, a child module of this one.
//!
//! Included from a test file with `#[path = "common/prom.rs"] mod prom;` next to `mod common;`.
//! Both daemons run from the repository's own config files (Prometheus' with only its two
//! docker-specific addresses substituted), listen on 127.0.0.1:<free_port()>, keep all their state
//! in a temp dir, and are SIGKILLed on Drop (also when a test panics).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::{free_port, try_http_get};

// Loaded relative to this file, so it works however the test file names this module.
#[path = "alertmanager.rs"]
mod alertmanager;
#[allow(unused_imports)]
pub use alertmanager::{Alertmanager, AmAlert};

/// Elapsed-time logger of a long test's phases.
pub struct Clock(pub Instant);

impl Clock {
    /// Prints `msg` with the seconds since the clock started.
    pub fn log(&self, msg: &str) {
        eprintln!("[{:6.1}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

/// Polls `f` every `every` until it returns true; false after `timeout` (never panics).
pub fn poll_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Seconds since the Unix epoch, as Prometheus' API takes them.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Percent-encodes `s` for a URL query string (everything but RFC 3986 unreserved characters).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `/usr/bin/<debian name>` when it exists, else `fallback` looked up on PATH.
fn binary(debian: &str, fallback: &str) -> String {
    if Path::new(debian).exists() {
        debian.to_string()
    } else {
        fallback.to_string()
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A child process that is SIGKILLed and reaped on Drop; stdout+stderr go to one log file.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn spawn(name: &str, bin: &str, args: &[String], cwd: &Path, log: PathBuf) -> Daemon {
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        let child = Command::new(bin)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({bin}): {e}"));
        Daemon {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// Panics (with its log) if the process has exited.
    pub fn assert_running(&mut self) {
        let exited = match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten(),
            None => panic!("{} is not running", self.name),
        };
        if let Some(status) = exited {
            panic!("{} exited ({status}); log:\n{}", self.name, self.log());
        }
    }

    /// Polls `url` until it answers 200; panics with the log on exit or timeout.
    fn wait_http_ok(&mut self, url: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            self.assert_running();
            let last = match try_http_get(url, &[]) {
                Ok((200, _, _)) => return,
                Ok((s, _, b)) => format!("status {s}: {b}"),
                Err(e) => e,
            };
            if start.elapsed() > timeout {
                panic!(
                    "{} not ready after {timeout:?} ({url}: {last}); log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET `url` and parse the body as JSON; `Err` on transport errors, non-2xx or bad JSON.
pub fn get_json(url: &str) -> Result<Value, String> {
    let (status, _, body) = try_http_get(url, &[])?;
    let v: Value =
        serde_json::from_str(&body).map_err(|e| format!("GET {url}: bad JSON ({e}): {body}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("GET {url}: status {status}: {body}"));
    }
    Ok(v)
}

fn parse_value(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// One series of a query result: its labels and its value(s) (one for an instant query).
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<f64>,
}

impl Series {
    pub fn last(&self) -> f64 {
        self.values.last().copied().unwrap_or(f64::NAN)
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

/// One rule from /api/v1/rules.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub group: String,
    pub name: String,
    /// `alerting` or `recording`.
    pub kind: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    pub last_error: String,
    /// The alerting rule's `for:` in seconds.
    pub duration: f64,
    /// Alerting rules: `inactive`, `pending` or `firing`.
    pub state: String,
}

/// The docker-compose addresses in monitoring/prometheus/prometheus.yml that the test substitutes.
pub const DOCKER_EXPORTER_ADDR: &str = "redis-exporter:9121";
pub const DOCKER_ALERTMANAGER_ADDR: &str = "alertmanager:9093";

pub struct Prometheus {
    daemon: Daemon,
    port: u16,
    config: PathBuf,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus from the repo's monitoring/prometheus/prometheus.yml with only
    /// `redis-exporter:9121` -> `exporter_addr` and `alertmanager:9093` -> `alertmanager_addr`
    /// substituted. The copy is written to `<tmp>/monitoring/prometheus/prometheus.yml` next to
    /// `<tmp>/alerts/` (a copy of the repo's alerts/*.yml), so the config's relative `rule_files`
    /// path resolves exactly as in the repo and the repo tree is never written. Waits for /-/ready.
    pub fn start(exporter_addr: &str, alertmanager_addr: &str) -> Prometheus {
        let root = repo_root();
        let src = root.join("monitoring/prometheus/prometheus.yml");
        let text =
            fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        for s in [DOCKER_EXPORTER_ADDR, DOCKER_ALERTMANAGER_ADDR] {
            assert!(
                text.lines()
                    .any(|l| !l.trim_start().starts_with('#') && l.contains(s)),
                "{} no longer contains the address {s:?} the e2e test substitutes",
                src.display()
            );
        }
        let substituted = text
            .replace(DOCKER_EXPORTER_ADDR, exporter_addr)
            .replace(DOCKER_ALERTMANAGER_ADDR, alertmanager_addr);

        let dir = tempfile::Builder::new()
            .prefix("rce-prometheus-")
            .tempdir()
            .expect("create prometheus temp dir");
        let conf_dir = dir.path().join("monitoring/prometheus");
        fs::create_dir_all(&conf_dir).expect("create monitoring/prometheus in temp dir");
        let config = conf_dir.join("prometheus.yml");
        fs::write(&config, substituted).expect("write substituted prometheus.yml");
        let alerts = dir.path().join("alerts");
        fs::create_dir_all(&alerts).expect("create alerts in temp dir");
        for e in fs::read_dir(root.join("alerts")).expect("read repo alerts/") {
            let p = e.expect("alerts/ entry").path();
            if p.is_file() {
                fs::copy(&p, alerts.join(p.file_name().unwrap())).expect("copy alert rules");
            }
        }
        let data = dir.path().join("data");

        let port = free_port();
        let args: Vec<String> = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=info".into(),
        ];
        let bin = binary("/usr/bin/prometheus", "prometheus");
        let daemon = Daemon::spawn(
            "prometheus",
            &bin,
            &args,
            dir.path(),
            dir.path().join("prometheus.log"),
        );
        let mut p = Prometheus {
            daemon,
            port,
            config,
            dir,
        };
        let ready = p.url("/-/ready");
        p.daemon.wait_http_ok(&ready, Duration::from_secs(60));
        p
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The substituted config file Prometheus runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn assert_running(&mut self) {
        self.daemon.assert_running()
    }

    /// GET an API path (`/api/v1/...?...`); returns `data`, or `Err` with Prometheus' error.
    pub fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let url = self.url(path_and_query);
        let v = get_json(&url)?;
        if v["status"] != "success" {
            return Err(format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("error"),
                v["error"].as_str().unwrap_or("(no error message)")
            ));
        }
        Ok(v["data"].clone())
    }

    fn series(data: &Value) -> Result<Vec<Series>, String> {
        let rt = data["resultType"].as_str().unwrap_or_default();
        let result = &data["result"];
        match rt {
            "vector" => Ok(result
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Series {
                    labels: labels_of(&s["metric"]),
                    values: vec![parse_value(&s["value"][1])],
                })
                .collect()),
            "matrix" => Ok(result
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Series {
                    labels: labels_of(&s["metric"]),
                    values: s["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| parse_value(&p[1]))
                        .collect(),
                })
                .collect()),
            "scalar" => Ok(vec![Series {
                labels: BTreeMap::new(),
                values: vec![parse_value(&result[1])],
            }]),
            other => Err(format!("unexpected resultType {other:?}: {data}")),
        }
    }

    /// Instant query at the current time.
    pub fn query(&self, expr: &str) -> Result<Vec<Series>, String> {
        self.query_at(expr, unix_now())
    }

    /// Instant query at `time` (Unix seconds).
    pub fn query_at(&self, expr: &str, time: f64) -> Result<Vec<Series>, String> {
        let data = self.api(&format!(
            "/api/v1/query?query={}&time={time:.3}",
            urlencode(expr)
        ))?;
        Self::series(&data)
    }

    /// Range query over [start, end] (Unix seconds) with `step` seconds.
    pub fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Series>, String> {
        let data = self.api(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            urlencode(expr)
        ))?;
        Self::series(&data)
    }

    /// Values of label `label` on series matching `matcher` (Grafana's `label_values(matcher, label)`).
    pub fn label_values(&self, label: &str, matcher: &str) -> Result<Vec<String>, String> {
        let data = self.api(&format!(
            "/api/v1/label/{label}/values?{}={}",
            urlencode("match[]"),
            urlencode(matcher)
        ))?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Every loaded alerting/recording rule, as Prometheus reports it on /api/v1/rules.
    pub fn rules(&self) -> Result<Vec<RuleInfo>, String> {
        let data = self.api("/api/v1/rules")?;
        let mut out = Vec::new();
        for g in data["groups"].as_array().into_iter().flatten() {
            let group = g["name"].as_str().unwrap_or_default();
            for r in g["rules"].as_array().into_iter().flatten() {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                out.push(RuleInfo {
                    group: group.to_string(),
                    name: s("name"),
                    kind: s("type"),
                    health: s("health"),
                    last_error: s("lastError"),
                    duration: r["duration"].as_f64().unwrap_or(0.0),
                    state: s("state"),
                });
            }
        }
        Ok(out)
    }

    /// Active scrape targets as (scrapeUrl, health, lastError).
    pub fn targets(&self) -> Result<Vec<(String, String, String)>, String> {
        let data = self.api("/api/v1/targets?state=active")?;
        Ok(data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["scrapeUrl"].as_str().unwrap_or_default().to_string(),
                    t["health"].as_str().unwrap_or_default().to_string(),
                    t["lastError"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// URLs of the Alertmanagers Prometheus sends to.
    pub fn alertmanagers(&self) -> Result<Vec<String>, String> {
        let data = self.api("/api/v1/alertmanagers")?;
        Ok(data["activeAlertmanagers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["url"].as_str().map(str::to_string))
            .collect())
    }
}
