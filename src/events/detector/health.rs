//! Node health: `node_pfail`, `node_fail` and `node_recovered`, one failure episode at a time,
//! each with a key of its own.

use super::*;

impl Detector {
    pub(super) fn health(&mut self, snap: &Snapshot, events: &mut Vec<NewEvent>) {
        for n in snap.view.nodes.values() {
            let Some(t) = self.topology.nodes.get_mut(&n.id) else {
                continue;
            };
            let cur = current_health(n);
            let h = self.history.entry(n.id.clone()).or_default();
            h.pfail_polls = if cur == Health::Pfail {
                h.pfail_polls + 1
            } else {
                0
            };
            let announce = match (t.health, cur) {
                (old, new) if old == new => false,
                (_, Health::Fail) => true,
                (Health::Ok, Health::Pfail) => h.pfail_polls >= PFAIL_CONFIRM_POLLS,
                (_, Health::Ok) => true,
                // fail -> fail? is not news: the flag only clears through recovery.
                (Health::Fail, Health::Pfail) | (Health::Pfail, Health::Pfail) => false,
            };
            if !announce {
                continue;
            }
            if t.health == Health::Ok {
                t.begin_episode(n.config_epoch);
            }
            t.health = cur;
            let (kind, reporters, what) = match cur {
                Health::Fail => (
                    EventKind::NodeFail,
                    n.fail_reporters.as_slice(),
                    format!("is marked FAIL by {} node(s)", n.fail_reporters.len()),
                ),
                Health::Pfail => (
                    EventKind::NodePfail,
                    n.pfail_reporters.as_slice(),
                    format!(
                        "is suspected failing (PFAIL) by {} node(s)",
                        n.pfail_reporters.len()
                    ),
                ),
                Health::Ok => (
                    EventKind::NodeRecovered,
                    &[][..],
                    "is no longer flagged failing".to_string(),
                ),
            };
            let summary = format!(
                "{} {} ({}) {what}",
                n.role.as_str(),
                short(&n.id),
                n.addr.as_deref().unwrap_or("?")
            );
            let details = NodeHealthDetails {
                node: node_ref(&n.id, n.addr.as_deref()),
                reported_by: reporters.to_vec(),
                role: n.role.as_str().to_string(),
            };
            events.push(event(
                snap.time,
                t.health_key(kind, &n.id, n.config_epoch),
                summary,
                match kind {
                    EventKind::NodeFail => Details::NodeFail(details),
                    EventKind::NodePfail => Details::NodePfail(details),
                    _ => Details::NodeRecovered(details),
                },
            ));
        }
    }
}
