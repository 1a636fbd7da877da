//! Membership and roles: `node_added`, `node_removed` and `role_changed` (a change not already
//! told as a failover).

use super::*;

impl Detector {
    pub(super) fn membership(&self, snap: &Snapshot, events: &mut Vec<NewEvent>) {
        for n in snap.view.nodes.values() {
            if !self.topology.nodes.contains_key(&n.id) {
                events.push(event(
                    snap.time,
                    format!("node_added/{}", n.id),
                    format!(
                        "node {} ({}) joined the cluster as {}",
                        short(&n.id),
                        n.addr.as_deref().unwrap_or("?"),
                        n.role.as_str()
                    ),
                    Details::NodeAdded(NodeAddedDetails {
                        master_id: n.master_id.clone(),
                        node: node_ref(&n.id, n.addr.as_deref()),
                        role: n.role.as_str().to_string(),
                    }),
                ));
            }
        }
        for (id, t) in &self.topology.nodes {
            if !snap.view.nodes.contains_key(id) {
                events.push(event(
                    snap.time,
                    format!("node_removed/{id}"),
                    format!(
                        "node {} ({}) is no longer known to any reachable node",
                        short(id),
                        t.addr.as_deref().unwrap_or("?")
                    ),
                    Details::NodeRemoved(NodeRemovedDetails {
                        node: node_ref(id, t.addr.as_deref()),
                        role: t.role.clone(),
                    }),
                ));
            }
        }
    }

    pub(super) fn roles(
        &self,
        snap: &Snapshot,
        promoted: &HashSet<String>,
        events: &mut Vec<NewEvent>,
    ) {
        for n in snap.view.nodes.values() {
            let Some(t) = self.topology.nodes.get(&n.id) else {
                continue;
            };
            let role_same = t.role == n.role.as_str();
            let master_same = t.master_id == n.master_id;
            if (role_same && master_same) || promoted.contains(&n.id) {
                continue;
            }
            let to_master_addr = n
                .master_id
                .as_deref()
                .and_then(|m| snap.view.nodes.get(m))
                .and_then(|m| m.addr.clone());
            let summary = match (n.role, n.master_id.as_deref()) {
                (Role::Replica, Some(m)) => format!(
                    "node {} ({}) is now a replica of {} ({}), was {}",
                    short(&n.id),
                    n.addr.as_deref().unwrap_or("?"),
                    short(m),
                    to_master_addr.as_deref().unwrap_or("?"),
                    t.role
                ),
                _ => format!(
                    "node {} ({}) is now a {}, was {}",
                    short(&n.id),
                    n.addr.as_deref().unwrap_or("?"),
                    n.role.as_str(),
                    t.role
                ),
            };
            events.push(event(
                snap.time,
                format!(
                    "role_changed/{}/{}/{}/{}",
                    n.id,
                    n.role.as_str(),
                    n.master_id.as_deref().unwrap_or("-"),
                    n.config_epoch
                ),
                summary,
                Details::RoleChanged(RoleChangedDetails {
                    from_master_id: t.master_id.clone(),
                    from_role: t.role.clone(),
                    node: node_ref(&n.id, n.addr.as_deref()),
                    to_master_id: n.master_id.clone(),
                    to_role: n.role.as_str().to_string(),
                }),
            ));
        }
    }
}
