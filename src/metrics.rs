//! Renders a snapshot as Prometheus metrics with `prometheus-client`: OpenMetrics as the crate
//! writes it, and the classic text format derived from it for clients that do not ask for
//! OpenMetrics. Rendering happens once per poll; `/metrics` only serves the cached bytes.

use crate::model::{Role, Snapshot, replication_lags};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

/// Label set of one series.
pub type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Content type of the classic text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Failover triggers pre-created at zero, so `increase()` sees the first failover.
const TRIGGERS: [&str; 4] = ["automatic", "manual", "force", "takeover"];

/// Metrics that accumulate across polls (the exporter's own counters and histograms, and the
/// failover/event counters).
#[derive(Clone)]
pub struct ExporterMetrics {
    poll_duration: Histogram,
    node_poll_errors: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    failover_duration: Histogram,
    last_failover: Family<Labels, GaugeF>,
    events: Family<Labels, Counter>,
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        let m = ExporterMetrics {
            poll_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            node_poll_errors: Family::default(),
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
        for k in crate::events::store::KINDS {
            let _ = m.events.get_or_create(&vec![("kind", k.to_string())]);
        }
        m
    }
}

impl ExporterMetrics {
    /// Accounts one stored event.
    pub fn record_event(&self, event: &crate::events::store::Event) {
        self.events
            .get_or_create(&vec![("kind", event.kind.clone())])
            .inc();
        if event.kind != "failover" {
            return;
        }
        let trigger = event
            .details
            .get("trigger")
            .and_then(|t| t.as_str())
            .unwrap_or("unknown")
            .to_string();
        self.failovers
            .get_or_create(&vec![("trigger", trigger)])
            .inc();
        if let Some(d) = event
            .details
            .get("duration_seconds")
            .and_then(|d| d.as_f64())
        {
            self.failover_duration.observe(d);
        }
        self.set_last_failover(&event.time);
    }

    /// Sets the last-failover timestamp from an event's RFC 3339 time (also used at start from
    /// the stored log).
    pub fn set_last_failover(&self, rfc3339: &str) {
        if let Ok(t) = humantime::parse_rfc3339(rfc3339) {
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_failover.get_or_create(&Labels::new()).set(secs);
        }
    }

    /// Accounts one completed poll round: its duration and every failed node poll.
    pub fn record(&self, snapshot: &Snapshot) {
        self.poll_duration.observe(snapshot.duration.as_secs_f64());
        for obs in snapshot.observations.values() {
            if let Err(f) = &obs.result
                && f.attempted
            {
                self.node_poll_errors
                    .get_or_create(&vec![
                        ("addr", obs.addr.clone()),
                        ("reason", f.reason.as_str().to_string()),
                    ])
                    .inc();
            }
        }
    }

    fn register(&self, reg: &mut Registry) {
        reg.register(
            "redis_exporter_poll_duration_seconds",
            "Wall time of one poll round over every node",
            self.poll_duration.clone(),
        );
        reg.register(
            "redis_exporter_node_poll_errors",
            "Failed polls of a node, by reason",
            self.node_poll_errors.clone(),
        );
        reg.register(
            "redis_cluster_failovers",
            "Failovers detected, by trigger (automatic, manual, force, takeover, unknown)",
            self.failovers.clone(),
        );
        reg.register(
            "redis_cluster_failover_duration_seconds",
            "Time from the old master's first failure seen to the promotion seen",
            self.failover_duration.clone(),
        );
        reg.register(
            "redis_cluster_last_failover_timestamp_seconds",
            "Unix time of the last failover detected",
            self.last_failover.clone(),
        );
        reg.register(
            "redis_cluster_events",
            "Events detected, by kind",
            self.events.clone(),
        );
        reg.register(
            "redis_exporter_build",
            "Exporter version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
    }
}

/// The rendered output of one snapshot in both formats.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// OpenMetrics text.
    pub openmetrics: bytes::Bytes,
    /// Classic Prometheus text format.
    pub text: bytes::Bytes,
    /// Gzipped copies, made by the first scrape that asks for one and shared by the rest.
    gzipped: [std::sync::OnceLock<bytes::Bytes>; 2],
}

impl Rendered {
    /// The gzipped body of one format (compressed once per poll, on first use).
    pub fn gzipped(&self, openmetrics: bool) -> bytes::Bytes {
        let (cell, plain) = if openmetrics {
            (&self.gzipped[1], &self.openmetrics)
        } else {
            (&self.gzipped[0], &self.text)
        };
        cell.get_or_init(|| {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(plain.len() / 8),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(plain);
            gz.finish().unwrap_or_default().into()
        })
        .clone()
    }
}

/// Collects samples per family and registers each family once.
struct Builder<'a> {
    reg: &'a mut Registry,
}

/// Values read from Redis for one family, encoded in the order given. Unlike a live `Family`
/// there is no hashing, locking or atomic per series: the set is built once per poll. Callers
/// give each label set once (series keyed by a view member's address are deduplicated first).
#[derive(Debug)]
struct Samples {
    counter: bool,
    samples: Vec<(Labels, f64)>,
}

impl EncodeMetric for Samples {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, value) in &self.samples {
            let mut series = encoder.encode_family(labels)?;
            if self.counter {
                series.encode_counter::<NoLabelSet, f64, f64>(&value.max(0.0), None)?;
            } else {
                series.encode_gauge(value)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        if self.counter {
            MetricType::Counter
        } else {
            MetricType::Gauge
        }
    }

    fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

impl Builder<'_> {
    fn gauge(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, f64)>) {
        let samples = samples.into_iter().collect();
        self.reg.register(
            name,
            help,
            Samples {
                counter: false,
                samples,
            },
        );
    }

    fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let samples = samples.into_iter().collect();
        self.reg.register(
            name,
            help,
            Samples {
                counter: true,
                samples,
            },
        );
    }
}

fn addr(a: &str) -> Labels {
    vec![("addr", a.to_string())]
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// Builds the registry for one snapshot and renders it in both formats.
pub fn render(snapshot: &Snapshot, persistent: &ExporterMetrics, cluster: &str) -> Rendered {
    let mut reg = Registry::with_labels(std::iter::once((
        Cow::Borrowed("cluster"),
        Cow::Owned(cluster.to_string()),
    )));
    persistent.register(&mut reg);
    let mut out = Builder { reg: &mut reg };
    let obs: Vec<_> = snapshot.observations.values().collect();
    let ok: Vec<_> = obs
        .iter()
        .filter_map(|o| Some((o.addr.as_str(), o.data()?)))
        .collect();

    out.gauge(
        "redis_up",
        "Whether the node answered the last poll",
        obs.iter().map(|o| (addr(&o.addr), b(o.result.is_ok()))),
    );
    out.gauge(
        "redis_exporter_node_poll_duration_seconds",
        "Wall time of the last poll of the node",
        obs.iter()
            .map(|o| (addr(&o.addr), o.duration.as_secs_f64())),
    );
    let ts = snapshot
        .time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    out.gauge(
        "redis_exporter_last_poll_timestamp_seconds",
        "Unix time at which the last completed poll round started",
        [(Labels::new(), ts)],
    );

    // CLUSTER INFO, as each node sees it.
    let ci = |f: fn(&crate::parse::cluster_info::ClusterInfo) -> f64| {
        ok.iter()
            .map(move |(a, d)| (addr(a), f(&d.cluster_info)))
            .collect::<Vec<_>>()
    };
    out.gauge(
        "redis_cluster_state",
        "cluster_state as the node sees it (1 ok, 0 fail)",
        ci(|c| b(c.state_ok)),
    );
    out.gauge(
        "redis_cluster_slots_assigned",
        "Slots assigned to some master, as the node sees it",
        ci(|c| c.slots_assigned as f64),
    );
    out.gauge(
        "redis_cluster_slots_ok",
        "Slots whose master is not failing, as the node sees it",
        ci(|c| c.slots_ok as f64),
    );
    out.gauge(
        "redis_cluster_slots_pfail",
        "Slots whose master the node suspects (PFAIL)",
        ci(|c| c.slots_pfail as f64),
    );
    out.gauge(
        "redis_cluster_slots_fail",
        "Slots whose master the cluster agreed has failed (FAIL)",
        ci(|c| c.slots_fail as f64),
    );
    out.gauge(
        "redis_cluster_known_nodes",
        "Nodes the node knows, handshaking ones included",
        ci(|c| c.known_nodes as f64),
    );
    out.gauge(
        "redis_cluster_size",
        "Masters serving at least one slot, as the node sees it",
        ci(|c| c.size as f64),
    );
    out.gauge(
        "redis_cluster_current_epoch",
        "The node's current epoch",
        ci(|c| c.current_epoch as f64),
    );
    out.gauge(
        "redis_cluster_my_epoch",
        "The config epoch of the node (a replica shows its master's)",
        ci(|c| c.my_epoch as f64),
    );
    out.counter(
        "redis_cluster_messages_sent",
        "Cluster bus messages sent by the node",
        ci(|c| c.messages_sent as f64),
    );
    out.counter(
        "redis_cluster_messages_received",
        "Cluster bus messages received by the node",
        ci(|c| c.messages_received as f64),
    );

    // CLUSTER NODES, the derived cluster-wide view.
    let view = &snapshot.view;
    let node_addr = |n: &crate::model::ViewNode| n.addr.clone().unwrap_or_default();
    out.gauge(
        "redis_cluster_node_info",
        "One series per cluster member with its id, role and master id",
        view.nodes.values().map(|n| {
            (
                vec![
                    ("addr", node_addr(n)),
                    ("node_id", n.id.clone()),
                    ("role", n.role.as_str().to_string()),
                    ("master_id", n.master_id.clone().unwrap_or_default()),
                ],
                1.0,
            )
        }),
    );
    // Members without a known address (noaddr) cannot be told apart by `addr`: they appear in
    // redis_cluster_node_info (with node_id) only.
    // One member per address: a node reset at the same address (new id) can linger under its
    // old id until forgotten; the one that answers (or is not failed) keeps the address.
    let mut addressed: Vec<&crate::model::ViewNode> =
        view.nodes.values().filter(|n| n.addr.is_some()).collect();
    addressed.sort_by_key(|n| (n.addr.clone(), !n.reachable, n.is_failed()));
    addressed.dedup_by(|a, b| a.addr == b.addr);
    out.gauge(
        "redis_cluster_node_slots",
        "Slots the member owns in the cluster-wide slot map",
        addressed
            .iter()
            .map(|n| (addr(&node_addr(n)), f64::from(n.slot_count()))),
    );
    out.gauge(
        "redis_cluster_node_failure_reports",
        "How many reachable nodes flag the member as failing (state pfail: fail?, fail: fail)",
        addressed.iter().flat_map(|n| {
            [
                (
                    vec![("addr", node_addr(n)), ("state", "pfail".to_string())],
                    n.pfail_reporters.len() as f64,
                ),
                (
                    vec![("addr", node_addr(n)), ("state", "fail".to_string())],
                    n.fail_reporters.len() as f64,
                ),
            ]
        }),
    );
    out.gauge(
        "redis_cluster_node_config_epoch",
        "Config epoch of the member",
        addressed
            .iter()
            .map(|n| (addr(&node_addr(n)), n.config_epoch as f64)),
    );
    out.gauge(
        "redis_cluster_open_slots",
        "Slots the node is migrating away or importing, from its own CLUSTER NODES line",
        view.nodes.values().filter(|n| n.reachable).flat_map(|n| {
            [
                (
                    vec![("addr", node_addr(n)), ("state", "migrating".to_string())],
                    n.migrating as f64,
                ),
                (
                    vec![("addr", node_addr(n)), ("state", "importing".to_string())],
                    n.importing as f64,
                ),
            ]
        }),
    );
    let count_role = |r: Role| view.nodes.values().filter(|n| n.role == r).count() as f64;
    out.gauge(
        "redis_cluster_nodes",
        "Cluster members by role",
        [Role::Master, Role::Replica]
            .map(|r| (vec![("role", r.as_str().to_string())], count_role(r))),
    );
    out.gauge(
        "redis_cluster_masters_without_replica",
        "Masters owning slots with no healthy replica",
        [(Labels::new(), view.masters_without_replica as f64)],
    );
    out.gauge(
        "redis_cluster_config_consistent",
        "1 when every reachable node maps every slot to the same master",
        [(Labels::new(), b(view.consistent))],
    );
    out.gauge(
        "redis_cluster_slots_uncovered",
        "Slots with no owner, or whose owner is flagged fail or does not answer",
        [(Labels::new(), f64::from(view.uncovered_slots))],
    );

    // INFO.
    let inf = |f: fn(&crate::parse::info::Info) -> Option<f64>| {
        ok.iter()
            .filter_map(move |(a, d)| Some((addr(a), f(&d.info)?)))
            .collect::<Vec<_>>()
    };
    out.gauge(
        "redis_memory_used_bytes",
        "used_memory",
        inf(|i| i.used_memory),
    );
    out.gauge(
        "redis_memory_used_rss_bytes",
        "used_memory_rss",
        inf(|i| i.used_memory_rss),
    );
    out.gauge(
        "redis_memory_used_peak_bytes",
        "used_memory_peak",
        inf(|i| i.used_memory_peak),
    );
    out.gauge(
        "redis_memory_max_bytes",
        "maxmemory (0: no limit)",
        inf(|i| i.maxmemory),
    );
    out.gauge(
        "redis_mem_fragmentation_ratio",
        "mem_fragmentation_ratio",
        inf(|i| i.mem_fragmentation_ratio),
    );
    out.gauge(
        "redis_connected_slaves",
        "connected_slaves",
        inf(|i| i.connected_slaves),
    );
    out.gauge(
        "redis_master_repl_offset",
        "master_repl_offset",
        inf(|i| i.master_repl_offset.map(|v| v as f64)),
    );
    out.gauge(
        "redis_replication_offset",
        "The node's own replication offset (slave_repl_offset on a replica)",
        inf(|i| i.replication_offset().map(|v| v as f64)),
    );
    out.gauge(
        "redis_master_link_up",
        "Replica's link to its master is up",
        inf(|i| i.master_link_up.map(b)),
    );
    out.gauge(
        "redis_master_last_io_seconds_ago",
        "Seconds since the replica last heard from its master",
        inf(|i| {
            if i.is_replica() {
                i.master_last_io_seconds_ago
            } else {
                None
            }
        }),
    );
    out.gauge(
        "redis_master_sync_in_progress",
        "Replica is in a full sync with its master",
        inf(|i| {
            if i.is_replica() {
                i.master_sync_in_progress
            } else {
                None
            }
        }),
    );
    let slave_labels = |a: &str, r: &crate::parse::info::ConnectedReplica| {
        vec![
            ("addr", a.to_string()),
            ("slave_ip", r.ip.clone()),
            ("slave_port", r.port.to_string()),
            ("slave_state", r.state.clone()),
        ]
    };
    out.gauge(
        "redis_connected_slave_offset_bytes",
        "Offset acknowledged by each connected replica, as the master reports it",
        ok.iter().flat_map(|(a, d)| {
            d.info
                .replicas
                .iter()
                .map(move |r| (slave_labels(a, r), r.offset as f64))
        }),
    );
    out.gauge(
        "redis_connected_slave_lag_seconds",
        "Seconds since each connected replica last acknowledged, as the master reports it",
        ok.iter().flat_map(|(a, d)| {
            d.info
                .replicas
                .iter()
                .map(move |r| (slave_labels(a, r), r.lag as f64))
        }),
    );
    out.gauge(
        "redis_replication_lag_bytes",
        "Master's replication offset minus the replica's, both from the same poll",
        {
            let mut lags = replication_lags(snapshot);
            lags.sort();
            lags.dedup_by(|a, b| a.0 == b.0);
            lags.into_iter()
                .map(|(r, m, lag)| (vec![("addr", r), ("master_addr", m)], lag as f64))
        },
    );
    out.gauge(
        "redis_connected_clients",
        "connected_clients",
        inf(|i| i.connected_clients),
    );
    out.counter(
        "redis_commands_processed",
        "total_commands_processed",
        inf(|i| i.total_commands_processed),
    );
    out.gauge(
        "redis_uptime_in_seconds",
        "uptime_in_seconds",
        inf(|i| i.uptime_in_seconds),
    );
    out.gauge(
        "redis_db_keys",
        "Keys per database",
        ok.iter().flat_map(|(a, d)| {
            d.info.keyspace.iter().map(move |k| {
                (
                    vec![("addr", a.to_string()), ("db", k.db.clone())],
                    k.keys as f64,
                )
            })
        }),
    );
    out.gauge(
        "redis_db_keys_expiring",
        "Keys with an expiry per database",
        ok.iter().flat_map(|(a, d)| {
            d.info.keyspace.iter().map(move |k| {
                (
                    vec![("addr", a.to_string()), ("db", k.db.clone())],
                    k.expires as f64,
                )
            })
        }),
    );
    out.gauge(
        "redis_instance_info",
        "Server information, as redis_exporter labels it",
        ok.iter().map(|(a, d)| {
            let i = &d.info;
            (
                vec![
                    ("addr", a.to_string()),
                    ("maxmemory_policy", i.maxmemory_policy.clone()),
                    ("os", i.os.clone()),
                    ("process_id", i.process_id.clone()),
                    ("redis_build_id", i.redis_build_id.clone()),
                    ("redis_mode", i.redis_mode.clone()),
                    ("redis_version", i.redis_version.clone()),
                    ("role", i.role.clone()),
                    ("run_id", i.run_id.clone()),
                    ("tcp_port", i.tcp_port.clone()),
                ],
                1.0,
            )
        }),
    );

    let mut openmetrics = String::with_capacity(64 * 1024);
    // Writing to a String cannot fail.
    let _ = encode(&mut openmetrics, &reg);
    let text = to_classic_text(&openmetrics);
    Rendered {
        openmetrics: openmetrics.into(),
        text: text.into(),
        gzipped: Default::default(),
    }
}

/// Converts prometheus-client's OpenMetrics output to the classic text format: no `# EOF` or
/// `# UNIT`, counters' HELP/TYPE on the `_total` sample name, `info` families as gauges.
pub fn to_classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, help)) = rest.split_once(' ') {
                pending_help = Some((name, help));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let Some((name, kind)) = rest.split_once(' ') else {
                continue;
            };
            let (name, kind): (Cow<str>, &str) = match kind {
                "counter" => (format!("{name}_total").into(), "counter"),
                "info" => (format!("{name}_info").into(), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.into(), "untyped"),
                k => (name.into(), k),
            };
            if let Some((help_name, help)) = pending_help.take()
                && Some(help_name) == rest.split_once(' ').map(|(n, _)| n)
            {
                out.push_str("# HELP ");
                out.push_str(&name);
                out.push(' ');
                out.push_str(help);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_conversion() {
        let om = "# HELP a_x Some help.\n# TYPE a_x counter\na_x_total{l=\"1\"} 3\n# HELP b Build.\n# TYPE b info\nb_info{version=\"1\"} 1\n# HELP c_bytes C.\n# TYPE c_bytes gauge\n# UNIT c_bytes bytes\nc_bytes 1\n# EOF\n";
        let text = to_classic_text(om);
        assert_eq!(
            text,
            "# HELP a_x_total Some help.\n# TYPE a_x_total counter\na_x_total{l=\"1\"} 3\n# HELP b_info Build.\n# TYPE b_info gauge\nb_info{version=\"1\"} 1\n# HELP c_bytes C.\n# TYPE c_bytes gauge\nc_bytes 1\n"
        );
    }
}
