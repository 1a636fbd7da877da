//! Command-line and environment configuration (clap), validated into a [`Config`].

use crate::check::DEFAULT_MAX_LAG_BYTES;
use crate::client::{ConnectOptions, Credentials};
use crate::parse::slot_stats::MAX_HOT_SLOTS;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Command-line flags; every flag can also come from the environment variable named beside it.
#[derive(Debug, Parser)]
#[command(
    name = "redis-cluster-exporter",
    version,
    about = "Prometheus exporter and failover log for a whole Redis Cluster",
    after_help = "One-shot cluster check for CI and Nagios: redis-cluster-exporter check --help"
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
    /// CA certificate(s) (PEM) to verify Redis servers with (default: the system's roots)
    #[arg(long, env = "REDIS_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS
    #[arg(long, env = "REDIS_TLS_CLIENT_CERT_FILE")]
    pub tls_client_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS
    #[arg(long, env = "REDIS_TLS_CLIENT_KEY_FILE")]
    pub tls_client_key_file: Option<PathBuf>,
    /// Do not verify Redis servers' certificates (testing only)
    #[arg(long, env = "REDIS_TLS_SKIP_VERIFY")]
    pub skip_tls_verification: bool,
    /// How often every node is polled
    #[arg(long, env = "POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Connect + reply budget per node per poll
    #[arg(long, env = "NODE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub node_timeout: Duration,
    /// Clusters up to this many nodes send CLUSTER NODES from every node every poll while a node
    /// is down or flagged, and from half of them in turn while all is quiet; larger ones from
    /// this many nodes per poll in turn; always also every node whose CLUSTER INFO changed
    #[arg(long, env = "FULL_TOPOLOGY_MAX_NODES", default_value_t = 64)]
    pub full_topology_max_nodes: usize,
    /// How often each node's full telemetry (INFO all, CONFIG GET, SLOWLOG) is taken, staggered
    /// across nodes; the failover path stays on --poll-interval
    #[arg(long, env = "STATS_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub stats_interval: Duration,
    /// With the telemetry, each slot-owning master's top this many slots by key count (and by
    /// CPU time and network bytes when cluster-slot-stats-enabled is on), from CLUSTER SLOT-STATS
    /// (Valkey 8+, Redis 8.2+); 0 turns it off; at most 100
    #[arg(long, env = "HOT_SLOTS", default_value_t = 10)]
    pub hot_slots: u16,
    /// Largest reply one node may send in one poll, in bytes
    #[arg(long, env = "MAX_REPLY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_reply_bytes: usize,
    /// HTTP listen address
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "0.0.0.0:9121")]
    pub listen_address: SocketAddr,
    /// Web config file (YAML): TLS and basic auth for the exporter's own HTTP endpoints
    #[arg(long, env = "WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Alertmanager to post failover and cluster_state alerts to directly (http://host:9093)
    #[arg(long, env = "ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// How long a node must report cluster_state:fail before the direct alert fires
    #[arg(long, env = "ALERT_STATE_FAIL_FOR", default_value = "30s", value_parser = parse_duration)]
    pub alert_state_fail_for: Duration,
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

/// Flags of `redis-cluster-exporter check`: every connection, TLS and auth flag of the server
/// (the server-only ones are accepted and ignored), plus the check's own.
#[derive(Debug, Parser)]
#[command(
    name = "redis-cluster-exporter check",
    version,
    about = "Checks a whole Redis Cluster once; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad flags included)"
)]
pub struct CheckArgs {
    /// The server's flags (connection, TLS, auth, --node-timeout).
    #[command(flatten)]
    pub common: Args,
    /// Report format
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    pub output: String,
    /// Replica lag (master offset minus replica offset) above this many bytes is a WARNING
    #[arg(long, env = "CHECK_MAX_LAG_BYTES", default_value_t = DEFAULT_MAX_LAG_BYTES)]
    pub max_lag_bytes: u64,
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
    /// `rediss://`.
    pub tls: bool,
}

impl Seed {
    /// `host:port`, the form used for the `addr` label.
    pub fn addr(&self) -> String {
        // The same form CLUSTER NODES addresses render to, so a seed and a member compare equal.
        crate::parse::cluster_nodes::NodeAddr {
            host: self.host.clone(),
            port: self.port,
        }
        .to_string()
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed nodes.
    pub seeds: Vec<Seed>,
    /// Credentials, TLS and reply bound for every node.
    pub connect: ConnectOptions,
    /// The password file, re-read when it changes or on SIGHUP.
    pub password_file: Option<PathBuf>,
    /// The password was given on the command line (visible in `ps`).
    pub password_in_args: bool,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Per-node budget per poll.
    pub node_timeout: Duration,
    /// See [`Args::full_topology_max_nodes`].
    pub full_topology_max_nodes: usize,
    /// See [`Args::stats_interval`].
    pub stats_interval: Duration,
    /// See [`Args::hot_slots`]; `None` when 0.
    pub hot_slots: Option<u16>,
    /// HTTP listen address.
    pub listen_address: SocketAddr,
    /// TLS and basic auth of the HTTP server.
    pub web: crate::http::web::WebConfig,
    /// Alertmanager for direct alerts.
    pub alertmanager: Option<crate::alerter::AlertmanagerTarget>,
    /// Hold time of the direct cluster_state alert.
    pub alert_state_fail_for: Duration,
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
    /// `--alertmanager-url` is unusable.
    #[error(transparent)]
    Alertmanager(#[from] crate::alerter::AlertmanagerUrlError),
    /// The web-config file is unusable.
    #[error(transparent)]
    Web(#[from] crate::http::web::WebConfigError),
    /// The TLS client configuration could not be built.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        other => return Err(bad(&format!("unsupported scheme {other}"))),
    };
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
        tls,
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
        let seeds = seeds_of(&args.redis_addr)?;
        let password_in_args = args.redis_password.is_some()
            && std::env::args().any(|a| {
                a.starts_with("--redis-password") && !a.starts_with("--redis-password-file")
            });
        let password = match (&args.redis_password_file, args.redis_password.clone()) {
            (Some(path), _) => Some(read_password_file(path)?),
            (None, p) => p,
        };
        let tls = client_tls(&args, &seeds)?;
        check_limits(&args)?;
        Ok(Config {
            seeds,
            connect: ConnectOptions {
                credentials: Credentials {
                    username: args.redis_user.filter(|u| !u.is_empty()),
                    password: password.filter(|p| !p.is_empty()),
                },
                tls,
                max_reply_bytes: args.max_reply_bytes,
            },
            password_file: args.redis_password_file,
            password_in_args,
            poll_interval: args.poll_interval,
            node_timeout: args.node_timeout,
            full_topology_max_nodes: args.full_topology_max_nodes.max(1),
            stats_interval: args.stats_interval.max(args.poll_interval),
            hot_slots: Some(args.hot_slots).filter(|n| *n > 0),
            listen_address: args.listen_address,
            alertmanager: args
                .alertmanager_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(crate::alerter::AlertmanagerTarget::parse)
                .transpose()?,
            alert_state_fail_for: args.alert_state_fail_for,
            web: match &args.web_config_file {
                Some(path) => crate::http::web::load(path)?,
                None => crate::http::web::WebConfig::default(),
            },
            event_log: args.event_log,
            event_retention: args.event_retention,
            cluster_name: args.cluster_name,
            json_logs: args.log_format == "json",
        })
    }
}

/// The seed addresses, at least one, all `redis://` or all `rediss://`.
fn seeds_of(addrs: &[String]) -> Result<Vec<Seed>, ConfigError> {
    let seeds = addrs
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_seed(s))
        .collect::<Result<Vec<_>, _>>()?;
    if seeds.is_empty() {
        return Err(ConfigError::Invalid("--redis-addr: no seed given".into()));
    }
    let tls_seeds = seeds.iter().filter(|s| s.tls).count();
    if tls_seeds != 0 && tls_seeds != seeds.len() {
        return Err(ConfigError::Invalid(
            "--redis-addr: mix of redis:// and rediss:// seeds; a cluster uses one or the other"
                .into(),
        ));
    }
    Ok(seeds)
}

/// The client TLS connector for `rediss://` seeds; TLS flags without them are an error.
fn client_tls(
    args: &Args,
    seeds: &[Seed],
) -> Result<Option<tokio_rustls::TlsConnector>, ConfigError> {
    let tls_flags = args.tls_ca_cert_file.is_some()
        || args.tls_client_cert_file.is_some()
        || args.tls_client_key_file.is_some()
        || args.skip_tls_verification;
    let tls_seeds = seeds.iter().any(|s| s.tls);
    if tls_flags && !tls_seeds {
        return Err(ConfigError::Invalid(
            "TLS options given but --redis-addr uses redis://; use rediss:// seeds".into(),
        ));
    }
    if !tls_seeds {
        return Ok(None);
    }
    Ok(Some(crate::tls::client_connector(
        &crate::tls::ClientFiles {
            ca_cert: args.tls_ca_cert_file.as_deref(),
            client_cert: args.tls_client_cert_file.as_deref(),
            client_key: args.tls_client_key_file.as_deref(),
            skip_verification: args.skip_tls_verification,
        },
    )?))
}

/// The numeric flags' bounds.
fn check_limits(args: &Args) -> Result<(), ConfigError> {
    if args.event_retention == 0 {
        return Err(ConfigError::Invalid(
            "--event-retention must be at least 1".into(),
        ));
    }
    if args.hot_slots > MAX_HOT_SLOTS {
        return Err(ConfigError::Invalid(format!(
            "--hot-slots must be at most {MAX_HOT_SLOTS} (series per node and metric)"
        )));
    }
    if args.max_reply_bytes < 1024 {
        return Err(ConfigError::Invalid(
            "--max-reply-bytes must be at least 1024".into(),
        ));
    }
    Ok(())
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
