//! The end of a chaos run: exporter resources (RSS, open fds) sampled along the run, the panic and
//! error lines of their logs, the score JSON and the human summary, and which targets missed.

use crate::common::Exporter;
use crate::driver::Chaos;
use crate::score::{self, ExporterScore};
use crate::writer::WriteStats;
use crate::{POLL, Settings, unix_now};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// A process sample: (pid, when, RSS kB, open fds).
type Sample = (u32, f64, u64, usize);

/// Samples of each exporter's process.
#[derive(Default)]
pub struct Resources {
    samples: [Vec<Sample>; 2],
}

fn probe(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

impl Resources {
    /// Samples every running exporter.
    pub fn sample(&mut self, exporters: &[Exporter]) {
        for (e, list) in exporters.iter().zip(self.samples.iter_mut()) {
            if let Some(pid) = e.pid()
                && let Some((rss, fds)) = probe(pid)
            {
                list.push((pid, unix_now(), rss, fds));
            }
        }
    }

    /// Start and end of exporter `e`'s last process: the first sample taken 20 s or more after
    /// that process was first seen, and the last sample; `None` when it ran too briefly.
    fn span(&self, e: usize) -> Option<(Sample, Sample)> {
        let list = self.samples.get(e)?;
        let last = *list.last()?;
        let first_seen = list.iter().find(|s| s.0 == last.0)?.1;
        // The first process was sampled after the warm-up; a restarted one gets 20 s of its own.
        let warm = if list.first()?.0 == last.0 { 0.0 } else { 20.0 };
        let start = *list
            .iter()
            .find(|s| s.0 == last.0 && s.1 >= first_seen + warm)?;
        (last.1 - start.1 >= 60.0).then_some((start, last))
    }
}

/// Lines of the exporter's output that report a panic or an error.
fn bad_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains("panicked") || l.contains("ERROR"))
        .map(str::to_string)
        .collect()
}

fn read_log(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

fn flat(a: f64, b: f64) -> bool {
    a > 0.0 && (b - a).abs() / a <= 0.10
}

/// Scores the run, prints the summary, writes the JSON; returns the missed targets.
pub fn finish(
    s: &Settings,
    c: &Chaos,
    res: &Resources,
    w: &WriteStats,
    ran: Vec<String>,
    started: f64,
) -> Vec<String> {
    let log_of = |id: &str| {
        c.cluster
            .index_of_id(id)
            .map(|i| c.cluster.log(i))
            .unwrap_or_default()
    };
    let truths = score::truths(&c.oracle.failovers(), &c.faults, &log_of);
    let logs: Vec<Vec<Value>> = c
        .exporters
        .iter()
        .map(|e| read_log(e.event_log()))
        .collect();
    let scores: Vec<ExporterScore> = logs
        .iter()
        .enumerate()
        .map(|(e, l)| score::exporter(e, l, &truths, &c.downtime))
        .collect();
    let [only_a, only_b] = match scores.as_slice() {
        [a, b] => score::pair_difference([a, b], &truths, &c.downtime),
        _ => [Vec::new(), Vec::new()],
    };
    let (p50, p99) = score::delay_percentiles(&scores);
    let bad: Vec<Vec<String>> = c.exporters.iter().map(|e| bad_lines(&e.output())).collect();
    let (counted, matched): (usize, usize) = scores
        .iter()
        .fold((0, 0), |(a, b), x| (a + x.counted, b + x.matched));
    let spurious: usize = scores.iter().map(|x| x.spurious).sum();
    let dups: usize = scores.iter().map(|x| x.duplicates).sum();
    let (tok, ttot) = scores
        .iter()
        .fold((0, 0), |(a, b), x| (a + x.trigger_ok, b + x.trigger_total));
    let mut missed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            missed.push(what);
        }
    };
    check(!truths.is_empty(), "no failover happened".into());
    check(counted == matched, format!("recall {matched}/{counted}"));
    check(
        spurious == 0,
        format!("{spurious} spurious failover event(s)"),
    );
    check(dups == 0, format!("{dups} duplicate key(s)"));
    check(
        only_a.is_empty() && only_b.is_empty(),
        format!("HA pair differs: only A {only_a:?}, only B {only_b:?}"),
    );
    check(tok == ttot, format!("trigger correct {tok}/{ttot}"));
    let bound = POLL.1 + 0.5;
    check(
        p99.is_none_or(|p| p <= bound),
        format!("delay p99 {p99:?} > {bound} s"),
    );
    check(
        scores.iter().all(|x| x.ids_increasing),
        "event ids not strictly increasing".into(),
    );
    check(
        bad.iter().flatten().all(|l| !l.contains("panicked")),
        "a panic in an exporter log".into(),
    );
    check(
        c.full_disk_http_failures == 0,
        format!(
            "{} HTTP failures while the disk was full",
            c.full_disk_http_failures
        ),
    );
    let mut resources = Vec::new();
    for e in 0..c.exporters.len() {
        let span = res.span(e);
        if let Some((a, b)) = span {
            check(
                flat(a.2 as f64, b.2 as f64),
                format!("exporter {e} RSS {} -> {} kB", a.2, b.2),
            );
            check(
                flat(a.3 as f64, b.3 as f64),
                format!("exporter {e} fds {} -> {}", a.3, b.3),
            );
        }
        resources.push(json!({"start": span.map(|x| x.0), "end": span.map(|x| x.1),
            "samples": res.samples.get(e).map_or(0, Vec::len)}));
    }
    let truth_json: Vec<Value> = truths.iter().map(|t| json!({"seen_at": t.f.seen_at, "elected": t.elected,
        "old": t.f.old_master, "new": t.f.new_master, "epoch": t.f.config_epoch, "trigger": t.trigger,
        "injected": t.injected, "logged": t.logged})).collect();
    let report = json!({
        "seed": s.seed, "minutes": s.minutes, "started": started, "ended": unix_now(),
        "poll_interval_s": POLL.1, "steps": ran, "faults": c.faults.iter().map(|f| f.json()).collect::<Vec<_>>(),
        "fault_counts": fault_counts(c), "oracle_rounds": c.oracle.rounds(), "failovers": truth_json,
        "recall": {"detected": matched, "happened": counted}, "spurious": spurious, "duplicate_keys": dups,
        "ha_pair_identical": only_a.is_empty() && only_b.is_empty(), "only_a": only_a, "only_b": only_b,
        "all_kinds_only_a": scores.first().zip(scores.get(1)).map(|(a, b)| a.all_keys.difference(&b.all_keys).count()),
        "all_kinds_only_b": scores.first().zip(scores.get(1)).map(|(a, b)| b.all_keys.difference(&a.all_keys).count()),
        "trigger": {"correct": tok, "known": ttot}, "delay_s": {"p50": p50, "p99": p99, "bound": bound},
        "exporters": scores.iter().map(|x| x.json.clone()).collect::<Vec<_>>(),
        "resources": resources, "log_problems": bad, "downtime": c.downtime,
        "full_disk": {"mounted": c.tmpfs.is_some(), "http_checks": c.full_disk_http_checks, "http_failures": c.full_disk_http_failures},
        "writer": {"acked": w.acked.load(Ordering::Relaxed), "redirected": w.redirected.load(Ordering::Relaxed), "failed": w.failed.load(Ordering::Relaxed)},
        "findings": c.findings, "missed_targets": missed,
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(e) = std::fs::write(&s.out, &text) {
        println!("[chaos] cannot write {}: {e}", s.out.display());
    }
    summary(&report, s);
    missed
}

fn fault_counts(c: &Chaos) -> Value {
    let mut m = serde_json::Map::new();
    for f in &c.faults {
        let n = m.get(f.kind).and_then(Value::as_u64).unwrap_or(0);
        m.insert(f.kind.to_string(), json!(n + 1));
    }
    Value::Object(m)
}

fn summary(r: &Value, s: &Settings) {
    println!(
        "\n===== chaos score (seed {}, {} min) =====",
        s.seed, s.minutes
    );
    for k in [
        "fault_counts",
        "recall",
        "spurious",
        "duplicate_keys",
        "ha_pair_identical",
        "trigger",
        "delay_s",
        "resources",
        "full_disk",
        "writer",
        "findings",
        "missed_targets",
    ] {
        println!("{k}: {}", r.get(k).cloned().unwrap_or(Value::Null));
    }
    for (e, x) in r["exporters"].as_array().into_iter().flatten().enumerate() {
        println!("exporter {e}: {}", x);
    }
    let bad = r["log_problems"].as_array().map_or(0, |v| {
        v.iter().map(|x| x.as_array().map_or(0, Vec::len)).sum()
    });
    println!("panic/error log lines: {bad} (listed in the JSON)");
    println!("score JSON: {}", s.out.display());
}
