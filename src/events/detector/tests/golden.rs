//! The wire format: every kind, byte for byte as the golden file has it.

use super::*;

/// Every kind the detector emits, from hand-built rounds: the wire format's fixture.
fn golden_events() -> Vec<NewEvent> {
    let mut out = vec![];
    // Automatic failover after a kill, the old master back as a replica.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World {
        offsets: vec![(id('a'), 5000), (id('d'), 4990)],
        ..World::default()
    };
    for t in 1..=2 {
        w.down = if t == 2 { vec![id('a')] } else { vec![] };
        out.extend(d.observe(&snap(t, &all, &w)));
    }
    w.flags = vec![(id('a'), "fail?")];
    out.extend(d.observe(&snap(3, &all, &w)));
    w.flags = vec![(id('a'), "fail")];
    w.state_fail = true;
    out.extend(d.observe(&snap(4, &all, &w)));
    promote(&mut all, 'a', 'd');
    w.state_fail = false;
    w.second_offset = vec![(id('d'), 4991)];
    out.extend(d.observe(&snap(6, &all, &w)));
    for n in all.iter_mut().filter(|n| n.id == id('a')) {
        n.master_of = Some(id('d'));
    }
    w.down.clear();
    w.flags.clear();
    out.extend(d.observe(&snap(8, &all, &w)));
    // Manual, force and takeover.
    for (t, (mf, ar)) in [(1, 1), (0, 1), (0, 0)].into_iter().enumerate() {
        let mut all = cluster();
        let mut d = started(&all);
        let mut w = World::default();
        d.observe(&snap(10, &all, &w));
        promote(&mut all, 'b', 'e');
        for n in all.iter_mut().filter(|n| n.id == id('b')) {
            n.master_of = Some(id('e'));
        }
        w.counters = vec![(id('e'), mf, ar)];
        out.extend(d.observe(&snap(11 + t as u64, &all, &w)));
    }
    // A FAIL flag missed between polls: the inferred node_fail.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    d.observe(&snap(20, &all, &w));
    w.down = vec![id('c')];
    d.observe(&snap(21, &all, &w));
    promote(&mut all, 'c', 'f');
    w.down.clear();
    w.counters = vec![(id('f'), 0, 1)];
    w.fail_received = vec![(id('f'), 1)];
    out.extend(d.observe(&snap(22, &all, &w)));
    // A lasting PFAIL and its recovery.
    let all = cluster();
    let mut d = started(&all);
    let mut w = World {
        flags: vec![(id('e'), "fail?")],
        ..World::default()
    };
    for t in 30..32 {
        out.extend(d.observe(&snap(t, &all, &w)));
    }
    w.flags.clear();
    out.extend(d.observe(&snap(32, &all, &w)));
    // A node added, slots moved to it, then it leaves.
    let mut all = cluster();
    let mut d = started(&all);
    all.push(N {
        id: id('g'),
        port: 7006,
        master_of: None,
        epoch: 0,
        slots: String::new(),
    });
    let w = World::default();
    out.extend(d.observe(&snap(40, &all, &w)));
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.slots = "100-5460".into();
        } else if n.id == id('g') {
            n.slots = "0-99".into();
            n.epoch = 8;
        }
    }
    out.extend(d.observe(&snap(41, &all, &w)));
    all.retain(|n| n.id != id('g'));
    for n in all.iter_mut().filter(|n| n.id == id('a')) {
        n.slots = "0-5460".into();
        n.epoch = 9;
    }
    out.extend(d.observe(&snap(42, &all, &w)));
    // A config conflict that lasts.
    let all = cluster();
    let mut d = started(&all);
    let w = World {
        stale_owner_of_0: vec![(id('e'), id('b'))],
        ..World::default()
    };
    for t in 50..56 {
        out.extend(d.observe(&snap(t, &all, &w)));
    }
    out
}

/// The event log's lines (and so `/events`) for [`golden_events`] are byte for byte those
/// of `tests/fixtures/events_golden.jsonl`: a change to the wire format fails here.
#[test]
fn wire_format_is_the_golden_file() {
    let events = golden_events();
    let mut kinds_seen: Vec<&str> = kinds(&events);
    kinds_seen.sort_unstable();
    kinds_seen.dedup();
    assert_eq!(kinds_seen.len(), EventKind::ALL.len(), "{kinds_seen:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut store = crate::events::store::EventStore::open(&path, 1000, "golden").unwrap();
    store.append(events).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    let golden = include_str!("../../../../tests/fixtures/events_golden.jsonl");
    if written != golden {
        let new = dir.path().join("events_golden.jsonl.new");
        std::fs::write(&new, &written).unwrap();
        let _ = std::fs::copy(&new, std::env::temp_dir().join("events_golden.jsonl.new"));
    }
    for (i, (w, g)) in written.lines().zip(golden.lines()).enumerate() {
        assert_eq!(w, g, "line {}", i + 1);
    }
    assert_eq!(written.lines().count(), golden.lines().count());
    // Read back and written again: the same bytes.
    drop(store);
    let reopened = crate::events::store::EventStore::open(&path, 1000, "golden").unwrap();
    let again: String = reopened
        .query(None, None, None)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    assert_eq!(again, golden);
}
