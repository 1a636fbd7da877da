//! Topology risk, from the derived cluster view: replicas on their master's own host (one host
//! loss then takes the whole shard), slot-owning masters per host, and how unevenly slots and
//! memory are spread over the slot-owning masters. The math is in small pure functions over the
//! view so it can be tested on hand-built views.

use super::{Collector, Context, Families, Labels};
use crate::model::{ClusterView, Role, Snapshot, ViewNode};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The topology-risk collector.
pub struct Risk;

/// The host part of an `addr` (`host:port`): everything before the last `:`, without the
/// brackets of an IPv6 host (`[::1]:7000` gives `::1`). An address without a port is all host.
pub fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        // A bare IPv6 address without brackets or port ("::1") has ':' but is not host:port.
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.starts_with('[')) =>
        {
            h
        }
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Masters that own slots and have a known address.
fn slot_owners(view: &ClusterView) -> impl Iterator<Item = (&ViewNode, &str)> {
    view.nodes
        .values()
        .filter(|n| n.role == Role::Master && !n.slots.is_empty())
        .filter_map(|n| Some((n, n.addr.as_deref()?)))
}

/// For each slot-owning master (by address): how many of its replicas have the same host.
pub fn colocated_replicas(view: &ClusterView) -> BTreeMap<String, usize> {
    slot_owners(view)
        .map(|(m, m_addr)| {
            let host = host_of(m_addr);
            let same = view
                .nodes
                .values()
                .filter(|r| r.role == Role::Replica && r.master_id.as_deref() == Some(&m.id))
                .filter(|r| r.addr.as_deref().is_some_and(|a| host_of(a) == host))
                .count();
            (m_addr.to_string(), same)
        })
        .collect()
}

/// Slot-owning masters per host.
pub fn host_masters(view: &ClusterView) -> BTreeMap<String, usize> {
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, a) in slot_owners(view) {
        *hosts.entry(host_of(a).to_string()).or_default() += 1;
    }
    hosts
}

/// Largest value / mean (1.0 = perfectly even); `None` without values or when the mean is not
/// above 0.
pub fn skew_ratio(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean > 0.0 && mean.is_finite()).then(|| max / mean)
}

/// Slot skew over the masters that own slots; `None` when none does.
pub fn slot_skew(view: &ClusterView) -> Option<f64> {
    let counts: Vec<f64> = view
        .nodes
        .values()
        .filter(|n| n.role == Role::Master && !n.slots.is_empty())
        .map(|n| f64::from(n.slot_count()))
        .collect();
    skew_ratio(&counts)
}

/// Memory skew: `used_memory` (latest INFO all) of the slot-owning masters that report it.
pub fn memory_skew(snapshot: &Snapshot) -> Option<f64> {
    let used: Vec<f64> = snapshot
        .view
        .nodes
        .values()
        .filter(|n| n.role == Role::Master && !n.slots.is_empty())
        .filter_map(|n| snapshot.data_of(&n.id)?.stats_info()?.field("used_memory"))
        .collect();
    skew_ratio(&used)
}

impl Collector for Risk {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        let view = &cx.snapshot.view;
        out.gauge(
            "redis_cluster_master_colocated_replicas",
            "Replicas of the slot-owning master that are on the master's own host (losing that host loses them together)",
            colocated_replicas(view)
                .into_iter()
                .map(|(a, n)| (vec![("addr", Cow::Owned(a))], n as f64)),
        );
        out.gauge(
            "redis_cluster_host_masters",
            "Slot-owning masters per host (host = addr without the port)",
            host_masters(view)
                .into_iter()
                .map(|(h, n)| (vec![("host", Cow::Owned(h))], n as f64)),
        );
        let one = |v: Option<f64>| v.map(|v| (Labels::new(), v));
        out.gauge(
            "redis_cluster_slot_skew_ratio",
            "Most slots owned by one master / mean slots per slot-owning master (1 = balanced)",
            one(slot_skew(view)),
        );
        out.gauge(
            "redis_cluster_memory_skew_ratio",
            "Largest used_memory of a slot-owning master / their mean (1 = balanced), from INFO all",
            one(memory_skew(cx.snapshot)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::cluster_nodes::SlotRange;

    fn node(id: &str, addr: Option<&str>, master: Option<&str>, slots: u16) -> ViewNode {
        ViewNode {
            id: id.to_string(),
            addr: addr.map(str::to_string),
            role: if master.is_some() {
                Role::Replica
            } else {
                Role::Master
            },
            master_id: master.map(str::to_string),
            config_epoch: 0,
            slots: if slots == 0 {
                Vec::new()
            } else {
                vec![SlotRange {
                    start: 0,
                    end: slots - 1,
                }]
            },
            pfail_reporters: Vec::new(),
            fail_reporters: Vec::new(),
            reachable: true,
            repl_offset: None,
            migrating: 0,
            importing: 0,
            nofailover: false,
        }
    }

    fn view(nodes: Vec<ViewNode>) -> ClusterView {
        ClusterView {
            nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect(),
            consistent: true,
            ..ClusterView::default()
        }
    }

    #[test]
    fn host_split() {
        assert_eq!(host_of("10.0.0.1:7000"), "10.0.0.1");
        assert_eq!(host_of("[::1]:7000"), "::1");
        assert_eq!(host_of("[fe80::1:2]:6379"), "fe80::1:2");
        assert_eq!(host_of("redis-0.svc:6379"), "redis-0.svc");
        assert_eq!(host_of("nohost"), "nohost");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("[::1]"), "::1");
    }

    #[test]
    fn colocated_and_host_masters() {
        let v = view(vec![
            node("a", Some("10.0.0.1:7000"), None, 100),
            node("a1", Some("10.0.0.1:7001"), Some("a"), 0),
            node("a2", Some("10.0.0.2:7001"), Some("a"), 0),
            node("b", Some("10.0.0.1:7002"), None, 100),
            node("b1", Some("10.0.0.3:7003"), Some("b"), 0),
            node("c", Some("[::1]:7004"), None, 100),
            node("c1", Some("[::1]:7005"), Some("c"), 0),
            node("c2", None, Some("c"), 0),
            // A master without slots (an empty one just added) is not a shard.
            node("d", Some("10.0.0.1:7006"), None, 0),
            node("d1", Some("10.0.0.1:7007"), Some("d"), 0),
        ]);
        let co = colocated_replicas(&v);
        assert_eq!(co.len(), 3, "{co:?}");
        assert_eq!(co["10.0.0.1:7000"], 1);
        assert_eq!(co["10.0.0.1:7002"], 0);
        assert_eq!(co["[::1]:7004"], 1);
        let hm = host_masters(&v);
        assert_eq!(hm.len(), 2, "{hm:?}");
        assert_eq!(hm["10.0.0.1"], 2);
        assert_eq!(hm["::1"], 1);
    }

    #[test]
    fn skew_with_unequal_slots() {
        let v = view(vec![
            node("a", Some("h1:1"), None, 8000),
            node("b", Some("h2:1"), None, 4000),
            node("c", Some("h3:1"), None, 4000),
            node("d", Some("h4:1"), None, 0),
        ]);
        let r = slot_skew(&v).expect("skew");
        assert!((r - 1.5).abs() < 1e-9, "{r}");
        let even = view(vec![
            node("a", Some("h1:1"), None, 5461),
            node("b", Some("h2:1"), None, 5461),
            node("c", Some("h3:1"), None, 5461),
        ]);
        assert_eq!(slot_skew(&even), Some(1.0));
        assert_eq!(skew_ratio(&[100.0, 300.0]), Some(1.5));
        assert_eq!(skew_ratio(&[7.0]), Some(1.0));
    }

    #[test]
    fn absent_cases() {
        assert_eq!(slot_skew(&ClusterView::default()), None);
        let no_slots = view(vec![
            node("a", Some("h1:1"), None, 0),
            node("a1", Some("h1:2"), Some("a"), 0),
        ]);
        assert_eq!(slot_skew(&no_slots), None);
        assert!(colocated_replicas(&no_slots).is_empty());
        assert!(host_masters(&no_slots).is_empty());
        assert_eq!(skew_ratio(&[]), None);
        assert_eq!(skew_ratio(&[0.0, 0.0]), None);
        let empty = Snapshot::new(
            std::time::SystemTime::UNIX_EPOCH,
            Default::default(),
            vec![],
        );
        assert_eq!(memory_skew(&empty), None);
    }
}
