//! The peer exporter for parity tests: Debian's `prometheus-redis-exporter` (redis_exporter 1.45)
//! as a process killed on Drop, a reader that turns a classic-text exposition into metric
//! families (name -> type and label names), and a pipelined command sender (`redis-cli --pipe`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{REDIS_CLI, free_port, metric_samples, try_http_get};

/// Where Debian's package `prometheus-redis-exporter` installs the binary.
pub const PEER_BIN: &str = "/usr/bin/prometheus-redis-exporter";

/// `Some(PEER_BIN)` when it is installed. When it is missing: `None` after an eprintln naming
/// `test` (the caller returns, i.e. skips), unless the environment variable `CI` is set, in
/// which case this panics: under CI the parity tests must run.
pub fn peer_binary_or_skip(test: &str) -> Option<&'static str> {
    if Path::new(PEER_BIN).exists() {
        return Some(PEER_BIN);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: {PEER_BIN} is missing and CI is set; install it with \
             `apt-get install prometheus-redis-exporter`"
        );
    }
    eprintln!(
        "SKIPPED {test}: {PEER_BIN} is not installed (apt-get install prometheus-redis-exporter); \
         set CI=1 to make this a failure"
    );
    None
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// One `prometheus-redis-exporter` process in multi-target mode (`-redis.addr=` empty: every
/// node is scraped through `/scrape?target=redis://...`), on 127.0.0.1:<free_port()>.
/// SIGKILLed and reaped on Drop.
pub struct PeerExporter {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl PeerExporter {
    /// Starts the peer with `extra` flags (e.g. `-include-system-metrics`) and waits until its
    /// own `/metrics` answers 200. The child gets an empty environment, so a developer's
    /// REDIS_ADDR / REDIS_PASSWORD cannot leak in.
    pub fn start(extra: &[&str]) -> PeerExporter {
        let dir = tempfile::Builder::new()
            .prefix("rce-peer-")
            .tempdir()
            .expect("create peer temp dir");
        let port = free_port();
        let log = dir.path().join("peer.log");
        let out = File::create(&log).expect("create peer.log");
        let err = out.try_clone().expect("clone peer.log");
        let mut args: Vec<String> = vec![
            "-redis.addr=".into(),
            "-web.listen-address".into(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(PEER_BIN)
            .args(&args)
            .env_clear()
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {PEER_BIN}: {e}"));
        let mut p = PeerExporter {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            if let Some(c) = p.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "{PEER_BIN} {args:?} exited during startup ({status}); log:\n{}",
                    p.log()
                );
            }
            if let Ok((200, _, _)) = try_http_get(&p.url("/metrics"), &[]) {
                return p;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "{PEER_BIN} not answering on port {port} after 15 s; log:\n{}",
                    p.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Body of `/scrape?target=redis://127.0.0.1:<node_port>`. Panics unless the answer is 200
    /// with `redis_up 1` (the peer answers 200 with `redis_up 0` when it cannot reach the node).
    pub fn scrape(&self, node_port: u16) -> String {
        let url = self.url(&format!("/scrape?target=redis://127.0.0.1:{node_port}"));
        let (status, _, body) =
            try_http_get(&url, &[]).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(status, 200, "GET {url} returned {status}: {body}");
        let up = metric_samples(&body, "redis_up");
        assert!(
            up.len() == 1 && up[0].1 == 1.0,
            "GET {url}: redis_up is {up:?}; peer log:\n{}",
            self.log()
        );
        body
    }

    /// The peer's stdout and stderr so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }
}

impl Drop for PeerExporter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metric families of a classic-text exposition
// ---------------------------------------------------------------------------------------------

/// One metric family as Prometheus would store it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// `# TYPE` of the family (`untyped` when there is none; OpenMetrics `unknown` is `untyped`).
    pub kind: String,
    /// Union of the label names over the family's kept samples, minus the dropped labels.
    /// Summaries include `quantile`, histograms `le`.
    pub labels: BTreeSet<String>,
    /// Label names that every kept sample carries (before dropping any).
    pub on_every_sample: BTreeSet<String>,
    pub samples: usize,
}

/// The name of a sample line (`name{...} v` or `name v`), or `None` for comments and blanks.
fn sample_name(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    Some(&line[..end])
}

/// Family name and type of sample name `s` given the `# TYPE` lines; `None` for samples that
/// belong to no family Prometheus stores (`_created`).
///
/// - a name with its own `# TYPE` line is its family (classic counters are typed on the
///   `_total` name);
/// - `_bucket`/`_sum`/`_count` of a summary or histogram belong to the base family;
/// - `x_total` of `# TYPE x counter` (OpenMetrics style) is family `x_total`: the name a
///   query uses, the same key whichever style the exposition used;
/// - anything else is its own `untyped` family.
fn family_of(s: &str, types: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(t) = types.get(s) {
        return Some((s.to_string(), t.clone()));
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = s.strip_suffix(suffix)
            && let Some(t) = types.get(base)
            && matches!(t.as_str(), "summary" | "histogram" | "gaugehistogram")
        {
            return Some((base.to_string(), t.clone()));
        }
    }
    if let Some(base) = s.strip_suffix("_total")
        && types.get(base).map(String::as_str) == Some("counter")
    {
        return Some((s.to_string(), "counter".into()));
    }
    if let Some(base) = s.strip_suffix("_created")
        && types.contains_key(base)
    {
        return None;
    }
    Some((s.to_string(), "untyped".into()))
}

/// The families of `body` (Prometheus classic text, or OpenMetrics) that have at least one
/// sample accepted by `keep`, with the label names in `drop_labels` removed from `labels`.
/// Parsing of each sample goes through the harness' `metric_samples`.
pub fn families(
    body: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
    drop_labels: &[&str],
) -> BTreeMap<String, Family> {
    let mut types: HashMap<String, String> = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.trim().split_once(' ')
        {
            let kind = match kind.trim() {
                "unknown" => "untyped",
                k => k,
            };
            types.insert(name.to_string(), kind.to_string());
        }
    }
    // Group the sample lines by name first, so each group is parsed once.
    let mut by_name: BTreeMap<&str, String> = BTreeMap::new();
    for line in body.lines() {
        if let Some(n) = sample_name(line) {
            let text = by_name.entry(n).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for (name, text) in &by_name {
        let Some((fam, kind)) = family_of(name, &types) else {
            continue;
        };
        for (labels, _) in metric_samples(text, name) {
            if !keep(&labels) {
                continue;
            }
            let f = out.entry(fam.clone()).or_insert_with(|| Family {
                kind: kind.clone(),
                on_every_sample: labels.keys().cloned().collect(),
                ..Family::default()
            });
            f.samples += 1;
            f.on_every_sample.retain(|k| labels.contains_key(k));
            f.labels.extend(
                labels
                    .keys()
                    .filter(|k| !drop_labels.contains(&k.as_str()))
                    .cloned(),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sending many commands on one connection
// ---------------------------------------------------------------------------------------------

/// What `redis-cli --pipe` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeResult {
    pub errors: u64,
    pub replies: u64,
}

/// Sends `cmds` to 127.0.0.1:`port` on one connection with `redis-cli --pipe` (which adds one
/// ECHO of its own to find the end, not counted in `replies`). Error replies are expected and
/// counted, not fatal (redis-cli then exits 1). Panics unless every command got a reply, or
/// after 60 s.
pub fn pipe_commands(port: u16, password: Option<&str>, cmds: &[Vec<String>]) -> PipeResult {
    let dir = tempfile::tempdir().expect("temp dir for redis-cli --pipe");
    let input = dir.path().join("in.resp");
    let mut f = File::create(&input).expect("create pipe input");
    for c in cmds {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        f.write_all(&super::resp::encode_cmd(&args))
            .expect("write pipe input");
    }
    drop(f);
    let out_path = dir.path().join("out");
    let mut cmd = Command::new(REDIS_CLI);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"])
        .env_remove("REDISCLI_AUTH")
        .stdin(File::open(&input).expect("open pipe input"))
        .stdout(File::create(&out_path).expect("create pipe output"))
        .stderr(Stdio::null());
    if let Some(pw) = password {
        cmd.env("REDISCLI_AUTH", pw);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {REDIS_CLI} --pipe: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait redis-cli") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-cli --pipe to port {port} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = read_lossy(&out_path);
    // Last line: "errors: 3, replies: 101"
    let summary = out
        .lines()
        .rev()
        .find(|l| l.starts_with("errors:"))
        .unwrap_or_else(|| panic!("redis-cli --pipe ({status}) printed no summary:\n{out}"));
    let num = |key: &str| -> u64 {
        summary
            .split(',')
            .find_map(|part| part.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("cannot read {key:?} from {summary:?}"))
    };
    let r = PipeResult {
        errors: num("errors:"),
        replies: num("replies:"),
    };
    assert_eq!(
        r.replies,
        cmds.len() as u64,
        "redis-cli --pipe to port {port} ({status}): {out}"
    );
    r
}

/// Commands from 127.0.0.1:`port`'s `COMMAND` reply that Redis rejects for their number of
/// arguments before running them: each leaves a `cmdstat_<name>` line with `rejected_calls=1`
/// and one error reply, and does nothing else. A command (or subcommand) with arity `n > 0`
/// gets `n + 1` arguments, one with arity `-n` (at least n) gets fewer than n; `-1` (any count)
/// cannot be rejected this way and is left out, as is QUIT (handled before the arity check).
pub fn arity_rejected_commands(reply: &super::Resp) -> Vec<Vec<String>> {
    use super::Resp;
    let mut out = Vec::new();
    let mut add = |argv: Vec<String>, arity: i64| {
        let n = argv.len() as i64;
        let mut argv = argv;
        if arity > 0 {
            while argv.len() as i64 <= arity {
                argv.push("x".into());
            }
        } else if n >= -arity {
            return;
        }
        out.push(argv);
    };
    let Resp::Array(Some(cmds)) = reply else {
        panic!("COMMAND reply is not an array: {reply:?}");
    };
    for c in cmds {
        let Resp::Array(Some(f)) = c else { continue };
        let (Some(name), Some(Resp::Int(arity))) = (f.first().map(|n| n.text()), f.get(1)) else {
            continue;
        };
        if name.eq_ignore_ascii_case("quit") {
            continue;
        }
        add(vec![name.to_uppercase()], *arity);
        if let Some(Resp::Array(Some(subs))) = f.get(9) {
            for s in subs {
                let Resp::Array(Some(sf)) = s else { continue };
                let (Some(full), Some(Resp::Int(sa))) = (sf.first().map(|n| n.text()), sf.get(1))
                else {
                    continue;
                };
                if let Some((_, sub)) = full.split_once('|') {
                    add(vec![name.to_uppercase(), sub.to_uppercase()], *sa);
                }
            }
        }
    }
    out
}
