//! The faults that span others or change membership: resharding beside a fault on another
//! shard, an exporter kill -9 across a fault, the event log's filesystem full across a fault,
//! CLUSTER MEET of a new node and FORGET of one; and the bounded wait for recovery.

use crate::common::{NodeState, REDIS_CLI};
use crate::driver::{Chaos, Step, ports_of, run_tool, tail};
use crate::unix_now;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the cluster may take to be healthy again after a step.
const SETTLE: Duration = Duration::from_secs(45);

impl Chaos {
    /// Waits (bounded) until the cluster is healthy; a cluster that does not recover is a finding.
    pub fn settle(&mut self, k: usize) {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < SETTLE {
            last = self.cluster.health_problem();
            if last.is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let p = last.unwrap_or_default();
        println!("[chaos] step {k}: cluster not healthy after {SETTLE:?}: {p}");
        self.findings.push(format!(
            "step {k}: cluster not healthy after {SETTLE:?}: {p}"
        ));
        self.fix_open_slots(k);
    }

    /// Moves 100..=400 slots from shard k to shard k+1 while the nested fault hits shard k+2.
    pub(crate) fn reshard(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let from = self.shard(step.shard)?.master;
        let to = self.shard(step.shard + 1)?.master;
        let (from_id, to_id) = (self.cluster.node_id(from), self.cluster.node_id(to));
        let count = 100 + step.amount % 301;
        let r = self.log(
            k,
            "reshard",
            Some(from_id.clone()),
            format!("{count} slots to {to_id}"),
        );
        let mut cmd = Command::new(REDIS_CLI);
        cmd.args([
            "--cluster",
            "reshard",
            &self.cluster.addr(to),
            "--cluster-from",
            &from_id,
            "--cluster-to",
            &to_id,
            "--cluster-slots",
            &count.to_string(),
            "--cluster-yes",
        ]);
        let tool = std::thread::spawn(move || run_tool(cmd, Duration::from_secs(180)));
        std::thread::sleep(Duration::from_millis(1500));
        let nested = self.nested(k, step, 2);
        let (ok, out) = tool
            .join()
            .unwrap_or((false, "reshard thread panicked".into()));
        let out = tail(&out, 3);
        self.faults[r]
            .note
            .push_str(&format!("; redis-cli ok={ok}: {out}"));
        self.end(r);
        if !ok {
            self.findings
                .push(format!("step {k}: reshard failed: {out}"));
        }
        self.fix_open_slots(k);
        nested
    }

    /// `redis-cli --cluster fix` when a slot is left migrating or importing.
    fn fix_open_slots(&mut self, k: usize) {
        let Some(&seed) = self.cluster.running().first() else {
            return;
        };
        let addr = self.cluster.addr(seed);
        let mut check = Command::new(REDIS_CLI);
        check.args(["--cluster", "check", &addr]);
        let (_, out) = run_tool(check, Duration::from_secs(30));
        let problems: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("[WARNING]") || l.starts_with("[ERR]"))
            .collect();
        if problems.is_empty() {
            return;
        }
        let r = self.log(k, "cluster_fix", None, problems.join(" | "));
        // 7.0's fix asks on stdin before covering a slot nobody owns (--cluster-yes does not
        // answer that question): `yes` does.
        let mut fix = Command::new("sh");
        fix.args([
            "-c",
            &format!("yes yes | {REDIS_CLI} --cluster fix {addr} --cluster-yes"),
        ]);
        let (ok, out) = run_tool(fix, Duration::from_secs(120));
        self.faults[r]
            .note
            .push_str(&format!("; fix ok={ok}: {}", tail(&out, 3)));
        self.end(r);
    }

    /// kill -9 of exporter B, the nested fault while it is down, restart on the same event log.
    pub(crate) fn exporter_kill(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let r = self.log(k, "exporter_kill", None, "exporter B".into());
        let down = self.faults[r].at;
        if let Some(e) = self.exporters.get_mut(1) {
            e.kill();
        }
        let nested = self.nested(k, step, 0);
        if let Some(e) = self.exporters.get_mut(1) {
            e.restart();
            e.wait_ready(Duration::from_secs(15));
        }
        self.downtime.push((1, down, unix_now()));
        self.end(r);
        nested
    }

    /// Fills exporter A's event-log filesystem, runs the nested fault, checks A still serves,
    /// then frees the space.
    pub(crate) fn fs_full(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let Some(fs) = self.tmpfs.as_mut() else {
            self.log(k, "fs_full", None, "skipped: no tmpfs".into());
            return Ok(());
        };
        let filled = fs.fill();
        let r = self.log(k, "fs_full", None, format!("ballast {filled} bytes"));
        let nested = self.nested(k, step, 0);
        std::thread::sleep(Duration::from_secs(2));
        for path in ["/metrics", "/events", "/ready"] {
            self.full_disk_http_checks += 1;
            let ok = self
                .exporters
                .first()
                .and_then(|e| crate::common::try_http_get(&e.url(path), &[]).ok())
                .is_some_and(|(s, _, _)| s == 200);
            if !ok {
                self.full_disk_http_failures += 1;
            }
        }
        if let Some(fs) = self.tmpfs.as_mut() {
            fs.free();
        }
        self.end(r);
        nested
    }

    /// A replica of a shard that has three or more (a MEET added one).
    fn extra_replica(&self) -> Option<usize> {
        (0..3).find_map(|s| {
            let shard = self.shard(s).ok()?;
            (shard.replicas.len() >= 3)
                .then(|| shard.replicas.last().copied())
                .flatten()
        })
    }

    /// Starts an empty node, MEETs it, and makes it a replica of shard k's master; when an
    /// added node is still there, FORGETs one instead (membership stays 9 or 10 nodes).
    pub(crate) fn meet(&mut self, k: usize, step: &Step) -> Result<(), String> {
        if self.extra_replica().is_some() {
            return self.forget(k, step);
        }
        let master = self.shard(step.shard)?.master;
        let master_id = self.cluster.node_id(master);
        let i = self.cluster.add_node();
        let id = self.cluster.node_id(i);
        ports_of(&self.ports).push(self.cluster.port(i));
        let r = self.log(k, "meet", Some(id), format!("replica of {master_id}"));
        self.cluster.wait_converged(Duration::from_secs(30));
        let reply = self.cluster.raw(i, &["CLUSTER", "REPLICATE", &master_id]);
        self.faults[r]
            .note
            .push_str(&format!("; REPLICATE {reply:?}"));
        self.end(r);
        Ok(())
    }

    /// FORGETs a replica of a shard that has three or more (else MEETs one first).
    pub(crate) fn forget(&mut self, k: usize, step: &Step) -> Result<(), String> {
        let extra = self.extra_replica();
        let Some(i) = extra else {
            return self.meet(k, step);
        };
        if (0..self.cluster.node_count()).any(|j| self.cluster.state(j) == NodeState::Stopped) {
            return Err("a node is stopped; not forgetting".into());
        }
        let id = self.cluster.node_id(i);
        let port = self.cluster.port(i);
        let r = self.log(k, "forget", Some(id), String::new());
        self.cluster.forget(i);
        ports_of(&self.ports).retain(|p| *p != port);
        self.end(r);
        Ok(())
    }
}
