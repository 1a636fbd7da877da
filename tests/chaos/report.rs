//! The end of a chaos run: exporter resources (RSS, open fds) sampled along the run, the panic and
//! error lines of their logs, the score JSON and the human summary, and which targets missed.

use crate::common::Exporter;
use crate::driver::Chaos;
use crate::score::{self, ExporterScore};
use crate::writer::WriteStats;
use crate::{POLL, Settings, WARMUP, unix_now};

/// Seconds after a process start before its resources count as its "start" figures.
const WARM: f64 = 60.0;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// A process sample: (pid, when, RSS kB, open fds, cluster members).
type Sample = (u32, f64, u64, usize, usize);

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
    /// Samples every running exporter; `members` is the cluster's node count (the exporter
    /// holds one connection per node).
    pub fn sample(&mut self, exporters: &[Exporter], members: usize) {
        for (e, list) in exporters.iter().zip(self.samples.iter_mut()) {
            if let Some(pid) = e.pid()
                && let Some((rss, fds)) = probe(pid)
            {
                list.push((pid, unix_now(), rss, fds, members));
            }
        }
    }

    /// Start and end of exporter `e`'s last process: the first sample taken 60 s or more after
    /// that process started (its allocator grows to its working set over the first faults),
    /// and the last sample; `None` when it ran less than 60 s after that.
    fn span(&self, e: usize) -> Option<(Sample, Sample)> {
        let list = self.samples.get(e)?;
        let last = *list.last()?;
        let first_seen = list.iter().find(|s| s.0 == last.0)?.1;
        // The first process's first sample is taken after the warm-up already.
        let warm = if list.first()?.0 == last.0 {
            WARM - WARMUP.as_secs_f64()
        } else {
            WARM
        };
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

/// The run's totals over both exporters.
struct Totals {
    counted: usize,
    matched: usize,
    spurious: usize,
    dups: usize,
    trigger_ok: usize,
    trigger_known: usize,
    p50: Option<f64>,
    p99: Option<f64>,
    pair: [Vec<String>; 2],
}

fn totals(
    scores: &[ExporterScore],
    truths: &[score::Truth],
    downtime: &[(usize, f64, f64)],
) -> Totals {
    let sum = |f: fn(&ExporterScore) -> usize| scores.iter().map(f).sum::<usize>();
    let (p50, p99) = score::delay_percentiles(scores);
    Totals {
        counted: sum(|x| x.counted),
        matched: sum(|x| x.matched),
        spurious: sum(|x| x.spurious),
        dups: sum(|x| x.duplicates),
        trigger_ok: sum(|x| x.trigger_ok),
        trigger_known: sum(|x| x.trigger_total),
        p50,
        p99,
        pair: match scores {
            [a, b] => score::pair_difference([a, b], truths, downtime),
            _ => [Vec::new(), Vec::new()],
        },
    }
}

/// The targets of issue 16, each with what a miss says.
fn targets(
    t: &Totals,
    truths: usize,
    scores: &[ExporterScore],
    bad: &[Vec<String>],
    c: &Chaos,
) -> Vec<(bool, String)> {
    let bound = POLL.1 + 0.5;
    vec![
        (truths > 0, "no failover happened".into()),
        (
            t.counted == t.matched,
            format!("recall {}/{}", t.matched, t.counted),
        ),
        (
            t.spurious == 0,
            format!("{} spurious failover event(s)", t.spurious),
        ),
        (t.dups == 0, format!("{} duplicate key(s)", t.dups)),
        (
            t.pair.iter().all(Vec::is_empty),
            format!(
                "HA pair differs: only A {:?}, only B {:?}",
                t.pair[0], t.pair[1]
            ),
        ),
        (
            t.trigger_ok == t.trigger_known,
            format!("trigger correct {}/{}", t.trigger_ok, t.trigger_known),
        ),
        (
            t.p99.is_none_or(|p| p <= bound),
            format!("delay p99 {:?} > {bound} s", t.p99),
        ),
        (
            scores.iter().all(|x| x.ids_increasing),
            "event ids not strictly increasing".into(),
        ),
        (
            bad.iter().flatten().all(|l| !l.contains("panicked")),
            "a panic in an exporter log".into(),
        ),
        (
            c.full_disk_http_failures == 0,
            format!(
                "{} HTTP failures while the disk was full",
                c.full_disk_http_failures
            ),
        ),
    ]
}

/// RSS and fd figures per exporter, and the flatness targets they give.
fn resources(res: &Resources, started: f64, n: usize) -> (Vec<Value>, Vec<(bool, String)>) {
    let mut checks = Vec::new();
    let mut out = Vec::new();
    for e in 0..n {
        let span = res.span(e);
        if let Some((a, b)) = span {
            checks.push((
                flat(a.2 as f64, b.2 as f64),
                format!("exporter {e} RSS {} -> {} kB", a.2, b.2),
            ));
            // One connection per cluster member: compare the other descriptors.
            let (fa, fb) = (a.3.saturating_sub(a.4), b.3.saturating_sub(b.4));
            checks.push((
                flat(fa as f64, fb as f64),
                format!("exporter {e} fds besides node links {fa} -> {fb}"),
            ));
        }
        let samples: Vec<Value> = res
            .samples
            .get(e)
            .into_iter()
            .flatten()
            .map(|x| json!([x.0, (x.1 - started).round(), x.2, x.3, x.4]))
            .collect();
        out.push(json!({"start": span.map(|x| x.0), "end": span.map(|x| x.1),
            "samples_pid_t_rsskb_fds_members": samples}));
    }
    (out, checks)
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
    let t = totals(&scores, &truths, &c.downtime);
    let bad: Vec<Vec<String>> = c.exporters.iter().map(|e| bad_lines(&e.output())).collect();
    let (res_json, res_checks) = resources(res, started, c.exporters.len());
    let missed: Vec<String> = targets(&t, truths.len(), &scores, &bad, c)
        .into_iter()
        .chain(res_checks)
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect();
    let truth_json: Vec<Value> = truths.iter().map(|t| json!({"seen_at": t.f.seen_at, "elected": t.elected,
        "old": t.f.old_master, "new": t.f.new_master, "epoch": t.f.config_epoch, "trigger": t.trigger,
        "injected": t.injected, "logged": t.logged})).collect();
    let overruled: Vec<Value> = c.oracle.overruled().iter().map(|o| json!({"seen_at": o.seen_at,
        "node": o.node, "master": o.master, "claimed_epoch": o.claimed_epoch, "master_epoch": o.master_epoch,
        "won_without_election": crate::redislog::won_without_election(&log_of(&o.node), o.seen_at, 15.0)})).collect();
    let all_kinds = |a: usize, b: usize| {
        scores
            .get(a)
            .zip(scores.get(b))
            .map(|(a, b)| a.all_keys.difference(&b.all_keys).count())
    };
    let report = json!({
        "seed": s.seed, "minutes": s.minutes, "event_retention": s.event_retention, "started": started, "ended": unix_now(),
        "poll_interval_s": POLL.1, "steps": ran, "faults": c.faults.iter().map(|f| f.json()).collect::<Vec<_>>(),
        "fault_counts": fault_counts(c), "oracle_rounds": c.oracle.rounds(), "failovers": truth_json,
        "overruled_claims": overruled,
        "recall": {"detected": t.matched, "happened": t.counted}, "spurious": t.spurious, "duplicate_keys": t.dups,
        "ha_pair_identical": t.pair.iter().all(Vec::is_empty), "only_a": t.pair[0], "only_b": t.pair[1],
        "all_kinds_only_a": all_kinds(0, 1), "all_kinds_only_b": all_kinds(1, 0),
        "trigger": {"correct": t.trigger_ok, "known": t.trigger_known},
        "delay_s": {"p50": t.p50, "p99": t.p99, "bound": POLL.1 + 0.5},
        "exporters": scores.iter().map(|x| x.json.clone()).collect::<Vec<_>>(),
        "resources": res_json, "log_problems": bad, "downtime": c.downtime,
        "full_disk": {"mounted": c.tmpfs.is_some(), "http_checks": c.full_disk_http_checks, "http_failures": c.full_disk_http_failures},
        "writer": {"acked": w.acked.load(Ordering::Relaxed), "redirected": w.redirected.load(Ordering::Relaxed), "failed": w.failed.load(Ordering::Relaxed)},
        "findings": c.findings, "missed_targets": missed,
    });
    if let Err(e) = std::fs::write(
        &s.out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    ) {
        println!("[chaos] cannot write {}: {e}", s.out.display());
    }
    // The event logs beside the score, for a closer look at what the score points at.
    for (k, e) in c.exporters.iter().enumerate() {
        let copy = s.out.with_extension(format!("events-{k}.jsonl"));
        let _ = std::fs::copy(e.event_log(), copy);
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
        "overruled_claims",
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
