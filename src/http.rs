//! The HTTP surface: `/metrics` (cached render of the latest poll), `/health`, `/ready` and the
//! landing page. Handlers never wait on Redis.

use crate::metrics::{OPENMETRICS_CONTENT_TYPE, Rendered, TEXT_CONTENT_TYPE};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// State shared between the poll loop (writer) and the HTTP handlers (readers).
#[derive(Default)]
pub struct Shared {
    rendered: RwLock<Arc<Rendered>>,
    ready: AtomicBool,
}

impl Shared {
    /// Publishes the render of a completed poll and marks the exporter ready.
    pub fn publish(&self, rendered: Rendered) {
        let rendered = Arc::new(rendered);
        match self.rendered.write() {
            Ok(mut guard) => *guard = rendered,
            Err(poisoned) => *poisoned.into_inner() = rendered,
        }
        self.ready.store(true, Ordering::Release);
    }

    /// The latest render.
    pub fn rendered(&self) -> Arc<Rendered> {
        match self.rendered.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// True once the first poll completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Builds the router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(shared)
}

/// True when the `Accept` header asks for OpenMetrics.
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// True when the client accepts a gzipped body (Prometheus always does).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            parts
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        })
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let rendered = shared.rendered();
    let openmetrics = wants_openmetrics(&headers);
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    if accepts_gzip(&headers) {
        let body = rendered.gzipped(openmetrics);
        return (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "Accept-Encoding"),
            ],
            body,
        )
            .into_response();
    }
    let body = if openmetrics {
        rendered.openmetrics.clone()
    } else {
        rendered.text.clone()
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first poll\n",
        )
            .into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>redis-cluster-exporter</title></head>",
        "<body><h1>redis-cluster-exporter ",
        env!("CARGO_PKG_VERSION"),
        "</h1><ul>",
        "<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics of every node</li>",
        "<li><a href=\"/events\">/events</a>: failovers and other cluster events (JSON; ?kind=failover, ?since=ID, ?limit=N)</li>",
        "<li><a href=\"/events/stream\">/events/stream</a>: the same, live (Server-Sent Events)</li>",
        "<li><a href=\"/health\">/health</a>: liveness</li>",
        "<li><a href=\"/ready\">/ready</a>: 200 once the first poll completed</li>",
        "</ul></body></html>"
    ))
}
