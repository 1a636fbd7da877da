//! Node health tests: episodes and their keys, flapping suspicions.

use super::*;

#[test]
fn each_failure_episode_at_one_epoch_has_its_own_keys() {
    // Found by the chaos run: replica e failed twice while its master's epoch (which it
    // reports) stayed 2; both episodes had the keys node_fail/e/2 and node_recovered/e/2.
    let all = cluster();
    let mut d = started(&all);
    let mut w = World::default();
    let mut keys = Vec::new();
    for t in 0..3 {
        w.flags = vec![(id('e'), "fail")];
        keys.extend(
            d.observe(&snap(10 * t + 1, &all, &w))
                .into_iter()
                .map(|e| e.key),
        );
        w.flags.clear();
        keys.extend(
            d.observe(&snap(10 * t + 2, &all, &w))
                .into_iter()
                .map(|e| e.key),
        );
    }
    let e = id('e');
    assert_eq!(
        keys,
        [
            format!("node_fail/{e}/2"),
            format!("node_recovered/{e}/2"),
            format!("node_fail/{e}/2/2"),
            format!("node_recovered/{e}/2/2"),
            format!("node_fail/{e}/2/3"),
            format!("node_recovered/{e}/2/3"),
        ]
    );
    // The count survives a restart (it is part of the saved topology) ...
    let mut d = Detector::new(d.topology().clone(), HashSet::new());
    w.flags = vec![(id('e'), "fail")];
    let ev = d.observe(&snap(41, &all, &w));
    assert_eq!(
        ev.first().map(|e| e.key.clone()),
        Some(format!("node_fail/{e}/2/4"))
    );
    // ... and restarts at a new epoch with the plain key.
    let mut moved = all.clone();
    for n in moved.iter_mut().filter(|n| n.id == id('b') || n.id == e) {
        n.epoch = 9;
    }
    w.flags.clear();
    d.observe(&snap(42, &moved, &w));
    w.flags = vec![(id('e'), "fail")];
    let ev = d.observe(&snap(43, &moved, &w));
    assert_eq!(
        ev.first().map(|e| e.key.clone()),
        Some(format!("node_fail/{e}/9"))
    );
}

#[test]
fn flapping_pfail_and_replica_reattach_are_quiet() {
    let all = cluster();
    let mut d = started(&all);
    let mut w = World {
        flags: vec![(id('e'), "fail?")],
        ..World::default()
    };
    assert!(d.observe(&snap(1, &all, &w)).is_empty());
    w.flags.clear();
    assert!(d.observe(&snap(2, &all, &w)).is_empty());
    // Replica unreachable for a poll (link flap), then back: nothing changed in the cluster.
    w.down = vec![id('f')];
    assert!(d.observe(&snap(3, &all, &w)).is_empty());
    w.down.clear();
    assert!(d.observe(&snap(4, &all, &w)).is_empty());
    // A suspicion that lasts is announced once, then its recovery.
    w.flags = vec![(id('e'), "fail?")];
    assert!(d.observe(&snap(5, &all, &w)).is_empty());
    assert_eq!(kinds(&d.observe(&snap(6, &all, &w))), ["node_pfail"]);
    assert!(d.observe(&snap(7, &all, &w)).is_empty());
    w.flags.clear();
    assert_eq!(kinds(&d.observe(&snap(8, &all, &w))), ["node_recovered"]);
}
