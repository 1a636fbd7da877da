//! Replication: INFO replication's plain fields from the table, the replica-side families
//! labelled with the master as redis_exporter labels them (`master_host`, `master_port`),
//! each connected replica as its master reports it, and the exporter's own offsets and lag
//! computed from one poll.

use super::table::Area;
use super::{Collector, Context, Families, Labels, OptRow, Row, bool_value, collect_area};
use crate::model::{NodeData, replication_lags};
use crate::parse::info::{ConnectedReplica, Info};
use std::borrow::Cow;

/// The replication collector.
pub struct Replication;

fn master_labels<'a>(a: &'a str, i: &'a Info) -> Labels<'a> {
    vec![
        ("addr", Cow::Borrowed(a)),
        (
            "master_host",
            Cow::Borrowed(i.master_host.as_deref().unwrap_or_default()),
        ),
        (
            "master_port",
            Cow::Owned(i.master_port.map(|p| p.to_string()).unwrap_or_default()),
        ),
    ]
}

fn slave_labels<'a>(a: &'a str, r: &'a ConnectedReplica) -> Labels<'a> {
    vec![
        ("addr", Cow::Borrowed(a)),
        ("slave_ip", Cow::Borrowed(r.ip.as_str())),
        ("slave_port", Cow::Owned(r.port.to_string())),
        ("slave_state", Cow::Borrowed(r.state.as_str())),
    ]
}

/// `(metric, help, value)` of the replica-side families labelled with the master.
const REPLICA_SIDE: &[OptRow<Info>] = &[
    (
        "redis_master_link_up",
        "Replica's link to its master is up",
        |i| i.master_link_up.map(bool_value),
    ),
    (
        "redis_master_last_io_seconds_ago",
        "Seconds since the replica last heard from its master",
        |i| i.master_last_io_seconds_ago,
    ),
    (
        "redis_master_sync_in_progress",
        "Replica is in a full sync with its master",
        |i| i.master_sync_in_progress,
    ),
    (
        "redis_slave_repl_offset",
        "slave_repl_offset: the replica's replication offset",
        |i| i.slave_repl_offset.map(|v| v as f64),
    ),
];

/// `(metric, help, value)` per connected replica as its master reports it.
const PER_REPLICA: &[Row<ConnectedReplica>] = &[
    (
        "redis_connected_slave_offset_bytes",
        "Offset acknowledged by each connected replica, as the master reports it",
        |r| r.offset as f64,
    ),
    (
        "redis_connected_slave_lag_seconds",
        "Seconds since each connected replica last acknowledged, as the master reports it",
        |r| r.lag as f64,
    ),
];

impl Collector for Replication {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        collect_area(Area::Replication, cx, out);
        out.gauge(
            "redis_replication_offset",
            "The node's own replication offset (slave_repl_offset on a replica)",
            cx.per_node(|d| d.info.replication_offset().map(|v| v as f64)),
        );
        let replicas = || cx.answered().filter(|(_, d)| d.info.is_replica());
        for (name, help, f) in REPLICA_SIDE {
            out.gauge(
                name,
                help,
                replicas().filter_map(|(a, d)| Some((master_labels(a, &d.info), f(&d.info)?))),
            );
        }
        out.gauge(
            "redis_slave_info",
            "Replica's master and read-only setting, as redis_exporter labels them",
            replicas().map(|(a, d): (&str, &NodeData)| {
                let mut labels = master_labels(a, &d.info);
                let ro = d.info.slave_read_only.as_deref().unwrap_or_default();
                labels.push(("read_only", Cow::Borrowed(ro)));
                (labels, 1.0)
            }),
        );
        for (name, help, f) in PER_REPLICA {
            out.gauge(
                name,
                help,
                cx.answered().flat_map(|(a, d)| {
                    d.info
                        .replicas
                        .iter()
                        .map(move |r| (slave_labels(a, r), f(r)))
                }),
            );
        }
        let mut lags = replication_lags(cx.snapshot);
        lags.sort();
        lags.dedup_by(|a, b| a.0 == b.0);
        out.gauge(
            "redis_replication_lag_bytes",
            "Master's replication offset minus the replica's, both from the same poll",
            lags.into_iter().map(|(r, m, lag)| {
                (
                    vec![("addr", Cow::Owned(r)), ("master_addr", Cow::Owned(m))],
                    lag as f64,
                )
            }),
        );
    }
}
