//! The simulator's network side: one listener per node, one task per connection (pipelined RESP2
//! requests answered from the shared [`Cluster`]), the control port, optional stdin commands and
//! `--auto-failover`. Nodes that are failed with `close` drop their listener and connections;
//! `stall`ed ones keep them but read nothing, like a SIGSTOPped server.

use super::control::{self, Outcome};
use super::model::{Cluster, NodeCounters, NodeStatus, Traffic};
use super::resp::{self, Frame};
use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Highest client port handed out: the announced bus port (`port + 10000`) must stay valid.
pub const MAX_PORT: u16 = 55534;
/// Most request bytes buffered for one connection before it is dropped.
const MAX_PENDING_INPUT: usize = 4 << 20;

/// Listeners bound before the runtime starts, plus the advisory port locks that keep the test
/// harness (which uses the same lock directory) from picking the same ports.
pub struct Bound {
    /// One listener per node, in node order.
    pub nodes: Vec<std::net::TcpListener>,
    /// The control listener.
    pub control: std::net::TcpListener,
    /// Lock files held for the life of the process.
    pub locks: Vec<File>,
}

impl Bound {
    /// The node ports, in node order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.port())
            .collect()
    }

    /// The control port.
    pub fn control_port(&self) -> u16 {
        self.control.local_addr().map_or(0, |a| a.port())
    }
}

/// The range random test ports are drawn from: `p` and `p + 10000` (a cluster node's bus port)
/// both stay below the kernel's ephemeral range when there is room, so outgoing connections never
/// squat on them; else 20000..45000. Shared with the test harness.
pub fn port_range() -> (u16, u16) {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    if low >= 23000 {
        (
            11000,
            u16::try_from(low - 10000).unwrap_or(MAX_PORT).min(MAX_PORT),
        )
    } else {
        (20000, 45000)
    }
}

/// Takes the cross-process advisory lock on a port (a file in the temp dir, released when the
/// returned file is dropped or the process exits), so parallel test processes and simulators
/// never pick the same port. `None` when another process holds it.
pub fn lock_port(port: u16) -> Option<File> {
    let dir = std::env::temp_dir().join("redis-cluster-exporter-test-ports");
    fs::create_dir_all(&dir).ok()?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
        .ok()?;
    f.try_lock().ok().map(|()| f)
}

fn bind(host: &str, port: u16) -> io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind((host, port))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds a random free, unlocked port below [`MAX_PORT`] (and locks it).
fn bind_random(host: &str, locks: &mut Vec<File>) -> Result<std::net::TcpListener, String> {
    let (lo, hi) = port_range();
    let span = u64::from(hi.saturating_sub(lo).max(1));
    let state = RandomState::new();
    for attempt in 0..20_000u64 {
        let mut h = state.build_hasher();
        h.write_u64(attempt);
        let port = lo + u16::try_from(h.finish() % span).unwrap_or(0);
        let Some(lock) = lock_port(port) else {
            continue;
        };
        if let Ok(l) = bind(host, port) {
            locks.push(lock);
            return Ok(l);
        }
    }
    Err(format!("no free port found in {lo}..{hi}"))
}

/// Binds the node ports (`base..base+n`, or random free ones) and the control port (`control`,
/// else `base + n`, else random).
pub fn bind_all(
    host: &str,
    n: usize,
    base: Option<u16>,
    control: Option<u16>,
) -> Result<Bound, String> {
    let mut locks = Vec::new();
    let mut nodes = Vec::with_capacity(n);
    match base {
        Some(base) => {
            let last = usize::from(base) + n.saturating_sub(1);
            if last > usize::from(MAX_PORT) {
                return Err(format!(
                    "ports {base}..{last} exceed {MAX_PORT} (the bus port is port + 10000)"
                ));
            }
            for k in 0..n {
                let port = u16::try_from(usize::from(base) + k).unwrap_or(MAX_PORT);
                nodes
                    .push(bind(host, port).map_err(|e| format!("cannot bind {host}:{port}: {e}"))?);
            }
        }
        None => {
            for _ in 0..n {
                nodes.push(bind_random(host, &mut locks)?);
            }
        }
    }
    let control_port = control.or_else(|| {
        base.and_then(|b| u16::try_from(usize::from(b) + n).ok())
            .filter(|p| *p <= MAX_PORT)
    });
    let control = match control_port {
        Some(0) | None => bind_random(host, &mut locks)?,
        Some(p) => {
            bind(host, p).map_err(|e| format!("cannot bind control port {host}:{p}: {e}"))?
        }
    };
    Ok(Bound {
        nodes,
        control,
        locks,
    })
}

/// Writes `{"host":..,"control_port":..,"ports":[..],"pid":..}` atomically (temp file + rename).
pub fn write_port_file(path: &Path, host: &str, bound: &Bound) -> io::Result<()> {
    let doc = serde_json::json!({
        "host": host,
        "control_port": bound.control_port(),
        "ports": bound.ports(),
        "pid": std::process::id(),
    });
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{doc}\n"))?;
    fs::rename(&tmp, path)
}

/// Runtime options of the server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Password every node requires (`AUTH`); none accepts anything.
    pub password: Option<String>,
    /// Promote a replica of a master that has been down this long.
    pub auto_failover: Option<Duration>,
    /// Read control commands from stdin too (replies on stdout).
    pub stdin: bool,
}

struct Shared {
    cluster: Mutex<Cluster>,
    status: Vec<watch::Sender<NodeStatus>>,
    counters: Vec<NodeCounters>,
    traffic: Traffic,
    password: Option<String>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a control line and pushes any node status change to the network tasks.
    fn control(&self, line: &str) -> Outcome {
        let mut c = self.cluster();
        let out = control::execute(&mut c, &self.traffic, line, Instant::now());
        self.sync_status(&c);
        if matches!(out, Outcome::Shutdown(_)) {
            let _ = self.shutdown.send(true);
        }
        out
    }

    fn sync_status(&self, c: &Cluster) {
        for (n, tx) in self.status.iter().enumerate() {
            let st = c.status(n);
            tx.send_if_modified(|cur| {
                let changed = *cur != st;
                *cur = st;
                changed
            });
        }
    }
}

/// Serves until `shutdown`, SIGINT or SIGTERM.
pub async fn run(cluster: Cluster, bound: Bound, opts: ServerOptions) -> io::Result<()> {
    let n = cluster.len();
    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        status: (0..n).map(|_| watch::channel(NodeStatus::Up).0).collect(),
        counters: (0..n).map(|_| NodeCounters::default()).collect(),
        cluster: Mutex::new(cluster),
        traffic: Traffic::default(),
        password: opts.password.clone(),
        shutdown,
    });
    let Bound {
        nodes,
        control,
        locks: _locks,
    } = bound;
    for (i, l) in nodes.into_iter().enumerate() {
        let addr = l.local_addr()?;
        let l = TcpListener::from_std(l)?;
        tokio::spawn(node_listener(Arc::clone(&shared), i, Some(l), addr));
    }
    tokio::spawn(control_listener(
        Arc::clone(&shared),
        TcpListener::from_std(control)?,
    ));
    if opts.stdin {
        tokio::spawn(stdin_commands(Arc::clone(&shared)));
    }
    if let Some(after) = opts.auto_failover {
        tokio::spawn(auto_failover(Arc::clone(&shared), after));
    }
    let mut stop = shared.shutdown.subscribe();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    let _ = shared.shutdown.send(true);
    Ok(())
}

async fn node_listener(
    shared: Arc<Shared>,
    n: usize,
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
) {
    let Some(tx) = shared.status.get(n) else {
        return;
    };
    let mut status = tx.subscribe();
    let mut stop = shared.shutdown.subscribe();
    let mut warned = false;
    loop {
        let st = *status.borrow_and_update();
        match st {
            NodeStatus::Closed | NodeStatus::Stalled => {
                if st == NodeStatus::Closed {
                    listener = None;
                }
                tokio::select! {
                    r = status.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
            NodeStatus::Up => {
                if listener.is_none() {
                    match bind(&addr.ip().to_string(), addr.port()).and_then(TcpListener::from_std)
                    {
                        Ok(l) => {
                            listener = Some(l);
                            warned = false;
                        }
                        Err(e) => {
                            if !warned {
                                eprintln!(
                                    "cluster-sim: node {n}: cannot re-bind {addr}: {e}; retrying"
                                );
                                warned = true;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let Some(l) = listener.as_ref() else { continue };
                tokio::select! {
                    acc = l.accept() => match acc {
                        Ok((s, _)) => {
                            tokio::spawn(connection(Arc::clone(&shared), n, s));
                        }
                        // Out of file descriptors and the like: do not spin.
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    },
                    r = status.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Writes `out` unless the node is closed meanwhile; false when the connection must end.
async fn write_out(
    stream: &mut (impl AsyncWrite + Unpin),
    out: &[u8],
    status: &mut watch::Receiver<NodeStatus>,
) -> bool {
    let write = stream.write_all(out);
    tokio::pin!(write);
    loop {
        tokio::select! {
            r = &mut write => return r.is_ok(),
            r = status.changed() => {
                if r.is_err() || *status.borrow() == NodeStatus::Closed {
                    return false;
                }
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, n: usize, mut stream: TcpStream) {
    let (Some(counters), Some(tx)) = (shared.counters.get(n), shared.status.get(n)) else {
        return;
    };
    counters
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    counters.clients.fetch_add(1, Ordering::Relaxed);
    shared.traffic.connections.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let mut status = tx.subscribe();
    let mut stop = shared.shutdown.subscribe();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut session = Session {
        authed: shared.password.is_none(),
        quit: false,
    };
    'conn: loop {
        loop {
            let st = *status.borrow_and_update();
            match st {
                NodeStatus::Up => break,
                NodeStatus::Closed => break 'conn,
                NodeStatus::Stalled => {
                    tokio::select! {
                        r = status.changed() => if r.is_err() { break 'conn },
                        _ = stop.changed() => break 'conn,
                    }
                }
            }
        }
        tokio::select! {
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(k) => { counters.net_in.fetch_add(k as u64, Ordering::Relaxed); }
            },
            r = status.changed() => { if r.is_err() { break } continue }
            _ = stop.changed() => break,
        }
        let mut pos = 0;
        let mut fatal = false;
        while !session.quit {
            let Some(rest) = buf.get(pos..) else { break };
            match resp::parse(rest) {
                Frame::Incomplete => break,
                Frame::Invalid(msg) => {
                    resp::error(&mut out, &format!("ERR {msg}"));
                    fatal = true;
                    break;
                }
                Frame::Command { args, used } => {
                    pos += used;
                    if !args.is_empty() {
                        counters.commands.fetch_add(1, Ordering::Relaxed);
                        handle(&shared, n, &args, &mut out, &mut session);
                    }
                }
            }
        }
        buf.drain(..pos.min(buf.len()));
        if buf.len() > MAX_PENDING_INPUT {
            resp::error(&mut out, "ERR Protocol error: request too large");
            fatal = true;
        }
        if !out.is_empty() {
            let ok = write_out(&mut stream, &out, &mut status).await;
            counters
                .net_out
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            out.clear();
            if !ok {
                break;
            }
        }
        if fatal || session.quit {
            break;
        }
    }
    counters.clients.fetch_sub(1, Ordering::Relaxed);
}

struct Session {
    authed: bool,
    quit: bool,
}

fn upper(arg: Option<&Vec<u8>>) -> String {
    arg.map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .unwrap_or_default()
}

/// Answers one command into `out`.
fn handle(shared: &Shared, n: usize, args: &[Vec<u8>], out: &mut Vec<u8>, session: &mut Session) {
    let name = upper(args.first());
    let sub = upper(args.get(1));
    let before = out.len();
    let traffic = &shared.traffic;
    let mut kind = (&traffic.other_replies, &traffic.other_bytes);
    if !session.authed && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
        resp::error(out, "NOAUTH Authentication required.");
    } else {
        match (name.as_str(), sub.as_str()) {
            ("PING", _) => match args.get(1) {
                Some(msg) => resp::bulk(out, msg),
                None => resp::simple(out, "PONG"),
            },
            ("ECHO", _) => match args.get(1) {
                Some(msg) => resp::bulk(out, msg),
                None => wrong_arity(out, "echo"),
            },
            ("AUTH", _) => auth(shared, args, out, session),
            ("HELLO", _) => resp::error(out, "NOPROTO unsupported protocol version"),
            ("QUIT", _) => {
                resp::simple(out, "OK");
                session.quit = true;
            }
            ("CLIENT", "SETINFO" | "SETNAME") => resp::simple(out, "OK"),
            ("CLIENT", "GETNAME") => out.extend_from_slice(b"$-1\r\n"),
            ("CLIENT", "ID") => resp::integer(out, i64::try_from(n).unwrap_or(0) + 1),
            ("SELECT", _) => {
                if args.get(1).map(Vec::as_slice) == Some(b"0".as_slice()) {
                    resp::simple(out, "OK");
                } else {
                    resp::error(out, "ERR SELECT is not allowed in cluster mode");
                }
            }
            ("READONLY" | "READWRITE", _) => resp::simple(out, "OK"),
            ("COMMAND", _) => resp::array_header(out, 0),
            ("CONFIG", "GET") => {
                // The parameters the exporter reads, with Redis's defaults.
                let known = [
                    ("maxmemory", "0"),
                    ("maxclients", "10000"),
                    ("io-threads", "1"),
                ];
                let asked: Vec<(&str, &str)> = known
                    .into_iter()
                    .filter(|(k, _)| {
                        args.iter()
                            .skip(2)
                            .any(|a| a.eq_ignore_ascii_case(k.as_bytes()))
                    })
                    .collect();
                resp::array_header(out, asked.len() * 2);
                for (k, v) in asked {
                    resp::bulk(out, k.as_bytes());
                    resp::bulk(out, v.as_bytes());
                }
            }
            ("SLOWLOG", "LEN") => resp::integer(out, 0),
            ("SLOWLOG", "GET") | ("LATENCY", "LATEST") => resp::array_header(out, 0),
            ("CLUSTER", "INFO") => {
                kind = (&traffic.cluster_info_replies, &traffic.cluster_info_bytes);
                let text = shared.cluster().cluster_info(n, Instant::now());
                resp::bulk(out, text.as_bytes());
            }
            ("CLUSTER", "NODES") => {
                kind = (&traffic.cluster_nodes_replies, &traffic.cluster_nodes_bytes);
                let mut text = Vec::new();
                shared.cluster().cluster_nodes(n, Instant::now(), &mut text);
                resp::bulk(out, &text);
            }
            ("CLUSTER", "MYID") => {
                let c = shared.cluster();
                resp::bulk(out, c.myid(n).as_bytes());
            }
            ("CLUSTER", _) => resp::error(
                out,
                &format!("ERR unknown subcommand '{sub}'. Try CLUSTER HELP."),
            ),
            ("INFO", _) => {
                kind = (&traffic.info_replies, &traffic.info_bytes);
                let sections: Vec<String> = args
                    .iter()
                    .skip(1)
                    .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
                    .collect();
                let text = match shared.counters.get(n) {
                    Some(counters) => shared
                        .cluster()
                        .info(n, &sections, Instant::now(), counters),
                    None => String::new(),
                };
                resp::bulk(out, text.as_bytes());
            }
            _ => {
                let rest: Vec<String> = args
                    .iter()
                    .skip(1)
                    .take(4)
                    .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
                    .collect();
                let shown: String = String::from_utf8_lossy(args.first().map_or(&[][..], |a| a))
                    .chars()
                    .take(64)
                    .collect();
                resp::error(
                    out,
                    &format!(
                        "ERR unknown command '{shown}', with args beginning with: {}",
                        rest.concat()
                    ),
                );
            }
        }
    }
    kind.0.fetch_add(1, Ordering::Relaxed);
    kind.1
        .fetch_add((out.len() - before) as u64, Ordering::Relaxed);
}

fn wrong_arity(out: &mut Vec<u8>, cmd: &str) {
    resp::error(
        out,
        &format!("ERR wrong number of arguments for '{cmd}' command"),
    );
}

fn auth(shared: &Shared, args: &[Vec<u8>], out: &mut Vec<u8>, session: &mut Session) {
    let given = match args.len() {
        2 | 3 => args.last(),
        _ => return wrong_arity(out, "auth"),
    };
    match (&shared.password, given) {
        (None, _) => resp::error(
            out,
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        (Some(p), Some(g)) if p.as_bytes() == g.as_slice() => {
            session.authed = true;
            resp::simple(out, "OK");
        }
        _ => resp::error(
            out,
            "WRONGPASS invalid username-password pair or user is disabled.",
        ),
    }
}

async fn control_listener(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            acc = listener.accept() => match acc {
                Ok((s, _)) => { tokio::spawn(control_connection(Arc::clone(&shared), s)); }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = stop.changed() => return,
        }
    }
}

async fn control_connection(shared: Arc<Shared>, stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    // Bounded lines: a control client is trusted, but not without limit.
    let mut lines = BufReader::new(read.take(1 << 20)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let (text, close) = match shared.control(&line) {
            Outcome::Reply(r) => (r, false),
            Outcome::Shutdown(r) => (r, true),
            Outcome::Close => break,
        };
        if write
            .write_all(format!("{text}\n").as_bytes())
            .await
            .is_err()
            || close
        {
            break;
        }
    }
}

async fn stdin_commands(shared: Arc<Shared>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let text = match shared.control(&line) {
            Outcome::Reply(r) | Outcome::Shutdown(r) => r,
            Outcome::Close => break,
        };
        let _ = stdout.write_all(format!("{text}\n").as_bytes()).await;
        let _ = stdout.flush().await;
    }
}

async fn auto_failover(shared: Arc<Shared>, after: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let mut c = shared.cluster();
        for line in control::auto_failover(&mut c, after, Instant::now()) {
            eprintln!("cluster-sim: {line}");
        }
        shared.sync_status(&c);
    }
}
