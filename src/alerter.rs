//! Direct alerting: the exporter pushes alerts to Alertmanager's v2 API itself, so a page goes out
//! even when Prometheus is down or between scrapes. [`AlertPlanner`] (pure) decides what to send
//! from each snapshot and the events it produced; [`spawn_sender`] posts in the background with
//! retries and never blocks polling. Labels match the bundled Prometheus rules, so Alertmanager
//! deduplicates the two sources.

use crate::events::store::Event;
use crate::model::Snapshot;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long a failover alert stays active (the bundled rule looks back 15 minutes too).
const FAILOVER_ALERT_FOR: Duration = Duration::from_secs(15 * 60);
/// Attempts per batch before it is dropped (firing alerts are re-sent anyway).
const MAX_ATTEMPTS: u32 = 5;
/// Budget of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// One alert in Alertmanager's v2 `postableAlert` form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity of the alert (same as the Prometheus rule's).
    pub labels: BTreeMap<String, String>,
    /// summary, description, runbook.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; in the past resolves the alert.
    pub ends_at: String,
}

fn rfc3339(t: SystemTime) -> String {
    crate::events::store::format_time(t)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[derive(Debug, Clone)]
struct StateFail {
    since: SystemTime,
    firing: bool,
    last_sent: Option<SystemTime>,
}

/// Decides which alerts to post: `RedisClusterStateFail` per node that has reported
/// `cluster_state:fail` for longer than the hold time (re-sent while it lasts, resolved when it
/// ends), and `RedisClusterFailover` for every failover event.
#[derive(Debug)]
pub struct AlertPlanner {
    cluster: String,
    hold: Duration,
    resend: Duration,
    state_fail: HashMap<String, StateFail>,
}

impl AlertPlanner {
    /// A planner; `hold` mirrors the rule's `for:`, `resend` how often firing alerts are
    /// refreshed.
    pub fn new(cluster: &str, hold: Duration, resend: Duration) -> Self {
        AlertPlanner {
            cluster: cluster.to_string(),
            hold,
            resend,
            state_fail: HashMap::new(),
        }
    }

    fn state_fail_alert(&self, addr: &str, starts: SystemTime, ends: SystemTime) -> PostableAlert {
        PostableAlert {
            labels: map(&[
                ("alertname", "RedisClusterStateFail"),
                ("cluster", &self.cluster),
                ("addr", addr),
                ("severity", "critical"),
            ]),
            annotations: map(&[
                (
                    "summary",
                    &format!(
                        "Redis Cluster {}: node {addr} reports cluster_state:fail",
                        self.cluster
                    ),
                ),
                (
                    "description",
                    &format!(
                        "Node {addr} of Redis Cluster {} has reported cluster_state:fail for more than {}; commands for the affected slots get CLUSTERDOWN errors. Sent by redis-cluster-exporter directly.",
                        self.cluster,
                        humantime::format_duration(self.hold)
                    ),
                ),
                (
                    "runbook",
                    &format!(
                        "redis-cli -h <host of {addr}> CLUSTER NODES: look for masters flagged fail and slots without a master; restart failed nodes, CLUSTER FAILOVER FORCE on a replica whose master is gone, then redis-cli --cluster check {addr}"
                    ),
                ),
            ]),
            starts_at: rfc3339(starts),
            ends_at: rfc3339(ends),
        }
    }

    /// Alerts to post after a poll: `now` is the snapshot time.
    pub fn plan(&mut self, snapshot: &Snapshot, events: &[Event]) -> Vec<PostableAlert> {
        let mut out = self.state_fail_alerts(snapshot);
        out.extend(
            events
                .iter()
                .filter(|e| e.details.failover().is_some())
                .map(|e| self.failover_alert(e, snapshot.time)),
        );
        out
    }

    /// `RedisClusterStateFail`: resolves what ended (the node reports ok again, or is polled no
    /// more) and fires, once held for `hold` and then every `resend`, for nodes reporting fail.
    fn state_fail_alerts(&mut self, snapshot: &Snapshot) -> Vec<PostableAlert> {
        let now = snapshot.time;
        let mut out = Vec::new();
        let failing: Vec<&str> = snapshot
            .observations
            .values()
            .filter(|o| o.data().is_some_and(|d| !d.cluster_info.state_ok))
            .map(|o| o.addr.as_str())
            .collect();
        // Nodes that report ok again, or answer no more: resolve what was firing.
        let answered: Vec<&str> = snapshot
            .observations
            .values()
            .filter(|o| o.result.is_ok())
            .map(|o| o.addr.as_str())
            .collect();
        let ended: Vec<String> = self
            .state_fail
            .keys()
            .filter(|a| {
                !failing.contains(&a.as_str())
                    && (answered.contains(&a.as_str())
                        || !snapshot.observations.contains_key(a.as_str()))
            })
            .cloned()
            .collect();
        for addr in ended {
            if let Some(s) = self.state_fail.remove(&addr)
                && s.firing
            {
                out.push(self.state_fail_alert(&addr, s.since, now));
            }
        }
        for addr in failing {
            let entry = self
                .state_fail
                .entry(addr.to_string())
                .or_insert(StateFail {
                    since: now,
                    firing: false,
                    last_sent: None,
                });
            let held = now.duration_since(entry.since).unwrap_or_default() >= self.hold;
            let due = entry
                .last_sent
                .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= self.resend);
            if held && due {
                entry.firing = true;
                entry.last_sent = Some(now);
                let since = entry.since;
                out.push(self.state_fail_alert(addr, since, now + self.resend * 4));
            }
        }
        out
    }

    /// `RedisClusterFailover` for one failover event, active for [`FAILOVER_ALERT_FOR`] from
    /// the event's time.
    fn failover_alert(&self, e: &Event, now: SystemTime) -> PostableAlert {
        let started = humantime::parse_rfc3339(&e.time).unwrap_or(now);
        let trigger = e
            .details
            .failover()
            .map_or("unknown", |f| f.trigger.as_str());
        PostableAlert {
            labels: map(&[
                ("alertname", "RedisClusterFailover"),
                ("cluster", &self.cluster),
                ("trigger", trigger),
                ("severity", "info"),
            ]),
            annotations: map(&[
                (
                    "summary",
                    &format!("Redis Cluster {}: {}", self.cluster, e.summary),
                ),
                (
                    "description",
                    &format!(
                        "{} Event {} ({}); see /events?kind=failover on the exporter.",
                        e.summary, e.id, e.key
                    ),
                ),
                (
                    "runbook",
                    "Check that the old master came back as a replica (CLUSTER NODES) and that no data was lost (possible_data_loss_bytes in the event).",
                ),
            ]),
            starts_at: rfc3339(started),
            ends_at: rfc3339(started + FAILOVER_ALERT_FOR),
        }
    }
}

/// Where and how to post.
#[derive(Debug, Clone)]
pub struct AlertmanagerTarget {
    host: String,
    port: u16,
    path: String,
    authority: String,
}

/// A problem with `--alertmanager-url`.
#[derive(Debug, thiserror::Error)]
#[error("--alertmanager-url {url}: {why}")]
pub struct AlertmanagerUrlError {
    url: String,
    why: String,
}

impl AlertmanagerTarget {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(raw: &str) -> Result<Self, AlertmanagerUrlError> {
        let err = |why: &str| AlertmanagerUrlError {
            url: raw.to_string(),
            why: why.to_string(),
        };
        let url = url::Url::parse(raw).map_err(|e| err(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(err(
                "only http:// is supported (run Alertmanager behind a local proxy for TLS)",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| err("missing host"))?
            .to_string();
        let port = url.port().unwrap_or(80);
        let prefix = url.path().trim_end_matches('/');
        Ok(AlertmanagerTarget {
            authority: format!("{host}:{port}"),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: format!("{prefix}/api/v2/alerts"),
        })
    }

    async fn post(&self, body: &[u8]) -> Result<u16, std::io::Error> {
        let mut stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: redis-cluster-exporter/{}\r\n\r\n",
            self.path,
            self.authority,
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut reply = Vec::with_capacity(512);
        // The status line is all we need; read a bounded amount.
        let mut buf = [0u8; 512];
        while reply.len() < 4096 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(buf.get(..n).unwrap_or_default());
            if reply.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        let status = String::from_utf8_lossy(&reply)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
        Ok(status)
    }
}

/// Starts the background sender; batches given to the returned channel are posted with
/// exponential backoff. A full channel drops the batch (firing alerts are re-sent).
pub fn spawn_sender(target: AlertmanagerTarget) -> mpsc::Sender<Vec<PostableAlert>> {
    let (tx, mut rx) = mpsc::channel::<Vec<PostableAlert>>(64);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let Ok(body) = serde_json::to_vec(&batch) else {
                continue;
            };
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=MAX_ATTEMPTS {
                let result = tokio::time::timeout(POST_TIMEOUT, target.post(&body)).await;
                match result {
                    Ok(Ok(status)) if (200..300).contains(&status) => {
                        tracing::debug!(alerts = batch.len(), "alerts posted to Alertmanager");
                        break;
                    }
                    other => {
                        let why = match other {
                            Ok(Ok(status)) => format!("HTTP {status}"),
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => "timed out".to_string(),
                        };
                        tracing::warn!(attempt, error = %why, alertmanager = %target.authority, "cannot post alerts");
                        if attempt < MAX_ATTEMPTS {
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeData, NodeObservation};
    use crate::parse::{cluster_info, info};
    use std::time::UNIX_EPOCH;

    fn snap(t: u64, fail: &[bool]) -> Snapshot {
        let obs = fail
            .iter()
            .enumerate()
            .map(|(i, f)| NodeObservation {
                addr: format!("127.0.0.1:{}", 7000 + i),
                result: Ok(NodeData {
                    cluster_info: cluster_info::parse_cluster_info(if *f {
                        "cluster_state:fail\n"
                    } else {
                        "cluster_state:ok\n"
                    })
                    .unwrap(),
                    nodes: std::sync::Arc::new(
                        crate::topology::Topology::parse(&format!(
                            "{} 127.0.0.1:{}@1 myself,master - 0 0 1 connected",
                            "a".repeat(40),
                            7000 + i
                        ))
                        .unwrap(),
                    ),
                    info: info::parse_info("role:master\n").unwrap(),
                    stats: None,
                    soft_failures: Vec::new(),
                }),
                duration: Duration::ZERO,
            })
            .collect();
        Snapshot::new(UNIX_EPOCH + Duration::from_secs(t), Duration::ZERO, obs)
    }

    #[test]
    fn state_fail_waits_for_the_hold_then_resends_then_resolves() {
        let mut p = AlertPlanner::new("c", Duration::from_secs(30), Duration::from_secs(60));
        assert!(p.plan(&snap(0, &[true, false]), &[]).is_empty());
        // A one-second blip, as in every automatic failover: nothing.
        assert!(p.plan(&snap(1, &[false, false]), &[]).is_empty());
        assert!(p.plan(&snap(10, &[true, false]), &[]).is_empty());
        let fired = p.plan(&snap(40, &[true, false]), &[]);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].labels["alertname"], "RedisClusterStateFail");
        assert_eq!(fired[0].labels["addr"], "127.0.0.1:7000");
        assert_eq!(fired[0].starts_at, "1970-01-01T00:00:10.000Z");
        assert!(p.plan(&snap(50, &[true, false]), &[]).is_empty());
        assert_eq!(p.plan(&snap(100, &[true, false]), &[]).len(), 1);
        let resolved = p.plan(&snap(101, &[false, false]), &[]);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].ends_at, "1970-01-01T00:01:41.000Z");
        assert!(p.plan(&snap(102, &[false, false]), &[]).is_empty());
    }

    #[test]
    fn urls() {
        let t = AlertmanagerTarget::parse("http://127.0.0.1:9093/am/").unwrap();
        assert_eq!(t.path, "/am/api/v2/alerts");
        assert!(AlertmanagerTarget::parse("https://x:1").is_err());
    }
}
