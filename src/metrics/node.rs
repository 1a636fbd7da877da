//! Node state: whether each node answered, its identity (`redis_instance_info`, as
//! redis_exporter labels it), its start time, INFO server and cluster fields, and the CONFIG
//! values redis_exporter publishes (`redis_config_*`).

use super::table::Area;
use super::{Collector, Context, Families, OptRow, addr, bool_value, collect_area};
use crate::model::ConfigValues;
use std::borrow::Cow;
use std::time::UNIX_EPOCH;

/// The node state collector.
pub struct Node;

/// `(metric, help, value)` of the CONFIG GET gauges.
const CONFIG: &[OptRow<ConfigValues>] = &[
    (
        "redis_config_maxmemory",
        "CONFIG maxmemory (0: no limit)",
        |c| c.maxmemory,
    ),
    ("redis_config_maxclients", "CONFIG maxclients", |c| {
        c.maxclients
    }),
    ("redis_config_io_threads", "CONFIG io-threads", |c| {
        c.io_threads
    }),
];

impl Collector for Node {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        out.gauge(
            "redis_up",
            "Whether the node answered the last poll",
            cx.snapshot
                .observations
                .values()
                .map(|o| (addr(&o.addr), bool_value(o.result.is_ok()))),
        );
        collect_area(Area::Server, cx, out);
        collect_area(Area::Cluster, cx, out);
        out.gauge(
            "redis_start_time_seconds",
            "Unix time the server started (time of the telemetry poll minus uptime_in_seconds)",
            cx.per_node(|d| {
                let s = d.stats.as_deref()?;
                let uptime = s.info.field("uptime_in_seconds")?;
                let at = s.time.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
                Some((at - uptime).round())
            }),
        );
        out.gauge(
            "redis_instance_info",
            "Server information, as redis_exporter labels it",
            cx.answered().filter_map(|(a, d)| {
                let s = d.stats_info()?;
                Some((
                    vec![
                        ("addr", Cow::Borrowed(a)),
                        (
                            "maxmemory_policy",
                            Cow::Borrowed(s.maxmemory_policy.as_str()),
                        ),
                        ("os", Cow::Borrowed(s.os.as_str())),
                        ("process_id", Cow::Borrowed(s.process_id.as_str())),
                        ("redis_build_id", Cow::Borrowed(s.redis_build_id.as_str())),
                        ("redis_mode", Cow::Borrowed(s.redis_mode.as_str())),
                        ("redis_version", Cow::Borrowed(s.redis_version.as_str())),
                        ("role", Cow::Borrowed(d.info.role.as_str())),
                        ("run_id", Cow::Borrowed(s.run_id.as_str())),
                        ("tcp_port", Cow::Borrowed(s.tcp_port.as_str())),
                    ],
                    1.0,
                ))
            }),
        );
        for (name, help, f) in CONFIG {
            out.gauge(name, help, cx.per_node(|d| f(&d.stats.as_deref()?.config)));
        }
    }
}
