//! INFO stats, clients and cpu: connections, commands, network bytes, keyspace hits and
//! misses, expiries and evictions, resyncs, client counts and buffers, CPU seconds.

use super::table::Area;
use super::{Collector, Context, Families, collect_area};

/// The stats, clients and CPU collector.
pub struct Stats;

impl Collector for Stats {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        for area in [Area::Clients, Area::Stats, Area::Cpu] {
            collect_area(area, cx, out);
        }
    }
}
