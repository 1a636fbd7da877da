//! `GET /metrics`: the latest poll's render in the format asked for, classic text or OpenMetrics
//! (made by the first scrape of that format after the poll, shared by every later and concurrent
//! one), gzipped when accepted.

use super::{Shared, accepts_gzip};
use crate::metrics::Format;
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
    let gzip = accepts_gzip(&headers);
    // Nearly every scrape finds its body made: served at once.
    let made = shared
        .rendered_if_made(format)
        .and_then(|r| r.body_if_made(gzip));
    let body = match made {
        Some(body) => body,
        None => match make_body(&shared, format, gzip).await {
            Some(body) => body,
            None => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "render failed\n").into_response();
            }
        },
    };
    let content_type = format.content_type();
    if gzip {
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
/// the async workers. Only the format asked for is rendered, and gzipped only when accepted.
async fn make_body(shared: &Arc<Shared>, format: Format, gzip: bool) -> Option<bytes::Bytes> {
    let renderer = Arc::clone(shared);
    tokio::task::spawn_blocking(move || renderer.rendered(format).body(gzip))
        .await
        .ok()
}
