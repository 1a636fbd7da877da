//! The score: the exporters' event logs against the oracle's failovers (CLUSTER NODES truth,
//! trigger from the injected fault and the new master's redis log), and which targets missed.

use crate::driver::FaultRecord;
use crate::oracle::TrueFailover;
use crate::redislog;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// A failover the cluster made, with what the logs and the fault log say about it.
pub struct Truth {
    pub f: TrueFailover,
    /// Election-won (or takeover) time from the new master's log; else when the oracle saw it.
    pub elected: f64,
    /// The trigger when fault log and redis log agree (or only one knows).
    pub trigger: Option<&'static str>,
    pub injected: Option<&'static str>,
    pub logged: Option<&'static str>,
}

/// The trigger the injected faults imply for a failover seen at `f.seen_at`.
fn injected_trigger(f: &TrueFailover, faults: &[FaultRecord]) -> Option<&'static str> {
    let fault = faults.iter().rev().find(|r| {
        r.at <= f.seen_at && f.seen_at - r.end < 20.0 && {
            let t = r.target.as_deref();
            match r.kind {
                "kill_master" | "stop_long" | "stop_short" => t == Some(&f.old_master),
                k if k.starts_with("failover_") => t == Some(&f.new_master),
                _ => false,
            }
        }
    })?;
    Some(match fault.kind {
        "failover_manual" => "manual",
        "failover_force" => "force",
        "failover_takeover" => "takeover",
        _ => "automatic",
    })
}

/// Enriches the oracle's failovers with times and triggers.
pub fn truths(
    fs: &[TrueFailover],
    faults: &[FaultRecord],
    log_of: &dyn Fn(&str) -> String,
) -> Vec<Truth> {
    fs.iter()
        .map(|f| {
            let marks = redislog::marks(&log_of(&f.new_master));
            let promo = redislog::promotion_before(&marks, f.seen_at, 15.0);
            let injected = injected_trigger(f, faults);
            let logged = promo.map(|p| p.trigger);
            let trigger = match (injected, logged) {
                (Some(a), Some(b)) if a != b => None,
                (a, b) => a.or(b),
            };
            Truth {
                f: f.clone(),
                elected: promo.map_or(f.seen_at, |p| p.time),
                trigger,
                injected,
                logged,
            }
        })
        .collect()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn time_of(ev: &Value) -> f64 {
    str_at(ev, &["time"])
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

fn down_at(downtime: &[(usize, f64, f64)], e: usize, t: f64) -> Option<(f64, f64)> {
    downtime
        .iter()
        .find(|(x, a, b)| *x == e && *a <= t && t <= *b)
        .map(|(_, a, b)| (*a, *b))
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    let k = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
    sorted.get(k - 1).copied()
}

/// What one exporter's log scores.
pub struct ExporterScore {
    pub json: Value,
    pub failover_keys: BTreeSet<String>,
    pub all_keys: BTreeSet<String>,
    pub delays: Vec<f64>,
    pub counted: usize,
    pub matched: usize,
    pub spurious: usize,
    pub duplicates: usize,
    pub trigger_ok: usize,
    pub trigger_total: usize,
    pub ids_increasing: bool,
    /// (truth index, event key) of every matched failover event.
    pub matched_keys: Vec<(usize, String)>,
}

/// Whether exporter `e` could not have seen truth `k`: it was down when it happened and the same
/// shard failed over again before it came back (the first promotion left no trace to diff).
pub fn excused(truths: &[Truth], k: usize, e: usize, downtime: &[(usize, f64, f64)]) -> bool {
    let Some(t) = truths.get(k) else { return false };
    let Some((_, back)) = down_at(downtime, e, t.f.seen_at) else {
        return false;
    };
    truths
        .iter()
        .skip(k + 1)
        .any(|g| g.f.old_master == t.f.new_master && g.f.seen_at <= back)
}

/// Scores one exporter's event log.
pub fn exporter(
    e: usize,
    log: &[Value],
    truths: &[Truth],
    downtime: &[(usize, f64, f64)],
) -> ExporterScore {
    let ids: Vec<u64> = log
        .iter()
        .filter_map(|v| v.get("id").and_then(Value::as_u64))
        .collect();
    let ids_increasing = ids.len() == log.len() && ids.windows(2).all(|w| w[0] < w[1]);
    let mut key_count: HashMap<&str, usize> = HashMap::new();
    for v in log {
        *key_count
            .entry(str_at(v, &["key"]).unwrap_or(""))
            .or_default() += 1;
    }
    let duplicates: usize = key_count.values().map(|n| n.saturating_sub(1)).sum();
    let mut details: Vec<Value> = key_count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| json!({"duplicate_key": k, "times": n}))
        .collect();
    let mut matched = vec![false; truths.len()];
    let (mut spurious, mut trigger_ok, mut trigger_total) = (0, 0, 0);
    let mut unknown_after_downtime = 0;
    let mut delays = Vec::new();
    let mut matched_keys = Vec::new();
    for ev in log
        .iter()
        .filter(|v| str_at(v, &["kind"]) == Some("failover"))
    {
        let (old, new) = (
            str_at(ev, &["old_master", "id"]),
            str_at(ev, &["new_master", "id"]),
        );
        let at = time_of(ev);
        let best = (0..truths.len())
            .filter(|&k| !matched[k])
            .filter(|&k| {
                Some(truths[k].f.old_master.as_str()) == old
                    && Some(truths[k].f.new_master.as_str()) == new
            })
            .filter(|&k| (at - truths[k].f.seen_at).abs() < 120.0)
            .min_by(|&a, &b| {
                (at - truths[a].f.seen_at)
                    .abs()
                    .total_cmp(&(at - truths[b].f.seen_at).abs())
            });
        let Some(k) = best else {
            spurious += 1;
            details.push(json!({"spurious": ev}));
            continue;
        };
        matched[k] = true;
        matched_keys.push((k, str_at(ev, &["key"]).unwrap_or("").to_string()));
        let t = &truths[k];
        let trig = str_at(ev, &["trigger"]);
        let was_down = down_at(downtime, e, t.elected).is_some()
            || down_at(downtime, e, t.f.seen_at).is_some();
        if trig == Some("unknown") && was_down {
            // It did not watch the promotion: "unknown" is the honest answer.
            unknown_after_downtime += 1;
        } else if let Some(want) = t.trigger {
            trigger_total += 1;
            if trig == Some(want) {
                trigger_ok += 1;
            } else {
                details.push(json!({"wrong_trigger": ev["key"], "want": want, "got": trig}));
            }
        }
        let delay = at - t.elected;
        let watched =
            down_at(downtime, e, t.elected - 1.0).is_none() && down_at(downtime, e, at).is_none();
        if watched {
            delays.push(delay);
        }
    }
    let counted: Vec<usize> = (0..truths.len())
        .filter(|&k| !excused(truths, k, e, downtime))
        .collect();
    let hit = counted.iter().filter(|&&k| matched[k]).count();
    for &k in counted.iter().filter(|&&k| !matched[k]) {
        let t = &truths[k];
        details.push(json!({"missed": {"old": t.f.old_master, "new": t.f.new_master, "seen_at": t.f.seen_at, "epoch": t.f.config_epoch}}));
    }
    delays.sort_by(f64::total_cmp);
    let keys = |kind: Option<&str>| -> BTreeSet<String> {
        log.iter()
            .filter(|v| kind.is_none_or(|k| str_at(v, &["kind"]) == Some(k)))
            .filter_map(|v| str_at(v, &["key"]).map(str::to_string))
            .collect()
    };
    ExporterScore {
        json: json!({
            "events": log.len(), "failover_events": log.iter().filter(|v| str_at(v, &["kind"]) == Some("failover")).count(),
            "failovers_counted": counted.len(), "failovers_detected": hit, "spurious": spurious,
            "duplicate_keys": duplicates, "trigger_correct": trigger_ok, "trigger_known": trigger_total,
            "trigger_unknown_after_downtime": unknown_after_downtime,
            "ids_strictly_increasing": ids_increasing, "last_id": ids.last(),
            "delay_p50_s": pct(&delays, 0.5), "delay_p99_s": pct(&delays, 0.99), "delay_max_s": delays.last(),
            "problems": details,
        }),
        failover_keys: keys(Some("failover")),
        all_keys: keys(None),
        delays,
        counted: counted.len(),
        matched: hit,
        spurious,
        duplicates,
        trigger_ok,
        trigger_total,
        ids_increasing,
        matched_keys,
    }
}

/// The HA pair's failover keys that only one of them logged, leaving out the failovers the
/// other one could not have seen (see [`excused`]).
pub fn pair_difference(
    s: [&ExporterScore; 2],
    truths: &[Truth],
    downtime: &[(usize, f64, f64)],
) -> [Vec<String>; 2] {
    let seen_by = |me: usize| -> BTreeSet<&str> {
        let other = 1 - me;
        s[me]
            .failover_keys
            .iter()
            .filter(|key| {
                !s[me]
                    .matched_keys
                    .iter()
                    .any(|(k, mk)| mk == *key && excused(truths, *k, other, downtime))
            })
            .map(String::as_str)
            .collect()
    };
    let (a, b) = (seen_by(0), seen_by(1));
    [
        a.difference(&b).map(|k| k.to_string()).collect(),
        b.difference(&a).map(|k| k.to_string()).collect(),
    ]
}

/// Overall percentiles of all exporters' delays.
pub fn delay_percentiles(scores: &[ExporterScore]) -> (Option<f64>, Option<f64>) {
    let mut all: Vec<f64> = scores
        .iter()
        .flat_map(|s| s.delays.iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    (pct(&all, 0.5), pct(&all, 0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(old: &str, new: &str, at: f64, trigger: &'static str) -> Truth {
        Truth {
            f: TrueFailover {
                seen_at: at,
                old_master: old.into(),
                new_master: new.into(),
                config_epoch: 1,
            },
            elected: at - 0.1,
            trigger: Some(trigger),
            injected: Some(trigger),
            logged: Some(trigger),
        }
    }

    fn event(id: u64, old: &str, new: &str, at: &str, trigger: &str) -> Value {
        json!({"id": id, "key": format!("failover/{new}/1"), "kind": "failover", "time": at,
               "trigger": trigger, "old_master": {"id": old}, "new_master": {"id": new}})
    }

    #[test]
    fn misses_spurious_duplicates_and_wrong_triggers_are_counted() {
        let t0 = 1_796_247_704.0; // 2026-12-02T21:41:44Z
        let truths = vec![
            truth("a", "b", t0, "automatic"),
            truth("c", "d", t0 + 30.0, "manual"),
        ];
        let log = vec![
            event(1, "a", "b", "2026-12-02T21:41:44.500Z", "force"),
            event(2, "a", "b", "2026-12-02T21:41:45.500Z", "automatic"),
            event(3, "x", "y", "2026-12-02T21:41:50.000Z", "automatic"),
        ];
        let s = exporter(0, &log, &truths, &[]);
        assert_eq!((s.counted, s.matched), (2, 1), "c->d missed");
        assert_eq!(s.spurious, 2, "x->y has no counterpart; a->b twice");
        assert_eq!(s.duplicates, 1, "failover/b/1 twice");
        assert_eq!((s.trigger_ok, s.trigger_total), (0, 1));
        assert_eq!(s.delays.len(), 1);
        assert!((s.delays[0] - 0.6).abs() < 1e-6, "{:?}", s.delays);
    }

    #[test]
    fn only_a_chain_of_failovers_while_down_is_excused() {
        let t0 = 1000.0;
        let truths = vec![
            truth("a", "b", t0, "automatic"),
            truth("b", "a", t0 + 5.0, "manual"),
            truth("c", "d", t0 + 6.0, "automatic"),
        ];
        let down = [(1, t0 - 1.0, t0 + 10.0)];
        assert!(
            excused(&truths, 0, 1, &down),
            "b was replaced again before the restart"
        );
        assert!(
            !excused(&truths, 1, 1, &down),
            "the last of the chain is visible after restart"
        );
        assert!(!excused(&truths, 2, 1, &down));
        assert!(!excused(&truths, 0, 0, &down), "exporter 0 was up");
    }
}
