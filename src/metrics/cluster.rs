//! CLUSTER INFO as each node sees it: state, slot counts, known nodes, size, epochs, the cluster
//! bus message counters (in total and by message type, as redis_exporter names them), and
//! Valkey's failure counts where the server prints them.

use super::{Collector, Context, Families, Kind, Labels, OptRow, Row, addr, bool_value};
use crate::parse::cluster_info::ClusterInfo;

/// The CLUSTER INFO collector.
pub struct Cluster;

/// `(metric, help, field)` of the per-node CLUSTER INFO gauges.
const GAUGES: &[Row<ClusterInfo>] = &[
    (
        "redis_cluster_state",
        "cluster_state as the node sees it (1 ok, 0 fail)",
        |c| bool_value(c.state_ok),
    ),
    (
        "redis_cluster_slots_assigned",
        "Slots assigned to some master, as the node sees it",
        |c| c.slots_assigned as f64,
    ),
    (
        "redis_cluster_slots_ok",
        "Slots whose master is not failing, as the node sees it",
        |c| c.slots_ok as f64,
    ),
    (
        "redis_cluster_slots_pfail",
        "Slots whose master the node suspects (PFAIL)",
        |c| c.slots_pfail as f64,
    ),
    (
        "redis_cluster_slots_fail",
        "Slots whose master the cluster agreed has failed (FAIL)",
        |c| c.slots_fail as f64,
    ),
    (
        "redis_cluster_known_nodes",
        "Nodes the node knows, handshaking ones included",
        |c| c.known_nodes as f64,
    ),
    (
        "redis_cluster_size",
        "Masters serving at least one slot, as the node sees it",
        |c| c.size as f64,
    ),
    (
        "redis_cluster_current_epoch",
        "The node's current epoch",
        |c| c.current_epoch as f64,
    ),
    (
        "redis_cluster_my_epoch",
        "The config epoch of the node (a replica shows its master's)",
        |c| c.my_epoch as f64,
    ),
];

/// `(metric, help, field)` of the CLUSTER INFO gauges only Valkey prints (no series elsewhere).
const VALKEY_GAUGES: &[OptRow<ClusterInfo>] = &[
    (
        "redis_cluster_nodes_pfail",
        "Nodes the node flags PFAIL (Valkey's cluster_nodes_pfail)",
        |c| c.nodes_pfail.map(|n| n as f64),
    ),
    (
        "redis_cluster_nodes_fail",
        "Nodes the node flags FAIL (Valkey's cluster_nodes_fail)",
        |c| c.nodes_fail.map(|n| n as f64),
    ),
    (
        "redis_cluster_voting_nodes_pfail",
        "Voting (slot-owning) masters the node flags PFAIL (Valkey's cluster_voting_nodes_pfail)",
        |c| c.voting_nodes_pfail.map(|n| n as f64),
    ),
    (
        "redis_cluster_voting_nodes_fail",
        "Voting (slot-owning) masters the node flags FAIL (Valkey's cluster_voting_nodes_fail)",
        |c| c.voting_nodes_fail.map(|n| n as f64),
    ),
];

/// The cluster bus message types Redis prints (a reply listing others is not trusted with new
/// families).
const MESSAGE_TYPES: &[&str] = &[
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "publishshard",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "module",
];

/// redis_exporter's name for a per-type message counter:
/// `redis_cluster_stats_messages_<type>_<sent|received>` with `-` written `_`.
fn message_metric(kind: &str, dir: &str) -> Option<String> {
    MESSAGE_TYPES.contains(&kind).then(|| {
        format!(
            "redis_cluster_stats_messages_{}_{dir}",
            kind.replace('-', "_")
        )
    })
}

impl Collector for Cluster {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        for (name, help, f) in GAUGES {
            out.gauge(name, help, cx.per_node(|d| Some(f(&d.cluster_info))));
        }
        for (name, help, f) in VALKEY_GAUGES {
            out.gauge(name, help, cx.per_node(|d| f(&d.cluster_info)));
        }
        out.counter(
            "redis_cluster_messages_sent_total",
            "Cluster bus messages sent by the node",
            cx.per_node(|d| Some(d.cluster_info.messages_sent as f64)),
        );
        out.counter(
            "redis_cluster_messages_received_total",
            "Cluster bus messages received by the node",
            cx.per_node(|d| Some(d.cluster_info.messages_received as f64)),
        );
        // Per-type counters: only the types a node has sent or received (Redis lists a type
        // once it is nonzero).
        let mut by_name: Vec<(String, Labels, f64)> = Vec::new();
        for (a, d) in cx.answered() {
            let ci = &d.cluster_info;
            for (dir, map) in [
                ("sent", &ci.sent_by_type),
                ("received", &ci.received_by_type),
            ] {
                for (kind, n) in map {
                    if let Some(name) = message_metric(kind, dir) {
                        by_name.push((name, addr(a), *n as f64));
                    }
                }
            }
        }
        by_name.sort_by(|x, y| x.0.cmp(&y.0));
        for chunk in by_name.chunk_by(|x, y| x.0 == y.0) {
            let Some((name, _, _)) = chunk.first() else {
                continue;
            };
            out.add(
                name.clone(),
                "Cluster bus messages of one type, from CLUSTER INFO",
                Kind::CounterNoTotal,
                chunk.iter().map(|(_, l, v)| (l.clone(), *v)),
            );
        }
    }
}
