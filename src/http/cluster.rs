//! `GET /cluster` (the live topology page, one self-contained HTML file compiled in) and
//! `GET /api/cluster` (its JSON document, built once per poll on first request; see
//! [`crate::overview`]).

use super::{Shared, accepts_gzip};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The cluster page, served as is (inline CSS and JavaScript, no outside assets).
pub const CLUSTER_PAGE: &str = include_str!("cluster.html");

pub(super) async fn cluster_page() -> Response {
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

pub(super) async fn cluster_api(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
