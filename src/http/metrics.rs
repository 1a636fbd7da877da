//! `GET /metrics`: the latest poll's render (made by the first scrape after the poll, shared by
//! every later and concurrent one) in classic text or OpenMetrics, gzipped when accepted.

use super::{Shared, accepts_gzip};
use crate::metrics::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// True when the `Accept` header asks for OpenMetrics.
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
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
