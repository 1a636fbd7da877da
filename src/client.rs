//! IO to one Redis node: a byte-bounded connection, the one pipelined poll round trip (CLUSTER
//! INFO, CLUSTER NODES, INFO replication; plus INFO all, CONFIG GET, LATENCY LATEST, SLOWLOG and
//! CLUSTER SLOT-STATS when the slower telemetry tier is due) over a RESP connection of its own
//! (the replies are read into one buffer per connection, framed by `parse::resp`; a bulk string
//! is taken as it is, anything else decoded by redis-rs' value parser), and the classification
//! of what went wrong.

use crate::parse::resp::{bulk_payload, frame_len};
use crate::parse::slot_stats::{SlotMetric, SlotStats, parse_slot_stats};
use bytes::BufMut;
use redis::Value;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// Credentials used for every node.
#[derive(Clone, Default)]
pub struct Credentials {
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Everything needed to open a connection to any node of the cluster.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Credentials for every node.
    pub credentials: Credentials,
    /// TLS (for `rediss://` seeds): every discovered node is reached with the same settings.
    pub tls: Option<TlsConnector>,
    /// Largest reply one node may send in one poll.
    pub max_reply_bytes: usize,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("credentials", &self.credentials)
            .field("tls", &self.tls.is_some())
            .field("max_reply_bytes", &self.max_reply_bytes)
            .finish()
    }
}

/// The byte stream to one node: TCP, or TLS over TCP.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Capacity of a connection's read buffer between polls. A buffer that grew past
/// [`KEEP_BUFFER`] for a large reply (CLUSTER NODES of a large cluster, INFO all) is given back
/// once the reply is read, so N persistent connections do not each keep the largest reply they
/// ever saw.
const INITIAL_BUFFER: usize = 4 * 1024;
/// Largest read buffer kept between polls.
const KEEP_BUFFER: usize = 16 * 1024;
/// Smallest read asked of the socket while a reply is incomplete.
const MIN_READ: usize = 8 * 1024;

/// The commands of one round trip, encoded as RESP arrays of bulk strings.
#[derive(Default)]
struct Pipeline {
    bytes: Vec<u8>,
    count: usize,
}

impl Pipeline {
    fn cmd(&mut self, args: &[&str]) -> &mut Self {
        self.header(b'*', args.len());
        for a in args {
            self.header(b'$', a.len());
            self.bytes.extend_from_slice(a.as_bytes());
            self.bytes.extend_from_slice(b"\r\n");
        }
        self.count += 1;
        self
    }

    /// `<kind><n>\r\n`, written in place (no formatted string per argument).
    fn header(&mut self, kind: u8, n: usize) {
        use std::io::Write;
        self.bytes.push(kind);
        // Writing to a Vec cannot fail.
        let _ = write!(self.bytes, "{n}\r\n");
    }
}

/// The reply texts of one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReplies {
    /// CLUSTER INFO.
    pub cluster_info: String,
    /// CLUSTER NODES, when it was asked for.
    pub cluster_nodes: Option<String>,
    /// INFO replication.
    pub info: String,
    /// The slower telemetry, when it was due.
    pub stats: Option<RawStats>,
}

/// The replies of the slower telemetry tier. A refused or failed command costs only its part.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStats {
    /// `INFO all`.
    pub info: Result<String, ClientError>,
    /// `CONFIG GET maxmemory maxclients io-threads` as name/value pairs.
    pub config: Result<Vec<(String, String)>, ClientError>,
    /// `LATENCY LATEST`: event name, Unix time of its latest spike, that spike's milliseconds.
    pub latency_latest: Result<Vec<(String, i64, i64)>, ClientError>,
    /// `SLOWLOG LEN`.
    pub slowlog_len: Result<i64, ClientError>,
    /// `SLOWLOG GET 1`: id and duration (µs) of the newest entry.
    pub slowlog_last: Result<Option<(i64, i64)>, ClientError>,
    /// `CLUSTER SLOT-STATS ORDERBY <metric> LIMIT <n>`, one per metric asked for; empty when
    /// not asked for or the server does not know the command.
    pub slot_stats: Vec<(SlotMetric, Result<SlotStats, ClientError>)>,
}

/// What one poll asks for beyond the fast path's CLUSTER INFO and INFO replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// CLUSTER NODES in the pipeline.
    pub nodes: bool,
    /// The telemetry tier (INFO all, CONFIG GET, LATENCY LATEST, SLOWLOG).
    pub stats: bool,
    /// With the telemetry tier: the top this many slots by each CLUSTER SLOT-STATS metric the
    /// server offers (`None`: not asked for, e.g. of a replica).
    pub hot_slots: Option<u16>,
}

/// What the server on this connection offers of CLUSTER SLOT-STATS, learned from its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum SlotStatsSupport {
    /// Key counts (the only metric before a reply showed more).
    #[default]
    KeyCount,
    /// The last key-count reply carried CPU and network fields too
    /// (`cluster-slot-stats-enabled yes`): order by each of them as well.
    All,
    /// The server does not know the command (Redis before 8.2, Valkey before 8): not asked
    /// again on this connection; a new connection (a restart, an upgrade) asks again.
    Unsupported,
}

/// The CONFIG parameters the metrics read (redis_exporter's `redis_config_*`).
pub const CONFIG_KEYS: &[&str] = &["maxmemory", "maxclients", "io-threads"];

/// A persistent connection to one node.
pub struct NodeConnection {
    stream: Box<dyn Transport>,
    /// Reply bytes read and not yet decoded; see [`KEEP_BUFFER`].
    buf: Vec<u8>,
    /// Reply bytes the current poll may still read.
    remaining: usize,
    /// The server answered CONFIG GET with several keys with an error (Redis < 7): ask one key
    /// per command.
    legacy_config: bool,
    /// What the server offers of CLUSTER SLOT-STATS.
    slot_stats: SlotStatsSupport,
}

/// What went wrong talking to one node. The poller maps it to the model's failure reason; the
/// client knows nothing of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    /// The category.
    pub kind: ErrorKind,
    /// Human-readable detail (server error texts and IO errors; never a secret).
    pub message: String,
}

/// The category of a [`ClientError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP (or TLS) connection could not be established.
    Connect,
    /// No complete reply within the timeout.
    Timeout,
    /// Authentication failed or is required (`WRONGPASS`, `NOAUTH`).
    Auth,
    /// The reply was not valid RESP or not of the expected shape.
    Protocol,
    /// The server answered that cluster support is disabled.
    NotCluster,
    /// The reply exceeded the size bound.
    TooLarge,
    /// The server is loading its dataset (`LOADING`).
    Loading,
    /// Any other error reply from the server.
    ServerError,
    /// The connection broke mid-reply.
    Io,
    /// The TLS handshake failed.
    Tls,
    /// The ACL user may not run the command (`NOPERM`).
    NoPerm,
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> ClientError {
    ClientError {
        kind,
        message: message.into(),
    }
}

/// Maps an error reply to a category. Server error texts never contain the password.
fn server_failure(e: &redis::ServerError) -> ClientError {
    let code = e.code();
    let text = match e.details() {
        Some(d) => format!("{code} {d}"),
        None => code.to_string(),
    };
    let kind = match code {
        "WRONGPASS" | "NOAUTH" => ErrorKind::Auth,
        // A refused command after a successful AUTH: on the fast path the exporter cannot work
        // (reported as auth, as before); on the telemetry tier only that part is missing.
        "NOPERM" => ErrorKind::NoPerm,
        "LOADING" => ErrorKind::Loading,
        _ if text.contains("cluster support disabled") => ErrorKind::NotCluster,
        _ => ErrorKind::ServerError,
    };
    failure(kind, text)
}

/// A failure of the transport (a write or read error).
fn io_failure(e: &std::io::Error) -> ClientError {
    failure(ErrorKind::Io, e.to_string())
}

/// Bytes that are not RESP.
fn not_resp(detail: impl std::fmt::Display) -> ClientError {
    failure(
        ErrorKind::Protocol,
        format!("reply is not valid RESP ({detail})"),
    )
}

fn text_of(value: Option<Value>) -> Result<String, ClientError> {
    match value {
        // Valid UTF-8 (the normal case) is taken as is, without a copy.
        Some(Value::BulkString(bytes)) => Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Some(Value::SimpleString(s)) => Ok(s),
        Some(Value::VerbatimString { text, .. }) => Ok(text),
        other => Err(unexpected(other)),
    }
}

/// A refused command on the fast path means the exporter cannot watch this node at all.
fn fast_path(mut f: ClientError) -> ClientError {
    if f.kind == ErrorKind::NoPerm {
        f.kind = ErrorKind::Auth;
    }
    f
}

/// A failure for a reply of the wrong shape (or an error reply, classified).
fn unexpected(value: Option<Value>) -> ClientError {
    match value {
        Some(Value::ServerError(e)) => server_failure(&e),
        Some(other) => failure(
            ErrorKind::Protocol,
            format!("unexpected reply type {}", kind_name(&other)),
        ),
        None => failure(ErrorKind::Protocol, "pipeline reply too short"),
    }
}

/// A string-ish RESP value as text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// CONFIG GET's reply: a flat array of name, value (RESP2) or a map (RESP3).
fn config_pairs(value: Option<Value>) -> Result<Vec<(String, String)>, ClientError> {
    let pairs: Vec<(String, String)> = match value {
        Some(Value::Array(items)) => items
            .chunks_exact(2)
            .filter_map(|kv| Some((scalar_text(kv.first()?)?, scalar_text(kv.get(1)?)?)))
            .collect(),
        Some(Value::Map(items)) => items
            .iter()
            .filter_map(|(k, v)| Some((scalar_text(k)?, scalar_text(v)?)))
            .collect(),
        other => return Err(unexpected(other)),
    };
    Ok(pairs)
}

/// Most LATENCY LATEST events read (Redis has about a dozen event kinds).
const MAX_LATENCY_EVENTS: usize = 64;

/// LATENCY LATEST's reply: an array of `[event, unix time, latest ms, max ms, ...]`.
fn latency_events(value: Option<Value>) -> Result<Vec<(String, i64, i64)>, ClientError> {
    let entries = match value {
        Some(Value::Array(entries)) => entries,
        other => return Err(unexpected(other)),
    };
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    Ok(entries
        .iter()
        .take(MAX_LATENCY_EVENTS)
        .filter_map(|e| match e {
            Value::Array(f) => Some((scalar_text(f.first()?)?, int(f.get(1))?, int(f.get(2))?)),
            _ => None,
        })
        .collect())
}

/// SLOWLOG GET 1's reply: an array of at most one entry `[id, time, duration_us, args, ...]`.
fn slowlog_entry(value: Option<Value>) -> Result<Option<(i64, i64)>, ClientError> {
    let entries = match value {
        Some(Value::Array(entries)) => entries,
        other => return Err(unexpected(other)),
    };
    let Some(first) = entries.into_iter().next() else {
        return Ok(None);
    };
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    match &first {
        Value::Array(fields) => match (int(fields.first()), int(fields.get(2))) {
            (Some(id), Some(us)) => Ok(Some((id, us))),
            _ => Err(failure(ErrorKind::Protocol, "malformed SLOWLOG entry")),
        },
        _ => Err(unexpected(Some(first))),
    }
}

/// An error reply saying the server does not know a command or subcommand.
fn unknown_command(e: &redis::ServerError) -> bool {
    let text = e.details().unwrap_or("").to_ascii_lowercase();
    e.code() == "ERR" && (text.contains("unknown subcommand") || text.contains("unknown command"))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Set(_) => "set",
        _ => "other",
    }
}

impl NodeConnection {
    /// Connects to `host:port` (over TLS when configured) and authenticates. The caller bounds
    /// the time.
    pub async fn connect(
        host: &str,
        port: u16,
        opts: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| failure(ErrorKind::Connect, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &opts.tls {
            None => Self::establish(tcp, opts).await,
            Some(connector) => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| failure(ErrorKind::Tls, format!("server name {host:?}: {e}")))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failure(ErrorKind::Tls, format!("TLS handshake: {e}")))?;
                Self::establish(tls, opts).await
            }
        }
    }

    async fn establish<S>(inner: S, opts: &ConnectOptions) -> Result<Self, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut conn = NodeConnection {
            stream: Box::new(inner),
            buf: Vec::with_capacity(INITIAL_BUFFER),
            remaining: opts.max_reply_bytes,
            legacy_config: false,
            slot_stats: SlotStatsSupport::default(),
        };
        // Nothing but AUTH at connect (no CLIENT SETINFO, no HELLO: RESP2): the exporter sends
        // only AUTH, CLUSTER INFO, CLUSTER NODES, INFO, CONFIG GET, LATENCY LATEST, SLOWLOG and
        // CLUSTER SLOT-STATS, so the minimal ACL stays minimal.
        let creds = &opts.credentials;
        if let Some(pass) = &creds.password {
            let mut pipe = Pipeline::default();
            match &creds.username {
                Some(user) => pipe.cmd(&["AUTH", user, pass]),
                None => pipe.cmd(&["AUTH", pass]),
            };
            let reply = conn.round_trip(&pipe).await?.into_iter().next();
            match reply {
                Some(Value::Okay | Value::SimpleString(_)) => {}
                Some(Value::ServerError(e)) => {
                    let mut f = server_failure(&e);
                    f.kind = ErrorKind::Auth;
                    return Err(f);
                }
                other => return Err(unexpected(other)),
            }
        }
        Ok(conn)
    }

    /// Sends the pipeline and reads one reply per command (error replies included, as values).
    async fn round_trip(&mut self, pipe: &Pipeline) -> Result<Vec<Value>, ClientError> {
        self.stream
            .write_all(&pipe.bytes)
            .await
            .map_err(|e| io_failure(&e))?;
        self.stream.flush().await.map_err(|e| io_failure(&e))?;
        let result = self.read_replies(pipe.count).await;
        // Whatever else is buffered answers nothing that was asked: dropped. A buffer that grew
        // for a large reply is given back.
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::with_capacity(INITIAL_BUFFER);
        }
        result
    }

    /// Reads `count` replies, skipping out-of-band push frames. Each reply is decoded once, when
    /// its last byte has arrived.
    async fn read_replies(&mut self, count: usize) -> Result<Vec<Value>, ClientError> {
        let mut values = Vec::with_capacity(count);
        let mut pos = 0;
        while values.len() < count {
            let rest = self.buf.get(pos..).unwrap_or_default();
            let Some(len) = frame_len(rest).map_err(not_resp)? else {
                self.fill().await?;
                continue;
            };
            let frame = rest.get(..len).unwrap_or_default();
            // A bulk string (the shape of nearly every reply) is taken as it is; anything else
            // goes through redis-rs' decoder.
            let value = match bulk_payload(frame) {
                Some(payload) => Value::BulkString(payload.to_vec()),
                None => redis::parse_redis_value(frame).map_err(not_resp)?,
            };
            pos += len;
            if !matches!(value, Value::Push { .. }) {
                values.push(value);
            }
        }
        Ok(values)
    }

    /// Reads more reply bytes, within the poll's budget.
    async fn fill(&mut self) -> Result<(), ClientError> {
        if self.remaining == 0 {
            return Err(failure(
                ErrorKind::TooLarge,
                "reply exceeded the size limit",
            ));
        }
        self.buf
            .reserve(self.buf.len().max(MIN_READ).min(self.remaining));
        let limit = self
            .remaining
            .min(self.buf.capacity().saturating_sub(self.buf.len()));
        let n = self
            .stream
            .read_buf(&mut (&mut self.buf).limit(limit))
            .await
            .map_err(|e| io_failure(&e))?;
        if n == 0 {
            return Err(failure(
                ErrorKind::Io,
                "connection closed by the server before the reply was complete",
            ));
        }
        self.remaining = self.remaining.saturating_sub(n);
        Ok(())
    }

    /// Sends CLUSTER INFO, CLUSTER NODES (when `ask.nodes`), INFO replication and, when
    /// `ask.stats`, the telemetry tier, in one pipelined round trip allowing at most
    /// `max_reply_bytes` of reply. The caller bounds the time and drops the connection on error.
    pub async fn poll(
        &mut self,
        max_reply_bytes: usize,
        ask: Ask,
    ) -> Result<RawReplies, ClientError> {
        let (with_nodes, with_stats) = (ask.nodes, ask.stats);
        // The top this many slots by each metric the server offers (none: not asked for).
        let hot = ask.hot_slots.filter(|_| with_stats).unwrap_or(0);
        let slot_metrics = self.slot_metrics(hot);
        self.remaining = max_reply_bytes;
        let mut pipe = Pipeline {
            bytes: Vec::with_capacity(256),
            count: 0,
        };
        pipe.cmd(&["CLUSTER", "INFO"]);
        if with_nodes {
            pipe.cmd(&["CLUSTER", "NODES"]);
        }
        pipe.cmd(&["INFO", "replication"]);
        if with_stats {
            self.push_stats(&mut pipe, &slot_metrics, hot);
        }
        let values = self.round_trip(&pipe).await?;
        let mut it = values.into_iter();
        let cluster_info = text_of(it.next()).map_err(fast_path)?;
        let cluster_nodes = if with_nodes {
            Some(text_of(it.next()).map_err(fast_path)?)
        } else {
            None
        };
        let info = text_of(it.next()).map_err(fast_path)?;
        let stats = with_stats.then(|| {
            let mut stats = self.stats_of(&mut it);
            stats.slot_stats = self.slot_stats_of(&mut it, &slot_metrics, usize::from(hot));
            stats
        });
        Ok(RawReplies {
            cluster_info,
            cluster_nodes,
            info,
            stats,
        })
    }

    /// Adds the telemetry tier's commands to the pipeline, CLUSTER SLOT-STATS (the top `hot`
    /// slots by each of `slot_metrics`) last.
    fn push_stats(&self, pipe: &mut Pipeline, slot_metrics: &[SlotMetric], hot: u16) {
        pipe.cmd(&["INFO", "all"]);
        if self.legacy_config {
            for key in CONFIG_KEYS {
                pipe.cmd(&["CONFIG", "GET", key]);
            }
        } else {
            let mut args = vec!["CONFIG", "GET"];
            args.extend_from_slice(CONFIG_KEYS);
            pipe.cmd(&args);
        }
        pipe.cmd(&["LATENCY", "LATEST"]);
        pipe.cmd(&["SLOWLOG", "LEN"]);
        pipe.cmd(&["SLOWLOG", "GET", "1"]);
        let limit = hot.to_string();
        for m in slot_metrics {
            pipe.cmd(&[
                "CLUSTER",
                "SLOT-STATS",
                "ORDERBY",
                m.field(),
                "LIMIT",
                &limit,
            ]);
        }
    }

    /// Reads the telemetry tier's replies off the pipeline's results.
    fn stats_of(&mut self, it: &mut impl Iterator<Item = Value>) -> RawStats {
        let info = text_of(it.next());
        let config = if self.legacy_config {
            let mut pairs = Vec::new();
            let mut result = Ok(());
            for _ in CONFIG_KEYS {
                match config_pairs(it.next()) {
                    Ok(p) => pairs.extend(p),
                    Err(e) => result = Err(e),
                }
            }
            result.map(|()| pairs)
        } else {
            let r = config_pairs(it.next());
            if matches!(&r, Err(f) if f.kind == ErrorKind::ServerError) {
                // Redis < 7 takes one parameter per CONFIG GET: from the next poll on, ask so.
                self.legacy_config = true;
            }
            r
        };
        let latency_latest = latency_events(it.next());
        let slowlog_len = match it.next() {
            Some(Value::Int(n)) => Ok(n),
            other => Err(unexpected(other)),
        };
        let slowlog_last = slowlog_entry(it.next());
        RawStats {
            info,
            config,
            latency_latest,
            slowlog_len,
            slowlog_last,
            slot_stats: Vec::new(),
        }
    }

    /// The CLUSTER SLOT-STATS metrics to order by this poll: none when not asked for (`hot` 0)
    /// or not supported, key counts, and CPU and network too when the server keeps them.
    fn slot_metrics(&self, hot: u16) -> Vec<SlotMetric> {
        match (hot, self.slot_stats) {
            (0, _) | (_, SlotStatsSupport::Unsupported) => Vec::new(),
            (_, SlotStatsSupport::KeyCount) => vec![SlotMetric::KeyCount],
            (_, SlotStatsSupport::All) => SlotMetric::ALL.to_vec(),
        }
    }

    /// Reads the CLUSTER SLOT-STATS replies (one per metric in `asked`, key counts first) and
    /// learns from them what the server offers: an unknown command is no failure, only absent
    /// (and not asked again on this connection); the key-count reply shows whether CPU and
    /// network are kept, and when they just stopped being kept their errors are dropped.
    fn slot_stats_of(
        &mut self,
        it: &mut impl Iterator<Item = Value>,
        asked: &[SlotMetric],
        limit: usize,
    ) -> Vec<(SlotMetric, Result<SlotStats, ClientError>)> {
        let mut out = Vec::with_capacity(asked.len());
        for &metric in asked {
            let result = match it.next() {
                Some(Value::ServerError(e)) if unknown_command(&e) => {
                    self.slot_stats = SlotStatsSupport::Unsupported;
                    return Vec::new();
                }
                Some(v @ Value::Array(_)) => parse_slot_stats(&v, limit)
                    .map_err(|e| failure(ErrorKind::Protocol, format!("CLUSTER SLOT-STATS: {e}"))),
                other => Err(unexpected(other)),
            };
            out.push((metric, result));
        }
        if let Some((SlotMetric::KeyCount, Ok(keys))) = out.first()
            && !keys.slots.is_empty()
        {
            let all = keys.has(SlotMetric::CpuUsec);
            self.slot_stats = if all {
                SlotStatsSupport::All
            } else {
                SlotStatsSupport::KeyCount
            };
            if !all {
                out.retain(|(m, r)| *m == SlotMetric::KeyCount || r.is_ok());
            }
        }
        out
    }

    /// Asks for CLUSTER NODES alone (when CLUSTER INFO showed the topology changed). The budget
    /// of the current poll keeps counting.
    pub async fn cluster_nodes(&mut self) -> Result<String, ClientError> {
        let mut pipe = Pipeline::default();
        pipe.cmd(&["CLUSTER", "NODES"]);
        let v = self.round_trip(&pipe).await.map_err(fast_path)?;
        text_of(v.into_iter().next()).map_err(fast_path)
    }
}

/// Connects when needed and polls. The telemetry tier is asked for when `ask.stats`; CLUSTER
/// NODES with the others when `ask.nodes`, else only when `nodes_needed` says so after seeing
/// CLUSTER INFO (a second round trip, on topology changes only). On any failure the connection
/// is dropped so the next poll starts clean. The caller bounds the time: the poller runs a whole
/// round under one timer (see `poller::until_deadline`), and calls [`timed_out`] for a node cut
/// off by it.
pub async fn poll_node(
    slot: &mut Option<NodeConnection>,
    host: &str,
    port: u16,
    opts: &ConnectOptions,
    ask: Ask,
    nodes_needed: impl FnOnce(&str) -> bool,
) -> Result<RawReplies, ClientError> {
    let work = async {
        if slot.is_none() {
            *slot = Some(NodeConnection::connect(host, port, opts).await?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(failure(ErrorKind::Connect, "no connection"));
        };
        let mut raw = conn.poll(opts.max_reply_bytes, ask).await?;
        if raw.cluster_nodes.is_none() && nodes_needed(&raw.cluster_info) {
            raw.cluster_nodes = Some(conn.cluster_nodes().await?);
        }
        Ok(raw)
    };
    let result = work.await;
    if result.is_err() {
        *slot = None;
    }
    result
}

/// The failure of a node whose poll did not complete within `timeout`; its connection, left in
/// the middle of a reply, is dropped.
pub fn timed_out(slot: &mut Option<NodeConnection>, timeout: Duration) -> ClientError {
    *slot = None;
    failure(
        ErrorKind::Timeout,
        format!(
            "no complete reply within {}",
            humantime::format_duration(timeout)
        ),
    )
}
