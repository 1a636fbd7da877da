//! The HTTP surface: `/metrics` (rendered from the latest poll on the first scrape after it,
//! then served from that render), the cluster page `/cluster` and its document `/api/cluster`
//! (built the same way, once per poll), `/health`, `/ready` and the landing page. Handlers never
//! wait on Redis.

use crate::metrics::{
    ExporterMetrics, OPENMETRICS_CONTENT_TYPE, Rendered, TEXT_CONTENT_TYPE, gzip, render,
};
use crate::model::Snapshot;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The cluster page, served as is (inline CSS and JavaScript, no outside assets).
pub const CLUSTER_PAGE: &str = include_str!("cluster.html");

/// The latest completed poll and, once a request asked for them, its render and its overview.
struct Published {
    snapshot: Arc<Snapshot>,
    rendered: OnceLock<Arc<Rendered>>,
    overview: OnceLock<Arc<Overview>>,
}

/// The `/api/cluster` document of one poll, as JSON and (on first use) gzipped.
pub struct Overview {
    /// The JSON body.
    pub json: Bytes,
    gzipped: OnceLock<Bytes>,
}

impl Overview {
    /// The gzipped body (compressed once per poll, on first use).
    pub fn gzipped(&self) -> Bytes {
        self.gzipped.get_or_init(|| gzip(&self.json)).clone()
    }
}

/// State shared between the poll loop (writer) and the HTTP handlers (readers).
pub struct Shared {
    latest: RwLock<Option<Arc<Published>>>,
    ready: AtomicBool,
    metrics: ExporterMetrics,
    cluster: String,
}

impl Shared {
    /// Shared state rendering with these accumulating metrics and `cluster` label.
    pub fn new(metrics: ExporterMetrics, cluster: &str) -> Self {
        Shared {
            latest: RwLock::new(None),
            ready: AtomicBool::new(false),
            metrics,
            cluster: cluster.to_string(),
        }
    }

    /// Publishes a completed poll and marks the exporter ready. Nothing is rendered until a
    /// scrape asks: a 1 s poll under a 15 s scrape renders once per scrape, not 15 times.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        let published = Some(Arc::new(Published {
            snapshot,
            rendered: OnceLock::new(),
            overview: OnceLock::new(),
        }));
        match self.latest.write() {
            Ok(mut guard) => *guard = published,
            Err(poisoned) => *poisoned.into_inner() = published,
        }
        self.ready.store(true, Ordering::Release);
    }

    fn latest(&self) -> Option<Arc<Published>> {
        match self.latest.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The render of the latest poll, made by the first caller after that poll and shared by
    /// every later (and concurrent) one. Before the first poll: an empty render.
    pub fn rendered(&self) -> Arc<Rendered> {
        match self.latest() {
            Some(p) => Arc::clone(p.rendered.get_or_init(|| {
                self.metrics.record_render();
                Arc::new(render(&p.snapshot, &self.metrics, &self.cluster))
            })),
            None => Arc::new(Rendered::default()),
        }
    }

    /// The `/api/cluster` document of the latest poll, built by the first caller after that
    /// poll and shared by every later one; `None` before the first poll.
    pub fn overview(&self) -> Option<Arc<Overview>> {
        let p = self.latest()?;
        Some(Arc::clone(p.overview.get_or_init(|| {
            let doc = crate::overview::build(&p.snapshot, &self.cluster);
            Arc::new(Overview {
                json: crate::overview::to_json(&doc).into(),
                gzipped: OnceLock::new(),
            })
        })))
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
        .route("/cluster", get(cluster_page))
        .route("/api/cluster", get(cluster_api))
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
    // Rendering is CPU work (milliseconds at hundreds of nodes): off the async workers.
    let renderer = Arc::clone(&shared);
    let rendered = match tokio::task::spawn_blocking(move || renderer.rendered()).await {
        Ok(r) => r,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "render failed\n").into_response(),
    };
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

async fn cluster_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything the page needs is in the page; nothing else may run or load.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CLUSTER_PAGE,
    )
        .into_response()
}

async fn cluster_api(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // Building it is CPU work at a thousand nodes: off the async workers.
    let builder = Arc::clone(&shared);
    let overview = match tokio::task::spawn_blocking(move || builder.overview()).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            let body = serde_json::json!({ "error": "waiting for the first poll" }).to_string();
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "build failed\n").into_response(),
    };
    let json = (header::CONTENT_TYPE, "application/json");
    let no_cache = (header::CACHE_CONTROL, "no-cache");
    if accepts_gzip(&headers) {
        return (
            [
                json,
                no_cache,
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "Accept-Encoding"),
            ],
            overview.gzipped(),
        )
            .into_response();
    }
    ([json, no_cache], overview.json.clone()).into_response()
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
