//! The simulator's control language: one command per line, one reply line per command (`OK ...`,
//! `ERR ...`, or one line of JSON for `state` and `stats`). Served on the control port and read
//! from stdin.

use super::model::{Cluster, DownMode, Traffic, Trigger};
use std::time::Instant;

/// One line per command, for `--help` and the `help` command.
pub const HELP: &str = "\
fail <node> [close|stall]    node stops answering: close = like kill -9 (connections closed, new
                             ones refused, the default); stall = like SIGSTOP (connections hang).
                             Other nodes flag it fail? after --pfail-after, fail after --fail-after;
                             its slots count as failed and cluster_state is fail meanwhile
promote <replica> [auto|manual|force|takeover]
                             the replica takes over its master's slots with config epoch max+1;
                             the other replicas follow it; a down old master stays master,fail
                             without slots (a live one becomes a replica at once). The trigger
                             picks which cluster-bus counters rise (auto: auth-req)
recover <node>               node answers again (after close: a restart, new run_id); a master
                             whose slots were taken over comes back as a replica of the new owner
state                        one line of JSON: every node's index, id, addr, role, master, slots,
                             config epoch, down mode, offset
stats                        one line of JSON: connections and reply bytes by command so far
help                         this text on one line
quit                         close this control connection
shutdown                     stop the simulator
<node> is an index 0..N-1 (the first N/(R+1) nodes start as masters; replica k of master m is
node N/(R+1) + ... round-robin; see `state`).";

/// What the caller should do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this line.
    Reply(String),
    /// Send this line, then stop the whole simulator.
    Shutdown(String),
    /// Close this control connection.
    Close,
}

fn index(arg: Option<&str>) -> Result<usize, String> {
    let a = arg.ok_or_else(|| "missing node index".to_string())?;
    a.parse::<usize>()
        .map_err(|_| format!("bad node index {a:?}"))
}

fn reply(r: Result<String, String>) -> Outcome {
    Outcome::Reply(match r {
        Ok(msg) => format!("OK {msg}"),
        Err(msg) => format!("ERR {msg}"),
    })
}

/// Runs one control command against the cluster.
pub fn execute(cluster: &mut Cluster, traffic: &Traffic, line: &str, now: Instant) -> Outcome {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Outcome::Reply("ERR empty command (try help)".into());
    };
    let arg1 = words.next();
    let arg2 = words.next();
    match cmd.to_ascii_lowercase().as_str() {
        "fail" => {
            let mode = match arg2.map(str::to_ascii_lowercase).as_deref() {
                None | Some("close") => DownMode::Close,
                Some("stall") => DownMode::Stall,
                Some(other) => return reply(Err(format!("bad mode {other:?} (close|stall)"))),
            };
            reply(index(arg1).and_then(|n| cluster.fail(n, mode, now)))
        }
        "recover" => reply(index(arg1).and_then(|n| cluster.recover(n, now))),
        "promote" => {
            let trigger = match arg2 {
                None => Trigger::Auto,
                Some(t) => match Trigger::parse(t) {
                    Some(t) => t,
                    None => {
                        return reply(Err(format!(
                            "bad trigger {t:?} (auto|manual|force|takeover)"
                        )));
                    }
                },
            };
            reply(index(arg1).and_then(|n| cluster.promote(n, trigger, now)))
        }
        "state" => Outcome::Reply(cluster.state_json(now).to_string()),
        "stats" => Outcome::Reply(traffic.to_json().to_string()),
        "help" => Outcome::Reply(HELP.split_whitespace().collect::<Vec<_>>().join(" ")),
        "quit" | "exit" => Outcome::Close,
        "shutdown" => Outcome::Shutdown("OK shutting down".into()),
        other => reply(Err(format!("unknown command {other:?} (try help)"))),
    }
}

/// Promotes a replica of every master that has been down at least `after` (`--auto-failover`);
/// returns one log line per promotion.
pub fn auto_failover(
    cluster: &mut Cluster,
    after: std::time::Duration,
    now: Instant,
) -> Vec<String> {
    cluster
        .due_failovers(after, now)
        .into_iter()
        .map(|r| match cluster.promote(r, Trigger::Auto, now) {
            Ok(m) => format!("auto-failover: {m}"),
            Err(e) => format!("auto-failover of node {r} failed: {e}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SimSettings;
    use std::time::{Duration, SystemTime};

    #[test]
    fn commands() {
        let now = Instant::now();
        let settings = SimSettings {
            host: "127.0.0.1".into(),
            ports: (0..6).map(|i| 31000 + i).collect(),
            replicas_per_master: 1,
            pfail_after: Duration::from_secs(1),
            fail_after: Duration::from_secs(2),
            propagation: Duration::ZERO,
            write_rate: 100,
            seed: 1,
        };
        let mut c = Cluster::new(settings, now, SystemTime::now()).expect("cluster");
        let t = Traffic::default();
        let mut run = |l: &str| match execute(&mut c, &t, l, now) {
            Outcome::Reply(r) | Outcome::Shutdown(r) => r,
            Outcome::Close => "closed".into(),
        };
        assert!(run("fail 1").starts_with("OK"));
        assert!(run("fail 1").starts_with("ERR"));
        assert!(run("fail 99").starts_with("ERR"));
        assert!(run("fail x").starts_with("ERR"));
        assert!(run("fail 2 sideways").starts_with("ERR"));
        assert!(
            run("promote 0").starts_with("ERR"),
            "a master cannot be promoted"
        );
        assert!(run("promote 4 takeover").starts_with("OK"));
        assert!(run("recover 1").starts_with("OK"));
        assert!(run("bogus").starts_with("ERR"));
        assert!(run("").starts_with("ERR"));
        let state: serde_json::Value = serde_json::from_str(&run("state")).expect("json");
        assert_eq!(state["nodes"][4]["role"], "master");
        assert_eq!(state["nodes"][1]["role"], "replica");
        assert_eq!(state["nodes"][1]["master"], 4);
        assert_eq!(run("quit"), "closed");
    }
}
