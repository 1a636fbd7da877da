//! IO to one Redis node: a byte-bounded connection, the one pipelined poll round trip
//! (CLUSTER INFO, CLUSTER NODES, INFO), and the classification of what went wrong.

use crate::model::{FailureReason, PollFailure};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

/// How many reply bytes one node may send within one poll; shared with the stream.
#[derive(Debug, Default)]
struct Budget {
    remaining: AtomicUsize,
    exceeded: AtomicBool,
    /// The transport itself ended (EOF or an IO error) or failed a write.
    closed: AtomicBool,
}

/// A stream that fails once the current budget of read bytes is spent, so a hostile or broken
/// server cannot make the exporter buffer without bound.
struct BoundedStream<S> {
    inner: S,
    budget: Arc<Budget>,
}

impl<S: AsyncRead + Unpin> AsyncRead for BoundedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let remaining = self.budget.remaining.load(Ordering::Relaxed);
        if remaining == 0 {
            self.budget.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other("reply size limit exceeded")));
        }
        let limit = buf.remaining().min(remaining);
        let this = &mut *self;
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit));
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                buf.advance(n);
                this.budget.remaining.fetch_sub(n, Ordering::Relaxed);
                if n == 0 && limit > 0 {
                    this.budget.closed.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.budget.closed.store(true, Ordering::Relaxed);
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoundedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Err(_))) {
            self.budget.closed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The three reply texts of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReplies {
    /// CLUSTER INFO.
    pub cluster_info: String,
    /// CLUSTER NODES, when it was asked for.
    pub cluster_nodes: Option<String>,
    /// INFO.
    pub info: String,
}

/// The INFO sections requested in one call (Redis 7.0+ accepts several).
const INFO_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "replication",
    "stats",
    "keyspace",
];

/// A persistent connection to one node.
pub struct NodeConnection {
    conn: MultiplexedConnection,
    budget: Arc<Budget>,
    /// The server rejected multi-section INFO (Redis < 7): send plain `INFO`.
    legacy_info: bool,
}

fn failure(reason: FailureReason, message: impl Into<String>) -> PollFailure {
    PollFailure {
        reason,
        message: message.into(),
        attempted: true,
    }
}

/// Maps a redis error to a reason. Server error texts never contain the password.
fn classify(err: &redis::RedisError, budget: &Budget) -> PollFailure {
    if budget.exceeded.load(Ordering::Relaxed) {
        return failure(FailureReason::TooLarge, "reply exceeded the size limit");
    }
    let code = err.code().unwrap_or("");
    let text = err.to_string();
    let reason = match code {
        "WRONGPASS" | "NOAUTH" | "NOPERM" => FailureReason::Auth,
        "LOADING" => FailureReason::Loading,
        _ if err.kind() == redis::ErrorKind::AuthenticationFailed => FailureReason::Auth,
        _ if text.contains("cluster support disabled") => FailureReason::NotCluster,
        _ if err.kind() == redis::ErrorKind::Parse => FailureReason::Protocol,
        _ if err.is_timeout() => FailureReason::Timeout,
        // redis-rs drops the connection on a RESP parse error and a pipeline then only sees
        // "broken pipe": when the transport itself did not fail, that is what happened.
        _ if err.is_connection_dropped() && !budget.closed.load(Ordering::Relaxed) => {
            return failure(
                FailureReason::Protocol,
                format!("reply is not valid RESP ({text})"),
            );
        }
        _ if err.is_io_error() || err.is_connection_dropped() => FailureReason::Io,
        _ if err.code().is_some() => FailureReason::ServerError,
        _ => FailureReason::Protocol,
    };
    failure(reason, text)
}

fn text_of(value: Option<Value>) -> Result<String, PollFailure> {
    let Some(value) = value else {
        return Err(failure(FailureReason::Protocol, "pipeline reply too short"));
    };
    match value {
        // Valid UTF-8 (the normal case) is taken as is, without a copy.
        Value::BulkString(bytes) => Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Value::SimpleString(s) => Ok(s),
        Value::VerbatimString { text, .. } => Ok(text),
        Value::ServerError(e) => {
            let err: redis::RedisError = e.into();
            Err(classify(&err, &Budget::default()))
        }
        other => Err(failure(
            FailureReason::Protocol,
            format!("unexpected reply type {}", kind_name(&other)),
        )),
    }
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
    ) -> Result<Self, PollFailure> {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| failure(FailureReason::Connect, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &opts.tls {
            None => Self::establish(tcp, opts).await,
            Some(connector) => {
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    failure(FailureReason::Tls, format!("server name {host:?}: {e}"))
                })?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failure(FailureReason::Tls, format!("TLS handshake: {e}")))?;
                Self::establish(tls, opts).await
            }
        }
    }

    async fn establish<S>(inner: S, opts: &ConnectOptions) -> Result<Self, PollFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let creds = &opts.credentials;
        let budget = Arc::new(Budget::default());
        budget
            .remaining
            .store(opts.max_reply_bytes, Ordering::Relaxed);
        let stream = BoundedStream {
            inner,
            budget: Arc::clone(&budget),
        };
        // No CLIENT SETINFO: the exporter sends only AUTH, CLUSTER INFO, CLUSTER NODES and INFO,
        // so the minimal ACL stays minimal.
        let mut info = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &creds.username {
            info = info.set_username(user);
        }
        if let Some(pass) = &creds.password {
            info = info.set_password(pass);
        }
        // No response timeout of redis-rs' own (500 ms by default): --node-timeout bounds it.
        let (conn, driver) = MultiplexedConnection::new_with_config(
            &info,
            stream,
            AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .map_err(|e| classify(&e, &budget))?;
        tokio::spawn(driver);
        Ok(NodeConnection {
            conn,
            budget,
            legacy_info: false,
        })
    }

    /// Sends CLUSTER INFO, CLUSTER NODES and INFO in one pipelined round trip, allowing at most
    /// `max_reply_bytes` of reply. The caller bounds the time and drops the connection on error.
    pub async fn poll(
        &mut self,
        max_reply_bytes: usize,
        with_nodes: bool,
    ) -> Result<RawReplies, PollFailure> {
        self.budget
            .remaining
            .store(max_reply_bytes, Ordering::Relaxed);
        self.budget.exceeded.store(false, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER").arg("INFO");
        if with_nodes {
            pipe.cmd("CLUSTER").arg("NODES");
        }
        let info_cmd = pipe.cmd("INFO");
        if !self.legacy_info {
            info_cmd.arg(INFO_SECTIONS);
        }
        pipe.ignore_errors();
        let values: Vec<Value> = pipe
            .query_async(&mut self.conn)
            .await
            .map_err(|e| classify(&e, &self.budget))?;
        let mut it = values.into_iter();
        let cluster_info = text_of(it.next())?;
        let cluster_nodes = if with_nodes {
            Some(text_of(it.next())?)
        } else {
            None
        };
        let info = match text_of(it.next()) {
            Ok(t) => t,
            Err(f) if f.reason == FailureReason::ServerError && !self.legacy_info => {
                // Redis 6.x accepts only one INFO section argument: fall back to default INFO.
                self.legacy_info = true;
                let v: Value = redis::cmd("INFO")
                    .query_async(&mut self.conn)
                    .await
                    .map_err(|e| classify(&e, &self.budget))?;
                text_of(Some(v))?
            }
            Err(f) => return Err(f),
        };
        Ok(RawReplies {
            cluster_info,
            cluster_nodes,
            info,
        })
    }

    /// Asks for CLUSTER NODES alone (when CLUSTER INFO showed the topology changed). The budget
    /// of the current poll keeps counting.
    pub async fn cluster_nodes(&mut self) -> Result<String, PollFailure> {
        let v: Value = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.conn)
            .await
            .map_err(|e| classify(&e, &self.budget))?;
        text_of(Some(v))
    }
}

/// Connects when needed and polls, all within `timeout`. CLUSTER NODES is asked for with the
/// others when `with_nodes`, else only when `nodes_needed` says so after seeing CLUSTER INFO (a
/// second round trip, on topology changes only). On any failure the connection is dropped so
/// the next poll starts clean.
pub async fn poll_with_timeout(
    slot: &mut Option<NodeConnection>,
    host: &str,
    port: u16,
    opts: &ConnectOptions,
    timeout: Duration,
    with_nodes: bool,
    nodes_needed: impl FnOnce(&str) -> bool,
) -> Result<RawReplies, PollFailure> {
    let work = async {
        if slot.is_none() {
            *slot = Some(NodeConnection::connect(host, port, opts).await?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(failure(FailureReason::Connect, "no connection"));
        };
        let mut raw = conn.poll(opts.max_reply_bytes, with_nodes).await?;
        if raw.cluster_nodes.is_none() && nodes_needed(&raw.cluster_info) {
            raw.cluster_nodes = Some(conn.cluster_nodes().await?);
        }
        Ok(raw)
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(failure(
            FailureReason::Timeout,
            format!(
                "no complete reply within {}",
                humantime::format_duration(timeout)
            ),
        )),
    };
    if result.is_err() {
        *slot = None;
    }
    result
}
