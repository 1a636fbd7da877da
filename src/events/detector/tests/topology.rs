//! Membership, slot-move and config-conflict tests.

use super::*;

#[test]
fn membership_and_slot_moves() {
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
    let ev = d.observe(&snap(1, &all, &w));
    assert_eq!(kinds(&ev), ["node_added"]);
    // Move slots 0-99 from a to g (g's epoch bumped to 8).
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.slots = "100-5460".into();
        } else if n.id == id('g') {
            n.slots = "0-99".into();
            n.epoch = 8;
        }
    }
    let ev = d.observe(&snap(2, &all, &w));
    assert_eq!(kinds(&ev), ["slots_moved"]);
    assert_eq!(wire(&ev[0])["slots"], "0-99");
    assert_eq!(wire(&ev[0])["from"]["id"], id('a'));
    assert_eq!(wire(&ev[0])["to"]["id"], id('g'));
    assert_eq!(wire(&ev[0])["slot_count"], 100);
    all.retain(|n| n.id != id('g'));
    for n in all.iter_mut() {
        if n.id == id('a') {
            n.slots = "0-5460".into();
            n.epoch = 9;
        }
    }
    let ev = d.observe(&snap(3, &all, &w));
    assert_eq!(kinds(&ev), ["slots_moved", "node_removed"]);
}

#[test]
fn config_conflict_needs_to_last() {
    let all = cluster();
    let mut d = started(&all);
    // Observer e believes b owns slot 0 with a higher epoch than a's: e's claim wins the
    // merged map, so everyone else disagrees.
    let w = World {
        stale_owner_of_0: vec![(id('e'), id('b'))],
        ..World::default()
    };
    let mut all_events = vec![];
    for t in 1..6 {
        all_events.extend(d.observe(&snap(t, &all, &w)));
    }
    let conflicts: Vec<_> = all_events
        .iter()
        .filter(|e| e.kind() == EventKind::ConfigConflict)
        .collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(wire(conflicts[0])["slots"], "0");
}

#[test]
fn each_cluster_fail_episode_at_one_epoch_has_its_own_keys() {
    // Found by the chaos run (seed 16, 30 min): cluster_state went fail twice while the
    // cluster's current epoch stayed put (nothing was elected in between), and both episodes
    // were keyed cluster_state/fail/<epoch>: a consumer deduplicating by key drops the second.
    let all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    let mut keys = Vec::new();
    for (t, fail) in [(1, true), (2, false), (3, true), (4, false)] {
        w.state_fail = fail;
        keys.extend(
            d.observe(&snap(t, &all, &w))
                .into_iter()
                .filter(|e| e.key.starts_with("cluster_state"))
                .map(|e| e.key),
        );
    }
    let epoch = keys
        .first()
        .and_then(|k| k.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        keys,
        [
            format!("cluster_state/fail/{epoch}"),
            format!("cluster_state/ok/{epoch}"),
            format!("cluster_state/fail/{epoch}/2"),
            format!("cluster_state/ok/{epoch}/2"),
        ]
    );
    // A restarted detector carries the count on with the saved topology.
    let mut again = Detector::new(d.topology().clone(), HashSet::new());
    w.state_fail = true;
    let ev = again.observe(&snap(5, &all, &w));
    assert_eq!(
        ev.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        [format!("cluster_state/fail/{epoch}/3")]
    );
}

/// The topology the detector records, updated in place round after round, is what a fresh record
/// of each node of the latest view says (roles, masters, epochs and slots moved in between).
#[test]
fn the_recorded_topology_is_the_latest_views_after_changes() {
    let mut all = cluster();
    let mut d = started(&all);
    let w = World::default();
    // d takes over a's slots at a newer epoch; a becomes d's replica.
    for n in all.iter_mut() {
        if n.id == id('d') {
            (n.master_of, n.epoch, n.slots) = (None, 7, "0-5460".into());
        } else if n.id == id('a') {
            (n.master_of, n.slots) = (Some(id('d')), String::new());
        }
    }
    for t in 1..4 {
        let s = snap(t, &all, &w);
        d.observe(&s);
        assert_eq!(d.topology.nodes.len(), s.view.nodes.len());
        for n in s.view.nodes.values() {
            let recorded = d.topology.nodes.get(&n.id).expect("every node recorded");
            let fresh = tracked(n, recorded.health);
            assert_eq!(
                (&recorded.addr, &recorded.role, &recorded.master_id),
                (&fresh.addr, &fresh.role, &fresh.master_id)
            );
            assert_eq!(
                (recorded.config_epoch, &recorded.slots),
                (fresh.config_epoch, &fresh.slots)
            );
        }
    }
    let a = d.topology.nodes.get(&id('a')).expect("a");
    assert_eq!(
        (a.role.as_str(), a.master_id.clone()),
        ("replica", Some(id('d')))
    );
    assert!(a.slots.is_empty());
    let dn = d.topology.nodes.get(&id('d')).expect("d");
    assert_eq!(
        (dn.role.as_str(), dn.config_epoch, dn.slots.clone()),
        ("master", 7, vec![(0, 5460)])
    );
}
