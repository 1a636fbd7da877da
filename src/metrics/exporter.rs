//! The exporter's own metrics: the accumulating ones (poll duration histogram, failed polls by
//! reason, and the event metrics of [`super::events`]) held across polls in
//! [`ExporterMetrics`], and the per-poll ones read from the snapshot (each node's last poll
//! duration, the time of the last round, the build).

use super::events::EventMetrics;
use super::{Collector, Context, Families, FamilyLabels, Labels, addr};
use crate::model::Snapshot;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::time::UNIX_EPOCH;

/// Metrics that accumulate across polls.
#[derive(Clone)]
pub struct ExporterMetrics {
    poll_duration: Histogram,
    node_poll_errors: Family<FamilyLabels, Counter>,
    renders: Counter,
    /// Failover and event counters.
    pub events: EventMetrics,
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        ExporterMetrics {
            poll_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            node_poll_errors: Family::default(),
            renders: Counter::default(),
            events: EventMetrics::default(),
        }
    }
}

impl ExporterMetrics {
    /// Accounts one stored event.
    pub fn record_event(&self, event: &crate::events::store::Event) {
        self.events.record(event);
    }

    /// Sets the last-failover timestamp from an event's RFC 3339 time (also used at start from
    /// the stored log).
    pub fn set_last_failover(&self, rfc3339: &str) {
        self.events.set_last_failover(rfc3339);
    }

    /// Accounts one render of `/metrics` (at most one per poll, format and encoding, and only
    /// when scraped).
    pub fn record_render(&self) {
        self.renders.inc();
    }

    /// Accounts one completed poll round: its duration, every failed node poll, and every
    /// part of a node's telemetry that failed while the poll itself succeeded.
    pub fn record(&self, snapshot: &Snapshot) {
        self.poll_duration.observe(snapshot.duration.as_secs_f64());
        for obs in snapshot.observations.values() {
            let failures = match &obs.result {
                Err(f) if f.attempted => std::slice::from_ref(f),
                Err(_) => &[],
                Ok(d) => d.soft_failures.as_slice(),
            };
            for f in failures {
                self.node_poll_errors
                    .get_or_create(&vec![
                        ("addr", obs.addr.clone()),
                        ("reason", f.reason.as_str().to_string()),
                    ])
                    .inc();
            }
        }
    }
}

/// The exporter-self collector.
pub struct Exporter;

impl Collector for Exporter {
    fn register(&self, cx: &Context<'_>, reg: &mut Registry) {
        let m = cx.persistent;
        reg.register(
            "redis_exporter_poll_duration_seconds",
            "Wall time of one poll round over every node",
            m.poll_duration.clone(),
        );
        reg.register(
            "redis_exporter_node_poll_errors",
            "Failed polls of a node, and failed parts of its telemetry, by reason",
            m.node_poll_errors.clone(),
        );
        reg.register(
            "redis_exporter_metrics_renders",
            "Renders of /metrics: at most one per poll, format and encoding, made by the first scrape asking for them after it",
            m.renders.clone(),
        );
        reg.register(
            "redis_exporter_build",
            "Exporter version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
    }

    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        let snap = cx.snapshot;
        out.gauge(
            "redis_exporter_node_poll_duration_seconds",
            "Wall time of the last poll of the node",
            snap.observations
                .values()
                .map(|o| (addr(&o.addr), o.duration.as_secs_f64())),
        );
        let ts = snap
            .time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        out.gauge(
            "redis_exporter_last_poll_timestamp_seconds",
            "Unix time at which the last completed poll round started",
            [(Labels::new(), ts)],
        );
    }
}
