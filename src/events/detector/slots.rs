//! Slot ownership between two polls: promotions seen as slots changing hands (handed to
//! [`super::failover`]), `slots_moved` for resharding, and `config_conflict` when observers keep
//! disagreeing about owners.

use super::*;

impl Detector {
    /// Failovers and slot moves. Returns the ids promoted by a failover in this poll.
    pub(super) fn slot_changes(
        &mut self,
        snap: &Snapshot,
        events: &mut Vec<NewEvent>,
    ) -> HashSet<String> {
        let view = &snap.view;
        // Nearly every poll: every member owns exactly what it owned before.
        let same_slots = |slots: &[SlotRange], before: &[(u16, u16)]| {
            slots.len() == before.len()
                && slots
                    .iter()
                    .zip(before)
                    .all(|(r, b)| (r.start, r.end) == *b)
        };
        let unchanged = view.nodes.values().all(|n| {
            self.topology
                .nodes
                .get(&n.id)
                .map_or(n.slots.is_empty(), |t| same_slots(&n.slots, &t.slots))
        }) && self
            .topology
            .nodes
            .iter()
            .all(|(id, t)| t.slots.is_empty() || view.nodes.contains_key(id));
        if unchanged {
            return HashSet::new();
        }
        let before = owners(
            self.topology
                .nodes
                .iter()
                .map(|(id, t)| (id.as_str(), t.slots.iter().copied())),
        );
        let after = owners_of(view.nodes.values(), |n| n.id.as_str(), |n| &n.slots);
        let mut moves: BTreeMap<(Option<&str>, Option<&str>), Vec<u16>> = BTreeMap::new();
        for (slot, (b, a)) in (0..SLOT_COUNT).zip(before.iter().zip(after.iter())) {
            if b != a {
                moves.entry((*b, *a)).or_default().push(slot);
            }
        }
        let mut promoted = HashSet::new();
        // Old masters of automatic failovers, with where their failover event goes.
        let mut missed: Vec<(usize, String)> = Vec::new();
        for ((from, to), slots) in moves {
            let ranges = slots_to_ranges(slots);
            let was_replica_of_from = match (from, to) {
                (Some(f), Some(t)) => self.topology.nodes.get(t).is_some_and(|tn| {
                    tn.role == Role::Replica.as_str() && tn.master_id.as_deref() == Some(f)
                }),
                _ => false,
            };
            if let (true, Some(f), Some(t)) = (was_replica_of_from, from, to) {
                if promoted.insert(t.to_string()) {
                    let failover = self.failover_event(snap, f, t, &ranges);
                    if failover
                        .details
                        .failover()
                        .is_some_and(|f| f.trigger == Trigger::Automatic)
                    {
                        missed.push((events.len(), f.to_string()));
                    }
                    events.push(failover);
                    // A promoted node starts afresh: an old failure episode of its own must not
                    // be charged to a later failover away from it, nor flags left over from it.
                    if let Some(h) = self.history.get_mut(t) {
                        h.end_episode();
                        h.flags_from_before = snap.view.nodes.get(t).is_some_and(|n| {
                            !n.pfail_reporters.is_empty() || !n.fail_reporters.is_empty()
                        });
                    }
                }
            } else {
                events.push(self.slots_moved_event(snap, from, to, &ranges));
            }
        }
        for (at, old) in missed.into_iter().rev() {
            if let Some(e) = self.missed_fail(snap, &old) {
                events.insert(at, e);
            }
        }
        promoted
    }

    pub(super) fn slots_moved_event(
        &self,
        snap: &Snapshot,
        from: Option<&str>,
        to: Option<&str>,
        ranges: &[SlotRange],
    ) -> NewEvent {
        let addr_of = |id: Option<&str>| {
            id.and_then(|i| {
                snap.view
                    .nodes
                    .get(i)
                    .and_then(|n| n.addr.clone())
                    .or_else(|| self.topology.nodes.get(i).and_then(|t| t.addr.clone()))
            })
        };
        let epoch = to
            .and_then(|t| snap.view.nodes.get(t))
            .map_or(0, |n| n.config_epoch);
        let slots = format_ranges(ranges);
        let count: u32 = ranges.iter().map(SlotRange::len).sum();
        let name = |id: Option<&str>, addr: &Option<String>| match id {
            Some(i) => format!("{} ({})", short(i), addr.as_deref().unwrap_or("?")),
            None => "no owner".to_string(),
        };
        let (from_addr, to_addr) = (addr_of(from), addr_of(to));
        event(
            snap.time,
            format!(
                "slots_moved/{}/{}/{}/{}",
                from.unwrap_or("-"),
                to.unwrap_or("-"),
                slots,
                epoch
            ),
            format!(
                "{count} slot(s) {slots} moved from {} to {}",
                name(from, &from_addr),
                name(to, &to_addr)
            ),
            Details::SlotsMoved(SlotsMovedDetails {
                config_epoch: epoch,
                from: from.map(|f| node_ref(f, from_addr.as_deref())),
                slot_count: count,
                slots,
                to: to.map(|t| node_ref(t, to_addr.as_deref())),
            }),
        )
    }

    pub(super) fn conflicts(&mut self, snap: &Snapshot, events: &mut Vec<NewEvent>) {
        if snap.view.consistent {
            self.conflict_polls = 0;
            self.topology.conflict_announced = false;
            return;
        }
        self.conflict_polls += 1;
        if self.conflict_polls < CONFLICT_CONFIRM_POLLS || self.topology.conflict_announced {
            return;
        }
        self.topology.conflict_announced = true;
        let agreed_owner = owners_of(snap.view.nodes.values(), |n| n.id.as_str(), |n| &n.slots);
        let mut claims = Vec::new();
        let mut disputed: BTreeSet<u16> = BTreeSet::new();
        let mut involved: BTreeSet<String> = BTreeSet::new();
        for obs in snap.observations.values().take(64) {
            let (Some(observer), Some(data)) = (obs.node_id(), obs.data()) else {
                continue;
            };
            let listed = data.nodes.claims().iter();
            let handshakes = data.nodes.handshakes().iter().filter(|l| l.flags.master);
            let theirs = owners(
                listed
                    .map(|c| (c.owner.as_str(), vec![(c.start, c.end)]))
                    .chain(handshakes.map(|l| {
                        let ranges = l.slots.iter().map(|r| (r.start, r.end)).collect();
                        (l.id.as_str(), ranges)
                    })),
            );
            let mut differing: BTreeMap<Option<&str>, Vec<u16>> = BTreeMap::new();
            for (slot, (a, t)) in (0..SLOT_COUNT).zip(agreed_owner.iter().zip(theirs.iter())) {
                if a != t {
                    differing.entry(*t).or_default().push(slot);
                    disputed.insert(slot);
                    if let Some(a) = a {
                        involved.insert((*a).to_string());
                    }
                }
            }
            for (owner, slots) in differing {
                if let Some(o) = owner {
                    involved.insert(o.to_string());
                }
                claims.push(Claim {
                    observer: observer.to_string(),
                    owner: owner.map(str::to_string),
                    slots: format_ranges(&slots_to_ranges(slots)),
                });
            }
        }
        let slots = format_ranges(&slots_to_ranges(disputed));
        let involved: Vec<String> = involved.into_iter().collect();
        let epoch = snap
            .view
            .nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0);
        events.push(event(
            snap.time,
            format!("config_conflict/{}/{}", involved.join(","), epoch),
            format!(
                "nodes disagree about who owns slots {} (for {} polls)",
                slots, self.conflict_polls
            ),
            Details::ConfigConflict(ConfigConflictDetails {
                claims,
                masters: involved,
                slots,
            }),
        ));
    }
}
