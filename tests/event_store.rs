//! Integration tests of the durable event log (`events::store`) against the real filesystem, and
//! of the `/events` HTTP handlers (`http::events`) over real TCP connections.

mod common;

use proptest::prelude::*;
use redis_cluster_exporter::events::kind::{
    ClusterStateDetails, ConfigConflictDetails, Details, EventKind, FailoverDetails,
    NodeAddedDetails, NodeHealthDetails, NodeRef, NodeRemovedDetails, RoleChangedDetails,
    SlotsMovedDetails, StateValue, Trigger,
};
use redis_cluster_exporter::events::store::SharedStore;
use redis_cluster_exporter::events::store::{Event, EventStore, NewEvent, StoreError};
use redis_cluster_exporter::http::events::{self as api, MAX_STREAMS};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn new_event(kind: &str, key: &str) -> NewEvent {
    let kind = EventKind::parse(kind).expect("a known kind");
    NewEvent {
        key: key.to_string(),
        time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        summary: format!("{kind} {key}"),
        details: details_of(kind),
    }
}

/// Small but complete details of each kind.
fn details_of(kind: EventKind) -> Details {
    let node = NodeRef::new("abc", Some("127.0.0.1:7000"));
    let health = NodeHealthDetails {
        node: node.clone(),
        reported_by: vec!["def".into()],
        role: "master".into(),
    };
    match kind {
        EventKind::Failover => Details::Failover(FailoverDetails {
            config_epoch: 7,
            duration_seconds: Some(3.5),
            first_failure_seen: None,
            last_master_offset_seen: Some(100),
            new_master: NodeRef::new("def", None),
            old_master: node,
            possible_data_loss_bytes: Some(0),
            replica_offset_at_promotion: Some(100),
            slots: "0-5460".into(),
            trigger: Trigger::Automatic,
        }),
        EventKind::NodePfail => Details::NodePfail(health),
        EventKind::NodeFail => Details::NodeFail(health),
        EventKind::NodeRecovered => Details::NodeRecovered(health),
        EventKind::ClusterState => Details::ClusterState(ClusterStateDetails {
            from: StateValue::Ok,
            slots_fail: 1,
            slots_ok: 16383,
            slots_pfail: 0,
            to: StateValue::Fail,
        }),
        EventKind::NodeAdded => Details::NodeAdded(NodeAddedDetails {
            master_id: None,
            node,
            role: "master".into(),
        }),
        EventKind::NodeRemoved => Details::NodeRemoved(NodeRemovedDetails {
            node,
            role: "replica".into(),
        }),
        EventKind::RoleChanged => Details::RoleChanged(RoleChangedDetails {
            from_master_id: None,
            from_role: "master".into(),
            node,
            to_master_id: Some("def".into()),
            to_role: "replica".into(),
        }),
        EventKind::SlotsMoved => Details::SlotsMoved(SlotsMovedDetails {
            config_epoch: 8,
            from: Some(node),
            slot_count: 1,
            slots: "0".into(),
            to: None,
        }),
        EventKind::ConfigConflict => Details::ConfigConflict(ConfigConflictDetails {
            claims: vec![],
            masters: vec!["abc".into()],
            slots: "0".into(),
        }),
    }
}

fn log_path(dir: &TempDir) -> PathBuf {
    dir.path().join("data").join("events.jsonl")
}

fn open(path: &Path, retention: usize) -> EventStore {
    EventStore::open(path, retention, "test").expect("open event store")
}

fn append_one(store: &mut EventStore, kind: &str, key: &str) -> Event {
    let mut stored = store.append(vec![new_event(kind, key)]).expect("append");
    assert_eq!(stored.len(), 1);
    stored.remove(0)
}

fn ids(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

fn file_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).expect("read log");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "log must end on a complete line: {text:?}"
    );
    text.lines().map(str::to_string).collect()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log for raw append");
    f.write_all(bytes).expect("raw append");
}

/// Log output captured while `f` runs (tracing, any level >= INFO).
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    (out, text)
}

// ---------------------------------------------------------------------------------------------
// Store: append, reopen, crash recovery
// ---------------------------------------------------------------------------------------------

#[test]
fn open_creates_folders_and_an_empty_log() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let store = open(&path, 10);
    assert!(store.is_empty());
    assert_eq!(store.len(), 0);
    assert_eq!(store.last_id(), 0);
    assert!(path.exists());
    let meta: Value =
        serde_json::from_slice(&fs::read(path.with_extension("jsonl.meta")).unwrap()).unwrap();
    assert_eq!(meta, json!({"next_id": 1}));
}

#[test]
fn append_writes_one_flat_line_per_event_and_reopen_continues_ids() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 100);
    let stored = store
        .append(vec![
            new_event("failover", "failover/n1/7"),
            new_event("node_pfail", "pfail/n2/1"),
        ])
        .unwrap();
    assert_eq!(ids(&stored), vec![1, 2]);
    assert_eq!(stored[0].cluster, "test");
    assert_eq!(stored[0].time, "2023-11-14T22:13:20.123Z");
    assert_eq!(store.append(vec![]).unwrap(), vec![]);
    assert_eq!(store.last_id(), 2);

    let lines = file_lines(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        r#"{"id":1,"key":"failover/n1/7","time":"2023-11-14T22:13:20.123Z","cluster":"test","kind":"failover","summary":"failover failover/n1/7","config_epoch":7,"duration_seconds":3.5,"first_failure_seen":null,"last_master_offset_seen":100,"new_master":{"addr":null,"id":"def"},"old_master":{"addr":"127.0.0.1:7000","id":"abc"},"possible_data_loss_bytes":0,"replica_offset_at_promotion":100,"slots":"0-5460","trigger":"automatic"}"#
    );
    let parsed: Event = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(parsed, stored[1]);
    drop(store);

    let mut store = open(&path, 100);
    assert_eq!(store.query(None, None, None), stored);
    assert_eq!(append_one(&mut store, "node_fail", "fail/n2/1").id, 3);
    drop(store);
    assert_eq!(
        ids(&open(&path, 100).query(None, None, None)),
        vec![1, 2, 3]
    );
}

#[test]
fn torn_last_line_is_skipped_with_a_warning_and_cut_away() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 100);
    append_one(&mut store, "failover", "a");
    append_one(&mut store, "failover", "b");
    drop(store);
    // A crash in the middle of writing event 3: half a line, no newline.
    append_raw(&path, br#"{"id":3,"key":"c","time":"2023-11-14T22:"#);

    let (store, logs) = with_logs(|| open(&path, 100));
    let mut store = store;
    assert!(logs.contains("WARN"), "logs: {logs}");
    assert!(logs.contains("torn"), "logs: {logs}");
    assert_eq!(ids(&store.query(None, None, None)), vec![1, 2]);
    assert_eq!(
        file_lines(&path).len(),
        2,
        "torn tail must be cut from the file"
    );

    let next = append_one(&mut store, "failover", "c");
    assert_eq!(next.id, 3);
    let lines = file_lines(&path);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        serde_json::from_str::<Event>(line).expect("every line parses");
    }
    drop(store);
    assert_eq!(
        ids(&open(&path, 100).query(None, None, None)),
        vec![1, 2, 3]
    );
}

#[test]
fn torn_first_write_and_zero_filled_tail_are_recovered() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, br#"{"id":1,"ke"#).unwrap();
    let mut store = open(&path, 10);
    assert!(store.is_empty());
    assert_eq!(append_one(&mut store, "failover", "a").id, 1);
    drop(store);

    // Power loss can leave zeros where unsynced data should have been.
    append_raw(&path, &[0u8; 64]);
    let mut store = open(&path, 10);
    assert_eq!(ids(&store.query(None, None, None)), vec![1]);
    assert_eq!(append_one(&mut store, "failover", "b").id, 2);
    assert_eq!(file_lines(&path).len(), 2);
}

#[test]
fn unparsable_middle_line_is_skipped_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 100);
    append_one(&mut store, "failover", "a");
    append_one(&mut store, "node_fail", "b");
    drop(store);
    let lines = file_lines(&path);
    let edited = format!(
        "{}\nthis is not json\n{{\"id\":\"wrong type\"}}\n{}\n",
        lines[0], lines[1]
    );
    fs::write(&path, &edited).unwrap();

    let (store, logs) = with_logs(|| open(&path, 100));
    let mut store = store;
    assert!(logs.contains("unparsable"), "logs: {logs}");
    let events = store.query(None, None, None);
    assert_eq!(ids(&events), vec![1, 2]);
    assert_eq!(events[1].key, "b");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        edited,
        "never rewritten in place"
    );
    assert_eq!(append_one(&mut store, "failover", "c").id, 3);
}

#[test]
fn unparsable_terminated_last_line_is_cut_away() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 100);
    append_one(&mut store, "failover", "a");
    drop(store);
    append_raw(&path, b"{\"id\":2,\"garbage\n");
    let mut store = open(&path, 100);
    assert_eq!(file_lines(&path).len(), 1);
    assert_eq!(append_one(&mut store, "failover", "b").id, 2);
}

#[test]
fn lines_with_non_increasing_ids_are_skipped() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 100);
    let first = append_one(&mut store, "failover", "a");
    append_one(&mut store, "failover", "b");
    drop(store);
    // A duplicated line (e.g. a log concatenated by hand) must not break id order.
    append_raw(
        &path,
        format!("{}\n", serde_json::to_string(&first).unwrap()).as_bytes(),
    );
    let mut store = open(&path, 100);
    assert_eq!(ids(&store.query(None, None, None)), vec![1, 2]);
    assert_eq!(append_one(&mut store, "failover", "c").id, 3);
}

#[test]
fn a_foreign_file_is_refused_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    for content in [&b"root:x:0:0:root:/root:/bin/bash\n"[..], b"hunter2"] {
        let path = dir.path().join("not-a-log");
        fs::write(&path, content).unwrap();
        let err = EventStore::open(&path, 10, "test")
            .err()
            .expect("must refuse");
        assert!(matches!(err, StoreError::NotAnEventLog { .. }), "{err}");
        assert!(err.to_string().contains("not-a-log"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), content);
    }
}

#[test]
fn times_outside_the_representable_range_are_clamped() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&log_path(&dir), 10);
    let mut early = new_event("failover", "a");
    early.time = UNIX_EPOCH - Duration::from_secs(10);
    let stored = store.append(vec![early]).unwrap();
    assert_eq!(stored[0].time, "1970-01-01T00:00:00.000Z");
    let mut now = new_event("failover", "b");
    now.time = SystemTime::now();
    let stored = store.append(vec![now]).unwrap();
    assert!(humantime::parse_rfc3339(&stored[0].time).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Store: retention, compaction, meta
// ---------------------------------------------------------------------------------------------

#[test]
fn retention_keeps_the_newest_and_compaction_bounds_the_file() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 3);
    for i in 0..1000 {
        append_one(&mut store, "node_pfail", &format!("k{i}"));
    }
    assert_eq!(store.len(), 3);
    assert_eq!(ids(&store.query(None, None, None)), vec![998, 999, 1000]);
    assert_eq!(
        file_lines(&path).len(),
        1000,
        "no compaction below retention + 1000"
    );

    let (_, logs) = with_logs(|| {
        for i in 1000..1004 {
            append_one(&mut store, "node_pfail", &format!("k{i}"));
        }
    });
    assert!(logs.contains("compacted"), "logs: {logs}");
    let lines = file_lines(&path);
    assert!(lines.len() <= 3, "compacted file has {} lines", lines.len());
    let on_disk: Vec<u64> = lines
        .iter()
        .map(|l| serde_json::from_str::<Event>(l).unwrap().id)
        .collect();
    assert_eq!(on_disk, ids(&store.query(None, None, None)));
    assert!(!path.with_extension("jsonl.tmp").exists());

    append_one(&mut store, "node_pfail", "after");
    drop(store);
    let mut store = open(&path, 3);
    assert_eq!(ids(&store.query(None, None, None)), vec![1003, 1004, 1005]);
    assert_eq!(append_one(&mut store, "failover", "x").id, 1006);
}

#[test]
fn ids_are_never_reused_after_compaction_dropped_everything() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 0);
    let batch: Vec<NewEvent> = (0..1001)
        .map(|i| new_event("node_fail", &format!("k{i}")))
        .collect();
    let stored = store.append(batch).unwrap();
    assert_eq!(stored.last().unwrap().id, 1001);
    assert!(store.is_empty());
    assert_eq!(store.last_id(), 0);
    assert!(file_lines(&path).is_empty(), "everything compacted away");
    drop(store);

    let mut store = open(&path, 0);
    assert_eq!(append_one(&mut store, "failover", "next").id, 1002);
    drop(store);
    // With a larger retention again, the ids still go on.
    let mut store = open(&path, 10);
    assert_eq!(append_one(&mut store, "failover", "later").id, 1003);
}

#[test]
fn a_smaller_retention_at_open_compacts_an_oversized_file() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 5000);
    let batch: Vec<NewEvent> = (0..1500)
        .map(|i| new_event("node_fail", &format!("k{i}")))
        .collect();
    store.append(batch).unwrap();
    drop(store);

    let mut store = open(&path, 10);
    assert_eq!(store.len(), 10);
    assert_eq!(file_lines(&path).len(), 10);
    assert_eq!(store.query(None, None, None).first().unwrap().id, 1491);
    assert_eq!(append_one(&mut store, "failover", "x").id, 1501);
}

#[test]
fn crash_leftovers_of_a_compaction_are_removed_and_the_meta_wins() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 10);
    append_one(&mut store, "failover", "a");
    drop(store);

    // Killed after writing the meta (next_id 500) but before the compacted log was renamed
    // into place, and mid-way through an older meta replacement.
    let tmp = path.with_extension("jsonl.tmp");
    let meta_tmp = path.with_extension("jsonl.meta.tmp");
    fs::write(&tmp, b"{\"id\":99,\"half").unwrap();
    fs::write(&meta_tmp, b"{\"next_").unwrap();
    fs::write(path.with_extension("jsonl.meta"), b"{\"next_id\":500}\n").unwrap();

    let mut store = open(&path, 10);
    assert!(!tmp.exists(), "leftover compaction file removed");
    assert!(!meta_tmp.exists(), "leftover meta file removed");
    assert_eq!(ids(&store.query(None, None, None)), vec![1]);
    assert_eq!(append_one(&mut store, "failover", "b").id, 500);
}

#[test]
fn an_unparsable_meta_falls_back_to_the_log() {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, 10);
    append_one(&mut store, "failover", "a");
    drop(store);
    fs::write(path.with_extension("jsonl.meta"), b"garbage").unwrap();
    let (store, logs) = with_logs(|| open(&path, 10));
    let mut store = store;
    assert!(logs.contains("meta"), "logs: {logs}");
    assert_eq!(append_one(&mut store, "failover", "b").id, 2);
    let meta: Value =
        serde_json::from_slice(&fs::read(path.with_extension("jsonl.meta")).unwrap()).unwrap();
    assert_eq!(meta, json!({"next_id": 2}), "meta rewritten at open");
}

// ---------------------------------------------------------------------------------------------
// Store: queries
// ---------------------------------------------------------------------------------------------

/// ids 1..=8 with kinds f, p, f, r, p, f, p, f (f = failover, p = node_pfail, r = node_recovered).
fn sample_store(dir: &TempDir) -> EventStore {
    let mut store = open(&log_path(dir), 100);
    for (i, kind) in ["failover", "node_pfail", "failover", "node_recovered"]
        .iter()
        .chain(["node_pfail", "failover", "node_pfail", "failover"].iter())
        .enumerate()
    {
        append_one(&mut store, kind, &format!("key{}", i + 1));
    }
    store
}

#[test]
fn query_filters_combine() {
    let dir = TempDir::new().unwrap();
    let store = sample_store(&dir);
    let q = |since, limit, kind: Option<&str>| {
        ids(&store.query(since, limit, kind.and_then(EventKind::parse)))
    };
    assert_eq!(q(None, None, None), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(q(Some(0), None, None), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(q(Some(5), None, None), vec![6, 7, 8]);
    assert_eq!(q(Some(8), None, None), Vec::<u64>::new());
    assert_eq!(q(Some(100), None, None), Vec::<u64>::new());
    assert_eq!(q(None, Some(3), None), vec![6, 7, 8]);
    assert_eq!(q(None, Some(100), None).len(), 8);
    assert_eq!(q(None, Some(0), None), Vec::<u64>::new());
    assert_eq!(q(None, None, Some("failover")), vec![1, 3, 6, 8]);
    assert_eq!(q(None, Some(2), Some("failover")), vec![6, 8]);
    assert_eq!(q(Some(3), None, Some("failover")), vec![6, 8]);
    assert_eq!(q(Some(1), Some(1), Some("node_pfail")), vec![7]);
    assert_eq!(q(Some(2), Some(5), Some("node_pfail")), vec![5, 7]);
    assert_eq!(q(None, None, Some("node_fail")), Vec::<u64>::new());
}

#[test]
fn keys_after_and_last_of_kind() {
    let dir = TempDir::new().unwrap();
    let store = sample_store(&dir);
    let keys = store.keys_after(5);
    let expected: HashSet<String> = ["key6", "key7", "key8"].map(String::from).into();
    assert_eq!(keys, expected);
    assert_eq!(store.keys_after(0).len(), 8);
    assert!(store.keys_after(8).is_empty());
    assert_eq!(
        store.last_of_kind(EventKind::Failover).map(|e| e.id),
        Some(8)
    );
    assert_eq!(
        store.last_of_kind(EventKind::NodeRecovered).map(|e| e.id),
        Some(4)
    );
    assert!(store.last_of_kind(EventKind::SlotsMoved).is_none());
}

#[test]
fn subscribers_get_each_event_once_it_is_stored() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&log_path(&dir), 10);
    let mut rx = store.subscribe();
    let stored = store
        .append(vec![
            new_event("failover", "a"),
            new_event("node_fail", "b"),
        ])
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), stored[0]);
    assert_eq!(rx.try_recv().unwrap(), stored[1]);
    assert!(rx.try_recv().is_err());
}

// ---------------------------------------------------------------------------------------------
// Store: random crashes (proptest)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Append a batch of this many events (one write + fsync).
    Append(usize),
    /// Close and reopen (a clean restart or a crash between appends).
    Reopen,
    /// A crash that lost the file's tail: close, cut the file at this fraction of its length,
    /// reopen.
    Truncate(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..4).prop_map(Op::Append),
        1 => (200usize..700).prop_map(Op::Append),
        2 => Just(Op::Reopen),
        2 => (0.0f64..1.0).prop_map(Op::Truncate),
    ]
}

/// Ids and end offsets (after the newline) of the complete lines of the file, each checked to
/// be exactly an event that was acknowledged.
fn lines_with_ends(path: &Path, acked: &HashMap<u64, Event>) -> Vec<(u64, u64)> {
    let data = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            let event: Event = serde_json::from_slice(&data[start..i]).expect("log line parses");
            assert_eq!(
                acked.get(&event.id),
                Some(&event),
                "line is an acknowledged event"
            );
            out.push((event.id, i as u64 + 1));
            start = i + 1;
        }
    }
    assert_eq!(start, data.len(), "log ends on a complete line");
    out
}

fn run_ops(retention: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = TempDir::new().unwrap();
    let path = log_path(&dir);
    let mut store = open(&path, retention);
    // Every event ever acknowledged by append, by id.
    let mut acked: HashMap<u64, Event> = HashMap::new();
    // What the store must hold: the newest `retention` acknowledged events not lost to a cut.
    let mut expected: Vec<Event> = Vec::new();
    // Ids of acknowledged events lost because a truncation cut into their line.
    let mut cut: HashSet<u64> = HashSet::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Append(count) => {
                let batch = (0..count)
                    .map(|_| {
                        n += 1;
                        new_event(
                            EventKind::ALL[n % EventKind::ALL.len()].as_str(),
                            &format!("k{n}"),
                        )
                    })
                    .collect();
                let stored = store.append(batch).unwrap();
                // New ids are above every acknowledged id that was not cut away.
                let floor = acked.keys().filter(|id| !cut.contains(id)).max().copied();
                let got = ids(&stored);
                prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "ids increase: {got:?}");
                prop_assert!(
                    floor.is_none_or(|f| got[0] > f),
                    "id {} reused (floor {floor:?})",
                    got[0]
                );
                for event in stored {
                    prop_assert!(
                        !acked.contains_key(&event.id) || cut.contains(&event.id),
                        "id {} given twice",
                        event.id
                    );
                    acked.insert(event.id, event.clone());
                    cut.remove(&event.id);
                    expected.push(event);
                }
            }
            Op::Reopen => {
                drop(store);
                store = open(&path, retention);
            }
            Op::Truncate(frac) => {
                drop(store);
                let lines = lines_with_ends(&path, &acked);
                let len = fs::metadata(&path).unwrap().len();
                let at = (len as f64 * frac) as u64;
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(at)
                    .unwrap();
                // Survivors: every line wholly before the cut; the rest was cut into.
                let surviving: HashSet<u64> = lines
                    .iter()
                    .filter(|(_, end)| *end <= at)
                    .map(|(id, _)| *id)
                    .collect();
                for (id, _) in &lines {
                    if !surviving.contains(id) {
                        cut.insert(*id);
                    }
                }
                // The file holds the retained events (and maybe older ones not yet compacted).
                let mut on_disk: Vec<Event> = lines
                    .iter()
                    .filter(|(id, _)| surviving.contains(id))
                    .map(|(id, _)| acked[id].clone())
                    .collect();
                expected.retain(|e| surviving.contains(&e.id));
                prop_assert!(
                    expected.iter().all(|e| on_disk.contains(e)),
                    "retained events are on disk"
                );
                expected = std::mem::take(&mut on_disk);
                store = open(&path, retention);
            }
        }
        let keep = expected.len().saturating_sub(retention);
        expected.drain(..keep);
        prop_assert_eq!(ids(&store.query(None, None, None)), ids(&expected));
        prop_assert_eq!(store.query(None, None, None), expected.clone());
        lines_with_ends(&path, &acked);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_appends_reopens_and_truncations_lose_only_what_was_cut(
        retention in prop_oneof![Just(0usize), 1usize..6, Just(300usize)],
        ops in proptest::collection::vec(op(), 1..20),
    ) {
        run_ops(retention, ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: /events and /events/stream
// ---------------------------------------------------------------------------------------------

async fn serve(store: SharedStore) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api::router(store)).await });
    addr
}

fn shared(store: EventStore) -> SharedStore {
    Arc::new(Mutex::new(store))
}

/// A blocking GET (tests/common's client) run off the runtime.
async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let url = format!("http://{addr}{target}");
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        common::try_http_get(&url, &headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
    })
    .await
    .unwrap()
}

async fn get_json(addr: SocketAddr, target: &str) -> (u16, Value) {
    let (status, headers, body) = get(addr, target, &[]).await;
    assert_eq!(
        common::header_value(&headers, "content-type").as_deref(),
        Some("application/json"),
        "{target}"
    );
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: {e}: {body}"));
    (status, json)
}

fn json_ids(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test]
async fn get_events_filters() {
    let dir = TempDir::new().unwrap();
    let addr = serve(shared(sample_store(&dir))).await;

    let (status, all) = get_json(addr, "/events").await;
    assert_eq!(status, 200);
    assert_eq!(json_ids(&all), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    let first = &all[0];
    assert_eq!(first["key"], "key1");
    assert_eq!(first["cluster"], "test");
    assert_eq!(first["kind"], "failover");
    assert_eq!(first["time"], "2023-11-14T22:13:20.123Z");
    assert_eq!(
        first["old_master"]["addr"], "127.0.0.1:7000",
        "details are flattened"
    );

    for (target, expected) in [
        ("/events?", vec![1, 2, 3, 4, 5, 6, 7, 8]),
        ("/events?since=5", vec![6, 7, 8]),
        ("/events?limit=2", vec![7, 8]),
        ("/events?kind=failover", vec![1, 3, 6, 8]),
        ("/events?kind=failover&limit=3&since=1", vec![3, 6, 8]),
        ("/events?limit=1&kind=node_pfail", vec![7]),
        ("/events?since=8", vec![]),
        ("/events?since=18446744073709551615", vec![]),
        ("/events?kind=node%5Frecovered", vec![4]),
        ("/events?limit=100000", vec![1, 2, 3, 4, 5, 6, 7, 8]),
        ("/events?kind=slots_moved", vec![]),
    ] {
        let (status, body) = get_json(addr, target).await;
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(json_ids(&body), expected, "{target}");
    }
}

#[tokio::test]
async fn get_events_rejects_bad_input_with_a_json_400() {
    let dir = TempDir::new().unwrap();
    let addr = serve(shared(sample_store(&dir))).await;
    let long_kind = format!("/events?kind={}", "a".repeat(257));
    let long_since = format!("/events?since={}", "1".repeat(300));
    let cases: Vec<(&str, &str)> = vec![
        ("/events?since=abc", "since"),
        ("/events?since=-1", "since"),
        ("/events?since=1.5", "since"),
        ("/events?since=", "since"),
        ("/events?since=18446744073709551616", "since"),
        ("/events?limit=0", "limit"),
        ("/events?limit=-3", "limit"),
        ("/events?limit=ten", "limit"),
        ("/events?limit=100001", "limit"),
        ("/events?kind=exploded", "kind"),
        ("/events?kind=", "kind"),
        ("/events?foo=1", "foo"),
        ("/events?since=1&bar", "bar"),
        ("/events?since=1&since=2", "since"),
        ("/events?kind=failover&kind=failover", "kind"),
        (long_kind.as_str(), "kind"),
        (long_since.as_str(), "since"),
    ];
    for (target, param) in cases {
        let (status, body) = get_json(addr, target).await;
        assert_eq!(status, 400, "{target}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{target}: {body}"));
        assert!(message.contains(param), "{target}: {message}");
    }
}

/// A raw SSE client: reads the response head, then de-chunks the body and splits messages.
struct SseClient {
    stream: tokio::net::TcpStream,
    raw: Vec<u8>,
    text: String,
    /// The last (zero-size) chunk was seen.
    ended: bool,
}

#[derive(Debug, Default)]
struct SseMessage {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl SseClient {
    async fn connect(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String, SseClient) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req =
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut client = SseClient {
            stream,
            raw: Vec::new(),
            text: String::new(),
            ended: false,
        };
        let head_end = loop {
            if let Some(k) = client.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break k;
            }
            client.read_more().await;
        };
        let head = String::from_utf8_lossy(&client.raw[..head_end]).into_owned();
        client.raw.drain(..head_end + 4);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head.to_ascii_lowercase(), client)
    }

    async fn read_more(&mut self) {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf))
            .await
            .expect("timed out waiting for the server")
            .unwrap();
        assert!(n > 0, "server closed the stream");
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Moves complete chunks from `raw` to `text`.
    fn dechunk(&mut self) {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_line = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
            let size = usize::from_str_radix(size_line.trim(), 16).expect("chunk size");
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return;
            }
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            let chunk = self.raw[eol + 2..eol + 2 + size].to_vec();
            self.raw.drain(..eol + 2 + size + 2);
            self.text.push_str(&String::from_utf8(chunk).unwrap());
        }
    }

    /// The next message that has data (keep-alive comments are skipped).
    async fn next(&mut self) -> SseMessage {
        loop {
            self.dechunk();
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut message = SseMessage::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        message.id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        message.event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        message.data.push_str(v);
                    }
                }
                if !message.data.is_empty() {
                    return message;
                }
                continue;
            }
            self.read_more().await;
        }
    }

    /// Waits for the end of the response body.
    async fn expect_end(&mut self) {
        loop {
            self.dechunk();
            if self.ended {
                return;
            }
            self.read_more().await;
        }
    }

    async fn next_event(&mut self) -> Event {
        let message = self.next().await;
        let event: Event = serde_json::from_str(&message.data).expect("data is one event");
        assert_eq!(message.id, Some(event.id.to_string()));
        assert_eq!(message.event.as_deref(), Some(event.kind().as_str()));
        event
    }
}

#[tokio::test]
async fn stream_replays_since_then_delivers_live_events() {
    let dir = TempDir::new().unwrap();
    let store = shared(sample_store(&dir));
    let addr = serve(Arc::clone(&store)).await;

    let (status, head, mut client) = SseClient::connect(addr, "/events/stream?since=6", &[]).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert_eq!(client.next_event().await.id, 7);
    assert_eq!(client.next_event().await.id, 8);

    let appended = store
        .lock()
        .unwrap()
        .append(vec![new_event("cluster_state", "state/fail")])
        .unwrap();
    let live = client.next_event().await;
    assert_eq!(live, appended[0]);
    assert_eq!(live.id, 9);
}

#[tokio::test]
async fn stream_without_since_sends_only_new_events_and_filters_by_kind() {
    let dir = TempDir::new().unwrap();
    let store = shared(sample_store(&dir));
    let addr = serve(Arc::clone(&store)).await;

    let (_, _, mut all) = SseClient::connect(addr, "/events/stream", &[]).await;
    let (_, _, mut failovers) = SseClient::connect(addr, "/events/stream?kind=failover", &[]).await;
    store
        .lock()
        .unwrap()
        .append(vec![
            new_event("node_fail", "x"),
            new_event("failover", "y"),
        ])
        .unwrap();
    assert_eq!(all.next_event().await.id, 9);
    assert_eq!(all.next_event().await.id, 10);
    let only = failovers.next_event().await;
    assert_eq!((only.id, only.kind().as_str()), (10, "failover"));
}

#[tokio::test]
async fn stream_resumes_from_last_event_id() {
    let dir = TempDir::new().unwrap();
    let store = shared(sample_store(&dir));
    let addr = serve(Arc::clone(&store)).await;
    // Last-Event-ID (a reconnecting EventSource) wins over the URL's since.
    let (status, _, mut client) =
        SseClient::connect(addr, "/events/stream?since=1", &[("Last-Event-ID", "7")]).await;
    assert_eq!(status, 200);
    assert_eq!(client.next_event().await.id, 8);
    store
        .lock()
        .unwrap()
        .append(vec![new_event("node_added", "n")])
        .unwrap();
    assert_eq!(client.next_event().await.id, 9);
}

#[tokio::test]
async fn stream_rejects_bad_input_with_a_json_400() {
    let dir = TempDir::new().unwrap();
    let addr = serve(shared(sample_store(&dir))).await;
    for (target, headers, param) in [
        ("/events/stream?since=x", vec![], "since"),
        ("/events/stream?limit=5", vec![], "limit"),
        ("/events/stream?kind=nope", vec![], "kind"),
        ("/events/stream?since=1&since=1", vec![], "since"),
        (
            "/events/stream",
            vec![("Last-Event-ID", "abc")],
            "Last-Event-ID",
        ),
        (
            "/events/stream",
            vec![("Last-Event-ID", "-4")],
            "Last-Event-ID",
        ),
    ] {
        let (status, _, body) = get(addr, target, &headers).await;
        assert_eq!(status, 400, "{target}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(param),
            "{target}: {body}"
        );
    }
}

#[tokio::test]
async fn streams_are_bounded() {
    let dir = TempDir::new().unwrap();
    let addr = serve(shared(sample_store(&dir))).await;
    let mut open_streams = Vec::new();
    for _ in 0..MAX_STREAMS {
        let (status, _, client) = SseClient::connect(addr, "/events/stream", &[]).await;
        assert_eq!(status, 200);
        open_streams.push(client);
    }
    let (status, headers, body) = get(addr, "/events/stream", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(common::header_value(&headers, "retry-after").is_some());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("streams"),
        "{body}"
    );
    // /events itself is not limited.
    assert_eq!(get_json(addr, "/events?limit=1").await.0, 200);
}

#[tokio::test]
async fn a_lagging_stream_is_told_and_catches_up_from_the_log() {
    let dir = TempDir::new().unwrap();
    let store = shared(open(&log_path(&dir), 5000));
    let addr = serve(Arc::clone(&store)).await;
    let (_, _, mut client) = SseClient::connect(addr, "/events/stream", &[]).await;

    // This test runs on a single-threaded runtime: the stream task cannot drain the broadcast
    // channel while this batch (twice its capacity) is sent.
    let batch: Vec<NewEvent> = (0..2048)
        .map(|i| new_event("node_pfail", &format!("k{i}")))
        .collect();
    store.lock().unwrap().append(batch).unwrap();

    let mut lagged = None;
    let mut seen = Vec::new();
    while seen.len() < 2048 {
        let message = client.next().await;
        if message.event.as_deref() == Some("lagged") {
            assert!(message.id.is_none());
            lagged = Some(serde_json::from_str::<Value>(&message.data).unwrap());
            continue;
        }
        let event: Event = serde_json::from_str(&message.data).unwrap();
        seen.push(event.id);
    }
    let lagged = lagged.expect("a lagged message");
    assert!(lagged["skipped_live"].as_u64().unwrap() > 0, "{lagged}");
    assert_eq!(
        seen,
        (1..=2048).collect::<Vec<u64>>(),
        "every event exactly once, in order"
    );
}

#[tokio::test]
async fn closing_subscriptions_ends_open_streams() {
    let dir = TempDir::new().unwrap();
    let store = shared(sample_store(&dir));
    let addr = serve(Arc::clone(&store)).await;
    let (_, _, mut client) = SseClient::connect(addr, "/events/stream?since=7", &[]).await;
    assert_eq!(client.next_event().await.id, 8);
    store.lock().unwrap().close_subscriptions();
    client.expect_end().await;

    // New streams still work afterwards.
    let (_, _, mut client) = SseClient::connect(addr, "/events/stream", &[]).await;
    store
        .lock()
        .unwrap()
        .append(vec![new_event("node_removed", "gone")])
        .unwrap();
    assert_eq!(client.next_event().await.id, 9);
}
