//! The state the poll loop publishes and the HTTP handlers read: the latest completed poll and,
//! made on first request and shared by every later one, its metrics body in each format and
//! encoding asked for and its `/api/cluster` document. Nothing here waits on Redis.

use crate::metrics::{Encoding, ExporterMetrics, Format, gzip, render_with_hint};
use crate::model::Snapshot;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Largest poll (in nodes) whose /metrics body is rendered on the async worker itself. A 6-node
/// render takes about 1.3 ms; in a profile, handing it to the blocking pool and back (a thread
/// woken, then parked again) was a fifth of the scrape's samples (docs/performance.md).
pub const INLINE_RENDER_MAX_NODES: usize = 16;

/// The latest completed poll and, once a request asked for them, its body in each format and
/// encoding (indexed by [`slot`]) and its overview.
struct Published {
    snapshot: Arc<Snapshot>,
    bodies: [OnceLock<Bytes>; 4],
    /// The bodies of the poll before this one that scrapes made: what a scrape gets while
    /// another one is making this poll's (at 100 nodes a render takes about 25 ms).
    previous: [Option<Bytes>; 4],
    /// Set by the first scrape that starts making this poll's body in each slot.
    making: [AtomicBool; 4],
    overview: OnceLock<Arc<Overview>>,
}

/// The place of a format and encoding in per-body arrays.
fn slot(format: Format, encoding: Encoding) -> usize {
    format.index() * 2 + encoding.index()
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
    /// Length of the last body in each format and encoding: the next one's buffer is sized
    /// from it.
    last_len: [AtomicUsize; 4],
}

impl Shared {
    /// Shared state rendering with these accumulating metrics and `cluster` label.
    pub fn new(metrics: ExporterMetrics, cluster: &str) -> Self {
        Shared {
            latest: RwLock::new(None),
            ready: AtomicBool::new(false),
            metrics,
            cluster: cluster.to_string(),
            last_len: Default::default(),
        }
    }

    /// Publishes a completed poll and marks the exporter ready. Nothing is rendered until a
    /// scrape asks: a 1 s poll under a 15 s scrape renders once per scrape, not 15 times.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        let mut guard = match self.latest.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Only the bodies of the poll just before: never older ones.
        let previous = match guard.as_ref() {
            Some(old) => std::array::from_fn(|i| old.bodies[i].get().cloned()),
            None => Default::default(),
        };
        let old = guard.replace(Arc::new(Published {
            snapshot,
            bodies: Default::default(),
            previous,
            making: Default::default(),
            overview: OnceLock::new(),
        }));
        drop(guard);
        // The old poll (a snapshot of every node) is freed after readers are let in again.
        drop(old);
        self.ready.store(true, Ordering::Release);
    }

    fn latest(&self) -> Option<Arc<Published>> {
        match self.latest.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The body of the latest poll in `format` and `encoding`, made by the first caller asking
    /// for it after the poll and shared by every later (and concurrent) one: at most one render
    /// per poll, format and encoding, none for one nobody asks for. A gzipped body is compressed
    /// as it is rendered (the plain text never exists whole), or from the plain body if a scrape
    /// of this poll already made that. Before the first poll: empty.
    pub fn body(&self, format: Format, encoding: Encoding) -> Bytes {
        let Some(p) = self.latest() else {
            return Bytes::new();
        };
        let plain = p.bodies[slot(format, Encoding::Plain)].get();
        if let (Encoding::Gzip, Some(plain)) = (encoding, plain) {
            return p.bodies[slot(format, encoding)]
                .get_or_init(|| gzip(plain))
                .clone();
        }
        p.making[slot(format, encoding)].store(true, Ordering::Release);
        p.bodies[slot(format, encoding)]
            .get_or_init(|| {
                self.metrics.record_render();
                let last_len = &self.last_len[slot(format, encoding)];
                let body = render_with_hint(
                    &p.snapshot,
                    &self.metrics,
                    &self.cluster,
                    format,
                    encoding,
                    last_len.load(Ordering::Relaxed),
                );
                last_len.store(body.len(), Ordering::Relaxed);
                body
            })
            .clone()
    }

    /// A body to serve without waiting (no CPU work: the handler serves it without a trip to the
    /// blocking pool): the latest poll's if made, else, while another scrape
    /// is making it, the previous poll's (one poll interval older) if a scrape made that. `None`:
    /// the caller makes the body ([`Shared::body`]). Concurrent scrapes so never queue behind a
    /// render, and only the scrape that renders pays for it.
    pub fn body_ready(&self, format: Format, encoding: Encoding) -> Option<Bytes> {
        let p = self.latest()?;
        let i = slot(format, encoding);
        if let Some(body) = p.bodies[i].get() {
            return Some(body.clone());
        }
        if p.making[i].load(Ordering::Acquire) {
            return p.previous[i].clone();
        }
        None
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

    /// True when the latest poll is small enough (at most [`INLINE_RENDER_MAX_NODES`] nodes)
    /// for its body to be made on the async worker that asked: a render of a few milliseconds
    /// costs less there than the hand-off to the blocking pool and back.
    pub fn renders_inline(&self) -> bool {
        self.latest()
            .is_some_and(|p| p.snapshot.observations.len() <= INLINE_RENDER_MAX_NODES)
    }

    /// True once the first poll completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn publish_empty(shared: &Shared) {
        let snap = Snapshot::new(UNIX_EPOCH, Duration::ZERO, Vec::new());
        shared.publish(Arc::new(snap));
    }

    /// The render count the body itself reports (counted before the render is made).
    fn renders_in(body: &[u8]) -> String {
        let body = std::str::from_utf8(body).unwrap_or("");
        body.lines()
            .find(|l| l.starts_with("redis_exporter_metrics_renders_total{"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let read = flate2::read::GzDecoder::new(body).read_to_end(&mut out);
        assert!(read.is_ok(), "a gzip stream");
        out
    }

    #[test]
    fn one_render_per_poll_format_and_encoding_and_only_for_those_asked_for() {
        let shared = Shared::new(ExporterMetrics::default(), "c");
        let body = |f, e| shared.body(f, e);
        assert!(
            body(Format::Text, Encoding::Plain).is_empty(),
            "no poll yet"
        );
        publish_empty(&shared);
        let text = body(Format::Text, Encoding::Plain);
        assert_eq!(renders_in(&text), "1", "the other format was not rendered");
        let again = body(Format::Text, Encoding::Plain);
        assert_eq!(text.as_ptr(), again.as_ptr(), "shared");
        let om = body(Format::OpenMetrics, Encoding::Plain);
        assert_eq!(renders_in(&om), "2");
        assert!(om.ends_with(b"# EOF\n"));
        let text_gz = body(Format::Text, Encoding::Gzip);
        assert_eq!(
            gunzip(&text_gz),
            text,
            "compressed from the plain body, not rendered again"
        );
        publish_empty(&shared);
        let gz = body(Format::OpenMetrics, Encoding::Gzip);
        let unzipped = gunzip(&gz);
        assert_eq!(
            renders_in(&unzipped),
            "3",
            "a new poll, rendered into the compressor"
        );
        assert!(unzipped.ends_with(b"# EOF\n"));
        let made = shared.body_ready(Format::OpenMetrics, Encoding::Gzip);
        assert_eq!(made.map(|b| b.as_ptr()), Some(gz.as_ptr()), "shared");
        assert!(
            shared
                .body_ready(Format::OpenMetrics, Encoding::Plain)
                .is_none(),
            "the plain body of this poll was not made"
        );
        assert_eq!(
            shared.last_len[slot(Format::OpenMetrics, Encoding::Gzip)].load(Ordering::Relaxed),
            gz.len(),
            "the next render's size hint"
        );
    }

    #[test]
    fn while_one_scrape_renders_the_others_get_the_previous_polls_body() {
        let shared = Shared::new(ExporterMetrics::default(), "c");
        let (f, e) = (Format::Text, Encoding::Gzip);
        publish_empty(&shared);
        assert!(
            shared.body_ready(f, e).is_none(),
            "nothing made: the caller renders"
        );
        let first = shared.body(f, e);
        assert_eq!(
            shared.body_ready(f, e).map(|b| b.as_ptr()),
            Some(first.as_ptr())
        );
        publish_empty(&shared);
        assert!(
            shared.body_ready(f, e).is_none(),
            "nobody is rendering this poll: the caller does"
        );
        let p = shared.latest().expect("published");
        p.making[slot(f, e)].store(true, Ordering::Release);
        assert_eq!(
            shared.body_ready(f, e).map(|b| b.as_ptr()),
            Some(first.as_ptr()),
            "another scrape is rendering: the previous poll's body"
        );
        assert!(
            shared.body_ready(Format::OpenMetrics, e).is_none(),
            "not for a format the previous poll never made"
        );
        let second = shared.body(f, e);
        assert_eq!(renders_in(&gunzip(&second)), "2");
        assert_eq!(
            shared.body_ready(f, e).map(|b| b.as_ptr()),
            Some(second.as_ptr())
        );
        publish_empty(&shared);
        publish_empty(&shared);
        let p = shared.latest().expect("published");
        p.making[slot(f, e)].store(true, Ordering::Release);
        assert!(
            shared.body_ready(f, e).is_none(),
            "a poll nobody scraped in between: no body older than one poll is served"
        );
    }
}
