//! The cluster-wide `cluster_state` as most answering nodes report it, and its changes, each fail
//! episode with keys of its own.

use super::*;

impl Detector {
    pub(super) fn cluster_state(&mut self, snap: &Snapshot, events: &mut Vec<NewEvent>) {
        let Some((ok, reporter)) = aggregate_state(snap) else {
            return;
        };
        let prev = self.topology.cluster_ok.replace(ok);
        let Some(prev) = prev else { return };
        if prev == ok {
            return;
        }
        let word = |b: bool| StateValue::from_ok(b).as_str();
        let current_epoch = snap
            .observations
            .values()
            .filter_map(|o| o.data())
            .map(|d| d.cluster_info.current_epoch)
            .max()
            .unwrap_or(0);
        let (slots_ok, slots_fail, slots_pfail) = reporter;
        // Both ends of one fail episode are keyed at the epoch it began at, numbered from the
        // second episode at that epoch on (as node health keys are).
        let (epoch, n) = match (ok, self.topology.cluster_fail_episode) {
            (false, Some((e, n))) if e == current_epoch => (e, n + 1),
            (false, _) => (current_epoch, 1),
            (true, Some(episode)) => episode,
            (true, None) => (current_epoch, 1),
        };
        if !ok {
            self.topology.cluster_fail_episode = Some((epoch, n));
        }
        let key = match n {
            1 => format!("cluster_state/{}/{epoch}", word(ok)),
            n => format!("cluster_state/{}/{epoch}/{n}", word(ok)),
        };
        events.push(event(
            snap.time,
            key,
            format!(
                "cluster_state changed from {} to {} ({} slots ok, {} fail, {} pfail)",
                word(prev),
                word(ok),
                slots_ok,
                slots_fail,
                slots_pfail
            ),
            Details::ClusterState(ClusterStateDetails {
                from: StateValue::from_ok(prev),
                slots_fail,
                slots_ok,
                slots_pfail,
                to: StateValue::from_ok(ok),
            }),
        ));
    }
}

/// The aggregate cluster state: `fail` when most answering nodes report `cluster_state:fail`.
/// Also returns `(slots_ok, slots_fail, slots_pfail)` from a node reporting the winning state.
pub(super) fn aggregate_state(snap: &Snapshot) -> Option<(bool, (u64, u64, u64))> {
    let infos: Vec<_> = snap
        .observations
        .values()
        .filter_map(|o| o.data())
        .map(|d| &d.cluster_info)
        .collect();
    if infos.is_empty() {
        return None;
    }
    let failing = infos.iter().filter(|c| !c.state_ok).count();
    let ok = failing * 2 <= infos.len();
    let reporter = infos
        .iter()
        .filter(|c| c.state_ok == ok)
        .max_by_key(|c| (c.slots_fail, c.slots_pfail))?;
    Some((
        ok,
        (reporter.slots_ok, reporter.slots_fail, reporter.slots_pfail),
    ))
}
