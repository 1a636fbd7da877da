//! The derived cluster-wide view from every node's CLUSTER NODES: one series per member with
//! its id, role and master; its slots, failure reports and config epoch; open slots; and the
//! cluster-wide counts (members by role, masters without a replica, consistency, uncovered
//! slots).

use super::{Collector, Context, Families, Labels, addr, bool_value};
use crate::model::{Role, ViewNode};
use std::borrow::Cow;

/// The topology collector.
pub struct Topology;

fn node_addr(n: &ViewNode) -> &str {
    n.addr.as_deref().unwrap_or_default()
}

fn with_state<'a>(n: &'a ViewNode, state: &'a str) -> Labels<'a> {
    vec![
        ("addr", Cow::Borrowed(node_addr(n))),
        ("state", Cow::Borrowed(state)),
    ]
}

impl Collector for Topology {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        let view = &cx.snapshot.view;
        out.gauge(
            "redis_cluster_node_info",
            "One series per cluster member with its id, role and master id",
            view.nodes.values().map(|n| {
                (
                    vec![
                        ("addr", Cow::Borrowed(node_addr(n))),
                        ("node_id", Cow::Borrowed(n.id.as_str())),
                        ("role", Cow::Borrowed(n.role.as_str())),
                        (
                            "master_id",
                            Cow::Borrowed(n.master_id.as_deref().unwrap_or_default()),
                        ),
                    ],
                    1.0,
                )
            }),
        );
        // Members without a known address (noaddr) cannot be told apart by `addr`: they appear
        // in redis_cluster_node_info (with node_id) only. One member per address: a node reset
        // at the same address (new id) can linger under its old id until forgotten; the one
        // that answers (or is not failed) keeps the address.
        let mut addressed: Vec<&ViewNode> =
            view.nodes.values().filter(|n| n.addr.is_some()).collect();
        addressed.sort_by_key(|n| (n.addr.clone(), !n.reachable, n.is_failed()));
        addressed.dedup_by(|a, b| a.addr == b.addr);
        out.gauge(
            "redis_cluster_node_slots",
            "Slots the member owns in the cluster-wide slot map",
            addressed
                .iter()
                .map(|n| (addr(node_addr(n)), f64::from(n.slot_count()))),
        );
        out.gauge(
            "redis_cluster_node_failure_reports",
            "How many reachable nodes flag the member as failing (state pfail: fail?, fail: fail)",
            addressed.iter().flat_map(|n| {
                [
                    (with_state(n, "pfail"), n.pfail_reporters.len() as f64),
                    (with_state(n, "fail"), n.fail_reporters.len() as f64),
                ]
            }),
        );
        out.gauge(
            "redis_cluster_node_config_epoch",
            "Config epoch of the member",
            addressed
                .iter()
                .map(|n| (addr(node_addr(n)), n.config_epoch as f64)),
        );
        out.gauge(
            "redis_cluster_open_slots",
            "Slots the node is migrating away or importing, from its own CLUSTER NODES line",
            view.nodes.values().filter(|n| n.reachable).flat_map(|n| {
                [
                    (with_state(n, "migrating"), n.migrating as f64),
                    (with_state(n, "importing"), n.importing as f64),
                ]
            }),
        );
        let count_role = |r: Role| view.nodes.values().filter(|n| n.role == r).count() as f64;
        out.gauge(
            "redis_cluster_nodes",
            "Cluster members by role",
            [Role::Master, Role::Replica]
                .map(|r| (vec![("role", Cow::Borrowed(r.as_str()))], count_role(r))),
        );
        out.gauge(
            "redis_cluster_masters_without_replica",
            "Masters owning slots with no healthy replica",
            [(Labels::new(), view.masters_without_replica as f64)],
        );
        out.gauge(
            "redis_cluster_config_consistent",
            "1 when every reachable node maps every slot to the same master",
            [(Labels::new(), bool_value(view.consistent))],
        );
        out.gauge(
            "redis_cluster_slots_uncovered",
            "Slots with no owner, or whose owner is flagged fail or does not answer",
            [(Labels::new(), f64::from(view.uncovered_slots))],
        );
    }
}
