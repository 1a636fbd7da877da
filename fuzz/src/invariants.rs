//! Properties every parser result must have, whatever the input. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the proptest suite (`tests/parser_fuzz.rs`, which includes this
//! file with `#[path]`), so a finding in one is checked by the other.
//!
//! Every check panics (through `assert!`) on a violation; the parsers themselves must never panic.

use redis_cluster_exporter::parse::ParseError;
use redis_cluster_exporter::parse::cluster_info::{ClusterInfo, parse_cluster_info};
use redis_cluster_exporter::parse::cluster_nodes::{
    ClusterNodes, NodeLine, SLOT_COUNT, parse_cluster_nodes,
};
use redis_cluster_exporter::parse::info::{Info, parse_info};
use redis_cluster_exporter::parse::resp::{bulk_payload, frame_len};
use redis_cluster_exporter::parse::slot_stats::{SlotMetric, SlotStats};

/// Lines as the parsers see them (`str::lines`: split on `\n`, one trailing `\r` dropped).
pub fn non_empty_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

/// Same text with every `\n` turned into `\r\n` (INFO and CLUSTER INFO arrive that way).
pub fn to_crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Structural properties of one parsed CLUSTER NODES line.
pub fn check_node(node: &NodeLine) {
    assert!(valid_id(&node.id), "bad id {:?}", node.id);
    if let Some(m) = &node.master_id {
        assert!(valid_id(m), "bad master id {m:?}");
    }
    let mut total = 0u32;
    for r in &node.slots {
        assert!(r.start <= r.end, "range {r:?} reversed");
        assert!(r.end < SLOT_COUNT, "range {r:?} past the last slot");
        assert_eq!(r.len(), u32::from(r.end) - u32::from(r.start) + 1);
        total += r.len();
    }
    assert_eq!(node.slot_count(), total);
    for open in node.migrating.iter().chain(&node.importing) {
        assert!(open.slot < SLOT_COUNT, "open slot {open:?} out of range");
    }
    if let Some(addr) = &node.addr {
        assert!(!node.flags.noaddr, "noaddr node with an address");
        assert!(addr.port != 0, "port 0 kept as an address");
        assert!(!addr.host.is_empty(), "empty host kept as an address");
        let shown = addr.to_string();
        assert!(shown.ends_with(&format!(":{}", addr.port)), "{shown}");
        if addr.host.contains(':') {
            assert!(
                shown.starts_with('['),
                "IPv6 shown without brackets: {shown}"
            );
        }
    }
    if let Some(h) = &node.hostname {
        assert!(!h.is_empty() && !h.contains(','), "hostname {h:?}");
    }
}

/// Checks every CLUSTER NODES property and returns the parse result.
///
/// - only `ParseError::Empty` is ever returned, exactly when no line parses;
/// - `nodes.len() + malformed_lines` is the number of non-empty lines;
/// - lines are independent: the reply parses to the concatenation of its lines parsed alone;
/// - `\r\n` endings and an extra trailing newline change nothing.
pub fn check_cluster_nodes(text: &str) -> Result<ClusterNodes, ParseError> {
    let result = parse_cluster_nodes(text);

    let mut expected = ClusterNodes::default();
    let mut lines = 0usize;
    for line in non_empty_lines(text) {
        lines += 1;
        match parse_cluster_nodes(line) {
            Ok(one) => {
                assert_eq!(one.nodes.len(), 1, "one line gave several nodes: {line:?}");
                assert_eq!(one.malformed_lines, 0);
                expected.nodes.extend(one.nodes);
            }
            Err(e) => {
                assert_eq!(e, ParseError::Empty, "line {line:?}");
                expected.malformed_lines += 1;
            }
        }
    }

    match &result {
        Ok(parsed) => {
            assert!(!parsed.nodes.is_empty(), "Ok without a node");
            assert_eq!(parsed.nodes.len() + parsed.malformed_lines, lines);
            assert_eq!(parsed, &expected, "reply is not the sum of its lines");
            parsed.nodes.iter().for_each(check_node);
            if let Some(me) = parsed.myself() {
                assert!(me.flags.myself);
            }
        }
        Err(e) => {
            assert_eq!(e, &ParseError::Empty);
            assert!(
                expected.nodes.is_empty(),
                "Err although a line parses alone"
            );
            assert_eq!(expected.malformed_lines, lines);
        }
    }

    assert_eq!(
        parse_cluster_nodes(&to_crlf(text)),
        result,
        "CRLF changed the result"
    );
    assert_eq!(
        parse_cluster_nodes(&format!("{text}\n")),
        result,
        "a trailing newline changed the result"
    );
    result
}

/// Checks CLUSTER INFO properties and returns the parse result.
///
/// - errors are `MissingField("cluster_state")` or `BadValue`; a missing field only when no line
///   has the `cluster_state` key;
/// - `state_ok` is the last `cluster_state` value;
/// - per-type counters come only from `cluster_stats_messages_<type>_sent|_received` keys;
/// - `\r\n` endings and an extra trailing newline change nothing.
pub fn check_cluster_info(text: &str) -> Result<ClusterInfo, ParseError> {
    let result = parse_cluster_info(text);
    let states: Vec<&str> = kv(text)
        .filter(|(k, _)| *k == "cluster_state")
        .map(|(_, v)| v.trim())
        .collect();
    match &result {
        Ok(info) => {
            let last = states.last().copied();
            assert!(matches!(last, Some("ok" | "fail")), "state {last:?}");
            assert_eq!(info.state_ok, last == Some("ok"));
            for kind in info.sent_by_type.keys() {
                let key = format!("cluster_stats_messages_{kind}_sent");
                assert!(kv(text).any(|(k, _)| k == key), "invented {key}");
            }
            for kind in info.received_by_type.keys() {
                let key = format!("cluster_stats_messages_{kind}_received");
                assert!(kv(text).any(|(k, _)| k == key), "invented {key}");
            }
            for kind in info.sent_by_type.keys() {
                assert_eq!(info.sent(kind), info.sent_by_type[kind]);
            }
        }
        Err(ParseError::MissingField(f)) => {
            assert_eq!(*f, "cluster_state");
            assert!(
                states.is_empty(),
                "cluster_state present but reported missing"
            );
        }
        Err(ParseError::BadValue { field }) => {
            assert!(field.starts_with("cluster_"), "{field}");
        }
        Err(ParseError::Empty) => panic!("CLUSTER INFO never reports Empty"),
    }
    assert_eq!(
        parse_cluster_info(&to_crlf(text)),
        result,
        "CRLF changed the result"
    );
    assert_eq!(
        parse_cluster_info(&format!("{text}\n")),
        result,
        "a trailing newline changed the result"
    );
    result
}

/// Checks INFO properties and returns the parse result.
///
/// - `Err(Empty)` exactly when no line is a `key:value` pair;
/// - role helpers agree with `role`; keyspace entries are `dbN`; numeric fields are finite;
/// - `\r\n` endings and an extra trailing newline change nothing.
pub fn check_info(text: &str) -> Result<Info, ParseError> {
    let result = parse_info(text);
    let has_kv = kv(text).next().is_some();
    match &result {
        Ok(info) => {
            assert!(has_kv, "Ok without a key:value line");
            assert_eq!(info.is_replica(), info.role == "slave");
            if !info.is_replica() {
                assert_eq!(info.replication_offset(), info.master_repl_offset);
            } else if info.slave_repl_offset.is_some() {
                assert_eq!(info.replication_offset(), info.slave_repl_offset);
            }
            for db in &info.keyspace {
                let n = db.db.strip_prefix("db").unwrap_or("");
                assert!(
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
                    "{db:?}"
                );
            }
            assert!(info.replicas.len() <= kv(text).count());
            let floats = [
                info.uptime_in_seconds,
                info.connected_clients,
                info.used_memory,
                info.used_memory_rss,
                info.used_memory_peak,
                info.maxmemory,
                info.mem_fragmentation_ratio,
                info.total_commands_processed,
                info.connected_slaves,
                info.master_last_io_seconds_ago,
                info.master_sync_in_progress,
            ];
            for v in floats.into_iter().flatten() {
                assert!(v.is_finite(), "non-finite value {v}");
            }
            // The generic field list is sorted, unique, finite, and what field() finds.
            for w in info.fields.windows(2) {
                assert!(w[0].0 < w[1].0, "fields not sorted and unique");
            }
            for (k, v) in &info.fields {
                assert!(v.is_finite(), "non-finite field {k}");
                assert_eq!(info.field(k), Some(*v));
            }
            // Structured lines: named, finite, and each counted once (parsed or malformed).
            for c in &info.commands {
                assert!(!c.cmd.is_empty() && c.calls.is_finite() && c.usec.is_finite());
            }
            for l in &info.latencies {
                assert!(!l.cmd.is_empty() && !l.percentiles.is_empty());
                assert!(l.percentiles.iter().all(|(_, v)| v.is_finite()));
            }
            for e in &info.errors {
                assert!(!e.err.is_empty() && e.count.is_finite());
            }
            let structured = info.commands.len()
                + info.latencies.len()
                + info.errors.len()
                + info.keyspace.len()
                + info.malformed_lines;
            assert!(
                structured <= kv(text).count(),
                "more structured entries than lines"
            );
        }
        Err(e) => {
            assert_eq!(e, &ParseError::Empty);
            assert!(!has_kv, "Err(Empty) although a key:value line exists");
        }
    }
    assert_eq!(
        parse_info(&to_crlf(text)),
        result,
        "CRLF changed the result"
    );
    assert_eq!(
        parse_info(&format!("{text}\n")),
        result,
        "a trailing newline changed the result"
    );
    result
}

/// `key:value` pairs as INFO-style parsers read them (comments and blank lines skipped).
fn kv(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            None
        } else {
            line.split_once(':')
        }
    })
}

/// Checks a CLUSTER SLOT-STATS parse result, given how many entries the reply array had (`None`
/// when the reply was no array) and the limit it was parsed with.
///
/// - an error exactly when the reply is no array;
/// - at most `limit` slots, each below 16384 and listed once;
/// - every entry is either a slot or counted as malformed.
pub fn check_slot_stats(
    result: &Result<SlotStats, ParseError>,
    entries: Option<usize>,
    limit: usize,
) {
    match (result, entries) {
        (Ok(s), Some(n)) => {
            assert!(
                s.slots.len() <= limit,
                "{} slots over limit {limit}",
                s.slots.len()
            );
            assert_eq!(s.slots.len() + s.malformed, n, "entries lost");
            let mut seen = std::collections::BTreeSet::new();
            for x in &s.slots {
                assert!(x.slot < SLOT_COUNT, "slot {} out of range", x.slot);
                assert!(seen.insert(x.slot), "slot {} twice", x.slot);
            }
            for m in SlotMetric::ALL {
                assert_eq!(s.has(m), s.slots.iter().any(|x| x.get(m).is_some()));
            }
        }
        (Err(e), None) => assert!(matches!(e, ParseError::BadValue { .. }), "{e:?}"),
        (r, n) => panic!("result {r:?} for a reply with {n:?} entries"),
    }
}

/// RESP framing of arbitrary bytes: a frame found is within the input, the bytes after it do not
/// change it, and no strict prefix of it is already a complete frame.
pub fn check_resp_frame(bytes: &[u8]) -> Option<usize> {
    let len = frame_len(bytes).ok()??;
    assert!(
        len > 0 && len <= bytes.len(),
        "frame of {len} in {} bytes",
        bytes.len()
    );
    let frame = &bytes[..len];
    assert_eq!(frame_len(frame), Ok(Some(len)), "the frame alone");
    if let Some(payload) = bulk_payload(frame) {
        let mut encoded = format!("${}\r\n", payload.len()).into_bytes();
        encoded.extend_from_slice(payload);
        encoded.extend_from_slice(b"\r\n");
        assert_eq!(encoded, frame, "a bulk payload is the frame's, whole");
    }
    for cut in [len - 1, len / 2] {
        assert_eq!(
            frame_len(&frame[..cut]),
            Ok(None),
            "prefix of {cut} of a {len}-byte frame"
        );
    }
    Some(len)
}
