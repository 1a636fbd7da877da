//! INFO keyspace: keys, keys with an expiry and their average TTL per database, as
//! redis_exporter labels them (`db="db0"`).

use super::{Collector, Context, Families, Labels, Row};
use crate::parse::info::DbKeys;
use std::borrow::Cow;

/// The keyspace collector.
pub struct Keyspace;

/// `(metric, help, value)` per database line.
const FAMILIES: &[Row<DbKeys>] = &[
    ("redis_db_keys", "Keys per database", |k| k.keys as f64),
    (
        "redis_db_keys_expiring",
        "Keys with an expiry per database",
        |k| k.expires as f64,
    ),
    (
        "redis_db_avg_ttl_seconds",
        "Average TTL of the keys with an expiry, per database",
        |k| k.avg_ttl_ms as f64 / 1000.0,
    ),
];

impl Collector for Keyspace {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        for (name, help, f) in FAMILIES {
            let samples = cx.answered().flat_map(|(a, d)| {
                let dbs = d.stats_info().map_or(&[][..], |i| i.keyspace.as_slice());
                dbs.iter().map(move |k| {
                    let labels: Labels = vec![
                        ("addr", Cow::Borrowed(a)),
                        ("db", Cow::Borrowed(k.db.as_str())),
                    ];
                    (labels, f(k))
                })
            });
            out.gauge(name, help, samples);
        }
    }
}
