//! Fuzzing of the reply parsers inside the normal test suite (proptest, bounded budget: 2000
//! cases per property, a few seconds in a debug build). The deeper, open-ended run is the
//! cargo-fuzz project in `fuzz/` (`scripts/fuzz.sh`); both check the same invariants, from
//! `fuzz/src/invariants.rs`.
//!
//! Inputs: arbitrary bytes (lossy UTF-8), generated CLUSTER NODES lines mixing valid and invalid
//! fields, and the fixtures mutated (byte flips, truncation, inserted huge / negative numbers,
//! slot 16384, reversed ranges, very long lines, line duplication / deletion / swaps). CLUSTER
//! SLOT-STATS, a RESP reply, gets generated RESP value trees (arbitrary, and shaped like the real
//! entries with bad parts mixed in) and its RESP fixtures with byte edits, decoded by redis-rs. The
//! client's RESP framing gets arbitrary bytes and those generated trees, encoded.

#[path = "../fuzz/src/invariants.rs"]
mod invariants;

use invariants::{
    check_cluster_info, check_cluster_nodes, check_info, check_resp_frame, check_slot_stats,
    non_empty_lines, to_crlf,
};
use proptest::prelude::*;
use proptest::sample::select;
use redis::Value;
use redis_cluster_exporter::parse::ParseError;
use redis_cluster_exporter::parse::cluster_info::parse_cluster_info;
use redis_cluster_exporter::parse::cluster_nodes::{
    ClusterNodes, NodeLine, SLOT_COUNT, parse_cluster_nodes,
};
use redis_cluster_exporter::parse::info::parse_info;
use redis_cluster_exporter::parse::resp::{bulk_payload, frame_len};
use redis_cluster_exporter::parse::slot_stats::{MAX_HOT_SLOTS, parse_slot_stats};

const NODES_FIXTURES: &[&str] = &[
    include_str!("fixtures/cluster_nodes_master.txt"),
    include_str!("fixtures/cluster_nodes_replica.txt"),
    include_str!("fixtures/cluster_nodes_nofailover.txt"),
    include_str!("fixtures/cluster_nodes_migrating.txt"),
    include_str!("fixtures/cluster_nodes_importing.txt"),
    include_str!("fixtures/cluster_nodes_pfail.txt"),
    include_str!("fixtures/cluster_nodes_fail.txt"),
    include_str!("fixtures/cluster_nodes_after_failover.txt"),
    include_str!("fixtures/cluster_nodes_old_master_rejoined.txt"),
    include_str!("fixtures/cluster_nodes_myself_only.txt"),
    include_str!("fixtures/cluster_nodes_handshake.txt"),
    include_str!("fixtures/cluster_nodes_ipv6.txt"),
    include_str!("fixtures/cluster_nodes_hostname.txt"),
    include_str!("fixtures/cluster_nodes_noaddr.txt"),
    include_str!("fixtures/cluster_nodes_redis3_no_cport.txt"),
    include_str!("fixtures/cluster_nodes_redis4_no_hostname.txt"),
    include_str!("fixtures/seed_cluster_nodes_master_fail.txt"),
    include_str!("fixtures/seed_cluster_nodes_before_failover.txt"),
    include_str!("fixtures/seed_cluster_nodes_after_failover.txt"),
    include_str!("fixtures/seed_cluster_nodes_old_master_rejoined.txt"),
];

const CLUSTER_INFO_FIXTURES: &[&str] = &[
    include_str!("fixtures/cluster_info_ok.txt"),
    include_str!("fixtures/cluster_info_fail.txt"),
    include_str!("fixtures/cluster_info_after_manual_failover.txt"),
    include_str!("fixtures/seed_cluster_info_partial.txt"),
];

const INFO_FIXTURES: &[&str] = &[
    include_str!("fixtures/info_master.txt"),
    include_str!("fixtures/info_replica.txt"),
    include_str!("fixtures/info_all_master.txt"),
    include_str!("fixtures/info_all_redis7_master.txt"),
    include_str!("fixtures/info_all_redis7_replica.txt"),
    include_str!("fixtures/info_all_valkey81_master.txt"),
    include_str!("fixtures/info_all_valkey91_replica.txt"),
    include_str!("fixtures/info_valkey8.txt"),
    include_str!("fixtures/seed_info_replication_redis8_master.txt"),
    include_str!("fixtures/seed_info_replication_redis8_replica.txt"),
];

const ERROR_NOT_CLUSTER: &str = include_str!("fixtures/error_not_cluster.txt");

/// Every fixture, each parser gets all of them (a wrong reply type must not panic either).
fn all_fixtures() -> Vec<&'static str> {
    let mut v = Vec::new();
    v.extend_from_slice(NODES_FIXTURES);
    v.extend_from_slice(CLUSTER_INFO_FIXTURES);
    v.extend_from_slice(INFO_FIXTURES);
    v.push(ERROR_NOT_CLUSTER);
    v
}

/// Tokens spliced into fixtures: out-of-range and malformed values of every field kind.
const TOKENS: &[&str] = &[
    "99999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "-1",
    "-99999999999999999999",
    "+5",
    "0",
    "16383",
    "16384",
    "65535",
    "65536",
    "0-16383",
    "0-16384",
    "16384-16384",
    "10922-5461",
    "5-3",
    "-5",
    "5-",
    "-",
    "--",
    "[100->-",
    "[100->-ca9627121fbf836c3304d076bb2f89bc6c877632]",
    "[100-<-05d6dd21fe519c23732337f41370116b07c49105]",
    "[16384->-x]",
    "[99999999999999999999-<-x]",
    "[]",
    "[->-]",
    "[-<-]",
    "->-",
    "-<-",
    ":",
    "::",
    ":0@0",
    "@",
    "@@",
    ",",
    ",,",
    "=",
    "[::1]:7000@17000",
    "fail?",
    "myself,slave",
    "master,noaddr",
    "handshake",
    "nofailover",
    "noflags",
    "replica",
    "connected",
    "disconnected",
    "\r",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\0",
    "é",
    "\u{a0}",
    "\u{2028}",
    "\u{feff}",
    "\u{fffd}",
    "#",
    "txt:",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "cluster_state:ok",
    "cluster_state:fail",
    "cluster_state:",
    "cluster_stats_messages_mfstart_sent:99999999999999999999",
    "cluster_stats_messages__sent:1",
    "role:slave",
    "role:master",
    "slave0:ip=1.2.3.4,port=1,state=online,offset=99999999999999999999,lag=-1",
    "slave1:ip=,port=,state=,offset=,lag=",
    "db0:keys=-1,expires=99999999999999999999",
    "db99999999999999999999:keys=1,expires=1",
    "master_repl_offset:-99999999999999999999",
];

/// One edit of a fixture. Positions are taken modulo the current length.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte (may produce invalid UTF-8: the parsers get it lossily decoded).
    FlipByte {
        at: usize,
        xor: u8,
    },
    /// Cut the reply at a byte offset.
    Truncate {
        at: usize,
    },
    /// Insert a token at a byte offset.
    Insert {
        at: usize,
        token: &'static str,
    },
    /// Replace the n-th whitespace-separated field of a line with a token.
    ReplaceField {
        line: usize,
        field: usize,
        token: &'static str,
    },
    /// Replace the value after the first `:` of a line (INFO-style replies).
    ReplaceValue {
        line: usize,
        token: &'static str,
    },
    DuplicateLine {
        line: usize,
    },
    DeleteLine {
        line: usize,
    },
    /// Append a very long run of `unit` to a line.
    LongRun {
        line: usize,
        unit: &'static str,
        times: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    let token = select(TOKENS);
    prop_oneof![
        3 => (at, 1..=255u8).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
        3 => (at, token.clone()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        4 => (at, 0..12usize, token.clone())
            .prop_map(|(line, field, token)| Mutation::ReplaceField { line, field, token }),
        2 => (at, token).prop_map(|(line, token)| Mutation::ReplaceValue { line, token }),
        1 => at.prop_map(|line| Mutation::DuplicateLine { line }),
        1 => at.prop_map(|line| Mutation::DeleteLine { line }),
        1 => (at, select(&["a", "9", "0-1 ", "5 ", "[1->-x] ", ":", ","][..]), 100..4000usize)
            .prop_map(|(line, unit, times)| Mutation::LongRun { line, unit, times }),
    ]
}

fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.join(&b'\n')
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipByte { at, xor } => {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= xor;
            }
        }
        Mutation::Truncate { at } => {
            let keep = at % (bytes.len() + 1);
            bytes.truncate(keep);
        }
        Mutation::Insert { at, token } => {
            let i = at % (bytes.len() + 1);
            bytes.splice(i..i, token.bytes());
        }
        Mutation::ReplaceField { line, field, token } => {
            let mut lines = split_lines(bytes);
            let l = line % lines.len();
            let text = String::from_utf8_lossy(&lines[l]).into_owned();
            let mut fields: Vec<&str> = text.split(' ').collect();
            let f = field % fields.len();
            fields[f] = token;
            lines[l] = fields.join(" ").into_bytes();
            *bytes = join_lines(&lines);
        }
        Mutation::ReplaceValue { line, token } => {
            let mut lines = split_lines(bytes);
            let l = line % lines.len();
            if let Some(colon) = lines[l].iter().position(|b| *b == b':') {
                lines[l].truncate(colon + 1);
                lines[l].extend_from_slice(token.as_bytes());
            }
            *bytes = join_lines(&lines);
        }
        Mutation::DuplicateLine { line } => {
            let mut lines = split_lines(bytes);
            let l = line % lines.len();
            lines.insert(l, lines[l].clone());
            *bytes = join_lines(&lines);
        }
        Mutation::DeleteLine { line } => {
            let mut lines = split_lines(bytes);
            let l = line % lines.len();
            lines.remove(l);
            *bytes = join_lines(&lines);
        }
        Mutation::LongRun { line, unit, times } => {
            let mut lines = split_lines(bytes);
            let l = line % lines.len();
            lines[l].push(b' ');
            lines[l].extend_from_slice(unit.repeat(*times).as_bytes());
            *bytes = join_lines(&lines);
        }
    }
}

const SLOT_STATS_FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/cluster_slot_stats_valkey91.txt"),
    include_bytes!("fixtures/cluster_slot_stats_valkey91_enabled.txt"),
];

/// Parses a CLUSTER SLOT-STATS reply with its invariants.
fn check_slot_stats_value(v: &Value, limit: usize) {
    let entries = match v {
        Value::Array(a) => Some(a.len()),
        _ => None,
    };
    check_slot_stats(&parse_slot_stats(v, limit), entries, limit);
}

/// RESP leaves that matter to the parser: slot-ish and extreme integers, the field names (in
/// either case), other strings, nil.
fn resp_leaf() -> impl Strategy<Value = Value> {
    const NAMES: &[&str] = &[
        "key-count",
        "cpu-usec",
        "network-bytes-in",
        "network-bytes-out",
        "KEY-COUNT",
        "key_count",
        "",
        "x",
    ];
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        select(vec![
            -1i64,
            0,
            1,
            16383,
            16384,
            65535,
            65536,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(Value::Int),
        select(NAMES).prop_map(|n| Value::BulkString(n.as_bytes().to_vec())),
        select(NAMES).prop_map(|n| Value::SimpleString(n.to_string())),
        Just(Value::Nil),
        any::<f64>().prop_map(Value::Double),
    ]
}

/// Arbitrary RESP trees of arrays and maps over [`resp_leaf`].
fn resp_value() -> impl Strategy<Value = Value> {
    resp_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

/// A `[slot, stats]` entry like the real ones, its slot and its stats sometimes wrong.
fn slot_entry() -> impl Strategy<Value = Value> {
    // Mostly a few low slots, so that repeats are common.
    let slot = prop_oneof![
        3 => (0i64..12).prop_map(Value::Int),
        1 => (0i64..16384).prop_map(Value::Int),
        1 => resp_leaf(),
    ];
    let pairs = || prop::collection::vec((resp_leaf(), resp_leaf()), 0..6);
    let stats = prop_oneof![
        3 => pairs().prop_map(|p| Value::Array(p.into_iter().flat_map(|(k, v)| [k, v]).collect())),
        2 => pairs().prop_map(Value::Map),
        1 => resp_leaf(),
    ];
    (slot, stats).prop_map(|(s, st)| Value::Array(vec![s, st]))
}

/// Runs every parser with its invariants on `text`.
fn check_all(text: &str) {
    let _ = check_cluster_nodes(text);
    let _ = check_cluster_info(text);
    let _ = check_info(text);
}

// --- generated CLUSTER NODES lines ---------------------------------------------------------
// Each field is valid 4 times out of 5, so most lines parse and the invariants on parsed nodes
// get exercised; the rest hit one rejection path at a time.

const IDS: (&[&str], &[&str]) = (
    &[
        "05d6dd21fe519c23732337f41370116b07c49105",
        "ca9627121fbf836c3304d076bb2f89bc6c877632",
        "687495d83c0fbe3e0cf879eae8116e182c94eb82",
        "a",
    ],
    &[
        "",
        "not-an-id",
        "ca96271!",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    ],
);
const ADDRS: (&[&str], &[&str]) = (
    &[
        "127.0.0.1:7000@17000",
        "10.0.0.1:6379@16379,host-a",
        "10.0.0.1:6379@16379,",
        "10.0.0.1:6379@16379,,shard-id=x",
        "10.0.0.1:6379@16379,k=v,host",
        "192.168.1.1:7001",
        "::1:7000@17000",
        "[::1]:7000@17000",
        "fe80::1%eth0:7000@17000",
        ":7000@17000",
        ":0@0",
        "1.2.3.4:0@0",
        "[]:1@1",
        "1.2.3.4:+5@1",
    ],
    &[
        "1.2.3.4:65536@1",
        "1.2.3.4:-1@1",
        "1.2.3.4@1",
        ":",
        "@",
        ",",
    ],
);
const FLAGS: (&[&str], &[&str]) = (
    &[
        "master",
        "myself,master",
        "slave",
        "myself,slave",
        "replica",
        "master,fail?",
        "master,fail",
        "slave,fail?,nofailover",
        "handshake",
        "master,noaddr",
        "noflags",
        "myself,master,noaddr,fail,fail?,handshake,nofailover",
        "unknown-future-flag",
    ],
    &["", ","],
);
const MASTERS: (&[&str], &[&str]) = (
    &[
        "-",
        "05d6dd21fe519c23732337f41370116b07c49105",
        "ca9627121fbf836c3304d076bb2f89bc6c877632",
    ],
    &["--", "x-y", ""],
);
const NUMS: (&[&str], &[&str]) = (
    &["0", "1", "7", "1795761773078", "18446744073709551615", "+3"],
    &[
        "18446744073709551616",
        "99999999999999999999",
        "-1",
        "1.5",
        "",
        "x",
    ],
);
const LINKS: (&[&str], &[&str]) = (&["connected", "disconnected"], &["Connected", "linked", ""]);
const SLOTS: (&[&str], &[&str]) = (
    &[
        "0",
        "16383",
        "0-5460",
        "5461-10922",
        "10923-16383",
        "0-16383",
        "7-7",
        "[100->-ca9627121fbf836c3304d076bb2f89bc6c877632]",
        "[100-<-05d6dd21fe519c23732337f41370116b07c49105]",
        "[16383->-a]",
        "[100->-]",
    ],
    &[
        "16384",
        "0-16384",
        "5460-0",
        "-1",
        "1-",
        "-",
        "1-2-3",
        "99999999999999999999",
        "[16384->-a]",
        "[100=>-a]",
        "[100->-a",
        "[]",
    ],
);

fn field(
    choices: (&'static [&'static str], &'static [&'static str]),
) -> BoxedStrategy<&'static str> {
    prop_oneof![4 => select(choices.0), 1 => select(choices.1)].boxed()
}

fn generated_line() -> impl Strategy<Value = String> {
    (
        field(IDS),
        field(ADDRS),
        field(FLAGS),
        field(MASTERS),
        (field(NUMS), field(NUMS), field(NUMS)),
        field(LINKS),
        prop::collection::vec(field(SLOTS), 0..6),
        0..40usize,
        select(&[" ", "  ", "\t", " \t "][..]),
    )
        .prop_map(
            |(id, addr, flags, master, (ping, pong, epoch), link, slots, drop_from, sep)| {
                let mut fields = vec![id, addr, flags, master, ping, pong, epoch, link];
                fields.extend(slots);
                // Sometimes the line is short of fields.
                if drop_from < 8 {
                    fields.truncate(drop_from);
                }
                fields.join(sep)
            },
        )
}

/// Asserts `t` (a prefix of `full`) parses into the prefix of `full`'s nodes, plus at most one
/// cut line that is either malformed or the same node with a shortened slot list.
fn assert_truncation(full: &ClusterNodes, t: &str) {
    let complete = t.matches('\n').count();
    let tail = t.rsplit('\n').next().unwrap_or("");
    let partial = !tail.trim().is_empty();
    match parse_cluster_nodes(t) {
        Err(e) => {
            assert_eq!(e, ParseError::Empty);
            assert_eq!(complete, 0, "complete lines lost: {t:?}");
        }
        Ok(n) => {
            assert!(n.nodes.len() >= complete, "{t:?}");
            assert_eq!(n.nodes[..complete], full.nodes[..complete], "{t:?}");
            if !partial {
                assert_eq!((n.nodes.len(), n.malformed_lines), (complete, 0), "{t:?}");
            } else if n.malformed_lines == 1 {
                assert_eq!(n.nodes.len(), complete, "{t:?}");
            } else {
                assert_eq!(
                    (n.nodes.len(), n.malformed_lines),
                    (complete + 1, 0),
                    "{t:?}"
                );
                let cut = &n.nodes[complete];
                let orig = &full.nodes[complete];
                assert_same_but_slots(cut, orig);
                let k = cut.slots.len().min(orig.slots.len()).saturating_sub(1);
                assert_eq!(cut.slots[..k], orig.slots[..k], "{t:?}");
                assert!(cut.slot_count() <= orig.slot_count(), "{t:?}");
            }
        }
    }
    // Ids are always a subset of the original's.
    if let Ok(n) = parse_cluster_nodes(t) {
        for x in &n.nodes {
            assert!(full.nodes.iter().any(|o| o.id == x.id), "new id {}", x.id);
        }
    }
}

fn assert_same_but_slots(cut: &NodeLine, orig: &NodeLine) {
    let strip = |n: &NodeLine| NodeLine {
        slots: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
        ..n.clone()
    };
    assert_eq!(strip(cut), strip(orig));
}

/// RESP encoding of the values [`resp_value`] generates.
fn encode_resp(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Value::BulkString(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::SimpleString(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Value::Double(d) => out.extend_from_slice(format!(",{d}\r\n").as_bytes()),
        Value::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            items.iter().for_each(|i| encode_resp(i, out));
        }
        Value::Map(pairs) => {
            out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes());
            for (k, v) in pairs {
                encode_resp(k, out);
                encode_resp(v, out);
            }
        }
        _ => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, lossily decoded, into every parser.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_all(&String::from_utf8_lossy(&bytes));
    }

    /// Arbitrary bytes into the RESP framing.
    #[test]
    fn resp_framing_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_resp_frame(&bytes);
    }

    /// An encoded reply followed by anything is framed at exactly its own end, whichever reads
    /// it arrives in, and redis-rs decodes the frame.
    #[test]
    fn resp_framing_finds_each_encoded_reply(
        v in resp_value(),
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = Vec::new();
        encode_resp(&v, &mut bytes);
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(check_resp_frame(&bytes), Some(len));
        for cut in 0..len {
            prop_assert_eq!(frame_len(&bytes[..cut]), Ok(None));
        }
        prop_assert!(redis::parse_redis_value(&bytes[..len]).is_ok());
    }

    /// The client's bulk-string shortcut decodes exactly what redis-rs decodes, and takes nothing
    /// redis-rs would decode as another type.
    #[test]
    fn a_bulk_payload_is_what_redis_rs_decodes(
        v in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::BulkString),
            resp_value(),
        ],
    ) {
        let mut bytes = Vec::new();
        encode_resp(&v, &mut bytes);
        match bulk_payload(&bytes) {
            Some(payload) => prop_assert_eq!(
                redis::parse_redis_value(&bytes).ok(),
                Some(Value::BulkString(payload.to_vec()))
            ),
            None => prop_assert!(!matches!(v, Value::BulkString(_))),
        }
    }

    /// Arbitrary text built from the characters that matter to the parsers.
    #[test]
    fn structural_characters_never_panic(text in "[0-9a-f:@,\\[\\]<>=?#\\- \t\r\n]{0,400}") {
        check_all(&text);
    }

    /// Generated CLUSTER NODES lines mixing valid and invalid fields: the parse is the sum of its
    /// lines, and every accepted slot range is within 0..16383.
    #[test]
    fn generated_cluster_nodes_lines(lines in prop::collection::vec(generated_line(), 1..12)) {
        let text = lines.join("\n");
        let result = check_cluster_nodes(&text);
        if let Ok(n) = &result {
            for node in &n.nodes {
                for r in &node.slots {
                    prop_assert!(r.start <= r.end && r.end < SLOT_COUNT);
                }
            }
            prop_assert_eq!(n.nodes.len() + n.malformed_lines, non_empty_lines(&text).count());
        }
    }

    /// Fixtures with random edits: never a panic, invariants hold.
    #[test]
    fn mutated_fixtures_keep_invariants(
        fixture in select(all_fixtures()),
        mutations in prop::collection::vec(mutation(), 1..6),
        crlf in any::<bool>(),
    ) {
        let base = if crlf { to_crlf(fixture) } else { fixture.to_string() };
        let mut bytes = base.into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_all(&String::from_utf8_lossy(&bytes));
    }

    /// Arbitrary RESP trees into the CLUSTER SLOT-STATS parser.
    #[test]
    fn slot_stats_arbitrary_values(v in resp_value(), limit in 0..=usize::from(MAX_HOT_SLOTS)) {
        check_slot_stats_value(&v, limit);
    }

    /// Replies shaped like the real ones (duplicate slots likely), with bad parts mixed in.
    #[test]
    fn slot_stats_entry_shaped_replies(
        entries in prop::collection::vec(slot_entry(), 0..12),
        limit in 0..=12usize,
    ) {
        check_slot_stats_value(&Value::Array(entries), limit);
    }

    /// The RESP fixtures with byte edits: whatever redis-rs still decodes keeps the invariants.
    #[test]
    fn slot_stats_mutated_fixtures(
        fixture in select(SLOT_STATS_FIXTURES),
        mutations in prop::collection::vec(mutation(), 1..4),
        limit in 0..=20usize,
    ) {
        let mut bytes = fixture.to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(v) = redis::parse_redis_value(&bytes) {
            check_slot_stats_value(&v, limit);
        }
    }

    /// Deleting, duplicating and swapping whole lines of a CLUSTER NODES reply does exactly that
    /// to the parsed nodes.
    #[test]
    fn line_edits_map_to_node_edits(
        fixture in select(NODES_FIXTURES),
        edits in prop::collection::vec((0..3u8, any::<usize>(), any::<usize>()), 0..8),
    ) {
        let full = parse_cluster_nodes(fixture).expect("fixture parses");
        let mut lines: Vec<&str> = fixture.lines().collect();
        let mut expected = full.nodes.clone();
        for (op, a, b) in edits {
            if lines.is_empty() {
                break;
            }
            let (a, b) = (a % lines.len(), b % lines.len());
            match op {
                0 => {
                    lines.remove(a);
                    expected.remove(a);
                }
                1 => {
                    lines.insert(a, lines[a]);
                    expected.insert(a, expected[a].clone());
                }
                _ => {
                    lines.swap(a, b);
                    expected.swap(a, b);
                }
            }
        }
        let text = lines.join("\n");
        match check_cluster_nodes(&text) {
            Ok(n) => {
                prop_assert_eq!(n.nodes, expected);
                prop_assert_eq!(n.malformed_lines, 0);
            }
            Err(e) => {
                prop_assert_eq!(e, ParseError::Empty);
                prop_assert!(expected.is_empty());
            }
        }
    }

    /// Changing one CLUSTER INFO value changes only that field, or fails with that field's error.
    #[test]
    fn cluster_info_one_value_changed(
        fixture in select(CLUSTER_INFO_FIXTURES),
        line in any::<usize>(),
        value in prop_oneof![
            select(TOKENS).prop_map(str::to_string),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
        ],
    ) {
        prop_assume!(!value.contains('\n'));
        let orig = parse_cluster_info(fixture).expect("fixture parses");
        let lines: Vec<&str> = fixture.lines().collect();
        let l = line % lines.len();
        let (key, _) = lines[l].split_once(':').expect("key:value");
        let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        edited[l] = format!("{key}:{value}");
        let text = edited.join("\r\n");
        let result = check_cluster_info(&text);
        let v = value.trim();
        let number = v.parse::<u64>().ok();
        match key {
            "cluster_state" => match v {
                "ok" | "fail" => {
                    let info = result.expect("valid state");
                    prop_assert_eq!(info.state_ok, v == "ok");
                    prop_assert_eq!(info.sent_by_type, orig.sent_by_type);
                }
                _ => prop_assert_eq!(result, Err(ParseError::BadValue { field: "cluster_state" })),
            },
            k if k.starts_with("cluster_stats_messages_")
                && (k.ends_with("_sent") || k.ends_with("_received"))
                && k != "cluster_stats_messages_sent"
                && k != "cluster_stats_messages_received" =>
            {
                // Per-type counters never fail the reply.
                let info = result.expect("per-type counters are lenient");
                let rest = k.trim_start_matches("cluster_stats_messages_");
                let (map, orig_map, kind) = match rest.strip_suffix("_sent") {
                    Some(kind) => (&info.sent_by_type, &orig.sent_by_type, kind),
                    None => (
                        &info.received_by_type,
                        &orig.received_by_type,
                        rest.strip_suffix("_received").unwrap_or(rest),
                    ),
                };
                // The edited counter is the new number, or gone when not a number.
                prop_assert_eq!(map.get(kind).copied(), number);
                let others = |m: &std::collections::BTreeMap<String, u64>| {
                    m.iter()
                        .filter(|(t, _)| t.as_str() != kind)
                        .map(|(t, n)| (t.clone(), *n))
                        .collect::<Vec<_>>()
                };
                prop_assert_eq!(others(map), others(orig_map));
                prop_assert_eq!(info.state_ok, orig.state_ok);
                prop_assert_eq!(info.messages_sent, orig.messages_sent);
            }
            k if k.starts_with("cluster_") => match number {
                Some(_) => {
                    let info = result.expect("a number is accepted");
                    prop_assert_eq!(info.state_ok, orig.state_ok);
                    prop_assert_eq!(info.sent_by_type, orig.sent_by_type);
                    prop_assert_eq!(info.received_by_type, orig.received_by_type);
                }
                None => {
                    let expected_field = match result {
                        Err(ParseError::BadValue { field }) => field,
                        other => panic!("{k}:{value:?} gave {other:?}"),
                    };
                    prop_assert_eq!(expected_field, k);
                }
            },
            _ => prop_assert_eq!(result, Ok(orig)),
        }
    }

    /// Changing one INFO value never fails the reply, and leaves unrelated parts alone.
    #[test]
    fn info_one_value_changed(
        fixture in select(INFO_FIXTURES),
        line in any::<usize>(),
        value in select(TOKENS),
    ) {
        prop_assume!(!value.contains('\n'));
        let orig = parse_info(fixture).expect("fixture parses");
        let lines: Vec<&str> = fixture.lines().collect();
        let l = line % lines.len();
        let Some((key, _)) = lines[l].split_once(':') else {
            return Ok(()); // comment or blank line
        };
        prop_assume!(!key.starts_with('#'));
        let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        edited[l] = format!("{key}:{value}");
        let info = check_info(&edited.join("\r\n")).expect("one bad value is not fatal");
        if key != "role" {
            prop_assert_eq!(&info.role, &orig.role);
        }
        if !key.starts_with("slave") {
            prop_assert_eq!(&info.replicas, &orig.replicas);
        }
        if !key.starts_with("db") {
            prop_assert_eq!(&info.keyspace, &orig.keyspace);
        }
        if !matches!(key, "role" | "master_repl_offset" | "slave_repl_offset") {
            prop_assert_eq!(info.replication_offset(), orig.replication_offset());
        }
        // A bad commandstats, latencystats or errorstats value costs that line only.
        let structured = ["cmdstat_", "latency_percentiles_usec_", "errorstat_"];
        if !structured.iter().any(|p| key.starts_with(p)) {
            prop_assert_eq!(&info.commands, &orig.commands);
            prop_assert_eq!(&info.latencies, &orig.latencies);
            prop_assert_eq!(&info.errors, &orig.errors);
        } else {
            let before = orig.commands.len() + orig.latencies.len() + orig.errors.len();
            let after = info.commands.len() + info.latencies.len() + info.errors.len();
            prop_assert!(after == before || (after + 1 == before && info.malformed_lines == orig.malformed_lines + 1));
        }
    }
}

/// Cutting any CLUSTER NODES fixture at any byte keeps the complete lines and at most one
/// malformed or shortened last line; never a new id. The (costlier) full invariant check runs on
/// every 16th cut; CLUSTER INFO and INFO are cut everywhere too.
#[test]
fn truncation_at_every_offset() {
    for text in NODES_FIXTURES {
        let full = parse_cluster_nodes(text).expect("fixture parses");
        for at in 0..=text.len() {
            let t = &text[..at];
            assert_truncation(&full, t);
            assert_truncation(&full, &to_crlf(t));
            if at % 16 == 0 {
                let _ = check_cluster_nodes(t);
            }
        }
    }
    for text in CLUSTER_INFO_FIXTURES.iter().chain(INFO_FIXTURES) {
        for at in 0..=text.len() {
            let t = &text[..at];
            let _ = parse_cluster_info(t);
            let _ = parse_info(t);
            if at % 64 == 0 {
                let _ = check_cluster_info(t);
                let _ = check_info(t);
            }
        }
    }
}

/// 100,000 lines (a huge cluster, or a server gone wrong) parse correctly in one pass.
#[test]
fn hundred_thousand_lines() {
    const LINES: usize = 100_000;
    let mut text = String::with_capacity(LINES * 120);
    for i in 0..LINES {
        let id = format!("{i:040x}");
        let host = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let port = 1024 + (i % 60_000);
        if i < usize::from(SLOT_COUNT) {
            // One master per slot.
            text.push_str(&format!(
                "{id} {host}:{port}@{} master - 0 1700000000000 {i} connected {i}\n",
                port + 1
            ));
        } else if i % 1000 == 500 {
            text.push_str("garbage in the middle of a huge reply\n");
        } else {
            let master = format!("{:040x}", i % usize::from(SLOT_COUNT));
            text.push_str(&format!(
                "{id} {host}:{port}@{} slave {master} 0 1700000000000 1 connected\n",
                port + 1
            ));
        }
    }
    let n = parse_cluster_nodes(&text).expect("parses");
    let garbage = (usize::from(SLOT_COUNT)..LINES)
        .filter(|i| i % 1000 == 500)
        .count();
    assert_eq!(n.malformed_lines, garbage);
    assert_eq!(n.nodes.len(), LINES - garbage);
    assert_eq!(
        n.nodes.iter().map(NodeLine::slot_count).sum::<u32>(),
        u32::from(SLOT_COUNT)
    );
    assert_eq!(
        n.nodes.iter().filter(|x| x.flags.master).count(),
        usize::from(SLOT_COUNT)
    );
    let last = n.nodes.last().expect("nodes");
    assert_eq!(last.id, format!("{:040x}", LINES - 1));
    assert_eq!(
        last.master_id.as_deref(),
        Some(format!("{:040x}", (LINES - 1) % usize::from(SLOT_COUNT)).as_str())
    );
    assert!(n.myself().is_none());
}

/// One line listing all 16384 slots one by one (a fully fragmented slot map), plus the same line
/// with a migrating entry for every slot.
#[test]
fn very_long_slot_lists() {
    let head = "05d6dd21fe519c23732337f41370116b07c49105 127.0.0.1:7000@17000 myself,master - 0 0 1 connected";
    let singles: String = (0..SLOT_COUNT).map(|s| format!(" {s}")).collect();
    let n = check_cluster_nodes(&format!("{head}{singles}\n")).expect("parses");
    let me = n.myself().expect("myself");
    assert_eq!(me.slots.len(), usize::from(SLOT_COUNT));
    assert_eq!(me.slot_count(), u32::from(SLOT_COUNT));

    let open: String = (0..SLOT_COUNT)
        .map(|s| format!(" [{s}->-ca9627121fbf836c3304d076bb2f89bc6c877632]"))
        .collect();
    let n = check_cluster_nodes(&format!("{head} 0-16383{open}\n")).expect("parses");
    let me = n.myself().expect("myself");
    assert_eq!(me.migrating.len(), usize::from(SLOT_COUNT));
    assert_eq!(me.migrating[16383].slot, 16383);

    // A single 1 MB field: a malformed line, nothing else.
    let huge = format!("{head} {}\n", "9".repeat(1 << 20));
    assert_eq!(check_cluster_nodes(&huge), Err(ParseError::Empty));
    let huge_info = format!("cluster_state:ok\ncluster_size:{}\n", "9".repeat(1 << 20));
    assert_eq!(
        check_cluster_info(&huge_info),
        Err(ParseError::BadValue {
            field: "cluster_size"
        })
    );
    let huge_value = format!("role:master\nused_memory:{}\n", "9".repeat(1 << 20));
    assert_eq!(check_info(&huge_value).expect("parses").used_memory, None);
}

/// Every fixture passes the shared invariants as is and in CRLF form.
#[test]
fn fixtures_pass_the_invariants() {
    for text in all_fixtures() {
        check_all(text);
        check_all(&to_crlf(text));
    }
    for text in NODES_FIXTURES {
        assert!(check_cluster_nodes(text).is_ok());
    }
    for text in CLUSTER_INFO_FIXTURES {
        assert!(check_cluster_info(text).is_ok());
    }
    for text in INFO_FIXTURES {
        assert!(check_info(text).is_ok());
    }
    for bytes in SLOT_STATS_FIXTURES {
        let v = redis::parse_redis_value(bytes).expect("RESP fixture decodes");
        check_slot_stats_value(&v, 100);
        check_slot_stats_value(&v, 3);
    }
}
