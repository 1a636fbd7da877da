//! The state the poll loop publishes and the HTTP handlers read: the latest completed poll and,
//! made on first request and shared by every later one, its metrics render in each format asked
//! for and its `/api/cluster` document. Nothing here waits on Redis.

use crate::metrics::{ExporterMetrics, Format, Rendered, gzip, render_with_hint};
use crate::model::Snapshot;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The latest completed poll and, once a request asked for them, its render in each format
/// (indexed by [`Format::index`]) and its overview.
struct Published {
    snapshot: Arc<Snapshot>,
    rendered: [OnceLock<Arc<Rendered>>; 2],
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
    /// Length of the last render in each format: the next one's buffer is sized from it.
    last_len: [AtomicUsize; 2],
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
        let published = Some(Arc::new(Published {
            snapshot,
            rendered: Default::default(),
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

    /// The render of the latest poll in `format`, made by the first caller asking for that
    /// format after the poll and shared by every later (and concurrent) one: at most one render
    /// per poll and format, none for a format nobody asks for. Before the first poll: an empty
    /// render.
    pub fn rendered(&self, format: Format) -> Arc<Rendered> {
        let Some(p) = self.latest() else {
            return Arc::new(Rendered::default());
        };
        Arc::clone(p.rendered[format.index()].get_or_init(|| {
            self.metrics.record_render();
            let last_len = &self.last_len[format.index()];
            let body = render_with_hint(
                &p.snapshot,
                &self.metrics,
                &self.cluster,
                format,
                last_len.load(Ordering::Relaxed),
            );
            last_len.store(body.len(), Ordering::Relaxed);
            Arc::new(Rendered::new(body))
        }))
    }

    /// The render of the latest poll in `format` if a scrape already made it (no CPU work: the
    /// handler serves it without a trip to the blocking pool).
    pub fn rendered_if_made(&self, format: Format) -> Option<Arc<Rendered>> {
        self.latest()?.rendered[format.index()].get().cloned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn publish_empty(shared: &Shared) {
        let snap = Snapshot::new(UNIX_EPOCH, Duration::ZERO, Vec::new());
        shared.publish(Arc::new(snap));
    }

    /// The render count the body itself reports (counted before the render is made).
    fn renders_in(r: &Rendered) -> String {
        let body = std::str::from_utf8(&r.plain).unwrap_or("");
        body.lines()
            .find(|l| l.starts_with("redis_exporter_metrics_renders_total{"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn one_render_per_poll_and_format_and_only_for_formats_asked_for() {
        let shared = Shared::new(ExporterMetrics::default(), "c");
        assert!(
            shared.rendered(Format::Text).plain.is_empty(),
            "no poll yet"
        );
        publish_empty(&shared);
        let text = shared.rendered(Format::Text);
        assert_eq!(renders_in(&text), "1", "the other format was not rendered");
        assert!(Arc::ptr_eq(&text, &shared.rendered(Format::Text)), "shared");
        let om = shared.rendered(Format::OpenMetrics);
        assert_eq!(renders_in(&om), "2");
        assert!(om.plain.ends_with(b"# EOF\n"));
        assert!(Arc::ptr_eq(&om, &shared.rendered(Format::OpenMetrics)));
        assert_eq!(text.gzipped(), shared.rendered(Format::Text).gzipped());
        publish_empty(&shared);
        assert_eq!(
            renders_in(&shared.rendered(Format::Text)),
            "3",
            "a new poll"
        );
        assert_eq!(
            shared.last_len[Format::Text.index()].load(Ordering::Relaxed),
            shared.rendered(Format::Text).plain.len(),
            "the next render's size hint"
        );
    }
}
