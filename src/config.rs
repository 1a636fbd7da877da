//! Command-line and environment configuration (clap), validated into a [`Config`].

use crate::client::Credentials;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Command-line flags; every flag can also come from the environment variable named beside it.
#[derive(Debug, Parser)]
#[command(
    name = "redis-cluster-exporter",
    version,
    about = "Prometheus exporter and failover log for a whole Redis Cluster"
)]
pub struct Args {
    /// Seed nodes, comma separated (redis://host:port); any node of the cluster will do
    #[arg(
        long,
        env = "REDIS_ADDR",
        default_value = "redis://127.0.0.1:6379",
        value_delimiter = ','
    )]
    pub redis_addr: Vec<String>,
    /// ACL user name
    #[arg(long, env = "REDIS_USER")]
    pub redis_user: Option<String>,
    /// Password (prefer --redis-password-file or the environment variable)
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// File holding the password
    #[arg(long, env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// How often every node is polled
    #[arg(long, env = "POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Connect + reply budget per node per poll
    #[arg(long, env = "NODE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub node_timeout: Duration,
    /// Largest reply one node may send in one poll, in bytes
    #[arg(long, env = "MAX_REPLY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_reply_bytes: usize,
    /// HTTP listen address
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "0.0.0.0:9121")]
    pub listen_address: SocketAddr,
    /// Durable event log file (created with its folder)
    #[arg(long, env = "EVENT_LOG", default_value = "./data/events.jsonl")]
    pub event_log: PathBuf,
    /// Events kept (oldest dropped first)
    #[arg(long, env = "EVENT_RETENTION", default_value_t = 10_000)]
    pub event_retention: usize,
    /// Value of the `cluster` label and field
    #[arg(long, env = "CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,
    /// Log format
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 1s, 2m)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// A seed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// Host (IP or name), without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Seed {
    /// `host:port`, the form used for the `addr` label.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed nodes.
    pub seeds: Vec<Seed>,
    /// Credentials for every node.
    pub credentials: Credentials,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Per-node budget per poll.
    pub node_timeout: Duration,
    /// Reply size bound per node per poll.
    pub max_reply_bytes: usize,
    /// HTTP listen address.
    pub listen_address: SocketAddr,
    /// Event log path.
    pub event_log: PathBuf,
    /// Events kept.
    pub event_retention: usize,
    /// `cluster` label value.
    pub cluster_name: String,
    /// Emit JSON logs.
    pub json_logs: bool,
}

/// A configuration problem, reported as one line before exiting with status 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A seed address could not be understood.
    #[error("--redis-addr: {addr:?} is not a redis:// address: {why}")]
    BadSeed {
        /// The offending value.
        addr: String,
        /// Why.
        why: String,
    },
    /// The password file could not be read.
    #[error("--redis-password-file {path}: {source}")]
    PasswordFile {
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// Some other value is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// Parses one seed: `redis://host:port`, `host:port` or `host` (port 6379).
pub fn parse_seed(raw: &str) -> Result<Seed, ConfigError> {
    let raw = raw.trim();
    let bad = |why: &str| ConfigError::BadSeed {
        addr: redact_userinfo(raw),
        why: why.to_string(),
    };
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("redis://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "redis" => {}
        "rediss" => return Err(bad("TLS (rediss://) is not supported yet")),
        other => return Err(bad(&format!("unsupported scheme {other}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the URL are not accepted; use --redis-user and REDIS_PASSWORD or --redis-password-file",
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("missing host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Seed {
        host,
        port: url.port().unwrap_or(6379),
    })
}

/// Replaces any `user:password@` part of an address with `***@`, so errors never echo secrets.
fn redact_userinfo(raw: &str) -> String {
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => {
            let tail = rest.get(at + 1..).unwrap_or("");
            if scheme.is_empty() {
                format!("***@{tail}")
            } else {
                format!("{scheme}://***@{tail}")
            }
        }
        None => raw.to_string(),
    }
}

impl Config {
    /// Validates parsed flags, reading the password file if given.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let seeds = args
            .redis_addr
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_seed(s))
            .collect::<Result<Vec<_>, _>>()?;
        if seeds.is_empty() {
            return Err(ConfigError::Invalid("--redis-addr: no seed given".into()));
        }
        let password = match (&args.redis_password_file, args.redis_password) {
            (Some(path), _) => Some(read_password_file(path)?),
            (None, p) => p,
        };
        if args.event_retention == 0 {
            return Err(ConfigError::Invalid(
                "--event-retention must be at least 1".into(),
            ));
        }
        if args.max_reply_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "--max-reply-bytes must be at least 1024".into(),
            ));
        }
        Ok(Config {
            seeds,
            credentials: Credentials {
                username: args.redis_user.filter(|u| !u.is_empty()),
                password: password.filter(|p| !p.is_empty()),
            },
            poll_interval: args.poll_interval,
            node_timeout: args.node_timeout,
            max_reply_bytes: args.max_reply_bytes,
            listen_address: args.listen_address,
            event_log: args.event_log,
            event_retention: args.event_retention,
            cluster_name: args.cluster_name,
            json_logs: args.log_format == "json",
        })
    }
}

/// Reads a password file; one trailing newline is removed.
pub fn read_password_file(path: &std::path::Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PasswordFile {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(
            parse_seed("redis://10.0.0.1:7000").unwrap().addr(),
            "10.0.0.1:7000"
        );
        assert_eq!(parse_seed("localhost").unwrap().port, 6379);
        assert_eq!(parse_seed("[::1]:7000").unwrap().addr(), "[::1]:7000");
        assert!(parse_seed("http://x:1").is_err());
        let err = parse_seed("redis://u:secret@h:1").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("redis://***@h:1"), "{err}");
    }
}
