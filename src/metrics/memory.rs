//! INFO memory: every field of the table's memory area (used, RSS, peak, max, fragmentation,
//! allocator, client buffers).

use super::table::Area;
use super::{Collector, Context, Families, collect_area};

/// The memory collector.
pub struct Memory;

impl Collector for Memory {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        collect_area(Area::Memory, cx, out);
    }
}
