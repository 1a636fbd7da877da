//! Parser for the reply of `CLUSTER SLOT-STATS ORDERBY <metric> LIMIT <n>` (Valkey 8+, Redis
//! 8.2+): per slot the key count and, while `cluster-slot-stats-enabled` is on, the CPU time and
//! network bytes spent on it.
//!
//! The reply is RESP, not text: an array of `[slot, stats]` pairs, `stats` being a flat array of
//! field name and integer (RESP2) or a map (RESP3); `docs/redis-facts.md` has the measured shape.
//! The parser works on the decoded [`redis::Value`] and is bounded by the caller's `limit`.

use super::ParseError;
use super::cluster_nodes::SLOT_COUNT;
use redis::Value;

/// Most slots per node and metric the exporter asks for (`--hot-slots` is validated against it),
/// and so the hard cap on series per node of each hot-slot family.
pub const MAX_HOT_SLOTS: u16 = 100;

/// A per-slot statistic: the `ORDERBY` argument and the field name in the reply are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotMetric {
    /// `key-count`: keys in the slot (always there).
    KeyCount,
    /// `cpu-usec`: main-thread CPU time spent on commands for the slot, in microseconds.
    CpuUsec,
    /// `network-bytes-in`: bytes of commands received for the slot.
    NetworkBytesIn,
    /// `network-bytes-out`: bytes of replies sent for the slot.
    NetworkBytesOut,
}

impl SlotMetric {
    /// Every metric, `key-count` first.
    pub const ALL: [SlotMetric; 4] = [
        SlotMetric::KeyCount,
        SlotMetric::CpuUsec,
        SlotMetric::NetworkBytesIn,
        SlotMetric::NetworkBytesOut,
    ];

    /// The field name, which is also the `ORDERBY` argument.
    pub fn field(self) -> &'static str {
        match self {
            SlotMetric::KeyCount => "key-count",
            SlotMetric::CpuUsec => "cpu-usec",
            SlotMetric::NetworkBytesIn => "network-bytes-in",
            SlotMetric::NetworkBytesOut => "network-bytes-out",
        }
    }

    fn index(self) -> usize {
        match self {
            SlotMetric::KeyCount => 0,
            SlotMetric::CpuUsec => 1,
            SlotMetric::NetworkBytesIn => 2,
            SlotMetric::NetworkBytesOut => 3,
        }
    }

    fn from_field(name: &[u8]) -> Option<SlotMetric> {
        Self::ALL
            .into_iter()
            .find(|m| m.field().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The statistics of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotStat {
    /// The slot, below [`SLOT_COUNT`].
    pub slot: u16,
    values: [Option<u64>; 4],
}

impl SlotStat {
    /// The value of one metric, when the reply carried it.
    pub fn get(&self, metric: SlotMetric) -> Option<u64> {
        self.values.get(metric.index()).copied().flatten()
    }
}

/// A parsed reply: the slots in the server's order (largest first for `ORDERBY ... DESC`, the
/// default), and how many entries could not be understood and were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Slots, in reply order, each at most once.
    pub slots: Vec<SlotStat>,
    /// Entries skipped: a slot out of range or repeated, a stats part of the wrong shape, a
    /// known field whose value is not a non-negative integer, or more entries than asked for.
    pub malformed: usize,
}

impl SlotStats {
    /// Whether any slot carries `metric` (CPU and network appear only while
    /// `cluster-slot-stats-enabled` is on).
    pub fn has(&self, metric: SlotMetric) -> bool {
        self.slots.iter().any(|s| s.get(metric).is_some())
    }
}

fn name_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The fields of one slot's stats part (flat name/value array or map); `None` when malformed.
fn stat_values(stats: &Value) -> Option<[Option<u64>; 4]> {
    let pairs: Vec<(&Value, &Value)> = match stats {
        Value::Array(items) if items.len() % 2 == 0 => items
            .chunks_exact(2)
            .filter_map(|kv| Some((kv.first()?, kv.get(1)?)))
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    let mut values = [None; 4];
    for (k, v) in pairs {
        let Some(metric) = name_of(k).and_then(SlotMetric::from_field) else {
            continue; // a field of a newer server
        };
        let n = match v {
            Value::Int(n) => u64::try_from(*n).ok()?,
            _ => return None,
        };
        *values.get_mut(metric.index())? = Some(n);
    }
    Some(values)
}

/// One `[slot, stats]` entry; `None` when malformed.
fn entry(v: &Value) -> Option<SlotStat> {
    let Value::Array(parts) = v else {
        return None;
    };
    let [Value::Int(slot), stats] = parts.as_slice() else {
        return None;
    };
    let slot = u16::try_from(*slot).ok().filter(|s| *s < SLOT_COUNT)?;
    Some(SlotStat {
        slot,
        values: stat_values(stats)?,
    })
}

/// Parses a `CLUSTER SLOT-STATS` reply, keeping at most `limit` entries (the rest count as
/// malformed: a server never sends more than the `LIMIT` asked for). A reply that is not an
/// array is an error; bad entries are skipped and counted.
pub fn parse_slot_stats(reply: &Value, limit: usize) -> Result<SlotStats, ParseError> {
    let Value::Array(entries) = reply else {
        return Err(ParseError::BadValue {
            field: "CLUSTER SLOT-STATS reply",
        });
    };
    let mut out = SlotStats::default();
    let mut seen = vec![false; usize::from(SLOT_COUNT)];
    for v in entries {
        if out.slots.len() >= limit {
            out.malformed += 1;
            continue;
        }
        let stat = entry(v).filter(|s| {
            seen.get_mut(usize::from(s.slot))
                .is_some_and(|seen| !std::mem::replace(seen, true))
        });
        match stat {
            Some(s) => out.slots.push(s),
            None => out.malformed += 1,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn slot(n: i64, fields: &[(&str, i64)]) -> Value {
        let flat = fields
            .iter()
            .flat_map(|(k, v)| [bulk(k), Value::Int(*v)])
            .collect();
        Value::Array(vec![Value::Int(n), Value::Array(flat)])
    }

    #[test]
    fn flat_and_map_forms() {
        let reply = Value::Array(vec![
            slot(
                7,
                &[("key-count", 3), ("cpu-usec", 9), ("future-field", -1)],
            ),
            Value::Array(vec![
                Value::Int(8),
                Value::Map(vec![(bulk("key-count"), Value::Int(2))]),
            ]),
        ]);
        let s = parse_slot_stats(&reply, 10).unwrap();
        assert_eq!(s.malformed, 0);
        assert_eq!(s.slots.len(), 2);
        assert_eq!(s.slots[0].slot, 7);
        assert_eq!(s.slots[0].get(SlotMetric::CpuUsec), Some(9));
        assert_eq!(s.slots[0].get(SlotMetric::NetworkBytesIn), None);
        assert_eq!(s.slots[1].get(SlotMetric::KeyCount), Some(2));
        assert!(s.has(SlotMetric::CpuUsec));
        assert!(!s.has(SlotMetric::NetworkBytesOut));
    }

    #[test]
    fn bad_entries_are_skipped_and_counted() {
        let reply = Value::Array(vec![
            slot(16384, &[("key-count", 1)]),
            slot(-1, &[("key-count", 1)]),
            slot(1, &[("key-count", -5)]),
            Value::Array(vec![Value::Int(2), Value::Array(vec![bulk("key-count")])]),
            Value::Array(vec![Value::Int(3)]),
            Value::Int(4),
            slot(5, &[("key-count", 1)]),
            slot(5, &[("key-count", 2)]),
            slot(6, &[("key-count", 0)]),
        ]);
        let s = parse_slot_stats(&reply, 10).unwrap();
        assert_eq!(s.slots.iter().map(|x| x.slot).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(s.slots[0].get(SlotMetric::KeyCount), Some(1));
        assert_eq!(s.malformed, 7);
        let capped = parse_slot_stats(&reply, 1).unwrap();
        assert_eq!(capped.slots.len(), 1);
        assert_eq!(capped.malformed, 8);
        assert!(parse_slot_stats(&Value::Int(1), 10).is_err());
        assert_eq!(
            parse_slot_stats(&Value::Array(vec![]), 10).unwrap(),
            SlotStats::default()
        );
    }
}
