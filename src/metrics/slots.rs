//! Hot slots from CLUSTER SLOT-STATS (Valkey 8+, Redis 8.2+): per slot-owning master its top
//! `--hot-slots` slots by key count, and by CPU time and network bytes while the server keeps
//! them (`cluster-slot-stats-enabled yes`). Taken with the telemetry tier; a server without the
//! command gives no series at all (not 0), and no node gives more than [`MAX_HOT_SLOTS`] series
//! per family.

use super::{Collector, Context, Families, Kind, Labels};
use crate::model::NodeData;
use crate::parse::slot_stats::{MAX_HOT_SLOTS, SlotMetric};
use std::borrow::Cow;

/// The hot-slots collector.
pub struct HotSlots;

/// `(metric, family name, help, type)` of each CLUSTER SLOT-STATS metric.
const FAMILIES: &[(SlotMetric, &str, &str, Kind)] = &[
    (
        SlotMetric::KeyCount,
        "redis_cluster_slot_keys",
        "Keys in the slot, for the master's top --hot-slots slots by key count (CLUSTER SLOT-STATS)",
        Kind::Gauge,
    ),
    (
        SlotMetric::CpuUsec,
        "redis_cluster_slot_cpu_usec_total",
        "Main-thread CPU microseconds spent on the slot's commands, for the master's top --hot-slots slots by it (CLUSTER SLOT-STATS, cluster-slot-stats-enabled)",
        Kind::Counter,
    ),
    (
        SlotMetric::NetworkBytesIn,
        "redis_cluster_slot_network_bytes_in_total",
        "Bytes of commands received for the slot, for the master's top --hot-slots slots by it (CLUSTER SLOT-STATS, cluster-slot-stats-enabled)",
        Kind::Counter,
    ),
    (
        SlotMetric::NetworkBytesOut,
        "redis_cluster_slot_network_bytes_out_total",
        "Bytes of replies sent for the slot, for the master's top --hot-slots slots by it (CLUSTER SLOT-STATS, cluster-slot-stats-enabled)",
        Kind::Counter,
    ),
];

/// A master that owns slots by its own latest CLUSTER NODES line (a node failed over since its
/// last telemetry round no longer counts).
fn owns_slots(d: &NodeData) -> bool {
    d.nodes
        .myself()
        .is_some_and(|me| me.flags.master && !me.slots.is_empty())
}

impl Collector for HotSlots {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        for (metric, name, help, kind) in FAMILIES {
            let samples = cx
                .answered()
                .filter(|(_, d)| owns_slots(d))
                .filter_map(|(a, d)| Some((a, d.stats.as_deref()?.hot_slots.get(metric)?)))
                .flat_map(|(a, top)| {
                    top.iter()
                        .take(usize::from(MAX_HOT_SLOTS))
                        .map(move |(slot, v)| {
                            let labels: Labels = vec![
                                ("addr", Cow::Borrowed(a)),
                                ("slot", Cow::Owned(slot.to_string())),
                            ];
                            (labels, *v as f64)
                        })
                });
            out.add(*name, help, *kind, samples);
        }
    }
}
