//! Failovers: the replica samples kept per node (offsets and the message counters that tell a
//! manual, forced or takeover failover from an automatic one), and the `failover` event of a
//! promotion with its trigger, duration and possible data loss.

use super::*;

impl Detector {
    pub(super) fn update_history(&mut self, snap: &Snapshot) {
        for n in snap.view.nodes.values() {
            let h = self.history.entry(n.id.clone()).or_default();
            let failure = n
                .addr
                .as_deref()
                .and_then(|a| snap.observations.get(a))
                .and_then(|o| o.result.as_ref().err());
            // A poll skipped while waiting to reconnect is no news: it continues an episode,
            // it does not begin one.
            let polled_down =
                failure.is_some_and(|f| f.attempted || h.first_failure_seen.is_some());
            let mut flagged = !n.pfail_reporters.is_empty() || !n.fail_reporters.is_empty();
            if !flagged {
                h.flags_from_before = false;
            } else if h.flags_from_before && n.reachable {
                flagged = false;
            }
            if flagged || polled_down {
                if h.recovered_at.take().is_some() {
                    // A new episode.
                    h.end_episode();
                }
                if h.first_failure_seen.is_none() {
                    h.first_failure_seen = Some(snap.time);
                    h.episode_epoch = n.config_epoch;
                    h.episode_as_replica = n.role == Role::Replica;
                }
                h.fail_flag_seen |= flagged && !n.fail_reporters.is_empty();
            } else if n.reachable && h.first_failure_seen.is_some() {
                if n.role == Role::Master
                    && !n.slots.is_empty()
                    && n.config_epoch != h.episode_epoch
                {
                    // Healthy and serving slots under a newer configuration (it was promoted
                    // again): the old failure explains nothing that happens from now on.
                    h.end_episode();
                } else if h.recovered_at.is_none() {
                    h.recovered_at = Some(snap.time);
                }
            }
            if !n.reachable {
                continue;
            }
            note_restart(h, snap.data_of(&n.id));
            match n.role {
                // Only a master serving slots: a failed master restarting empty reports offset
                // 0 before it learns it was replaced, which is not what it had acknowledged.
                Role::Master if !n.slots.is_empty() => {
                    // Replica samples are dropped after this poll's detection (see `observe`):
                    // a promotion is classified from the samples taken before it.
                    if let Some(off) = n.repl_offset {
                        h.last_master_offset = Some(off);
                    }
                }
                Role::Master => {}
                Role::Replica => {
                    let ci = snap.data_of(&n.id).map(|d| &d.cluster_info);
                    h.replica_samples.push_back(ReplicaSample {
                        taken: Some(snap.time),
                        offset: n.repl_offset,
                        messages_sent: ci.map_or(0, |c| c.messages_sent),
                        mfstart_sent: ci.map_or(0, |c| c.sent("mfstart")),
                        auth_req_sent: ci.map_or(0, |c| c.sent("auth-req")),
                        fail_received: ci.map_or(0, |c| c.received("fail")),
                    });
                    // The oldest kept is the newest one at least SAMPLE_SPAN old.
                    let spanned = |s: &ReplicaSample| {
                        s.taken
                            .and_then(|t| snap.time.duration_since(t).ok())
                            .is_some_and(|age| age >= SAMPLE_SPAN)
                    };
                    while h.replica_samples.len() > MAX_REPLICA_SAMPLES
                        || h.replica_samples.get(1).is_some_and(spanned)
                    {
                        h.replica_samples.pop_front();
                    }
                }
            }
        }
        self.history
            .retain(|id, _| snap.view.nodes.contains_key(id));
    }

    /// An automatic failover means the cluster marked the old master FAIL. When no poll saw the
    /// flag (it came and went between two polls: the master restarted right after its replica
    /// won), no node_fail was announced: it is announced now, with no reporters, and the node is
    /// tracked as failed so its recovery is announced too.
    pub(super) fn missed_fail(&mut self, snap: &Snapshot, old: &str) -> Option<NewEvent> {
        let flagged_now = snap
            .view
            .nodes
            .get(old)
            .is_some_and(|n| !n.fail_reporters.is_empty());
        let t = self.topology.nodes.get_mut(old)?;
        if t.health == Health::Fail || flagged_now {
            // Already announced, or announced by this poll's health check with its reporters.
            return None;
        }
        if t.health == Health::Ok {
            t.begin_episode(t.config_epoch);
        }
        t.health = Health::Fail;
        let (role, addr, epoch) = (t.role.clone(), t.addr.clone(), t.config_epoch);
        let key = t.health_key(EventKind::NodeFail, old, epoch);
        let summary = format!(
            "{role} {} ({}) was marked FAIL by the cluster (seen from its automatic failover: the \
             flag came and went between two polls)",
            short(old),
            addr.as_deref().unwrap_or("?")
        );
        Some(event(
            snap.time,
            key,
            summary,
            Details::NodeFail(NodeHealthDetails {
                node: node_ref(old, addr.as_deref()),
                reported_by: Vec::new(),
                role,
            }),
        ))
    }

    pub(super) fn failover_event(
        &self,
        snap: &Snapshot,
        old: &str,
        new: &str,
        ranges: &[SlotRange],
    ) -> NewEvent {
        let view = &snap.view;
        let new_node = view.nodes.get(new);
        let epoch = new_node.map_or(0, |n| n.config_epoch);
        let old_addr = view
            .nodes
            .get(old)
            .and_then(|n| n.addr.clone())
            .or_else(|| self.topology.nodes.get(old).and_then(|t| t.addr.clone()));
        let new_addr = new_node.and_then(|n| n.addr.clone());
        let empty = History::default();
        let old_hist = self.history.get(old).unwrap_or(&empty);
        let new_hist = self.history.get(new).unwrap_or(&empty);
        // A failure episode that ended long before the promotion is not evidence, nor one
        // from when the old master was a replica.
        let failing = old_hist.first_failure_seen.is_some()
            && !old_hist.episode_as_replica
            && old_hist
                .recovered_at
                .is_none_or(|r| snap.time.duration_since(r).unwrap_or_default() <= RECENT_RECOVERY);
        let trigger = classify_trigger(snap, new, old_hist, new_hist, failing);
        let (replica_offset, master_offset, loss) = offsets(snap, new, old_hist, new_hist);
        let first_failure = old_hist.first_failure_seen.filter(|_| failing);
        let duration = match (trigger, first_failure) {
            (Trigger::Manual, _) | (_, None) => None,
            // The failure and the promotion were first seen by the same poll (the exporter was
            // paused or down across the failover): how long it took is unknown, not 0.
            (_, Some(t)) if t == snap.time => None,
            (_, Some(t)) => Some(
                snap.time
                    .duration_since(t)
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64(),
            ),
        };
        let slots = format_ranges(ranges);
        let summary = format!(
            "{} failover: replica {} ({}) took over slots {} from master {} ({}) at config epoch {}{}",
            trigger.as_str(),
            short(new),
            new_addr.as_deref().unwrap_or("?"),
            slots,
            short(old),
            old_addr.as_deref().unwrap_or("?"),
            epoch,
            duration
                .map(|d| format!(", {d:.1}s after the first failure was seen"))
                .unwrap_or_default()
        );
        event(
            snap.time,
            format!("failover/{new}/{epoch}"),
            summary,
            Details::Failover(FailoverDetails {
                config_epoch: epoch,
                duration_seconds: duration,
                first_failure_seen: first_failure.map(rfc3339),
                last_master_offset_seen: master_offset,
                new_master: node_ref(new, new_addr.as_deref()),
                old_master: node_ref(old, old_addr.as_deref()),
                possible_data_loss_bytes: loss,
                replica_offset_at_promotion: replica_offset,
                slots,
                trigger,
            }),
        )
    }
}

/// Drops the replica samples of an earlier process of the node when the one answering now is
/// another (a new `run_id`, or bus counters lower than the newest sample's): counters of two
/// processes cannot be compared, and the new one's count from 0.
pub(super) fn note_restart(h: &mut History, data: Option<&NodeData>) {
    let run_id = data
        .and_then(NodeData::stats_info)
        .map(|i| i.run_id.as_str())
        .filter(|r| !r.is_empty());
    let new_run =
        matches!((run_id, h.run_id.as_deref()), (Some(now), Some(before)) if now != before);
    let counters_back = match (data, h.replica_samples.back()) {
        (Some(d), Some(s)) => d.cluster_info.messages_sent < s.messages_sent,
        _ => false,
    };
    if new_run || counters_back {
        h.replica_samples.clear();
        h.fresh_process = true;
    }
    if let Some(r) = run_id {
        h.run_id = Some(r.to_string());
    }
}

/// The counters the promoted node's are compared with: its oldest replica sample, or zero when
/// its process started after everything sampled (a replica restarted, then promoted before or
/// right after its first sample).
pub(super) fn baseline_of(data: Option<&NodeData>, new_hist: &History) -> Option<ReplicaSample> {
    let sample = new_hist.replica_samples.front().copied();
    match (data, sample) {
        // Counters below the sample's: restarted since, unseen (between two polls).
        (Some(d), Some(s)) if d.cluster_info.messages_sent < s.messages_sent => {
            Some(ReplicaSample::default())
        }
        (_, Some(s)) => Some(s),
        (_, None) if new_hist.fresh_process => Some(ReplicaSample::default()),
        (_, None) => None,
    }
}

/// How the promotion of `new` was started. The cluster flagging the old master FAIL means the
/// replica won an election on its own. A `failing` (unreachable or suspected) master rules out
/// a manual failover, which needs the master's cooperation; FORCE and TAKEOVER are told apart
/// by the election messages the promoted node sent since its oldest replica sample.
pub(super) fn classify_trigger(
    snap: &Snapshot,
    new: &str,
    old_hist: &History,
    new_hist: &History,
    failing: bool,
) -> Trigger {
    let data = snap.data_of(new);
    let baseline = baseline_of(data, new_hist);
    let by_counters = match (data, baseline) {
        (Some(d), Some(b)) => {
            if d.cluster_info.sent("mfstart") > b.mfstart_sent {
                Trigger::Manual
            } else if d.cluster_info.sent("auth-req") > b.auth_req_sent {
                Trigger::Force
            } else {
                Trigger::Takeover
            }
        }
        _ => Trigger::Unknown,
    };
    // The FAIL flag can come and go between two polls (a master restarted right after its
    // replica won): the FAIL broadcast the promoted replica received is the same evidence.
    let fail_broadcast = match (data, baseline) {
        (Some(d), Some(b)) => d.cluster_info.received("fail") > b.fail_received,
        _ => false,
    };
    match (failing, by_counters) {
        (true, _) if old_hist.fail_flag_seen || fail_broadcast => Trigger::Automatic,
        // Counters that say manual win over a suspicion that never became FAIL: the replica
        // sent MFSTART and the master cooperated, so it was answering again.
        (true, Trigger::Manual | Trigger::Force | Trigger::Takeover) => by_counters,
        (true, _) => Trigger::Automatic,
        (false, t) => t,
    }
}

/// `(replica offset at promotion, last master offset seen, possible loss)`. The replica's
/// offset is INFO's `second_repl_offset - 1` on the promoted node, else its last offset seen
/// as a replica.
pub(super) fn offsets(
    snap: &Snapshot,
    new: &str,
    old_hist: &History,
    new_hist: &History,
) -> (Option<i64>, Option<i64>, Option<i64>) {
    let replica = snap
        .data_of(new)
        .and_then(|d| d.info.second_repl_offset)
        .filter(|o| *o > 0)
        .map(|o| o - 1)
        .or_else(|| new_hist.replica_samples.back().and_then(|s| s.offset));
    let master = old_hist.last_master_offset;
    let loss = match (master, replica) {
        (Some(m), Some(r)) => Some(m.saturating_sub(r).max(0)),
        _ => None,
    };
    (replica, master, loss)
}
