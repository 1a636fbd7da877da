//! Ports: `free_port()` picks a random port `p` such that both `p` and `p + 10000` (the cluster
//! bus) bind on 127.0.0.1, have not been handed out in this process, and are not reserved by
//! another test process (an advisory lock file per port under the system temp dir, held until
//! the process exits). Redis startups that still lose a race for a port are retried on a new one
//! (see `server`).

use std::collections::HashSet;
use std::fs::File;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

use super::util::random_u64;

struct PortRegistry {
    handed_out: HashSet<u16>,
    /// Advisory locks held for the life of the process (released by the OS at exit).
    locks: Vec<File>,
}

fn registry() -> &'static Mutex<PortRegistry> {
    static REG: OnceLock<Mutex<PortRegistry>> = OnceLock::new();
    REG.get_or_init(|| {
        Mutex::new(PortRegistry {
            handed_out: HashSet::new(),
            locks: Vec::new(),
        })
    })
}

// The port range and the lock-file protocol are the simulator's, so harness and simulator
// processes running side by side never pick the same port.
use cluster_sim::server::{lock_port as lock_port_file, port_range};

fn can_bind(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port `p` (< 55535) such that `p` and `p + 10000` are both free on 127.0.0.1 and reserved
/// for this caller (never handed out twice in this process, locked against other processes).
pub fn free_port() -> u16 {
    let (lo, hi) = port_range();
    let span = (hi - lo) as u64;
    for _ in 0..1000 {
        let p = lo + (random_u64() % span) as u16;
        let bus = p + 10000;
        debug_assert!(bus < 65535);
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if reg.handed_out.contains(&p) || reg.handed_out.contains(&bus) {
            continue;
        }
        let Some(l1) = lock_port_file(p) else {
            continue;
        };
        let Some(l2) = lock_port_file(bus) else {
            continue;
        };
        if !can_bind(p) || !can_bind(bus) {
            continue; // locks dropped here; someone else (not a harness) uses the port
        }
        reg.handed_out.insert(p);
        reg.handed_out.insert(bus);
        reg.locks.push(l1);
        reg.locks.push(l2);
        return p;
    }
    panic!("free_port: no free port pair (p, p+10000) found in {lo}..{hi} after 1000 tries");
}
