//! Parser for the `INFO` reply: the server, clients, memory, replication, stats and keyspace
//! fields the metrics need. Unknown fields and sections are ignored.

use super::{ParseError, kv_lines};

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
}

impl Info {
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
    for (k, v) in comma_fields(value) {
        match k {
            "keys" => d.keys = v.parse().ok()?,
            "expires" => d.expires = v.parse().ok()?,
            _ => {}
        }
    }
    Some(d)
}

/// Parses an INFO reply. Fails only when the text has no `key:value` line at all.
/// Malformed values of known fields are treated as absent.
pub fn parse_info(text: &str) -> Result<Info, ParseError> {
    let mut info = Info::default();
    let mut seen = false;
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
            k if numbered(k, "db") => {
                if let Some(d) = parse_db(k, value) {
                    info.keyspace.push(d);
                }
            }
            _ => {}
        }
    }
    if !seen {
        return Err(ParseError::Empty);
    }
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
