//! Failover tests: triggers, durations, missed flags, stale observers, restarts.

use super::*;

#[test]
fn automatic_failover_after_kill() {
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World {
        offsets: vec![(id('a'), 5000), (id('d'), 4990)],
        ..World::default()
    };
    assert!(d.observe(&snap(1, &all, &w)).is_empty());
    // Killed: unreachable, then flagged pfail, then fail + cluster_state fail.
    w.down = vec![id('a')];
    assert!(d.observe(&snap(2, &all, &w)).is_empty());
    w.flags = vec![(id('a'), "fail?")];
    assert!(d.observe(&snap(3, &all, &w)).is_empty());
    w.flags = vec![(id('a'), "fail")];
    w.state_fail = true;
    let ev = d.observe(&snap(4, &all, &w));
    assert_eq!(kinds(&ev), ["node_fail", "cluster_state"]);
    assert_eq!(wire(&ev[0])["reported_by"].as_array().unwrap().len(), 5);
    // Replica d wins: it owns 0-5460 at epoch 7.
    promote(&mut all, 'a', 'd');
    w.state_fail = false;
    w.second_offset = vec![(id('d'), 4991)];
    let ev = d.observe(&snap(6, &all, &w));
    assert_eq!(kinds(&ev), ["failover", "cluster_state"]);
    let f = &wire(&ev[0]);
    assert_eq!(f["trigger"], "automatic");
    assert_eq!(f["old_master"]["id"], id('a'));
    assert_eq!(f["old_master"]["addr"], "127.0.0.1:7000");
    assert_eq!(f["new_master"]["addr"], "127.0.0.1:7003");
    assert_eq!(f["slots"], "0-5460");
    assert_eq!(f["config_epoch"], 7);
    assert_eq!(f["duration_seconds"], 4.0);
    assert_eq!(f["first_failure_seen"], "2027-01-15T08:00:02.000Z");
    assert_eq!(f["replica_offset_at_promotion"], 4990);
    assert_eq!(f["last_master_offset_seen"], 5000);
    assert_eq!(f["possible_data_loss_bytes"], 10);
    assert_eq!(ev[0].key, format!("failover/{}/7", id('d')));
    // Seen again by later polls: no second failover.
    assert!(d.observe(&snap(7, &all, &w)).is_empty());
    // The old master restarts and rejoins as a replica of d.
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.master_of = Some(id('d'));
        }
    }
    w.down.clear();
    w.flags.clear();
    let ev = d.observe(&snap(8, &all, &w));
    assert_eq!(kinds(&ev), ["node_recovered", "role_changed"]);
    assert_eq!(wire(&ev[1])["to_master_id"], id('d'));
}

#[test]
fn promotion_heard_by_a_minority_while_the_new_master_does_not_answer() {
    // Regression (tests/sim_scale.rs, once in four runs): d is promoted but does not answer
    // this poll, one observer has heard of it and three have not. The majority's line (d a
    // replica at its old master's epoch) must not be mixed with the minority's slot claim:
    // gossip carries a node's role, slots and config epoch together, and the newest of
    // them (highest epoch) describes d.
    let old = cluster();
    let mut d = started(&old);
    let mut new = old.clone();
    promote(&mut new, 'a', 'd');
    let w = World {
        down: vec![id('a'), id('d')],
        flags: vec![(id('a'), "fail")],
        ..World::default()
    };
    let s = stale_for(&snap(5, &new, &w), &snap(5, &old, &w), &['c', 'e', 'f']);
    let view_d = &s.view.nodes[&id('d')];
    assert_eq!(view_d.role, Role::Master);
    assert_eq!(view_d.config_epoch, 7);
    let ev = d.observe(&s);
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(wire(f)["config_epoch"], 7);
    assert_eq!(f.key, format!("failover/{}/7", id('d')));
}

#[test]
fn old_master_back_before_the_promotion_is_seen_is_still_automatic() {
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World {
        offsets: vec![(id('a'), 900)],
        ..World::default()
    };
    d.observe(&snap(1, &all, &w));
    w.down = vec![id('a')];
    d.observe(&snap(2, &all, &w));
    w.flags = vec![(id('a'), "fail")];
    d.observe(&snap(3, &all, &w));
    // The next poll finds d promoted *and* a restarted (empty, offset 0) as its replica.
    promote(&mut all, 'a', 'd');
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.master_of = Some(id('d'));
        }
    }
    w.down.clear();
    w.flags.clear();
    w.offsets = vec![(id('a'), 0), (id('d'), 900)];
    w.counters = vec![(id('d'), 0, 1)];
    let ev = d.observe(&snap(5, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("failover");
    assert_eq!(wire(f)["trigger"], "automatic");
    assert_eq!(wire(f)["duration_seconds"], 3.0);
    assert_eq!(wire(f)["last_master_offset_seen"], 900);
}

#[test]
fn a_fail_flag_missed_between_polls_is_still_automatic() {
    // kill -9, then FAIL, the election and the old master's restart all between two polls:
    // the exporter never sees the flag, only the old master unreachable, the promotion, and
    // the FAIL broadcast the promoted replica received (with its election's auth-req).
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    d.observe(&snap(1, &all, &w));
    w.down = vec![id('a')];
    d.observe(&snap(2, &all, &w));
    promote(&mut all, 'a', 'd');
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.master_of = Some(id('d'));
        }
    }
    w.down.clear();
    w.counters = vec![(id('d'), 0, 1)];
    w.fail_received = vec![(id('d'), 1)];
    let ev = d.observe(&snap(5, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(wire(f)["trigger"], "automatic", "{:#?}", f.details);
    // The FAIL the failover implies is announced, then the recovery of the node that is
    // already back.
    assert_eq!(
        kinds(&ev),
        ["node_fail", "failover", "node_recovered", "role_changed"]
    );
    assert_eq!(ev[0].key, format!("node_fail/{}/1", id('a')));
    // Without the FAIL broadcast, an election after an outage is what FORCE looks like.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    d.observe(&snap(1, &all, &w));
    w.down = vec![id('a')];
    d.observe(&snap(2, &all, &w));
    promote(&mut all, 'a', 'd');
    w.down.clear();
    w.counters = vec![(id('d'), 0, 1)];
    let ev = d.observe(&snap(5, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(wire(f)["trigger"], "force");
}

#[test]
fn promoted_node_read_before_its_promotion_and_the_others_after() {
    // Regression (tests/sim_scale.rs): in one round the promoted replica d answered before
    // it won (its own line: a replica at its old master's epoch) and the other observers
    // after (d a master at epoch 7). d's own older line must not describe it.
    let old = cluster();
    let mut d = started(&old);
    let mut new = old.clone();
    promote(&mut new, 'a', 'd');
    let w = World {
        down: vec![id('a')],
        flags: vec![(id('a'), "fail")],
        ..World::default()
    };
    let s = stale_for(&snap(5, &new, &w), &snap(5, &old, &w), &['d']);
    let view_d = &s.view.nodes[&id('d')];
    assert_eq!((view_d.role, view_d.config_epoch), (Role::Master, 7));
    let ev = d.observe(&s);
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(f.key, format!("failover/{}/7", id('d')));
}

#[test]
fn failure_and_promotion_first_seen_together_have_no_duration() {
    // The exporter was paused (SIGSTOP) across the whole failover: the first poll after
    // SIGCONT sees the dead master and the promotion at once. It never saw the failure
    // begin, so the duration is unknown (null), not 0.
    let mut all = cluster();
    let mut d = started(&all);
    promote(&mut all, 'a', 'd');
    let w = World {
        down: vec![id('a')],
        flags: vec![(id('a'), "fail")],
        ..World::default()
    };
    let ev = d.observe(&snap(30, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(wire(f)["trigger"], "automatic");
    assert_eq!(wire(f)["duration_seconds"], Value::Null);
}

#[test]
fn a_manual_failover_after_a_short_suspicion_is_manual() {
    // Found by the chaos run: master a SIGSTOPped below the node timeout (fail? for a few
    // polls, never fail), then CLUSTER FAILOVER on d 7 s later was logged as automatic.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    d.observe(&snap(1, &all, &w));
    w.down = vec![id('a')];
    w.flags = vec![(id('a'), "fail?")];
    for t in 2..4 {
        d.observe(&snap(t, &all, &w));
    }
    w.down.clear();
    w.flags.clear();
    for t in 4..11 {
        d.observe(&snap(t, &all, &w));
    }
    promote(&mut all, 'a', 'd');
    w.counters = vec![(id('d'), 1, 1)];
    let ev = d.observe(&snap(11, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("a failover");
    assert_eq!(wire(f)["trigger"], "manual", "{:#?}", f.details);
}

#[test]
fn an_old_failure_is_not_charged_to_a_later_takeover() {
    // a is killed and replaced by d, comes back as d's replica, becomes master again by
    // CLUSTER FAILOVER FORCE, and 20 s later loses its slots to CLUSTER FAILOVER TAKEOVER:
    // that last one is a takeover, whatever a's failure half a minute earlier.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    d.observe(&snap(1, &all, &w));
    w.down = vec![id('a')];
    d.observe(&snap(2, &all, &w));
    w.flags = vec![(id('a'), "fail")];
    d.observe(&snap(3, &all, &w));
    promote(&mut all, 'a', 'd');
    let ev = d.observe(&snap(4, &all, &w));
    assert_eq!(wire(&ev[0])["trigger"], "automatic");
    // Back, as d's replica.
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.master_of = Some(id('d'));
        }
    }
    w.down.clear();
    w.flags.clear();
    d.observe(&snap(5, &all, &w));
    // FORCE: a wins an election (auth-req rises) at epoch 8; d follows it.
    promote_at(&mut all, 'a', 'd', 8);
    w.counters = vec![(id('a'), 0, 1)];
    let ev = d.observe(&snap(6, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("the FORCE failover");
    assert_eq!(wire(f)["trigger"], "force");
    assert_eq!(wire(f)["new_master"]["id"], id('a'));
    for t in 7..26 {
        d.observe(&snap(t, &all, &w));
    }
    // TAKEOVER by d at epoch 9: no election, a healthy.
    promote_at(&mut all, 'd', 'a', 9);
    let ev = d.observe(&snap(26, &all, &w));
    let f = ev
        .iter()
        .find(|e| e.kind() == EventKind::Failover)
        .expect("the TAKEOVER failover");
    assert_eq!(wire(f)["trigger"], "takeover", "{:#?}", f.details);
    assert_eq!(wire(f)["duration_seconds"], Value::Null);
    assert_eq!(wire(f)["first_failure_seen"], Value::Null);
}

#[test]
fn a_replica_restarted_just_before_its_promotion_counts_from_zero() {
    // Found by the chaos run: replica d, whose earlier process had sent MFSTART and
    // AUTH-REQ (an earlier manual failover), was killed, restarted, and promoted by
    // CLUSTER FAILOVER seconds later. Its new process's counters (1 MFSTART, 5 AUTH-REQ
    // since it started) equal the old samples', which made the failover a takeover; with
    // no sample at all it was `unknown`. The restart is known from a new run_id, or from
    // bus counters lower than the last sample's; the new process counts from 0.
    let cases = [
        // (run_id at promotion, new process's messages_sent, sampled once before the
        // promotion, its (mfstart, auth-req) at promotion, trigger)
        ("new", 1000, false, (1, 5), "manual"),
        ("old", 40, false, (1, 5), "manual"),
        ("new", 1000, true, (1, 5), "manual"),
        ("new", 1000, false, (1, 0), "manual"),
        ("new", 1000, false, (0, 5), "force"),
        ("new", 1000, false, (0, 0), "takeover"),
    ];
    for (run_id, sent, sampled_before, (mf, ar), trigger) in cases {
        let what = format!("{run_id} {sent} {sampled_before} {mf} {ar}");
        let mut all = cluster();
        let mut d = started(&all);
        let mut w = World {
            counters: vec![(id('d'), 1, 5)],
            messages_sent: vec![(id('d'), 900)],
            run_ids: vec![(id('d'), "old")],
            ..World::default()
        };
        for t in 1..4 {
            d.observe(&snap(t, &all, &w));
        }
        w.down = vec![id('d')];
        w.flags = vec![(id('d'), "fail")];
        d.observe(&snap(4, &all, &w));
        d.observe(&snap(5, &all, &w));
        w.down.clear();
        w.flags.clear();
        w.run_ids = vec![(id('d'), run_id)];
        if sampled_before {
            w.counters = vec![(id('d'), 0, 0)];
            w.messages_sent = vec![(id('d'), sent / 2)];
            d.observe(&snap(6, &all, &w));
        }
        promote(&mut all, 'a', 'd');
        for n in all.iter_mut().filter(|n| n.id == id('a')) {
            n.master_of = Some(id('d'));
        }
        w.counters = vec![(id('d'), mf, ar)];
        w.messages_sent = vec![(id('d'), sent)];
        let ev = d.observe(&snap(7, &all, &w));
        let f = ev
            .iter()
            .find(|e| e.kind() == EventKind::Failover)
            .expect("a failover");
        assert_eq!(wire(f)["trigger"], trigger, "{what}: {:#?}", f.details);
    }
}

#[test]
fn a_replica_failure_is_not_charged_to_a_later_failover_away_from_it() {
    // Found by the chaos run: replica d was killed and flagged FAIL, restarted, promoted by
    // CLUSTER FAILOVER 5-12 s later, and then replaced by a manual failover; that one was
    // logged as automatic, with a first failure from around d's promotion. After the
    // promotion, what looked like a new failure of d was a leftover: observers still
    // flagging it FAIL from its replica days (variant "flags"), or the exporter's polls of
    // it skipped while waiting to reconnect (variant "skipped").
    for variant in ["flags", "skipped"] {
        let mut all = cluster();
        let mut d = started(&all);
        let mut w = World::default();
        d.observe(&snap(1, &all, &w));
        w.down = vec![id('d')];
        w.flags = vec![(id('d'), "fail")];
        d.observe(&snap(2, &all, &w));
        d.observe(&snap(3, &all, &w));
        w.down.clear();
        match variant {
            "flags" => {}
            _ => {
                w.flags.clear();
                w.skipped = vec![id('d')];
            }
        }
        d.observe(&snap(4, &all, &w));
        // CLUSTER FAILOVER on d.
        promote(&mut all, 'a', 'd');
        for n in all.iter_mut().filter(|n| n.id == id('a')) {
            n.master_of = Some(id('d'));
        }
        w.counters = vec![(id('d'), 1, 5)];
        let ev = d.observe(&snap(5, &all, &w));
        let f = ev
            .iter()
            .find(|e| e.kind() == EventKind::Failover)
            .expect("d's promotion");
        assert_eq!(wire(f)["new_master"]["id"], id('d'), "{variant}");
        d.observe(&snap(6, &all, &w));
        w.flags.clear();
        w.skipped.clear();
        for t in 7..15 {
            d.observe(&snap(t, &all, &w));
        }
        // CLUSTER FAILOVER on a, d healthy all along.
        promote_at(&mut all, 'a', 'd', 8);
        w.counters = vec![(id('d'), 1, 5), (id('a'), 1, 5)];
        let ev = d.observe(&snap(15, &all, &w));
        let f = ev
            .iter()
            .find(|e| e.kind() == EventKind::Failover)
            .expect("the manual failover back");
        assert_eq!(wire(f)["trigger"], "manual", "{variant}: {:#?}", f.details);
        assert_eq!(wire(f)["first_failure_seen"], Value::Null, "{variant}");
        assert_eq!(wire(f)["duration_seconds"], Value::Null, "{variant}");
    }
}

#[test]
fn manual_force_and_takeover_are_told_apart() {
    for (mf, ar, expected) in [(1, 1, "manual"), (0, 1, "force"), (0, 0, "takeover")] {
        let mut all = cluster();
        let mut d = started(&all);
        let mut w = World::default();
        d.observe(&snap(1, &all, &w));
        promote(&mut all, 'a', 'd');
        // A healthy old master turns into a replica of the new one at once.
        for n in all.iter_mut() {
            if n.id == id('a') {
                n.master_of = Some(id('d'));
            }
        }
        w.counters = vec![(id('d'), mf, ar)];
        let ev = d.observe(&snap(2, &all, &w));
        assert_eq!(kinds(&ev), ["failover", "role_changed"], "{expected}");
        assert_eq!(wire(&ev[0])["trigger"], expected);
        assert_eq!(wire(&ev[0])["duration_seconds"], Value::Null);
        assert_eq!(wire(&ev[1])["node"]["id"], id('a'));
    }
}

#[test]
fn restart_announces_failover_that_happened_while_down_once() {
    let mut all = cluster();
    let d = started(&all);
    let saved = d.topology().clone();
    promote(&mut all, 'a', 'd');
    let w = World {
        down: vec![id('a')],
        flags: vec![(id('a'), "fail")],
        ..World::default()
    };
    // A new process starts from the saved topology.
    let mut d2 = Detector::new(saved.clone(), HashSet::new());
    let ev = d2.observe(&snap(10, &all, &w));
    assert_eq!(kinds(&ev), ["failover", "node_fail"]);
    assert_eq!(wire(&ev[0])["trigger"], "automatic");
    // Crash after logging, before saving the topology: the logged key is suppressed.
    let keys: HashSet<String> = ev.iter().map(|e| e.key.clone()).collect();
    let mut d3 = Detector::new(saved, keys);
    assert!(d3.observe(&snap(11, &all, &w)).is_empty());
    // Saved after the event: nothing to re-announce.
    let mut d4 = Detector::new(d2.topology().clone(), HashSet::new());
    assert!(d4.observe(&snap(12, &all, &w)).is_empty());
}

#[test]
fn a_replica_claiming_slots_at_a_stale_epoch_is_no_failover() {
    // Redis 7.0 (chaos run, seed 1): d won at 7, a took the slots back at 8, and a second
    // CLUSTER FAILOVER to d within seconds made d count its old election's votes again: for
    // ~100 ms its own line claimed a's slots as a master at epoch 7, until a's epoch 8
    // overruled it. The cluster never failed over; the key `failover/d/7` is already taken.
    let mut all = cluster();
    let mut d = started(&all);
    let w = World::default();
    promote_at(&mut all, 'd', 'a', 7);
    assert_eq!(
        kinds(&d.observe(&snap(1, &all, &w))),
        ["failover", "role_changed"]
    );
    promote_at(&mut all, 'a', 'd', 8);
    assert_eq!(
        kinds(&d.observe(&snap(2, &all, &w))),
        ["failover", "role_changed"]
    );
    let mut claim = all.clone();
    promote_at(&mut claim, 'd', 'a', 7);
    for round in [3, 4] {
        let s = stale_for(&snap(round, &all, &w), &snap(round, &claim, &w), &['d']);
        let view_d = &s.view.nodes[&id('d')];
        assert_eq!(view_d.role, Role::Replica, "round {round}");
        let view_a = &s.view.nodes[&id('a')];
        assert_eq!((view_a.role, view_a.slots.len()), (Role::Master, 1));
        let ev = d.observe(&s);
        assert!(ev.is_empty(), "round {round}: {:?}", kinds(&ev));
    }
    assert!(d.observe(&snap(5, &all, &w)).is_empty());
}

#[test]
fn a_manual_failover_that_takes_seconds_is_still_manual() {
    // Chaos run (seed 16, 30 min): CLUSTER FAILOVER sent MFSTART at once, and the promotion
    // came 2.2 s later (the master paused late). With only the last three 1 s samples kept,
    // every one was taken after the MFSTART: its counter had not risen, AUTH-REQ had, and one
    // exporter of the pair logged `force`.
    let mut all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    for t in 1..=5 {
        assert!(d.observe(&snap(t, &all, &w)).is_empty());
    }
    // MFSTART sent; the master takes 3.5 s to pause and the replica to catch up.
    w.counters = vec![(id('d'), 1, 0)];
    for t in 6..=9 {
        assert!(d.observe(&snap(t, &all, &w)).is_empty());
    }
    promote_at(&mut all, 'd', 'a', 7);
    w.counters = vec![(id('d'), 1, 1)];
    let ev = d.observe(&snap(10, &all, &w));
    assert_eq!(kinds(&ev), ["failover", "role_changed"]);
    assert_eq!(wire(&ev[0])["trigger"], "manual");
}

#[test]
fn a_replica_lagging_observers_list_as_an_empty_master_is_a_replica() {
    // Found by failover_on_a_just_restarted_replica_has_its_trigger (1 run in 8): right after
    // `redis-cli --cluster create` each node has a config epoch of its own, a replica's often
    // above its master's. Observers that have not yet heard that a node became a replica list
    // it as a master without slots at its own epoch, while its own line says replica at its
    // master's lower epoch. The higher epoch made it a master in the view, and its promotion a
    // second later was logged as slots_moved instead of a failover.
    let all = cluster();
    let mut empty = all.clone();
    for n in empty.iter_mut().filter(|n| n.id == id('d')) {
        n.master_of = None;
        n.epoch = 5;
    }
    let w = World::default();
    let mut d = Detector::new(Topology::default(), HashSet::new());
    let s = stale_for(
        &snap(0, &all, &w),
        &snap(0, &empty, &w),
        &['a', 'b', 'c', 'e', 'f'],
    );
    let view_d = &s.view.nodes[&id('d')];
    assert_eq!(
        (view_d.role, view_d.master_id.clone()),
        (Role::Replica, Some(id('a')))
    );
    assert!(d.observe(&s).is_empty());
    let mut promoted = all.clone();
    promote_at(&mut promoted, 'd', 'a', 7);
    let ev = d.observe(&snap(1, &promoted, &w));
    assert_eq!(kinds(&ev), ["failover", "role_changed"]);
}
