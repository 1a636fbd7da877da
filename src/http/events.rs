//! The `/events` HTTP surface: `GET /events` (a JSON array of stored events) and
//! `GET /events/stream` (Server-Sent Events: stored events after a given id, then live ones).
//!
//! Query parameters are validated by hand so that every bad input gets a 400 with a JSON body
//! `{"error": "..."}` naming the parameter. Nothing in a request reaches the filesystem.

use crate::events::kind::EventKind;
use crate::events::store::{Event, EventStore, SharedStore};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 100_000;
/// Longest accepted parameter value (and `Last-Event-ID`), in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// Concurrent `/events/stream` connections; more get 503.
pub const MAX_STREAMS: usize = 64;
/// Interval of the SSE keep-alive comments.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Longest parameter name echoed back in an error message.
const MAX_ECHOED_NAME: usize = 64;

/// State of the event routes.
#[derive(Clone)]
struct ApiState {
    store: SharedStore,
    streams: Arc<Semaphore>,
}

/// Routes: `GET /events` and `GET /events/stream`. Merge it into the main router.
pub fn router(store: SharedStore) -> Router {
    Router::new()
        .route("/events", get(list))
        .route("/events/stream", get(stream))
        .with_state(ApiState {
            store,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        })
}

/// A request the API refuses, rendered as `{"error": message}` with its status.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// Validated query parameters.
#[derive(Debug, Default, PartialEq)]
struct Params {
    since: Option<u64>,
    limit: Option<usize>,
    kind: Option<EventKind>,
}

/// Parses a raw query string, accepting only the parameter names in `allowed`, each at most
/// once.
fn parse_params(raw: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
    let mut params = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let Some(&name) = allowed.iter().find(|a| **a == name) else {
            let shown: String = name.chars().take(MAX_ECHOED_NAME).collect();
            return Err(ApiError::bad_request(format!(
                "unknown parameter {shown:?}; allowed: {}",
                allowed.join(", ")
            )));
        };
        if seen.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "parameter {name:?} given more than once"
            )));
        }
        seen.push(name);
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::bad_request(format!(
                "parameter {name:?} is longer than {MAX_VALUE_CHARS} characters"
            )));
        }
        match name {
            "since" => {
                params.since = Some(parse_digits::<u64>(&value).ok_or_else(|| {
                    ApiError::bad_request("since must be a non-negative integer event id")
                })?);
            }
            "limit" => {
                let limit = parse_digits::<usize>(&value).filter(|n| (1..=MAX_LIMIT).contains(n));
                params.limit = Some(limit.ok_or_else(|| {
                    ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
                })?);
            }
            "kind" => {
                params.kind = Some(EventKind::parse(&value).ok_or_else(|| {
                    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::bad_request(format!("kind must be one of {}", names.join(", ")))
                })?);
            }
            _ => {}
        }
    }
    Ok(params)
}

/// Parses a non-empty string of ASCII digits (no sign, no spaces) that fits a `T`.
fn parse_digits<T: std::str::FromStr>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Locks the store, going on after a panic elsewhere (its data stays consistent: every
/// mutation completes before it becomes visible).
fn lock(store: &SharedStore) -> MutexGuard<'_, EventStore> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `GET /events?since=ID&limit=N&kind=K`.
async fn list(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let params = match parse_params(raw.as_deref(), &["since", "limit", "kind"]) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let events = lock(&state.store).query(params.since, params.limit, params.kind);
    axum::Json(events).into_response()
}

/// `GET /events/stream?since=ID&kind=K`, honouring `Last-Event-ID` (it wins over `since`,
/// being the newer position of a reconnecting client).
async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = match parse_params(raw.as_deref(), &["since", "kind"]) {
        Ok(params) => params,
        Err(e) => return e.into_response(),
    };
    let last_event_id = match last_event_id(&headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let Ok(permit) = Arc::clone(&state.streams).try_acquire_owned() else {
        let mut response = ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("too many concurrent event streams (at most {MAX_STREAMS})"),
        }
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let since = last_event_id.or(params.since);

    // Subscribing and reading the backlog under one lock: an append (which needs the lock)
    // lands either in the backlog or on the subscription, never in neither or both.
    let feed = {
        let store = lock(&state.store);
        Feed {
            rx: store.subscribe(),
            pending: since
                .map(|since| store.query(Some(since), None, params.kind))
                .unwrap_or_default()
                .into(),
            cursor: since.unwrap_or(0).max(store.last_id()),
            kind: params.kind,
            store: Arc::clone(&state.store),
            _permit: permit,
        }
    };
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let message = feed.next_message().await?;
        Some((Ok::<_, Infallible>(message), feed))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
        .into_response();
    // Ask reverse proxies (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The `Last-Event-ID` request header as an event id; absent or empty is `None`.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let bad =
        || ApiError::bad_request("Last-Event-ID header must be a non-negative integer event id");
    let value = value.to_str().map_err(|_| bad())?.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_VALUE_CHARS {
        return Err(bad());
    }
    parse_digits::<u64>(value).map(Some).ok_or_else(bad)
}

/// One SSE connection: the stored backlog first, then live events.
struct Feed {
    rx: broadcast::Receiver<Event>,
    /// Stored events still to send (the backlog, or a replay after lagging).
    pending: VecDeque<Event>,
    /// Highest id already sent or deliberately passed over; live events at or below it are
    /// duplicates of the backlog or replay.
    cursor: u64,
    kind: Option<EventKind>,
    store: SharedStore,
    /// Frees a stream slot when the connection goes away.
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    /// The next SSE message; `None` ends the stream (the store is gone).
    async fn next_message(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if let Some(message) = to_sse(&event) {
                    return Some(message);
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) => {
                    if event.id <= self.cursor {
                        continue;
                    }
                    self.cursor = event.id;
                    if self.kind.is_none_or(|k| event.kind() == k)
                        && let Some(message) = to_sse(&event)
                    {
                        return Some(message);
                    }
                }
                Err(RecvError::Lagged(skipped)) => return Some(self.replay_after_lag(skipped)),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// After the broadcast dropped `skipped` events for this slow client: queues what the
    /// store still holds after the cursor and returns an `event: lagged` message saying so.
    fn replay_after_lag(&mut self, skipped: u64) -> sse::Event {
        let store = lock(&self.store);
        self.pending = store.query(Some(self.cursor), None, self.kind).into();
        self.cursor = self.cursor.max(store.last_id());
        drop(store);
        tracing::warn!(
            skipped,
            replayed = self.pending.len(),
            "event stream client lagged"
        );
        let data = serde_json::json!({
            "skipped_live": skipped,
            "replayed_from_log": self.pending.len(),
        });
        sse::Event::default().event("lagged").data(data.to_string())
    }
}

/// `id: <id>`, `event: <kind>`, `data: <one-line JSON>`; `None` (logged) if it cannot be encoded.
fn to_sse(event: &Event) -> Option<sse::Event> {
    let mut message = sse::Event::default().id(event.id.to_string());
    message = message.event(event.kind().as_str());
    match message.json_data(event) {
        Ok(message) => Some(message),
        Err(e) => {
            tracing::warn!(id = event.id, error = %e, "cannot encode event for the stream");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Params, String> {
        parse_params(Some(raw), &["since", "limit", "kind"]).map_err(|e| e.message)
    }

    #[test]
    fn accepts_valid_parameters() {
        assert_eq!(parse(""), Ok(Params::default()));
        assert_eq!(
            parse("since=5&limit=10&kind=failover"),
            Ok(Params {
                since: Some(5),
                limit: Some(10),
                kind: Some(EventKind::Failover)
            })
        );
        assert_eq!(
            parse("kind=node%5Fpfail").map(|p| p.kind),
            Ok(Some(EventKind::NodePfail))
        );
        assert_eq!(parse("limit=100000").map(|p| p.limit), Ok(Some(100_000)));
        assert_eq!(parse("since=0").map(|p| p.since), Ok(Some(0)));
    }

    #[test]
    fn rejects_bad_parameters_naming_them() {
        for (raw, needle) in [
            ("since=abc", "since"),
            ("since=-1", "since"),
            ("since=+1", "since"),
            ("since=", "since"),
            ("since=99999999999999999999999", "since"),
            ("limit=0", "limit"),
            ("limit=100001", "limit"),
            ("limit=x", "limit"),
            ("kind=nope", "kind"),
            ("kind=FAILOVER", "kind"),
            ("foo=1", "foo"),
            ("since=1&since=2", "since"),
        ] {
            let err = parse(raw).expect_err(raw);
            assert!(err.contains(needle), "{raw}: {err}");
        }
        let long = format!("kind={}", "a".repeat(MAX_VALUE_CHARS + 1));
        assert!(parse(&long).expect_err("long").contains("kind"));
    }

    #[test]
    fn last_event_id_header() {
        let mut headers = HeaderMap::new();
        assert!(matches!(last_event_id(&headers), Ok(None)));
        headers.insert("last-event-id", HeaderValue::from_static("42"));
        assert!(matches!(last_event_id(&headers), Ok(Some(42))));
        headers.insert("last-event-id", HeaderValue::from_static(""));
        assert!(matches!(last_event_id(&headers), Ok(None)));
        headers.insert("last-event-id", HeaderValue::from_static("x1"));
        assert!(last_event_id(&headers).is_err());
    }
}
