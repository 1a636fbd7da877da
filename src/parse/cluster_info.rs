//! Parser for the `CLUSTER INFO` reply (one node's view of the cluster's health).

use super::{ParseError, kv_lines};
use std::collections::BTreeMap;

/// The fields of `CLUSTER INFO` the exporter uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterInfo {
    /// `cluster_state:ok` (true) or `fail` (false).
    pub state_ok: bool,
    /// `cluster_slots_assigned`.
    pub slots_assigned: u64,
    /// `cluster_slots_ok`.
    pub slots_ok: u64,
    /// `cluster_slots_pfail`.
    pub slots_pfail: u64,
    /// `cluster_slots_fail`.
    pub slots_fail: u64,
    /// `cluster_known_nodes`.
    pub known_nodes: u64,
    /// `cluster_size` (masters serving at least one slot).
    pub size: u64,
    /// `cluster_current_epoch`.
    pub current_epoch: u64,
    /// `cluster_my_epoch`.
    pub my_epoch: u64,
    /// `cluster_stats_messages_sent` (all types).
    pub messages_sent: u64,
    /// `cluster_stats_messages_received` (all types).
    pub messages_received: u64,
    /// `cluster_stats_messages_<type>_sent`, by type (`ping`, `mfstart`, `auth-req`, ...).
    /// Types appear only once nonzero.
    pub sent_by_type: BTreeMap<String, u64>,
    /// `cluster_stats_messages_<type>_received`, by type.
    pub received_by_type: BTreeMap<String, u64>,
    /// Valkey: `cluster_nodes_pfail`, nodes this node flags PFAIL (absent on Redis).
    pub nodes_pfail: Option<u64>,
    /// Valkey: `cluster_nodes_fail`, nodes this node flags FAIL.
    pub nodes_fail: Option<u64>,
    /// Valkey: `cluster_voting_nodes_pfail`, slot-owning masters (the ones that vote in
    /// failover elections) this node flags PFAIL.
    pub voting_nodes_pfail: Option<u64>,
    /// Valkey: `cluster_voting_nodes_fail`, slot-owning masters this node flags FAIL.
    pub voting_nodes_fail: Option<u64>,
}

impl ClusterInfo {
    /// Messages of one type sent so far (0 when the server has not listed the type yet).
    pub fn sent(&self, kind: &str) -> u64 {
        self.sent_by_type.get(kind).copied().unwrap_or(0)
    }

    /// Messages of one type received so far (0 when the server has not listed the type yet).
    pub fn received(&self, kind: &str) -> u64 {
        self.received_by_type.get(kind).copied().unwrap_or(0)
    }
}

fn num(field: &'static str, value: &str) -> Result<u64, ParseError> {
    value
        .trim()
        .parse()
        .map_err(|_| ParseError::BadValue { field })
}

/// Parses a `CLUSTER INFO` reply. `cluster_state` is required; other known fields default to 0.
pub fn parse_cluster_info(text: &str) -> Result<ClusterInfo, ParseError> {
    let mut info = ClusterInfo::default();
    let mut state = None;
    for (key, value) in kv_lines(text) {
        match key {
            "cluster_state" => {
                state = Some(match value.trim() {
                    "ok" => true,
                    "fail" => false,
                    _ => {
                        return Err(ParseError::BadValue {
                            field: "cluster_state",
                        });
                    }
                })
            }
            "cluster_slots_assigned" => info.slots_assigned = num("cluster_slots_assigned", value)?,
            "cluster_slots_ok" => info.slots_ok = num("cluster_slots_ok", value)?,
            "cluster_slots_pfail" => info.slots_pfail = num("cluster_slots_pfail", value)?,
            "cluster_slots_fail" => info.slots_fail = num("cluster_slots_fail", value)?,
            "cluster_known_nodes" => info.known_nodes = num("cluster_known_nodes", value)?,
            "cluster_size" => info.size = num("cluster_size", value)?,
            "cluster_current_epoch" => info.current_epoch = num("cluster_current_epoch", value)?,
            "cluster_my_epoch" => info.my_epoch = num("cluster_my_epoch", value)?,
            // Valkey's failure counts: optional, so a malformed one is left out, not fatal.
            "cluster_nodes_pfail" => info.nodes_pfail = value.trim().parse().ok(),
            "cluster_nodes_fail" => info.nodes_fail = value.trim().parse().ok(),
            "cluster_voting_nodes_pfail" => info.voting_nodes_pfail = value.trim().parse().ok(),
            "cluster_voting_nodes_fail" => info.voting_nodes_fail = value.trim().parse().ok(),
            "cluster_stats_messages_sent" => {
                info.messages_sent = num("cluster_stats_messages_sent", value)?
            }
            "cluster_stats_messages_received" => {
                info.messages_received = num("cluster_stats_messages_received", value)?
            }
            other => {
                // Per-type counters; unknown or malformed ones are ignored rather than fatal.
                if let Some(rest) = other.strip_prefix("cluster_stats_messages_")
                    && let Ok(n) = value.trim().parse::<u64>()
                {
                    if let Some(kind) = rest.strip_suffix("_sent") {
                        info.sent_by_type.insert(kind.to_string(), n);
                    } else if let Some(kind) = rest.strip_suffix("_received") {
                        info.received_by_type.insert(kind.to_string(), n);
                    }
                }
            }
        }
    }
    info.state_ok = state.ok_or(ParseError::MissingField("cluster_state"))?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_and_types() {
        let text = "cluster_state:fail\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:10923\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:5461\r\ncluster_known_nodes:6\r\ncluster_size:3\r\ncluster_current_epoch:7\r\ncluster_my_epoch:2\r\ncluster_stats_messages_auth-req_sent:5\r\ncluster_stats_messages_sent:100\r\ncluster_stats_messages_received:90\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n";
        let info = parse_cluster_info(text).unwrap();
        assert!(!info.state_ok);
        assert_eq!(info.slots_fail, 5461);
        assert_eq!(info.current_epoch, 7);
        assert_eq!(info.sent("auth-req"), 5);
        assert_eq!(info.sent("mfstart"), 0);
        assert_eq!(info.messages_sent, 100);
        assert_eq!(info.nodes_pfail, None, "Redis has no cluster_nodes_pfail");
    }

    #[test]
    fn valkey_failure_counts_when_present() {
        let text = "cluster_state:ok\r\ncluster_nodes_pfail:2\r\ncluster_nodes_fail:1\r\ncluster_voting_nodes_pfail:1\r\ncluster_voting_nodes_fail:x\r\n";
        let info = parse_cluster_info(text).unwrap();
        assert_eq!(info.nodes_pfail, Some(2));
        assert_eq!(info.nodes_fail, Some(1));
        assert_eq!(info.voting_nodes_pfail, Some(1));
        assert_eq!(
            info.voting_nodes_fail, None,
            "malformed: left out, not fatal"
        );
    }

    #[test]
    fn rejects_missing_state_and_bad_numbers() {
        assert_eq!(
            parse_cluster_info("cluster_size:3\n"),
            Err(ParseError::MissingField("cluster_state"))
        );
        assert!(parse_cluster_info("cluster_state:ok\ncluster_size:x\n").is_err());
        assert!(parse_cluster_info("").is_err());
    }
}
