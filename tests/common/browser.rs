//! A real headless browser for page tests: Debian's `chromium`, long-lived and driven over the
//! DevTools protocol (a websocket; `Runtime.evaluate` reads the live page without reloading it).
//! (`--dump-dom --virtual-time-budget=5000` did not return within 45 s here on a page holding an
//! EventSource open, so the tests do not use it.)
//!
//! Each browser gets its own temporary profile (`--user-data-dir`), so tests can run side by
//! side, and is killed on Drop. `--remote-debugging-port=0` lets chromium pick a free port and
//! write it to `DevToolsActivePort` in the profile.
//!
//! Include it with `mod common;` and `#[path = "common/browser.rs"] mod browser;`.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Flags every run uses: headless without a GPU or sandbox (tests run as root), and nothing
/// that would reach outside the machine.
const COMMON_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
];

/// The chromium binary on PATH, if any.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

/// The chromium binary, or `None` after printing why the test is skipped. Without chromium a
/// test may only skip outside CI: with `CI` set it fails.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = chromium() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: chromium not found on PATH (scripts/test.sh installs Debian's chromium)");
    }
    eprintln!(
        "SKIPPED {test}: chromium not found on PATH (apt-get install chromium, or run scripts/test.sh)"
    );
    None
}

fn profile() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rce-chromium-")
        .tempdir()
        .expect("chromium profile dir")
}

/// A long-lived headless chromium showing one page, driven over the DevTools protocol.
pub struct Browser {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _process: KillOnDrop,
    _profile: tempfile::TempDir,
}

/// A chromium started in its own process group: the whole group (browser, renderers, zygote)
/// is killed and the browser reaped when dropped, also when a test panics half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // `--` before the negative group id: procps `kill -KILL -12345` reads `-1` out of it
        // and kills every process on the machine (strace shows kill(-1, SIGKILL)).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.0.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chromium` with the common flags, in a process group of its own.
fn command(bin: &PathBuf) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(COMMON_FLAGS).process_group(0);
    cmd
}

impl Browser {
    /// Starts chromium on `url` and connects to that page's DevTools websocket.
    pub fn open(bin: &PathBuf, url: &str) -> Browser {
        let dir = profile();
        let data = dir.path().join("p");
        let child = KillOnDrop(
            command(bin)
                .arg(format!("--user-data-dir={}", data.display()))
                .arg("--remote-debugging-address=127.0.0.1")
                .arg("--remote-debugging-port=0")
                .arg(url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())),
        );
        let socket = connect_page(&data, url, &dir);
        let mut browser = Browser {
            socket,
            _process: child,
            next_id: 0,
            _profile: dir,
        };
        browser.call("Runtime.enable", json!({}));
        // The target exists before its document does: wait for the page to finish loading.
        browser.wait_for(
            Duration::from_secs(20),
            "the page to load",
            &format!(
                "document.readyState === 'complete' && document.body !== null && location.href === {}",
                json!(url)
            ),
            |v| v == true,
        );
        browser
    }

    /// Sends one DevTools command and returns its `result`, skipping the events in between.
    /// Panics on a protocol error or after 10 s.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::text(msg))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "DevTools {method}: no answer");
            let frame = match self.socket.read() {
                Ok(f) => f,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("DevTools {method}: {e}"),
            };
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] != id {
                continue;
            }
            if let Some(err) = v.get("error") {
                panic!("DevTools {method}: {err}");
            }
            return v["result"].clone();
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value (JSON-able).
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|ex| panic!("page threw evaluating {expression:?}: {ex}"))
    }

    /// Evaluates an expression; what the page threw, as the error.
    fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        match r.get("exceptionDetails") {
            Some(ex) => Err(ex.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Polls `expression` every 100 ms until `f` accepts its value; panics after `timeout`
    /// with the last value. While the page is still loading the expression may throw (no
    /// `document.body` yet): that counts as "not yet".
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        expression: &str,
        mut f: impl FnMut(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let v = match self.try_eval(expression) {
                Ok(v) if f(&v) => return v,
                Ok(v) => v,
                Err(ex) => json!({ "threw": ex }),
            };
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; last value: {v}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
    }
}

/// `GET /json/list` of chromium's DevTools HTTP server. It keeps the connection open whatever
/// the request says, so the body is read by its Content-Length, not to the end of the stream.
fn devtools_list(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // The Host header comes back as the websocket URLs' authority.
    s.write_all(format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end].lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })?;
        if raw.len() >= end + 4 + length {
            return Some(String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).into_owned());
        }
    }
}

/// Reads the DevTools port from `DevToolsActivePort`, finds the page target showing `url` and
/// connects to its websocket.
fn connect_page(
    data: &std::path::Path,
    url: &str,
    dir: &tempfile::TempDir,
) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let stderr = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let port_file = data.join("DevToolsActivePort");
    let start = Instant::now();
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromium wrote no DevToolsActivePort; stderr:\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut ws_url = None;
    while ws_url.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no DevTools page target for {url}; stderr:\n{}",
            stderr()
        );
        if let Some(body) = devtools_list(port) {
            let targets: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
            ws_url = targets
                .iter()
                .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string));
        }
        if ws_url.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let ws_url = ws_url.unwrap_or_default();
    let (socket, _) = tungstenite::connect(ws_url.as_str())
        .unwrap_or_else(|e| panic!("DevTools websocket {ws_url}: {e}"));
    if let MaybeTlsStream::Plain(s) = socket.get_ref() {
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    }
    socket
}
