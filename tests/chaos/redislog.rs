//! Reads `redis-server` log files for the oracle: when a node won an election or took over, and
//! which user request (if any) started it. The message texts are those of redis-server 7.0
//! (`docs/reliability.md` lists them).

/// A failover-related line of a node's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// `Manual failover user request accepted.` (CLUSTER FAILOVER)
    ManualRequest,
    /// `Forced failover user request accepted.` (CLUSTER FAILOVER FORCE)
    ForceRequest,
    /// `Taking over the master (user request).` (CLUSTER FAILOVER TAKEOVER): no election.
    Takeover,
    /// `Failover election won: I'm the new master.`
    ElectionWon,
}

/// Message texts and what they mean.
const MARKS: [(&str, Mark); 4] = [
    ("Manual failover user request accepted", Mark::ManualRequest),
    ("Forced failover user request accepted", Mark::ForceRequest),
    ("Taking over the master (user request)", Mark::Takeover),
    ("Failover election won", Mark::ElectionWon),
];

/// What a node's log says about the promotion it logged at or before `at`.
#[derive(Debug, Clone, Copy)]
pub struct Promotion {
    /// Time of the election-won (or takeover) line, unix seconds.
    pub time: f64,
    /// `automatic`, `manual`, `force` or `takeover`.
    pub trigger: &'static str,
}

/// Parses the timestamp of a log line `pid:R 02 Dec 2026 21:14:12.648 * message` (the log is in
/// the machine's local time, UTC on our machines) into unix seconds.
fn line_time(line: &str) -> Option<f64> {
    let mut parts = line.split_whitespace().skip(1);
    let (d, m, y, t) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|x| *x == m)? + 1;
    let stamp = format!("{y}-{month:02}-{:02}T{t}Z", d.parse::<u32>().ok()?);
    let when = humantime::parse_rfc3339_weak(&stamp).ok()?;
    when.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The failover marks of a log, with their times, oldest first.
pub fn marks(log: &str) -> Vec<(f64, Mark)> {
    log.lines()
        .filter_map(|l| {
            let mark = MARKS.iter().find(|(text, _)| l.contains(text))?.1;
            Some((line_time(l)?, mark))
        })
        .collect()
}

/// The promotion a node logged within `window` seconds before `at` (+1 s of clock slack): the
/// newest election-won or takeover line, and the user request that preceded it since the
/// previous promotion (none: automatic).
pub fn promotion_before(marks: &[(f64, Mark)], at: f64, window: f64) -> Option<Promotion> {
    let pos = marks.iter().rposition(|(t, m)| {
        *t <= at + 1.0 && *t >= at - window && matches!(m, Mark::ElectionWon | Mark::Takeover)
    })?;
    let (time, mark) = *marks.get(pos)?;
    if mark == Mark::Takeover {
        return Some(Promotion {
            time,
            trigger: "takeover",
        });
    }
    let earlier = marks.get(..pos).unwrap_or_default();
    let request = earlier
        .iter()
        .rev()
        .take_while(|(_, m)| !matches!(m, Mark::ElectionWon | Mark::Takeover))
        .find(|(t, _)| time - t < 10.0);
    let trigger = match request.map(|(_, m)| *m) {
        Some(Mark::ManualRequest) => "manual",
        Some(Mark::ForceRequest) => "force",
        _ => "automatic",
    };
    Some(Promotion { time, trigger })
}

/// Whether the newest `Failover election won` line within `window` seconds before `at` came
/// with no `Starting a failover election` since the node's previous promotion: Redis 7.0
/// counting the votes of an election it already won (see the oracle's overruled claims).
/// `None` when no such line is in the window.
pub fn won_without_election(log: &str, at: f64, window: f64) -> Option<bool> {
    let mut started = false;
    let mut last = None;
    for l in log.lines() {
        let Some(t) = line_time(l) else { continue };
        if t > at + 1.0 {
            break;
        }
        if l.contains("Starting a failover election") {
            started = true;
        } else if l.contains("Failover election won") {
            if t >= at - window {
                last = Some(!started);
            }
            started = false;
        } else if l.contains("Taking over the master") {
            started = false;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as redis-server 7.0.15 wrote them in a chaos run.
    const MANUAL: &str = "\
15070:S 02 Dec 2026 21:41:44.463 # Manual failover user request accepted.
15070:S 02 Dec 2026 21:41:44.463 # Starting a failover election for epoch 20.
15070:S 02 Dec 2026 21:41:44.464 # Failover election won: I'm the new master.
15070:S 02 Dec 2026 21:41:44.464 # configEpoch set to 20 after successful failover
";
    const AUTOMATIC_LATER: &str = "\
15070:S 02 Dec 2026 21:45:10.001 # Starting a failover election for epoch 24.
15070:S 02 Dec 2026 21:45:10.250 # Failover election won: I'm the new master.
";
    const TAKEOVER: &str =
        "15070:S 02 Dec 2026 21:40:22.098 # Taking over the master (user request).\n";

    fn at(stamp: &str) -> f64 {
        line_time(&format!("1:S {stamp} # x")).unwrap_or(f64::NAN)
    }

    #[test]
    fn tells_the_trigger_and_time_of_each_promotion() {
        let log = format!("{TAKEOVER}{MANUAL}{AUTOMATIC_LATER}");
        let m = marks(&log);
        let manual = promotion_before(&m, at("02 Dec 2026 21:41:44.600"), 15.0);
        assert_eq!(manual.map(|p| p.trigger), Some("manual"));
        assert_eq!(manual.map(|p| p.time), Some(at("02 Dec 2026 21:41:44.464")));
        // The manual request belongs to the earlier election, not to this one.
        let auto = promotion_before(&m, at("02 Dec 2026 21:45:10.400"), 15.0);
        assert_eq!(auto.map(|p| p.trigger), Some("automatic"));
        let take = promotion_before(&m, at("02 Dec 2026 21:40:22.200"), 15.0);
        assert_eq!(take.map(|p| p.trigger), Some("takeover"));
        // Nothing logged within the window.
        assert!(promotion_before(&m, at("02 Dec 2026 22:00:00.000"), 15.0).is_none());
    }

    #[test]
    fn an_election_won_with_old_votes_is_told_apart() {
        // redis-server 7.0.15, 3 Dec 2026: the same replica, asked twice within 4 s.
        let log = "\
12232:S 03 Dec 2026 13:17:53.593 # Manual failover user request accepted.
12232:S 03 Dec 2026 13:17:53.593 # Starting a failover election for epoch 10.
12232:S 03 Dec 2026 13:17:53.594 # Failover election won: I'm the new master.
12232:S 03 Dec 2026 13:17:53.594 # configEpoch set to 10 after successful failover
12232:S 03 Dec 2026 13:17:56.691 # Manual failover user request accepted.
12232:S 03 Dec 2026 13:17:56.692 # All master replication stream processed, manual failover can start.
12232:S 03 Dec 2026 13:17:56.692 # Failover election won: I'm the new master.
";
        assert_eq!(
            won_without_election(log, at("03 Dec 2026 13:17:53.700"), 15.0),
            Some(false)
        );
        assert_eq!(
            won_without_election(log, at("03 Dec 2026 13:17:56.800"), 15.0),
            Some(true)
        );
        assert_eq!(
            won_without_election(log, at("03 Dec 2026 13:30:00.000"), 15.0),
            None
        );
    }

    #[test]
    fn log_times_are_utc_unix_seconds() {
        // 2026-12-02T21:41:44.464Z
        assert!((at("02 Dec 2026 21:41:44.464") - 1_796_247_704.464).abs() < 1e-3);
    }
}
