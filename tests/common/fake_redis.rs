//! A scripted fake Redis server for hostile-server tests.
//!
//! It listens on 127.0.0.1 (an ephemeral port, so it never collides with the harness's
//! `free_port` range), reads RESP commands and answers according to a [`Behavior`]. What the
//! exporter sends (captured from redis-rs 1.8.1): on connect one write of `AUTH` (only with a
//! password), `CLIENT SETINFO LIB-NAME ...` and `CLIENT SETINFO LIB-VER ...`; then per poll one
//! pipelined write of `CLUSTER INFO`, `CLUSTER NODES`, `INFO replication` (CLUSTER NODES left out
//! of the pipeline and asked alone afterwards when the exporter's adaptive topology polling skips
//! it), followed in the same write, when the telemetry tier is due, by `INFO all`, `CONFIG GET
//! maxmemory maxclients io-threads`, `LATENCY LATEST`, `SLOWLOG LEN`, `SLOWLOG GET 1` and, on the
//! first poll of a connection, `CLUSTER SLOT-STATS ...`, which gets Redis 7.0's answer (`-ERR
//! unknown subcommand`, so the exporter asks no more). Connection-setup commands
//! get `+OK` (or `-NOAUTH` for [`Behavior::NoAuth`]); once a batch of poll commands is complete
//! (the fast part ends with `INFO replication`, the telemetry part with `SLOWLOG GET`; a lone
//! CLUSTER NODES is a batch of its own), its whole answer is produced by
//! the behavior and delivered as it says (all of it, part then close, part then silence, or an
//! endless stream).
//!
//! Every connection runs on its own thread; everything stops and is joined on Drop.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const CLUSTER_INFO: &str = include_str!("../fixtures/cluster_info_ok.txt");
const INFO: &str = include_str!("../fixtures/info_master.txt");

/// How the fake answers the poll pipeline (CLUSTER INFO, CLUSTER NODES, INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Well-formed replies: a one-node "cluster" whose `myself` line is the fake itself.
    Healthy,
    /// Bytes that are not RESP at all.
    Garbage,
    /// The first few bytes of the CLUSTER INFO reply, then close.
    TruncatedThenClose,
    /// `$1073741824\r\n` (a 1 GiB bulk) as the CLUSTER INFO reply, then one byte every 100 ms
    /// (`trickle`) or nothing at all; the connection stays open.
    HugeBulkHeader {
        /// Send one body byte every 100 ms.
        trickle: bool,
    },
    /// `+aaaa…` forever, never a CRLF.
    EndlessSimpleString,
    /// `$1073741824\r\n` followed by body bytes as fast as the socket takes them.
    EndlessBulkBody,
    /// Half of the well-formed pipeline answer, then silence with the connection held open.
    StallMidReply,
    /// Half of the well-formed pipeline answer, a short pause, then close.
    CloseMidReply,
    /// `-ERR unknown command` for the CLUSTER commands (INFO answers normally).
    UnknownClusterCommand,
    /// `-LOADING Redis is loading the dataset in memory` for every poll command.
    Loading,
    /// `-NOAUTH Authentication required.` for every command, as a `requirepass` server does
    /// to a client that sent no AUTH.
    NoAuth,
    /// A CLUSTER NODES reply with malformed lines around one good `myself` line.
    MalformedNodes,
    /// A CLUSTER NODES reply with a good `myself` line plus `n - 1` entries of unknown-address
    /// (`noaddr`) members, so the exporter does not try to connect to them.
    ManyNodes(usize),
    /// `:1` (an integer) where the CLUSTER INFO bulk string is expected.
    IntegerReply,
    /// `$-1` (a nil bulk) where the INFO bulk string is expected.
    NilReply,
    /// A RESP3 push frame (`>`), unsolicited, before the well-formed replies.
    PushThenReplies,
    /// Well-formed replies, each pipeline answered only after this delay (a slow but honest
    /// node).
    SlowReply(Duration),
    /// Well-formed replies; the `myself` line owns every slot and announces this hostname
    /// (`ip:port@cport,hostname`, as Redis 7 prints `cluster-announce-hostname`). The text
    /// must hold no whitespace or comma, like any hostname field.
    Hostname(String),
}

/// How the prepared bytes go out.
enum Delivery {
    /// Send, keep serving the connection.
    Send(Vec<u8>),
    /// Wait, then send, keep serving the connection.
    SendAfter(Duration, Vec<u8>),
    /// Send, wait a little, close.
    SendThenClose(Vec<u8>, Duration),
    /// Send, then never answer again (but notice when the peer closes).
    SendThenStall(Vec<u8>),
    /// Send `head`, then `chunk` over and over, pausing `pause` between chunks, until the peer
    /// goes away or the server stops.
    Stream {
        head: Vec<u8>,
        chunk: Vec<u8>,
        pause: Duration,
    },
}

fn bulk(text: &str) -> Vec<u8> {
    let mut out = format!("${}\r\n", text.len()).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// The fake's node id: 40 alphanumeric characters derived from its port.
pub fn fake_node_id(port: u16) -> String {
    format!("fa4e{port:036}")
}

fn myself_line(port: u16) -> String {
    format!(
        "{} 127.0.0.1:{port}@{} myself,master - 0 0 0 connected\n",
        fake_node_id(port),
        u32::from(port) + 10000
    )
}

/// A CLUSTER NODES text with the good `myself` line and `n - 1` `noaddr` members (about 100
/// bytes a line).
pub fn many_nodes_text(port: u16, n: usize) -> String {
    let mut s = String::with_capacity(n * 100);
    s.push_str(&myself_line(port));
    for k in 1..n {
        s.push_str(&format!(
            "{k:040x} :0@0 master,fail,noaddr - 1700000000000 1700000000000 {k} disconnected\n"
        ));
    }
    s
}

/// CLUSTER NODES with malformed lines around one good `myself` line.
pub fn malformed_nodes_text(port: u16) -> String {
    let id = "b".repeat(40);
    let mut s = String::new();
    s.push_str("garbage\n");
    s.push_str(&format!(
        "{id} 127.0.0.1:notaport@1 master - 0 0 1 connected 0-100\n"
    ));
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 master - x y z connected 0-100\n"
    ));
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 master - 0 0 1 connected 99999\n"
    ));
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 master - 0 0 1 connected 100-5\n"
    ));
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 master - 0 0 1 half-open 0-100\n"
    ));
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 slave not-an-id! 0 0 1 connected\n"
    ));
    s.push_str("id-with-dashes 127.0.0.1:7000@17000 master - 0 0 1 connected\n");
    s.push_str(&format!("{id} 127.0.0.1:7000@17000\n"));
    s.push_str(&"x".repeat(10_000));
    s.push('\n');
    s.push_str(&myself_line(port));
    s.push_str("\t \t\n");
    s.push_str(&format!(
        "{id} 127.0.0.1:7000@17000 master - 0 0 1 connected [5->-{id}] [oops]\n"
    ));
    s.push_str("\u{fffd}\u{0}\u{1b}[31m\n");
    s
}

/// One of the poll commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollCommand {
    ClusterInfo,
    ClusterNodes,
    /// `INFO replication`: ends the fast part.
    Info,
    /// `INFO all` and the rest of the telemetry tier.
    InfoAll,
    ConfigGet,
    LatencyLatest,
    SlowlogLen,
    /// `SLOWLOG GET 1`: ends the telemetry part.
    SlowlogGet,
}

fn poll_command(args: &[String]) -> Option<PollCommand> {
    let name = args.first()?;
    let sub = |s: &str| args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(s));
    if name.eq_ignore_ascii_case("INFO") {
        return Some(if sub("replication") {
            PollCommand::Info
        } else {
            PollCommand::InfoAll
        });
    }
    if name.eq_ignore_ascii_case("CONFIG") && sub("GET") {
        return Some(PollCommand::ConfigGet);
    }
    if name.eq_ignore_ascii_case("LATENCY") {
        return Some(PollCommand::LatencyLatest);
    }
    if name.eq_ignore_ascii_case("SLOWLOG") {
        return Some(if sub("LEN") {
            PollCommand::SlowlogLen
        } else {
            PollCommand::SlowlogGet
        });
    }
    if !name.eq_ignore_ascii_case("CLUSTER") {
        return None;
    }
    let sub = args.get(1)?;
    if sub.eq_ignore_ascii_case("INFO") {
        Some(PollCommand::ClusterInfo)
    } else if sub.eq_ignore_ascii_case("NODES") {
        Some(PollCommand::ClusterNodes)
    } else {
        None
    }
}

fn healthy(cmd: PollCommand, port: u16) -> Vec<u8> {
    match cmd {
        PollCommand::ClusterInfo => bulk(CLUSTER_INFO),
        PollCommand::ClusterNodes => bulk(&myself_line(port)),
        PollCommand::Info | PollCommand::InfoAll => bulk(INFO),
        PollCommand::ConfigGet => {
            b"*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n".to_vec()
        }
        PollCommand::SlowlogLen => b":0\r\n".to_vec(),
        PollCommand::LatencyLatest => b"*0\r\n".to_vec(),
        PollCommand::SlowlogGet => b"*0\r\n".to_vec(),
    }
}

const GIB_BULK_HEADER: &[u8] = b"$1073741824\r\n";

impl Behavior {
    /// The reply to one poll command, for the behaviors that answer command by command.
    fn reply(&self, cmd: PollCommand, port: u16) -> Vec<u8> {
        use PollCommand::{ClusterInfo, ClusterNodes, Info};
        match (self, cmd) {
            (Behavior::UnknownClusterCommand, ClusterInfo | ClusterNodes) => {
                let sub = if cmd == ClusterInfo { "INFO" } else { "NODES" };
                format!("-ERR unknown command 'CLUSTER', with args beginning with: '{sub}' \r\n")
                    .into_bytes()
            }
            (Behavior::Loading, _) => {
                b"-LOADING Redis is loading the dataset in memory\r\n".to_vec()
            }
            (Behavior::NoAuth, _) => b"-NOAUTH Authentication required.\r\n".to_vec(),
            (Behavior::MalformedNodes, ClusterNodes) => bulk(&malformed_nodes_text(port)),
            (Behavior::ManyNodes(n), ClusterNodes) => bulk(&many_nodes_text(port, *n)),
            (Behavior::Hostname(h), ClusterNodes) => bulk(&format!(
                "{} 127.0.0.1:{port}@{},{h} myself,master - 0 0 1 connected 0-16383\n",
                fake_node_id(port),
                u32::from(port) + 10000
            )),
            (Behavior::IntegerReply, ClusterInfo) => b":1\r\n".to_vec(),
            (Behavior::NilReply, Info) => b"$-1\r\n".to_vec(),
            _ => healthy(cmd, port),
        }
    }

    /// The answer to one batch of poll commands (a pipeline ending with INFO, or a lone
    /// command).
    fn answer(&self, batch: &[PollCommand], port: u16) -> Delivery {
        let well_formed: Vec<u8> = batch.iter().flat_map(|&c| healthy(c, port)).collect();
        let half = well_formed.len() / 2;
        match self {
            Behavior::Garbage => Delivery::Send(
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1garbage \xff\xfe not RESP\r\n".to_vec(),
            ),
            Behavior::TruncatedThenClose => {
                Delivery::SendThenClose(well_formed[..12].to_vec(), Duration::ZERO)
            }
            Behavior::HugeBulkHeader { trickle: true } => Delivery::Stream {
                head: GIB_BULK_HEADER.to_vec(),
                chunk: b"a".to_vec(),
                pause: Duration::from_millis(100),
            },
            Behavior::HugeBulkHeader { trickle: false } => {
                Delivery::SendThenStall(GIB_BULK_HEADER.to_vec())
            }
            Behavior::EndlessSimpleString => Delivery::Stream {
                head: b"+".to_vec(),
                chunk: vec![b'a'; 64 * 1024],
                pause: Duration::ZERO,
            },
            Behavior::EndlessBulkBody => Delivery::Stream {
                head: GIB_BULK_HEADER.to_vec(),
                chunk: vec![b'a'; 64 * 1024],
                pause: Duration::ZERO,
            },
            Behavior::StallMidReply => Delivery::SendThenStall(well_formed[..half].to_vec()),
            Behavior::CloseMidReply => {
                Delivery::SendThenClose(well_formed[..half].to_vec(), Duration::from_millis(100))
            }
            Behavior::PushThenReplies => Delivery::Send(
                [
                    b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n".to_vec(),
                    well_formed,
                ]
                .concat(),
            ),
            Behavior::SlowReply(delay) => Delivery::SendAfter(*delay, well_formed),
            _ => Delivery::Send(batch.iter().flat_map(|&c| self.reply(c, port)).collect()),
        }
    }
}

/// What the fake saw; shared with the connection threads.
#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    open_connections: AtomicUsize,
    polls: AtomicUsize,
    commands: Mutex<Vec<Vec<String>>>,
}

/// A running fake server.
pub struct FakeRedis {
    port: u16,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeRedis {
    /// Binds 127.0.0.1:0 and serves `behavior` until dropped.
    pub fn start(behavior: Behavior) -> FakeRedis {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind fake redis");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let acceptor = {
            let stop = Arc::clone(&stop);
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name(format!("fake-redis-{port}"))
                .spawn(move || accept_loop(listener, port, behavior, stop, stats))
                .expect("spawn fake redis acceptor")
        };
        FakeRedis {
            port,
            stop,
            stats,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`, the exporter's `addr` label for it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Connections the peer has not closed yet (as far as the fake can tell).
    pub fn open_connections(&self) -> usize {
        self.stats.open_connections.load(Ordering::SeqCst)
    }

    /// Complete poll pipelines received.
    pub fn polls(&self) -> usize {
        self.stats.polls.load(Ordering::SeqCst)
    }

    /// Every command received, in order (arguments lossily decoded).
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.stats
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    port: u16,
    behavior: Behavior,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                stats.connections.fetch_add(1, Ordering::SeqCst);
                stats.open_connections.fetch_add(1, Ordering::SeqCst);
                let behavior = behavior.clone();
                let stop = Arc::clone(&stop);
                let stats = Arc::clone(&stats);
                let spawned = std::thread::Builder::new()
                    .name(format!("fake-redis-{port}-conn"))
                    .spawn(move || {
                        serve(stream, port, &behavior, &stop, &stats);
                        stats.open_connections.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Ok(h) = spawned {
                    workers.push(h);
                }
                workers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    for h in workers {
        let _ = h.join();
    }
}

/// Parses one RESP command (`*N` of bulk strings) from the front of `buf`:
/// `Ok(Some((args, used)))`, `Ok(None)` when more bytes are needed, `Err` when it is not RESP.
fn parse_command(buf: &[u8]) -> Result<Option<(Vec<String>, usize)>, ()> {
    fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
        let rel = buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&buf[from..from + rel], from + rel + 2))
    }
    fn number(bytes: &[u8]) -> Result<usize, ()> {
        std::str::from_utf8(bytes)
            .map_err(|_| ())?
            .parse()
            .map_err(|_| ())
    }
    let Some((head, mut pos)) = line(buf, 0) else {
        return Ok(None);
    };
    let Some(n) = head.strip_prefix(b"*") else {
        return Err(());
    };
    let n = number(n)?;
    let mut args = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let Some((len_line, next)) = line(buf, pos) else {
            return Ok(None);
        };
        let len = number(len_line.strip_prefix(b"$").ok_or(())?)?;
        let end = next + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        args.push(String::from_utf8_lossy(&buf[next..end]).into_owned());
        pos = end + 2;
    }
    Ok(Some((args, pos)))
}

/// Writes all of `bytes`, retrying on write timeouts until `stop`. False when the peer is gone.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> bool {
    while !bytes.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        match stream.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads and discards until the peer closes or the server stops.
fn drain_until_closed(stream: &mut TcpStream, stop: &AtomicBool) {
    let mut tmp = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut tmp) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn serve(mut stream: TcpStream, port: u16, behavior: &Behavior, stop: &AtomicBool, stats: &Stats) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(50)));
    let mut buf: Vec<u8> = Vec::new();
    let mut batch: Vec<PollCommand> = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut tmp) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        loop {
            let (args, used) = match parse_command(&buf) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(()) => {
                    let _ = stream.write_all(b"-ERR Protocol error\r\n");
                    return;
                }
            };
            buf.drain(..used);
            stats
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(args.clone());
            let Some(cmd) = poll_command(&args) else {
                let slot_stats = args[0].eq_ignore_ascii_case("CLUSTER")
                    && args
                        .get(1)
                        .is_some_and(|a| a.eq_ignore_ascii_case("SLOT-STATS"));
                let reply: &[u8] = match behavior {
                    Behavior::NoAuth if !args[0].eq_ignore_ascii_case("AUTH") => {
                        b"-NOAUTH Authentication required.\r\n"
                    }
                    _ if slot_stats => {
                        b"-ERR unknown subcommand 'SLOT-STATS'. Try CLUSTER HELP.\r\n"
                    }
                    _ => b"+OK\r\n",
                };
                if !write_all(&mut stream, reply, stop) {
                    return;
                }
                continue;
            };
            batch.push(cmd);
            // The fast part ends with INFO replication, the telemetry part with SLOWLOG GET;
            // CLUSTER NODES alone is the follow-up round trip.
            let complete = matches!(cmd, PollCommand::Info | PollCommand::SlowlogGet)
                || batch == [PollCommand::ClusterNodes];
            if !complete {
                continue;
            }
            let commands = std::mem::take(&mut batch);
            if commands.len() > 1 {
                stats.polls.fetch_add(1, Ordering::SeqCst);
            }
            match behavior.answer(&commands, port) {
                Delivery::Send(bytes) => {
                    if !write_all(&mut stream, &bytes, stop) {
                        return;
                    }
                }
                Delivery::SendAfter(delay, bytes) => {
                    std::thread::sleep(delay);
                    if !write_all(&mut stream, &bytes, stop) {
                        return;
                    }
                }
                Delivery::SendThenClose(bytes, pause) => {
                    let _ = write_all(&mut stream, &bytes, stop);
                    std::thread::sleep(pause);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                Delivery::SendThenStall(bytes) => {
                    if write_all(&mut stream, &bytes, stop) {
                        drain_until_closed(&mut stream, stop);
                    }
                    return;
                }
                Delivery::Stream { head, chunk, pause } => {
                    if !write_all(&mut stream, &head, stop) {
                        return;
                    }
                    loop {
                        if !write_all(&mut stream, &chunk, stop) {
                            return;
                        }
                        if !pause.is_zero() {
                            std::thread::sleep(pause);
                        }
                    }
                }
            }
        }
    }
}
