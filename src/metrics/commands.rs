//! Commands, errors and latency: INFO commandstats (calls, time, rejected and failed calls per
//! command), latencystats (percentiles per command, as a summary), errorstats (replies per
//! error prefix), the latency monitor's latest spikes, and the slow log. Label values come from clients, so each node publishes at
//! most [`MAX_COMMANDS`] commands and [`MAX_ERRORS`] error prefixes; the rest are summed under
//! `other`.

use super::{Collector, Context, Families, Kind, Labels, OptRow};
use crate::parse::info::{CommandStat, ErrorStat, Info, LatencyStat};
use std::borrow::Cow;
use std::collections::HashMap;

/// Most `cmd` label values per node (the first by name; the rest summed as `other`).
pub const MAX_COMMANDS: usize = 256;
/// Most `err` label values per node (the first by name; the rest summed as `other`).
pub const MAX_ERRORS: usize = 64;

/// The commands collector.
pub struct Commands;

/// The name of the bucket that sums what a cap leaves out.
const OTHER: &str = "other";

/// Keeps at most `max` entries: when there are more, the first `max - 1` by name keep their own
/// series and the rest, together with any entry really named `other`, are summed by `merge`
/// into one `other`. The kept set is chosen by name, not by size, so it does not change from one
/// poll to the next and `other` only grows, as a counter must (a set chosen by size would move
/// entries in and out of `other` as they overtake each other).
fn capped<T: Clone>(
    items: &[T],
    max: usize,
    name: fn(&T) -> &str,
    merge: fn(&str, &[&T]) -> T,
) -> Cow<'_, [T]> {
    if items.len() <= max {
        return Cow::Borrowed(items);
    }
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by(|a, b| name(a).cmp(name(b)));
    let (real_other, sorted): (Vec<&T>, Vec<&T>) =
        sorted.into_iter().partition(|t| name(t) == OTHER);
    let keep = max.saturating_sub(1).min(sorted.len());
    let (kept, rest) = sorted.split_at(keep);
    let rest: Vec<&T> = rest.iter().copied().chain(real_other).collect();
    Cow::Owned(
        kept.iter()
            .map(|t| (*t).clone())
            .chain([merge(OTHER, &rest)])
            .collect(),
    )
}

/// The commands of one node, at most [`MAX_COMMANDS`] (see [`capped`]).
pub fn capped_commands(info: &Info) -> Cow<'_, [CommandStat]> {
    capped(
        &info.commands,
        MAX_COMMANDS,
        |c| &c.cmd,
        |cmd, rest| {
            let sum = |f: fn(&CommandStat) -> Option<f64>| rest.iter().map(|c| f(c)).sum();
            CommandStat {
                cmd: cmd.to_string(),
                calls: rest.iter().map(|c| c.calls).sum(),
                usec: rest.iter().map(|c| c.usec).sum(),
                rejected_calls: sum(|c| c.rejected_calls),
                failed_calls: sum(|c| c.failed_calls),
            }
        },
    )
}

/// The error prefixes of one node, at most [`MAX_ERRORS`] (see [`capped`]).
pub fn capped_errors(info: &Info) -> Cow<'_, [ErrorStat]> {
    capped(
        &info.errors,
        MAX_ERRORS,
        |e| &e.err,
        |err, rest| ErrorStat {
            err: err.to_string(),
            count: rest.iter().map(|e| e.count).sum(),
        },
    )
}

/// `(metric, help, value)` per command.
const PER_COMMAND: &[OptRow<CommandStat>] = &[
    (
        "redis_commands_total",
        "Calls per command (commandstats calls)",
        |c| Some(c.calls),
    ),
    (
        "redis_commands_duration_seconds_total",
        "Time spent per command (commandstats usec, in seconds)",
        |c| Some(c.usec / 1e6),
    ),
    (
        "redis_commands_rejected_calls_total",
        "Calls rejected before execution per command (commandstats rejected_calls)",
        |c| c.rejected_calls,
    ),
    (
        "redis_commands_failed_calls_total",
        "Calls that failed during execution per command (commandstats failed_calls)",
        |c| c.failed_calls,
    ),
];

fn cmd_labels<'a>(a: &'a str, cmd: &'a str) -> Labels<'a> {
    vec![("addr", Cow::Borrowed(a)), ("cmd", Cow::Borrowed(cmd))]
}

impl Collector for Commands {
    fn collect(&self, cx: &Context<'_>, out: &mut Families) {
        let per_node: Vec<(&str, &Info, Cow<'_, [CommandStat]>)> = cx
            .answered()
            .filter_map(|(a, d)| {
                let i = d.stats_info()?;
                Some((a, i, capped_commands(i)))
            })
            .collect();
        for (name, help, f) in PER_COMMAND {
            out.counter(
                name,
                help,
                per_node.iter().flat_map(|(a, _, cmds)| {
                    cmds.iter()
                        .filter_map(|c| Some((cmd_labels(a, &c.cmd), f(c)?)))
                }),
            );
        }
        // Each latencystats entry with the commandstats entry of its command (both lists are
        // short per node, but a lookup by name per entry would be quadratic in them).
        let latencies: Vec<(&str, &LatencyStat, &CommandStat)> = per_node
            .iter()
            .flat_map(|(a, info, cmds)| {
                let by_cmd: HashMap<&str, &CommandStat> =
                    cmds.iter().map(|c| (c.cmd.as_str(), c)).collect();
                info.latencies
                    .iter()
                    .filter_map(move |l| Some((*a, l, *by_cmd.get(l.cmd.as_str())?)))
            })
            .collect();
        out.add_raw(
            "redis_latency_percentiles_usec",
            "Latency percentiles per command in microseconds (latencystats); sum and count from commandstats",
            Kind::Summary,
            |part| {
                // Labels are only made for the part asked for.
                let wanted = move |p: &str| part.is_none_or(|w| w == p);
                latencies.iter().flat_map(move |(a, l, c)| {
                    let quantiles = l.percentiles.iter().filter(move |_| wanted(""));
                    let quantiles = quantiles.map(|(q, v)| {
                        let mut labels = cmd_labels(a, &l.cmd);
                        labels.push(("quantile", Cow::Borrowed(q.as_str())));
                        ("", labels, *v)
                    });
                    let totals = [("_sum", c.usec), ("_count", c.calls)].into_iter();
                    let totals = totals
                        .filter(move |(p, _)| wanted(p))
                        .map(|(p, v)| (p, cmd_labels(a, &l.cmd), v));
                    quantiles.chain(totals)
                })
            },
        );
        let errors: Vec<(&str, Cow<'_, [ErrorStat]>)> = per_node
            .iter()
            .map(|(a, info, _)| (*a, capped_errors(info)))
            .collect();
        out.counter(
            "redis_errors_total",
            "Error replies per error prefix (errorstats)",
            errors.iter().flat_map(|(a, errors)| {
                errors.iter().map(|e| {
                    let labels: Labels = vec![
                        ("addr", Cow::Borrowed(*a)),
                        ("err", Cow::Borrowed(e.err.as_str())),
                    ];
                    (labels, e.count)
                })
            }),
        );
        let slowlogs: Vec<_> = cx
            .answered()
            .filter_map(|(a, d)| Some((a, d.stats.as_deref()?.slowlog?)))
            .collect();
        let slow = |f: fn(&crate::model::Slowlog) -> f64| {
            slowlogs
                .iter()
                .map(move |(a, s)| (super::addr(a), f(s)))
                .collect::<Vec<_>>()
        };
        let spikes = |f: fn(&(String, f64, f64)) -> f64| {
            let mut samples = Vec::new();
            for (a, d) in cx.answered() {
                let events = d
                    .stats
                    .as_deref()
                    .map_or(&[][..], |s| s.latency_spikes.as_slice());
                for e in events {
                    let labels: Labels = vec![
                        ("addr", Cow::Borrowed(a)),
                        ("event_name", Cow::Borrowed(e.0.as_str())),
                    ];
                    samples.push((labels, f(e)));
                }
            }
            samples
        };
        out.gauge(
            "redis_latency_spike_last",
            "Unix time of the latest latency spike per event (LATENCY LATEST)",
            spikes(|e| e.1),
        );
        out.gauge(
            "redis_latency_spike_duration_seconds",
            "Duration of the latest latency spike per event in seconds (LATENCY LATEST)",
            spikes(|e| e.2 / 1000.0),
        );
        out.gauge(
            "redis_slowlog_length",
            "Entries in the slow log (SLOWLOG LEN)",
            slow(|s| s.length),
        );
        out.gauge(
            "redis_slowlog_last_id",
            "Id of the newest slow log entry (0: none)",
            slow(|s| s.last.map_or(0.0, |(id, _)| id)),
        );
        out.gauge(
            "redis_last_slow_execution_duration_seconds",
            "Duration of the newest slow log entry in seconds (0: none)",
            slow(|s| s.last.map_or(0.0, |(_, us)| us / 1e6)),
        );
    }
}
