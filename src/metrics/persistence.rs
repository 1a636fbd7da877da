//! INFO persistence: RDB and AOF state, last save time and status, copy-on-write sizes.

use super::table::Area;
use super::{Collector, Context, Families, collect_area};

/// The persistence collector.
pub struct Persistence;

impl Collector for Persistence {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        collect_area(Area::Persistence, cx, out);
    }
}
