//! The HTTP layer, all of it: the publish state the poll loop writes ([`Shared`]), `/metrics`
//! ([`metrics`]), the cluster page and its document ([`cluster`]), the events API
//! ([`events`]), the server's own hardening (web config, TLS, basic auth, request bounds:
//! [`web`]), and here `/health`, `/ready`, the landing page and the router of the poll-state
//! routes. Handlers never wait on Redis.

pub mod cluster;
pub mod events;
pub mod metrics;
pub mod shared;
pub mod web;

pub use cluster::CLUSTER_PAGE;
pub use shared::{Overview, Shared};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// Builds the router of the routes that read the poll state (everything but `/events`).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics::metrics))
        .route("/cluster", get(cluster::cluster_page))
        .route("/api/cluster", get(cluster::cluster_api))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(shared)
}

/// True when the client accepts a gzipped body (Prometheus always does).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
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
        "<li><a href=\"/cluster\">/cluster</a>: live topology: shards, slots, flags, lag, memory, recent events</li>",
        "<li><a href=\"/api/cluster\">/api/cluster</a>: the same as one JSON document</li>",
        "<li><a href=\"/events\">/events</a>: failovers and other cluster events (JSON; ?kind=failover, ?since=ID, ?limit=N)</li>",
        "<li><a href=\"/events/stream\">/events/stream</a>: the same, live (Server-Sent Events)</li>",
        "<li><a href=\"/health\">/health</a>: liveness</li>",
        "<li><a href=\"/ready\">/ready</a>: 200 once the first poll completed</li>",
        "</ul></body></html>"
    ))
}
