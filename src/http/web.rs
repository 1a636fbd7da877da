//! Hardening of the exporter's own HTTP server: the web-config file (TLS and bcrypt basic auth,
//! in the spirit of the Prometheus exporter toolkit), a TLS listener for axum, and bounded request
//! handling (per-request timeout and a concurrency limit).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a request (other than a live event stream) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests handled at once (live event streams have their own limit); more get 503.
pub const MAX_IN_FLIGHT: usize = 256;
/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Verified `Authorization` headers remembered, so bcrypt runs once per client, not per scrape.
const AUTH_CACHE: usize = 1024;

/// The web-config file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// A problem with the web-config file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("--web-config-file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("--web-config-file {path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

/// The loaded web configuration.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// TLS for the HTTP server.
    pub tls: Option<TlsAcceptor>,
    /// User name to bcrypt hash; empty means no authentication.
    pub users: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Loads and checks a web-config file (relative paths are relative to the file's folder).
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let shown = path.display().to_string();
    let invalid = |why: String| WebConfigError::Invalid {
        path: shown.clone(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: WebConfigFile = serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    for (user, hash) in &file.basic_auth_users {
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(invalid(format!(
                "basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nbB user password`)"
            )));
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = match file.tls_server_config {
        None => None,
        Some(t) => {
            let cert_path = base.join(&t.cert_file);
            let key_path = base.join(&t.key_file);
            Some(
                crate::tls::server_acceptor(&cert_path, &key_path)
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
    };
    Ok(WebConfig {
        tls,
        users: Arc::new(file.basic_auth_users),
    })
}

/// Basic-auth state shared by the middleware.
#[derive(Clone)]
pub struct AuthState {
    users: Arc<BTreeMap<String, String>>,
    verified: Arc<Mutex<HashSet<u64>>>,
    hasher: RandomState,
}

impl AuthState {
    /// State for a set of users (name to bcrypt hash).
    pub fn new(users: Arc<BTreeMap<String, String>>) -> Self {
        AuthState {
            users,
            verified: Arc::new(Mutex::new(HashSet::new())),
            hasher: RandomState::new(),
        }
    }

    fn check(&self, value: &HeaderValue) -> bool {
        let key = self.hasher.hash_one(value.as_bytes());
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
        {
            return true;
        }
        let Some(encoded) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        let ok = self
            .users
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false));
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= AUTH_CACHE {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

/// Middleware: requires valid basic-auth credentials when users are configured.
pub async fn require_auth(State(auth): State<AuthState>, request: Request, next: Next) -> Response {
    if auth.users.is_empty() {
        return next.run(request).await;
    }
    let ok = match request.headers().get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.clone();
            let state = auth.clone();
            // bcrypt is deliberately slow: keep it off the async worker threads.
            tokio::task::spawn_blocking(move || state.check(&value))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    if ok {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"redis-cluster-exporter\"",
            )],
            "unauthorized\n",
        )
            .into_response()
    }
}

/// Middleware: a concurrency limit and a timeout for every request except live event streams.
pub async fn bound_requests(
    State(limit): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/events/stream" {
        return next.run(request).await;
    }
    let Ok(_permit) = limit.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight\n",
        )
            .into_response();
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}

/// A listener that terminates TLS; handshakes run concurrently, so a slow client cannot hold
/// up the others.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            accepted: rx,
            local,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            // The accept task ended (it never does while the listener lives): wait forever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
