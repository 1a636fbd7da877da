//! The fault schedule and its injection: a seeded plan of steps (kill -9/restart, SIGSTOP short
//! and long, CLUSTER FAILOVER [FORCE|TAKEOVER], resharding beside another fault, MEET/FORGET,
//! an exporter killed across a fault, the event log's filesystem full across a fault), run one
//! by one against the real cluster, each logged with its time.

use crate::common::{Exporter, RedisCluster, parse_cluster_nodes};
use crate::oracle::Oracle;
use crate::rng::Rng;
use crate::tmpfs::Tmpfs;
use crate::unix_now;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillMaster,
    KillReplica,
    /// SIGSTOP a master for less than the node timeout.
    StopShort,
    /// SIGSTOP a master for more than the node timeout.
    StopLong,
    /// CLUSTER FAILOVER with this option ("" for none).
    Failover(&'static str),
    Reshard,
    Meet,
    Forget,
    ExporterKill,
    FsFull,
}

/// Faults of a top-level step, with their names and weights.
const FAULTS: [(Fault, &str, u32); 12] = [
    (Fault::KillMaster, "kill_master", 3),
    (Fault::KillReplica, "kill_replica", 2),
    (Fault::StopShort, "stop_short", 2),
    (Fault::StopLong, "stop_long", 2),
    (Fault::Failover(""), "failover_manual", 2),
    (Fault::Failover("FORCE"), "failover_force", 1),
    (Fault::Failover("TAKEOVER"), "failover_takeover", 1),
    (Fault::Reshard, "reshard", 2),
    (Fault::Meet, "meet", 1),
    (Fault::Forget, "forget", 1),
    (Fault::ExporterKill, "exporter_kill", 2),
    (Fault::FsFull, "fs_full", 1),
];

/// Faults run beside (or during) another: one shard each, always recoverable.
const NESTED: [Fault; 5] = [
    Fault::KillMaster,
    Fault::StopLong,
    Fault::Failover(""),
    Fault::KillReplica,
    Fault::StopShort,
];

fn name(f: Fault) -> &'static str {
    FAULTS
        .iter()
        .find(|(x, _, _)| *x == f)
        .map_or("?", |(_, n, _)| n)
}

/// One planned step; every number is drawn from the seed.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub fault: Fault,
    /// Which shard (index into the shards by first slot, modulo their number).
    pub shard: usize,
    /// A duration in ms or a slot count, depending on the fault.
    pub amount: u64,
    /// Picks the nested fault of reshard, exporter_kill and fs_full.
    pub nested: usize,
    /// Quiet time after the step, ms.
    pub gap_ms: u64,
}

/// The first `n` steps of the seed's schedule.
pub fn plan(seed: u64, n: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let weights: Vec<u32> = FAULTS.iter().map(|(_, _, w)| *w).collect();
    (0..n)
        .map(|_| Step {
            fault: FAULTS
                .get(rng.weighted(&weights))
                .map_or(Fault::KillReplica, |f| f.0),
            shard: rng.range(0, 2) as usize,
            amount: rng.next_u64() % 1_000_000,
            nested: rng.range(0, NESTED.len() as u64 - 1) as usize,
            gap_ms: rng.range(500, 3000),
        })
        .collect()
}

/// How long a fault lasts, within `lo..=hi` ms, from a step's `amount`.
fn within(amount: u64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + amount % (hi - lo + 1))
}

/// One injected fault as the oracle's log keeps it.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub step: usize,
    pub kind: &'static str,
    pub at: f64,
    pub end: f64,
    /// The node the fault targets (id), when it is a node.
    pub target: Option<String>,
    pub note: String,
}

impl FaultRecord {
    /// As JSON.
    pub fn json(&self) -> Value {
        json!({"step": self.step, "kind": self.kind, "at": self.at, "end": self.end,
               "target": self.target, "note": self.note})
    }
}

/// A shard: its master and replicas (harness indices).
pub(crate) struct Shard {
    pub(crate) master: usize,
    pub(crate) replicas: Vec<usize>,
}

/// Everything the chaos run drives.
pub struct Chaos {
    pub cluster: RedisCluster,
    /// `[0]`: event log on the small tmpfs (never killed); `[1]`: killed and restarted.
    pub exporters: Vec<Exporter>,
    pub oracle: Oracle,
    /// Ports of live cluster members (shared with the oracle and the writer).
    pub ports: Arc<Mutex<Vec<u16>>>,
    pub faults: Vec<FaultRecord>,
    /// (exporter, down from, back at) in unix seconds.
    pub downtime: Vec<(usize, f64, f64)>,
    pub findings: Vec<String>,
    pub tmpfs: Option<Tmpfs>,
    /// GETs of /metrics or /events on the full-disk exporter that did not answer 200.
    pub full_disk_http_failures: u64,
    pub full_disk_http_checks: u64,
}

fn first_slot(slots: &[String]) -> Option<u32> {
    slots
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| s.split('-').next()?.parse().ok())
        .min()
}

impl Chaos {
    pub(crate) fn log(
        &mut self,
        step: usize,
        kind: &'static str,
        target: Option<String>,
        note: String,
    ) -> usize {
        let at = unix_now();
        println!(
            "[chaos {at:.3}] step {step}: {kind} {} {note}",
            target.as_deref().unwrap_or("")
        );
        self.faults.push(FaultRecord {
            step,
            kind,
            at,
            end: at,
            target,
            note,
        });
        self.faults.len() - 1
    }

    pub(crate) fn end(&mut self, k: usize) {
        if let Some(f) = self.faults.get_mut(k) {
            f.end = unix_now();
        }
    }

    /// Nodes in the cluster (running or down, not forgotten).
    pub fn members(&self) -> usize {
        ports_of(&self.ports).len()
    }

    /// The shards by first slot, from a running node's view.
    fn shards(&self) -> Vec<Shard> {
        let running = self.cluster.running();
        let Some(text) = running.iter().find_map(|&i| {
            self.cluster
                .raw(i, &["CLUSTER", "NODES"])
                .ok()
                .map(|r| r.text())
        }) else {
            return Vec::new();
        };
        let lines = parse_cluster_nodes(&text);
        let mut masters: Vec<_> = lines
            .iter()
            .filter(|l| l.flags.iter().any(|f| f == "master"))
            .filter_map(|l| Some((first_slot(&l.slots)?, l)))
            .collect();
        masters.sort_by_key(|(s, _)| *s);
        masters
            .into_iter()
            .filter_map(|(_, m)| {
                let master = self.cluster.index_of_id(&m.id)?;
                let replicas = lines
                    .iter()
                    .filter(|l| l.master == m.id && l.flags.iter().any(|f| f == "slave"))
                    .filter_map(|l| self.cluster.index_of_id(&l.id))
                    .filter(|&i| running.contains(&i))
                    .collect();
                Some(Shard { master, replicas })
            })
            .collect()
    }

    pub(crate) fn shard(&self, k: usize) -> Result<Shard, String> {
        let mut all = self.shards();
        if all.is_empty() {
            return Err("no shard visible".into());
        }
        let n = all.len();
        Ok(all.swap_remove(k % n))
    }

    /// Runs one top-level step (catching a harness panic as a finding).
    pub fn run_step(&mut self, k: usize, step: &Step) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.inject(k, step, step.fault)
        }));
        let problem = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        if let Some(e) = problem {
            println!("[chaos] step {k} ({}) problem: {e}", name(step.fault));
            self.findings
                .push(format!("step {k} {}: {e}", name(step.fault)));
        }
        self.cont_all();
    }

    /// Never leave a node SIGSTOPped behind a failed step.
    fn cont_all(&mut self) {
        for i in 0..self.cluster.node_count() {
            if self.cluster.state(i) == crate::common::NodeState::Stopped {
                self.cluster.cont(i);
            }
        }
    }

    fn inject(&mut self, k: usize, step: &Step, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::KillMaster => self.kill_master(k, step),
            Fault::KillReplica => self.kill_replica(k, step),
            Fault::StopShort => self.stop_master(k, step, within(step.amount, 300, 1200), false),
            Fault::StopLong => self.stop_master(k, step, within(step.amount, 5000, 8000), true),
            Fault::Failover(opt) => self.cluster_failover(k, step, opt, fault),
            Fault::Reshard => self.reshard(k, step),
            Fault::Meet => self.meet(k, step),
            Fault::Forget => self.forget(k, step),
            Fault::ExporterKill => self.exporter_kill(k, step),
            Fault::FsFull => self.fs_full(k, step),
        }
    }

    /// The nested fault of a step, on the shard after `skip` more.
    pub(crate) fn nested(&mut self, k: usize, step: &Step, skip: usize) -> Result<(), String> {
        let fault = NESTED
            .get(step.nested)
            .copied()
            .unwrap_or(Fault::KillReplica);
        let inner = Step {
            shard: step.shard + skip,
            fault,
            ..*step
        };
        self.inject(k, &inner, fault)
    }

    fn kill_master(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let m = self.shard(step.shard)?.master;
        let id = self.cluster.node_id(m);
        let r = self.log(k, "kill_master", Some(id.clone()), String::new());
        let t = self.faults[r].at;
        self.cluster.kill(m);
        let seen = self
            .oracle
            .wait_failover(t, Duration::from_secs(20), |f| f.old_master == id);
        std::thread::sleep(within(step.amount, 0, 3000));
        self.cluster.restart(m);
        self.end(r);
        seen.map(|_| ())
            .ok_or_else(|| format!("no failover away from killed master {id}"))
    }

    fn kill_replica(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let s = self.shard(step.shard)?;
        let Some(&i) = s.replicas.first() else {
            return Err("shard has no replica".into());
        };
        let id = self.cluster.node_id(i);
        let r = self.log(k, "kill_replica", Some(id), String::new());
        self.cluster.kill(i);
        std::thread::sleep(within(step.amount, 1000, 5000));
        self.cluster.restart(i);
        self.end(r);
        Ok(())
    }

    fn stop_master(
        &mut self,
        k: usize,
        step: &Step,
        d: Duration,
        long: bool,
    ) -> Result<(), String> {
        let m = self.shard(step.shard)?.master;
        let id = self.cluster.node_id(m);
        let kind = if long { "stop_long" } else { "stop_short" };
        let r = self.log(k, kind, Some(id.clone()), format!("{} ms", d.as_millis()));
        let t = self.faults[r].at;
        self.cluster.stop(m);
        let start = Instant::now();
        let seen = if long {
            self.oracle.wait_failover(t, d, |f| f.old_master == id)
        } else {
            None
        };
        std::thread::sleep(d.saturating_sub(start.elapsed()));
        self.cluster.cont(m);
        self.end(r);
        if long && seen.is_none() {
            return Err(format!(
                "no failover while {id} was stopped {} ms",
                d.as_millis()
            ));
        }
        Ok(())
    }

    fn cluster_failover(
        &mut self,
        k: usize,
        step: &Step,
        opt: &str,
        f: Fault,
    ) -> Result<(), String> {
        let s = self.shard(step.shard)?;
        let Some(&i) = s.replicas.first() else {
            return Err("shard has no replica".into());
        };
        let id = self.cluster.node_id(i);
        let r = self.log(k, name(f), Some(id.clone()), String::new());
        let t = self.faults[r].at;
        let mut args = vec!["CLUSTER", "FAILOVER"];
        args.extend((!opt.is_empty()).then_some(opt));
        let reply = self.cluster.raw(i, &args).map(|r| r.text());
        self.faults[r].note = format!("reply {reply:?}");
        let seen = self
            .oracle
            .wait_failover(t, Duration::from_secs(15), |f| f.new_master == id);
        self.end(r);
        seen.map(|_| ())
            .ok_or_else(|| format!("{} to {id} made no failover ({reply:?})", name(f)))
    }
}

/// Runs `cmd` to completion or `timeout`; (success, stdout and stderr without colour codes).
pub fn run_tool(mut cmd: Command, timeout: Duration) -> (bool, String) {
    let Ok(dir) = tempfile::tempdir() else {
        return (false, "no temp dir".into());
    };
    let out = dir.path().join("out");
    let Ok(file) = std::fs::File::create(&out) else {
        return (false, "cannot create output file".into());
    };
    let Ok(err) = file.try_clone() else {
        return (false, "cannot clone output file".into());
    };
    cmd.stdin(Stdio::null()).stdout(file).stderr(err);
    let Ok(mut child) = cmd.spawn() else {
        return (false, "cannot spawn".into());
    };
    let start = Instant::now();
    let ok = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s.success();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    (ok, strip_ansi(&text))
}

/// Drops `ESC [ ... m` colour sequences (redis-cli colours its output).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of a tool's output on one line.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Locks the shared port list.
pub fn ports_of(ports: &Arc<Mutex<Vec<u16>>>) -> std::sync::MutexGuard<'_, Vec<u16>> {
    ports.lock().unwrap_or_else(PoisonError::into_inner)
}
