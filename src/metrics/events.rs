//! Failover and event metrics: counters by trigger and by kind (every value pre-created at 0
//! so `increase()` sees the first one), the failover duration histogram and the time of the
//! last failover. They accumulate as events are stored.

use super::{Collector, Context, Families, FamilyLabels};
use crate::events::kind::EventKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

type GaugeF = Gauge<f64, AtomicU64>;

/// Failover triggers pre-created at zero.
const TRIGGERS: [&str; 4] = ["automatic", "manual", "force", "takeover"];

/// The event counters and the failover histogram.
#[derive(Clone)]
pub struct EventMetrics {
    failovers: Family<FamilyLabels, Counter>,
    failover_duration: Histogram,
    last_failover: Family<FamilyLabels, GaugeF>,
    events: Family<FamilyLabels, Counter>,
}

impl Default for EventMetrics {
    fn default() -> Self {
        let m = EventMetrics {
            failovers: Family::default(),
            failover_duration: Histogram::new([
                1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            last_failover: Family::default(),
            events: Family::default(),
        };
        for t in TRIGGERS {
            let _ = m.failovers.get_or_create(&vec![("trigger", t.to_string())]);
        }
        for k in EventKind::ALL {
            let _ = m
                .events
                .get_or_create(&vec![("kind", k.as_str().to_string())]);
        }
        m
    }
}

impl EventMetrics {
    /// Accounts one stored event.
    pub fn record(&self, event: &crate::events::store::Event) {
        self.events
            .get_or_create(&vec![("kind", event.kind().as_str().to_string())])
            .inc();
        let Some(failover) = event.details.failover() else {
            return;
        };
        self.failovers
            .get_or_create(&vec![("trigger", failover.trigger.as_str().to_string())])
            .inc();
        if let Some(d) = failover.duration_seconds {
            self.failover_duration.observe(d);
        }
        self.set_last_failover(&event.time);
    }

    /// Sets the last-failover timestamp from an event's RFC 3339 time.
    pub fn set_last_failover(&self, rfc3339: &str) {
        if let Ok(t) = humantime::parse_rfc3339(rfc3339) {
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_failover
                .get_or_create(&FamilyLabels::new())
                .set(secs);
        }
    }
}

/// The events collector.
pub struct Events;

impl Collector for Events {
    fn register(&self, cx: &Context<'_>, reg: &mut Registry) {
        let m = &cx.persistent.events;
        reg.register(
            "redis_cluster_failovers",
            "Failovers detected, by trigger (automatic, manual, force, takeover, unknown)",
            m.failovers.clone(),
        );
        reg.register(
            "redis_cluster_failover_duration_seconds",
            "Time from the old master's first failure seen to the promotion seen",
            m.failover_duration.clone(),
        );
        reg.register(
            "redis_cluster_last_failover_timestamp_seconds",
            "Unix time of the last failover detected",
            m.last_failover.clone(),
        );
        reg.register(
            "redis_cluster_events",
            "Events detected, by kind",
            m.events.clone(),
        );
    }
    /// Nothing per poll: every event metric accumulates.
    fn collect(&self, _cx: &Context<'_>, _out: &mut Families) {}
}
