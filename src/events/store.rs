//! The durable event log: an append-only JSON-lines file (one event per line) plus its in-memory
//! copy of the newest `retention` events, and the broadcast channel live streams listen to.
//!
//! Files, for a log at `<log>`:
//! - `<log>`: one compact JSON object per line, each line ending in `\n`. A line counts only
//!   with its newline: an unterminated tail is a torn write and is cut away at open.
//! - `<log>.meta`: `{"next_id":N}`, a lower bound for the next id, replaced atomically at open
//!   and before every compaction, so ids never go backwards even when compaction dropped events.
//! - `<log>.tmp`, `<log>.meta.tmp`: short-lived files of an atomic replace; leftovers from a
//!   crash are removed at open.
//!
//! An append is written with one `write` and `fsync`ed before the events become visible in
//! memory or on the broadcast channel. The file is never rewritten in place: compaction writes
//! the retained events to `<log>.tmp`, fsyncs it, renames it over the log and fsyncs the folder.

use crate::events::kind::{Details, EventKind};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Field names every event carries; no details struct may use them (the golden-file test of
/// the wire format covers every kind).
pub const COMMON_FIELDS: [&str; 6] = ["id", "key", "time", "cluster", "kind", "summary"];

/// How many events a live subscriber may fall behind before it sees `Lagged`.
pub const BROADCAST_CAPACITY: usize = 1024;

/// Lines the file may hold beyond the retention before it is compacted (at least).
const COMPACTION_SLACK: usize = 1000;

/// One event as stored and served. Serialized as ONE flat JSON object: `id`, `key`, `time`,
/// `cluster`, `kind`, `summary`, then the fields of `details` flattened in (see
/// [`crate::events::kind`] for their order).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Strictly increasing, never reused, survives restarts; the first event is 1.
    pub id: u64,
    /// Derived only from the cluster change itself (dedup key across exporters and restarts).
    pub key: String,
    /// When the exporter detected the change, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The `--cluster-name` of the exporter that stored the event.
    pub cluster: String,
    /// One human sentence.
    pub summary: String,
    /// The kind-specific fields; their variant is the event's kind.
    pub details: Details,
}

impl Event {
    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.details.kind()
    }
}

/// The wire shape of an [`Event`] being written.
#[derive(Serialize)]
struct WireOut<'a> {
    id: u64,
    key: &'a str,
    time: &'a str,
    cluster: &'a str,
    kind: EventKind,
    summary: &'a str,
    #[serde(flatten)]
    details: &'a Details,
}

/// The wire shape of an [`Event`] being read: the details stay loose until the kind is known.
#[derive(Deserialize)]
struct WireIn {
    id: u64,
    key: String,
    time: String,
    cluster: String,
    kind: EventKind,
    summary: String,
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            id: self.id,
            key: &self.key,
            time: &self.time,
            cluster: &self.cluster,
            kind: self.kind(),
            summary: &self.summary,
            details: &self.details,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = WireIn::deserialize(deserializer)?;
        let details = Details::from_fields(w.kind, w.fields).map_err(serde::de::Error::custom)?;
        Ok(Event {
            id: w.id,
            key: w.key,
            time: w.time,
            cluster: w.cluster,
            summary: w.summary,
            details,
        })
    }
}

/// An event before it has an id (what the detector hands to [`EventStore::append`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The dedup key, see [`Event::key`].
    pub key: String,
    /// When the change was detected.
    pub time: SystemTime,
    /// One human sentence.
    pub summary: String,
    /// The kind-specific fields; their variant is the event's kind.
    pub details: Details,
}

impl NewEvent {
    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.details.kind()
    }
}

/// A failure at the store boundary. Nothing becomes visible when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("event log {}: cannot {op}: {source}", path.display())]
    Io {
        /// What was being done ("open", "fsync", ...).
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// The file holds no event and is not a torn first write either: it is probably not an
    /// event log (a mistyped `--event-log`), and cutting its tail or appending to it would
    /// damage someone's file.
    #[error("event log {}: not an event log (none of its lines is an event); refusing to use it", path.display())]
    NotAnEventLog {
        /// The file.
        path: PathBuf,
    },
    /// An event could not be encoded as JSON.
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The id counter would overflow.
    #[error("event ids exhausted")]
    IdsExhausted,
}

/// The sidecar holding the id counter.
#[derive(Serialize, Deserialize)]
struct Meta {
    next_id: u64,
}

/// The store as the HTTP handlers and the poll loop share it.
pub type SharedStore = std::sync::Arc<std::sync::Mutex<EventStore>>;

/// The append-only event log and its retained events. Methods are synchronous (one `fsync`
/// per append); hold it in a mutex to share it.
pub struct EventStore {
    /// The log file.
    path: PathBuf,
    /// The log, opened for appending; replaced by the compacted file after a compaction.
    file: File,
    /// Length of the file up to the end of its last complete line that we know of.
    clean_len: u64,
    /// A failed append could not be rolled back: the file may hold bytes past `clean_len`.
    dirty: bool,
    /// Complete lines in the file (events and skipped garbage), for the compaction trigger.
    lines_on_disk: usize,
    /// The newest `retention` events, oldest first, ids strictly increasing.
    events: VecDeque<Event>,
    /// The id the next appended event gets.
    next_id: u64,
    /// How many events are kept.
    retention: usize,
    /// Value of the `cluster` field of new events.
    cluster: String,
    /// Live feed of durable events.
    tx: broadcast::Sender<Event>,
}

impl EventStore {
    /// Opens (creating the file and its parent folders) and loads the log.
    ///
    /// A torn or unparsable last line (crash mid-write) is skipped with a warning and cut away
    /// so the next append starts on a clean line; an unparsable line in the middle is skipped
    /// with a warning too. Ids continue after the highest id seen and after the `next_id` of
    /// the `<log>.meta` sidecar, which is (re)written here. Leftover temporary files of an
    /// interrupted compaction are removed. Fails on IO errors and on a file that holds no
    /// event and is not a torn first write either (see [`StoreError::NotAnEventLog`]); such a
    /// file is left untouched.
    pub fn open(path: &Path, retention: usize, cluster: &str) -> Result<EventStore, StoreError> {
        let path = path.to_path_buf();
        let dir = parent_dir(&path);
        std::fs::create_dir_all(&dir).map_err(io_err("create folder", &dir))?;
        remove_leftover(&sibling(&path, ".tmp"));
        remove_leftover(&sibling(&path, ".meta.tmp"));

        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err("read", &path))?;

        let loaded = parse_log(&data);
        if loaded.events.is_empty() && !looks_like_torn_first_write(&data) {
            return Err(StoreError::NotAnEventLog { path });
        }
        let clean_len = loaded.clean_len as u64;
        if clean_len < data.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                bytes = data.len() as u64 - clean_len,
                "event log ends with a torn or unparsable line (crash mid-write?); cutting it away"
            );
            file.set_len(clean_len).map_err(io_err("truncate", &path))?;
            file.sync_all().map_err(io_err("fsync", &path))?;
        }

        let max_id = loaded.events.last().map_or(0, |e| e.id);
        let meta_path = sibling(&path, ".meta");
        let meta_next = read_meta(&meta_path)?;
        let next_id = max_id
            .checked_add(1)
            .ok_or(StoreError::IdsExhausted)?
            .max(meta_next.unwrap_or(1));
        // Also makes the log's own directory entry durable (the meta write fsyncs the folder).
        write_meta(&path, next_id)?;

        let mut events: VecDeque<Event> = loaded.events.into();
        while events.len() > retention {
            events.pop_front();
        }
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let mut store = EventStore {
            path,
            file,
            clean_len,
            dirty: false,
            lines_on_disk: loaded.lines,
            events,
            next_id,
            retention,
            cluster: cluster.to_string(),
            tx,
        };
        store.maybe_compact();
        tracing::info!(
            path = %store.path.display(),
            events = store.events.len(),
            next_id = store.next_id,
            "event log loaded"
        );
        Ok(store)
    }

    /// Appends events: assigns ids, writes all lines with one write and fsyncs before they
    /// become visible in memory and on [`EventStore::subscribe`]; returns the stored events.
    ///
    /// On a write or fsync error nothing becomes visible, the partial write
    /// is cut away (retried before the next append if that fails too) and the ids are not
    /// handed out again by this process.
    pub fn append(&mut self, events: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if self.dirty {
            self.rollback()?;
        }

        let mut stored = Vec::with_capacity(events.len());
        let mut buf = Vec::new();
        let mut id = self.next_id;
        for new in events {
            let event = Event {
                id,
                key: new.key,
                time: format_time(new.time),
                cluster: self.cluster.clone(),
                summary: new.summary,
                details: new.details,
            };
            serde_json::to_writer(&mut buf, &event)?;
            buf.push(b'\n');
            stored.push(event);
            id = id.checked_add(1).ok_or(StoreError::IdsExhausted)?;
        }

        self.next_id = id;
        if let Err(e) = self.write_durably(&buf) {
            // The error that matters is the write's; a failed rollback is retried next time.
            let _ = self.rollback();
            return Err(e);
        }
        self.clean_len += buf.len() as u64;
        self.lines_on_disk += stored.len();

        for event in &stored {
            self.events.push_back(event.clone());
            // No receiver is not an error: nobody is streaming.
            let _ = self.tx.send(event.clone());
        }
        while self.events.len() > self.retention {
            self.events.pop_front();
        }
        self.maybe_compact();
        Ok(stored)
    }

    /// Events with id > `since`, only of `kind` when given, at most `limit` of the newest
    /// matching; oldest first.
    pub fn query(
        &self,
        since: Option<u64>,
        limit: Option<usize>,
        kind: Option<EventKind>,
    ) -> Vec<Event> {
        let start = since.map_or(0, |since| self.events.partition_point(|e| e.id <= since));
        let limit = limit.unwrap_or(usize::MAX);
        let mut out: Vec<Event> = self
            .events
            .range(start..)
            .rev()
            .filter(|e| kind.is_none_or(|k| e.kind() == k))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The newest retained event of a kind (e.g. to restore the last-failover timestamp after
    /// a restart).
    pub fn last_of_kind(&self, kind: EventKind) -> Option<&Event> {
        self.events.iter().rev().find(|e| e.kind() == kind)
    }

    /// Keys of the retained events with id > `after` (lets the detector skip changes it
    /// logged just before a crash).
    pub fn keys_after(&self, after: u64) -> HashSet<String> {
        let start = self.events.partition_point(|e| e.id <= after);
        self.events.range(start..).map(|e| e.key.clone()).collect()
    }

    /// Id of the newest retained event; 0 when none is retained.
    pub fn last_id(&self) -> u64 {
        self.events.back().map_or(0, |e| e.id)
    }

    /// Number of retained events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event is retained.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A live feed of every event appended from now on, each sent once it is durable
    /// (capacity [`BROADCAST_CAPACITY`]; a slower receiver gets `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Ends every live subscription: receivers see `Closed` once they have drained what they
    /// hold, so open `/events/stream` responses finish. Call it at shutdown, or a graceful HTTP
    /// shutdown waits forever for those streams. Later [`EventStore::subscribe`] calls work
    /// as before.
    pub fn close_subscriptions(&mut self) {
        self.tx = broadcast::channel(BROADCAST_CAPACITY).0;
    }

    /// One write of whole lines, then `fdatasync`.
    fn write_durably(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(buf)
            .map_err(io_err("write", &self.path))?;
        self.file.sync_data().map_err(io_err("fsync", &self.path))
    }

    /// Cuts the file back to its last complete line after a failed append.
    fn rollback(&mut self) -> Result<(), StoreError> {
        let result = self
            .file
            .set_len(self.clean_len)
            .map_err(io_err("truncate", &self.path))
            .and_then(|()| self.file.sync_data().map_err(io_err("fsync", &self.path)));
        self.dirty = result.is_err();
        if let Err(e) = &result {
            tracing::warn!(error = %e, "cannot cut a failed append out of the event log; will retry");
        }
        result
    }

    /// Compacts when the file holds more than `max(2 * retention, retention + 1000)` lines.
    /// A failure leaves the old log in place; it is logged and retried after the next append.
    fn maybe_compact(&mut self) {
        let threshold = self
            .retention
            .saturating_mul(2)
            .max(self.retention.saturating_add(COMPACTION_SLACK));
        if self.lines_on_disk <= threshold {
            return;
        }
        if let Err(e) = self.compact() {
            tracing::warn!(error = %e, "event log compaction failed; keeping the old file");
        }
    }

    /// Replaces the log by a file holding only the retained events.
    ///
    /// Crash points: before the meta rename, the old meta and log hold; after it, the meta
    /// already holds `next_id`; while `<log>.tmp` is written the log is untouched (the tmp is
    /// removed at open); the rename is atomic, so the log is either the old or the new file,
    /// both complete and fsync'd.
    fn compact(&mut self) -> Result<(), StoreError> {
        write_meta(&self.path, self.next_id)?;
        let mut buf = Vec::new();
        for event in &self.events {
            serde_json::to_writer(&mut buf, event)?;
            buf.push(b'\n');
        }
        let tmp_path = sibling(&self.path, ".tmp");
        let tmp = match write_new_file(&tmp_path, &buf, true) {
            Ok(tmp) => tmp,
            Err(e) => {
                remove_leftover(&tmp_path);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&tmp_path, &self.path) {
            remove_leftover(&tmp_path);
            return Err(StoreError::Io {
                op: "rename compacted log",
                path: tmp_path,
                source: e,
            });
        }
        // The rename happened: the open tmp handle now is the log, whatever the folder sync says.
        let dropped = self.lines_on_disk.saturating_sub(self.events.len());
        self.file = tmp;
        self.clean_len = buf.len() as u64;
        self.dirty = false;
        self.lines_on_disk = self.events.len();
        if let Err(e) = sync_dir(&parent_dir(&self.path)) {
            tracing::warn!(error = %e, "cannot fsync the event log folder after compaction");
        }
        tracing::info!(path = %self.path.display(), kept = self.events.len(), dropped, "event log compacted");
        Ok(())
    }
}

/// RFC 3339 UTC with milliseconds; times outside 1970..=9999 are clamped (humantime would panic).
pub fn format_time(time: SystemTime) -> String {
    // 9999-12-31T23:59:59.999Z
    let max = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    let time = time.clamp(UNIX_EPOCH, max);
    humantime::format_rfc3339_millis(time).to_string()
}

/// What [`parse_log`] found.
struct Loaded {
    /// Valid events, ids strictly increasing.
    events: Vec<Event>,
    /// Complete lines kept in the file (valid or skipped).
    lines: usize,
    /// Byte length to keep: up to the end of the last valid event line.
    clean_len: usize,
}

/// Parses the log's bytes. Lines that are not events, or whose id does not increase, are
/// skipped with a warning; everything after the last valid event line (a torn write, garbage)
/// is left out of `clean_len`.
fn parse_log(data: &[u8]) -> Loaded {
    let mut loaded = Loaded {
        events: Vec::new(),
        lines: 0,
        clean_len: 0,
    };
    let mut skipped_since_valid = 0;
    let mut pos = 0;
    let mut line_no = 0usize;
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break; // unterminated tail: a torn write, never acknowledged
        };
        line_no += 1;
        let line = rest.get(..nl).unwrap_or_default();
        pos += nl + 1;
        match serde_json::from_slice::<Event>(line) {
            Ok(event) if loaded.events.last().is_none_or(|last| event.id > last.id) => {
                loaded.events.push(event);
                loaded.lines += skipped_since_valid + 1;
                skipped_since_valid = 0;
                loaded.clean_len = pos;
            }
            Ok(event) => {
                tracing::warn!(
                    line = line_no,
                    id = event.id,
                    "event log line with an id not above the previous one; skipped"
                );
                skipped_since_valid += 1;
            }
            Err(e) => {
                if !line.is_empty() {
                    tracing::warn!(line = line_no, error = %e, "unparsable event log line; skipped");
                }
                skipped_since_valid += 1;
            }
        }
    }
    loaded
}

/// True for an empty file or one holding only what a crash during the very first append
/// leaves: an unterminated start of our JSON line (`{...`) or the zeros some filesystems show
/// for data that never reached the disk. Any complete line that is not an event means the
/// file is someone else's.
fn looks_like_torn_first_write(data: &[u8]) -> bool {
    match data.first() {
        None => true,
        Some(b'{' | 0) => !data.contains(&b'\n'),
        Some(_) => false,
    }
}

/// Reads `<log>.meta`; `None` when missing or unparsable (with a warning).
fn read_meta(meta_path: &Path) -> Result<Option<u64>, StoreError> {
    let data = match std::fs::read(meta_path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io {
                op: "read",
                path: meta_path.to_path_buf(),
                source: e,
            });
        }
    };
    match serde_json::from_slice::<Meta>(&data) {
        Ok(meta) => Ok(Some(meta.next_id)),
        Err(e) => {
            tracing::warn!(path = %meta_path.display(), error = %e, "unparsable event log meta file; ids continue after the log's highest id");
            Ok(None)
        }
    }
}

/// Atomically replaces `<log>.meta` with `{"next_id":N}`.
fn write_meta(log_path: &Path, next_id: u64) -> Result<(), StoreError> {
    let mut body = serde_json::to_vec(&Meta { next_id })?;
    body.push(b'\n');
    replace_file(&sibling(log_path, ".meta"), &body)
}

/// Atomically replaces `path` with `body`: `<path>.tmp`, fsync, rename, fsync of the folder.
/// A crash at any point leaves either the old or the new file (and maybe a tmp file, removed
/// by the next write).
pub(crate) fn replace_file(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let tmp_path = sibling(path, ".tmp");
    if let Err(e) = write_new_file(&tmp_path, body, false) {
        remove_leftover(&tmp_path);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp_path, path) {
        remove_leftover(&tmp_path);
        return Err(StoreError::Io {
            op: "rename",
            path: tmp_path,
            source: e,
        });
    }
    sync_dir(&parent_dir(path))
}

/// Creates `path` afresh (removing a leftover), writes `data` and fsyncs it. With `append`,
/// the returned handle is open for appending (it becomes the log after a compaction).
fn write_new_file(path: &Path, data: &[u8], append: bool) -> Result<File, StoreError> {
    remove_leftover(path);
    let mut options = OpenOptions::new();
    if append {
        options.read(true).append(true);
    } else {
        options.write(true);
    }
    let mut file = options
        .create_new(true)
        .open(path)
        .map_err(io_err("create", path))?;
    file.write_all(data).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("fsync", path))?;
    Ok(file)
}

/// Fsyncs a folder so renames and new entries in it are durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync folder", dir))
}

/// Removes a temporary file if present; failures are only logged (the next create retries).
fn remove_leftover(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed a leftover temporary event log file")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover temporary event log file")
        }
    }
}

/// `<path><suffix>`, e.g. `events.jsonl.meta`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The folder holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Builds a `map_err` closure for an IO step on `path`.
fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::kind::{ClusterStateDetails, StateValue};

    fn line(id: u64) -> String {
        format!(
            "{{\"id\":{id},\"key\":\"k{id}\",\"time\":\"2024-01-01T00:00:00.000Z\",\"cluster\":\"c\",\"kind\":\"node_removed\",\"summary\":\"s\",\"node\":{{\"addr\":null,\"id\":\"n\"}},\"role\":\"master\"}}\n"
        )
    }

    #[test]
    fn parse_log_keeps_valid_lines_and_cuts_the_tail() {
        let data = format!("{}garbage\n{}{}\n{{\"id\":9,", line(1), line(3), line(2));
        let loaded = parse_log(data.as_bytes());
        let ids: Vec<u64> = loaded.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(loaded.lines, 3);
        assert_eq!(loaded.clean_len, line(1).len() + 8 + line(3).len());
    }

    #[test]
    fn tells_a_torn_first_write_from_a_foreign_file() {
        assert!(looks_like_torn_first_write(b""));
        assert!(looks_like_torn_first_write(b"{\"id\":1,\"ke"));
        assert!(looks_like_torn_first_write(b"\0\0\0\0"));
        assert!(!looks_like_torn_first_write(b"hunter2"));
        assert!(!looks_like_torn_first_write(b"root:x:0:0\nbin:x:1:1\n"));
        assert!(!looks_like_torn_first_write(b"{not json}\n"));
    }

    #[test]
    fn event_serializes_flat_and_round_trips() {
        let event = Event {
            id: 1,
            key: "cluster_state/fail/3".into(),
            time: "2024-01-01T00:00:00.000Z".into(),
            cluster: "c".into(),
            summary: "s".into(),
            details: Details::ClusterState(ClusterStateDetails {
                from: StateValue::Ok,
                slots_fail: 1,
                slots_ok: 16383,
                slots_pfail: 0,
                to: StateValue::Fail,
            }),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(
            text,
            r#"{"id":1,"key":"cluster_state/fail/3","time":"2024-01-01T00:00:00.000Z","cluster":"c","kind":"cluster_state","summary":"s","from":"ok","slots_fail":1,"slots_ok":16383,"slots_pfail":0,"to":"fail"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
        // A kind this version does not know, or details of the wrong shape: not an event.
        assert!(
            serde_json::from_str::<Event>(
                &text.replace("\"kind\":\"cluster_state\"", "\"kind\":\"x\"")
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<Event>(&text.replace("\"to\":\"fail\"", "\"to\":3")).is_err()
        );
    }

    #[test]
    fn format_time_clamps_instead_of_panicking() {
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
