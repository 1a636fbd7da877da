//! `GET /metrics`: the latest poll's render in the format asked for, classic text or OpenMetrics,
//! gzipped when accepted (made by the first scrape of that format and encoding after the poll,
//! shared by every later and concurrent one).

use super::{Shared, accepts_gzip};
use crate::metrics::{Encoding, Format};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// OpenMetrics when the `Accept` header asks for it, else the classic text format.
fn format_asked(headers: &HeaderMap) -> Format {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let format = format_asked(&headers);
    let encoding = if accepts_gzip(&headers) {
        Encoding::Gzip
    } else {
        Encoding::Plain
    };
    // Nearly every scrape finds its body made, or being made by another scrape: served at once.
    let body = match shared.body_ready(format, encoding) {
        Some(body) => body,
        None => match make_body(&shared, format, encoding).await {
            Some(body) => body,
            None => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "render failed\n").into_response();
            }
        },
    };
    let content_type = format.content_type();
    if encoding == Encoding::Gzip {
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
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Renders (and compresses) the body, which is CPU work (milliseconds at hundreds of nodes), off
/// the async workers, unless the poll is small enough for that to cost more than the render
/// ([`Shared::renders_inline`]). Only the format and encoding asked for are made.
async fn make_body(
    shared: &Arc<Shared>,
    format: Format,
    encoding: Encoding,
) -> Option<bytes::Bytes> {
    if shared.renders_inline() {
        return Some(shared.body(format, encoding));
    }
    let renderer = Arc::clone(shared);
    tokio::task::spawn_blocking(move || renderer.body(format, encoding))
        .await
        .ok()
}
