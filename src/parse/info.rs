//! Parser for the `INFO` reply, any sections: typed fields the detector and the labelled
//! families need (role, offsets, replicas, server identity), every numeric field by name for the
//! table-driven collectors, and the per-command, per-error and per-database lines of
//! commandstats, latencystats, errorstats and keyspace. Unknown fields and sections are ignored;
//! a malformed line of the structured sections is skipped and counted.

use super::{ParseError, kv_lines};
use std::collections::HashSet;

/// One `slaveN:` line of a master's replication section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectedReplica {
    /// `ip`.
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `state` (`online`, `wait_bgsave`, ...).
    pub state: String,
    /// `offset`: replication offset acknowledged by the replica.
    pub offset: i64,
    /// `lag`: seconds since the last ack.
    pub lag: i64,
}

/// One `dbN:` line of the keyspace section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbKeys {
    /// Database name as redis_exporter labels it, e.g. `db0`.
    pub db: String,
    /// `keys`.
    pub keys: u64,
    /// `expires`.
    pub expires: u64,
    /// `avg_ttl` in milliseconds (0 when no key has a TTL, and on replicas).
    pub avg_ttl_ms: u64,
}

/// One `cmdstat_<name>:` line of commandstats.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandStat {
    /// Command name as Redis prints it (`get`, `config|get`).
    pub cmd: String,
    /// `calls`.
    pub calls: f64,
    /// `usec`: total time spent, in microseconds.
    pub usec: f64,
    /// `rejected_calls` (7.0+).
    pub rejected_calls: Option<f64>,
    /// `failed_calls` (7.0+).
    pub failed_calls: Option<f64>,
}

/// One `latency_percentiles_usec_<name>:` line of latencystats (7.0+).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyStat {
    /// Command name.
    pub cmd: String,
    /// `(percentile as printed without the p, value in microseconds)`, e.g. `("99.9", 3.007)`.
    pub percentiles: Vec<(String, f64)>,
}

/// One `errorstat_<PREFIX>:` line of errorstats (6.2+).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorStat {
    /// Error prefix (`ERR`, `WRONGTYPE`, `NOPERM`, ...).
    pub err: String,
    /// `count`.
    pub count: f64,
}

/// The INFO fields the exporter uses. Numeric fields absent from the reply are `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    /// `redis_version`.
    pub redis_version: String,
    /// `redis_mode` (`cluster`, `standalone`); Valkey 8+ calls it `server_mode` unless
    /// `extended-redis-compatibility` is on.
    pub redis_mode: String,
    /// `os`.
    pub os: String,
    /// `process_id`.
    pub process_id: String,
    /// `run_id`.
    pub run_id: String,
    /// `tcp_port`.
    pub tcp_port: String,
    /// `redis_build_id`.
    pub redis_build_id: String,
    /// `uptime_in_seconds`.
    pub uptime_in_seconds: Option<f64>,
    /// `connected_clients`.
    pub connected_clients: Option<f64>,
    /// `used_memory`.
    pub used_memory: Option<f64>,
    /// `used_memory_rss`.
    pub used_memory_rss: Option<f64>,
    /// `used_memory_peak`.
    pub used_memory_peak: Option<f64>,
    /// `maxmemory` (0 when unlimited).
    pub maxmemory: Option<f64>,
    /// `maxmemory_policy`.
    pub maxmemory_policy: String,
    /// `mem_fragmentation_ratio`.
    pub mem_fragmentation_ratio: Option<f64>,
    /// `total_commands_processed`.
    pub total_commands_processed: Option<f64>,
    /// `role`: `master` or `slave`.
    pub role: String,
    /// `connected_slaves`.
    pub connected_slaves: Option<f64>,
    /// `master_repl_offset` (every node).
    pub master_repl_offset: Option<i64>,
    /// `second_repl_offset`: on a promoted replica, one past the offset at which it stopped
    /// replicating its old master (-1 when there is no second history).
    pub second_repl_offset: Option<i64>,
    /// `slave_repl_offset` (replicas).
    pub slave_repl_offset: Option<i64>,
    /// `master_host` (replicas).
    pub master_host: Option<String>,
    /// `master_port` (replicas).
    pub master_port: Option<u16>,
    /// `master_link_status` is `up` (replicas).
    pub master_link_up: Option<bool>,
    /// `master_last_io_seconds_ago` (replicas; -1 while the link is down).
    pub master_last_io_seconds_ago: Option<f64>,
    /// `master_sync_in_progress` (replicas).
    pub master_sync_in_progress: Option<f64>,
    /// `slaveN:` lines.
    pub replicas: Vec<ConnectedReplica>,
    /// `dbN:` lines.
    pub keyspace: Vec<DbKeys>,
    /// `slave_read_only` (replicas).
    pub slave_read_only: Option<String>,
    /// Every numeric field (and the status words `ok`/`up` as 1, `err`/`down` as 0), sorted by
    /// name: what the table-driven collectors read.
    pub fields: Vec<(Box<str>, f64)>,
    /// `cmdstat_*` lines.
    pub commands: Vec<CommandStat>,
    /// `latency_percentiles_usec_*` lines.
    pub latencies: Vec<LatencyStat>,
    /// `errorstat_*` lines.
    pub errors: Vec<ErrorStat>,
    /// Lines of the keyspace, commandstats, latencystats and errorstats sections that could not
    /// be understood (skipped).
    pub malformed_lines: usize,
}

impl Info {
    /// A numeric field by its INFO name, when the server reported it.
    pub fn field(&self, name: &str) -> Option<f64> {
        self.fields
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .and_then(|i| self.fields.get(i))
            .map(|(_, v)| *v)
    }

    /// True when the node reports `role:slave`.
    pub fn is_replica(&self) -> bool {
        self.role == "slave"
    }

    /// The node's own replication offset: `slave_repl_offset` on a replica, else
    /// `master_repl_offset`.
    pub fn replication_offset(&self) -> Option<i64> {
        if self.is_replica() {
            self.slave_repl_offset.or(self.master_repl_offset)
        } else {
            self.master_repl_offset
        }
    }
}

/// True for `<prefix><digits>` keys such as `slave0` or `db12`.
fn numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn comma_fields(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|kv| kv.split_once('='))
}

fn parse_replica(value: &str) -> Option<ConnectedReplica> {
    let mut r = ConnectedReplica::default();
    let mut have_ip = false;
    for (k, v) in comma_fields(value) {
        match k {
            "ip" => {
                r.ip = v.to_string();
                have_ip = true;
            }
            "port" => r.port = v.parse().ok()?,
            "state" => r.state = v.to_string(),
            "offset" => r.offset = v.parse().ok()?,
            "lag" => r.lag = v.parse().ok()?,
            _ => {}
        }
    }
    have_ip.then_some(r)
}

fn parse_db(name: &str, value: &str) -> Option<DbKeys> {
    let mut d = DbKeys {
        db: name.to_string(),
        ..DbKeys::default()
    };
    comma_fields(value).find(|(k, _)| *k == "keys")?;
    for (k, v) in comma_fields(value) {
        match k {
            "keys" => d.keys = v.parse().ok()?,
            "expires" => d.expires = v.parse().ok()?,
            "avg_ttl" => d.avg_ttl_ms = v.parse().ok()?,
            _ => {}
        }
    }
    Some(d)
}

fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Most percentiles kept from one latencystats line (Redis prints 3 by default).
const MAX_PERCENTILES: usize = 16;

/// A count or a time: a finite number that is not negative.
fn count(v: &str) -> Option<f64> {
    number(v).filter(|v| *v >= 0.0)
}

fn parse_command(cmd: &str, value: &str) -> Option<CommandStat> {
    let mut c = CommandStat {
        cmd: cmd.to_string(),
        ..CommandStat::default()
    };
    let (mut calls, mut usec) = (None, None);
    for (k, v) in comma_fields(value) {
        match k {
            "calls" => calls = Some(count(v)?),
            "usec" => usec = Some(count(v)?),
            "rejected_calls" => c.rejected_calls = Some(count(v)?),
            "failed_calls" => c.failed_calls = Some(count(v)?),
            _ => {}
        }
    }
    c.calls = calls?;
    c.usec = usec?;
    (!cmd.is_empty()).then_some(c)
}

fn parse_latency(cmd: &str, value: &str) -> Option<LatencyStat> {
    let mut percentiles = Vec::new();
    for (k, v) in comma_fields(value) {
        let p = k.strip_prefix('p')?;
        number(p)?;
        let v = count(v)?;
        if percentiles.len() < MAX_PERCENTILES && percentiles.iter().all(|(q, _)| q != p) {
            percentiles.push((p.to_string(), v));
        }
    }
    (!cmd.is_empty() && !percentiles.is_empty()).then(|| LatencyStat {
        cmd: cmd.to_string(),
        percentiles,
    })
}

fn parse_error(err: &str, value: &str) -> Option<ErrorStat> {
    let count = comma_fields(value).find(|(k, _)| *k == "count")?.1;
    let count = self::count(count)?;
    (!err.is_empty()).then(|| ErrorStat {
        err: err.to_string(),
        count,
    })
}

/// A field's value as a number: numbers as they are, the status words of INFO (`ok`/`up`,
/// `err`/`down`) as 1 and 0.
fn field_value(value: &str) -> Option<f64> {
    match value.trim() {
        "ok" | "up" => Some(1.0),
        "err" | "down" => Some(0.0),
        v => number(v),
    }
}

/// Parses an INFO reply. Fails only when the text has no `key:value` line at all.
/// Malformed values of known fields are treated as absent.
pub fn parse_info(text: &str) -> Result<Info, ParseError> {
    let mut info = Info::default();
    let mut seen = false;
    let (mut seen_cmd, mut seen_latency, mut seen_err) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for (key, value) in kv_lines(text) {
        seen = true;
        let f = || value.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let i = || value.trim().parse::<i64>().ok();
        match key {
            "redis_version" => info.redis_version = value.to_string(),
            "redis_mode" | "server_mode" => info.redis_mode = value.to_string(),
            "os" => info.os = value.to_string(),
            "process_id" => info.process_id = value.to_string(),
            "run_id" => info.run_id = value.to_string(),
            "tcp_port" => info.tcp_port = value.to_string(),
            "redis_build_id" => info.redis_build_id = value.to_string(),
            "uptime_in_seconds" => info.uptime_in_seconds = f(),
            "connected_clients" => info.connected_clients = f(),
            "used_memory" => info.used_memory = f(),
            "used_memory_rss" => info.used_memory_rss = f(),
            "used_memory_peak" => info.used_memory_peak = f(),
            "maxmemory" => info.maxmemory = f(),
            "maxmemory_policy" => info.maxmemory_policy = value.to_string(),
            "mem_fragmentation_ratio" => info.mem_fragmentation_ratio = f(),
            "total_commands_processed" => info.total_commands_processed = f(),
            "role" => info.role = value.to_string(),
            "connected_slaves" => info.connected_slaves = f(),
            "master_repl_offset" => info.master_repl_offset = i(),
            "slave_repl_offset" => info.slave_repl_offset = i(),
            "second_repl_offset" => info.second_repl_offset = i(),
            "master_host" => info.master_host = Some(value.to_string()),
            "master_port" => info.master_port = value.trim().parse().ok(),
            "master_link_status" => info.master_link_up = Some(value.trim() == "up"),
            "master_last_io_seconds_ago" => info.master_last_io_seconds_ago = f(),
            "master_sync_in_progress" => info.master_sync_in_progress = f(),
            k if numbered(k, "slave") => {
                if let Some(r) = parse_replica(value) {
                    info.replicas.push(r);
                }
            }
            k if numbered(k, "db") => match parse_db(k, value) {
                Some(d) => info.keyspace.push(d),
                None => info.malformed_lines += 1,
            },
            "slave_read_only" => info.slave_read_only = Some(value.trim().to_string()),
            _ => {}
        }
        // Some(parsed?) for a line of a structured section, None for a plain field. A name
        // printed twice is malformed the second time: one series per name.
        let structured = if let Some(cmd) = key.strip_prefix("cmdstat_") {
            Some(
                parse_command(cmd, value)
                    .filter(|_| seen_cmd.insert(cmd))
                    .map(|c| info.commands.push(c))
                    .is_some(),
            )
        } else if let Some(cmd) = key.strip_prefix("latency_percentiles_usec_") {
            Some(
                parse_latency(cmd, value)
                    .filter(|_| seen_latency.insert(cmd))
                    .map(|l| info.latencies.push(l))
                    .is_some(),
            )
        } else {
            key.strip_prefix("errorstat_").map(|err| {
                parse_error(err, value)
                    .filter(|_| seen_err.insert(err))
                    .map(|e| info.errors.push(e))
                    .is_some()
            })
        };
        match structured {
            Some(false) => info.malformed_lines += 1,
            Some(true) => {}
            None => {
                if let Some(v) = field_value(value) {
                    info.fields.push((key.into(), v));
                }
            }
        }
    }
    if !seen {
        return Err(ParseError::Empty);
    }
    // Sorted for lookups; a field printed twice keeps its last value.
    info.fields.reverse();
    info.fields.sort_by(|a, b| a.0.cmp(&b.0));
    info.fields.dedup_by(|a, b| a.0 == b.0);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_with_replica_and_keyspace() {
        let text = "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=192.168.0.161,port=6379,state=online,offset=5180,lag=0\r\nmaster_repl_offset:5180\r\n# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=100\r\n";
        let info = parse_info(text).unwrap();
        assert_eq!(info.role, "master");
        assert_eq!(info.replicas.len(), 1);
        assert_eq!(info.replicas[0].offset, 5180);
        assert_eq!(info.replication_offset(), Some(5180));
        assert_eq!(info.keyspace[0].db, "db0");
        assert_eq!(info.keyspace[0].expires, 2);
    }

    #[test]
    fn replica_offset_and_junk() {
        let text = "role:slave\nmaster_link_status:down\nslave_repl_offset:42\nmaster_repl_offset:50\nslave:bogus\nslavex:ip=1\nused_memory:abc\n";
        let info = parse_info(text).unwrap();
        assert_eq!(info.replication_offset(), Some(42));
        assert_eq!(info.master_link_up, Some(false));
        assert!(info.replicas.is_empty());
        assert_eq!(info.used_memory, None);
        assert!(parse_info("# nothing\n").is_err());
    }
}
