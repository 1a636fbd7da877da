//! Wires the parts together: the poll loop (poller -> snapshot -> {metrics render, detector ->
//! event store}) and the HTTP server, with graceful shutdown on SIGINT/SIGTERM.

use crate::alerter::{AlertPlanner, spawn_sender};
use crate::config::Config;
use crate::events::detector::{Detector, Topology};
use crate::events::kind::EventKind;
use crate::events::store::SharedStore;
use crate::events::store::{Event, EventStore, NewEvent, StoreError};
use crate::events::{load_topology, save_topology, topology_path};
use crate::http::{Shared, router};
use crate::metrics::ExporterMetrics;
use crate::model::Snapshot;
use crate::poller::{Poller, PollerSettings};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Events waiting for a successful append are kept up to this many (a full disk must not grow
/// memory without bound).
const MAX_PENDING_EVENTS: usize = 100_000;
/// How often firing direct alerts are re-posted to Alertmanager.
const ALERT_RESEND: std::time::Duration = std::time::Duration::from_secs(60);

/// Failures that stop the exporter.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(std::io::Error),
    /// The event log could not be opened.
    #[error("{0}")]
    EventLog(#[from] StoreError),
    /// The poller's thread or runtime could not be started.
    #[error("cannot start the poller: {0}")]
    Poller(std::io::Error),
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), AppError> {
    let store = EventStore::open(
        &config.event_log,
        config.event_retention,
        &config.cluster_name,
    )?;
    let exporter_metrics = ExporterMetrics::default();
    if let Some(last) = store.last_of_kind(EventKind::Failover) {
        exporter_metrics.set_last_failover(&last.time);
    }
    let shared = Arc::new(Shared::new(exporter_metrics.clone(), &config.cluster_name));
    let store: SharedStore = Arc::new(Mutex::new(store));
    let listener = tokio::net::TcpListener::bind(config.listen_address)
        .await
        .map_err(|source| AppError::Listen {
            addr: config.listen_address,
            source,
        })?;
    let local = listener.local_addr().map_err(AppError::Serve)?;
    if config.password_in_args {
        tracing::warn!(
            "the Redis password was given with --redis-password and is visible to other users in the process list; prefer REDIS_PASSWORD or --redis-password-file"
        );
    }
    tracing::info!(listen = %local, seeds = ?config.seeds.iter().map(|s| s.addr()).collect::<Vec<_>>(), cluster = %config.cluster_name, "redis-cluster-exporter started");

    let (stop_tx, stop_rx) = watch::channel(false);
    let poller = spawn_poller(PollLoop {
        config: config.clone(),
        shared: Arc::clone(&shared),
        store: Arc::clone(&store),
        exporter_metrics,
        stop: stop_rx.clone(),
    })
    .map_err(AppError::Poller)?;

    let mut http_stop = stop_rx.clone();
    let app = router(Arc::clone(&shared))
        .merge(crate::http::events::router(Arc::clone(&store)))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(crate::http::web::MAX_IN_FLIGHT)),
            crate::http::web::bound_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            crate::http::web::AuthState::new(Arc::clone(&config.web.users)),
            crate::http::web::require_auth,
        ));
    let stopped = async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    };
    let server = async {
        match config.web.tls.clone() {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
            Some(acceptor) => {
                let tls = crate::http::web::TlsListener::new(listener, acceptor)?;
                axum::serve(tls, app).with_graceful_shutdown(stopped).await
            }
        }
    };
    let signals = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    let close_streams = async {
        let _ = stop_rx.clone().wait_for(|s| *s).await;
        // Live /events/stream responses would otherwise hold the graceful shutdown open.
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close_subscriptions();
    };
    let (served, (), ()) = tokio::join!(server, signals, close_streams);
    let _ = tokio::task::spawn_blocking(move || poller.join()).await;
    served.map_err(AppError::Serve)
}

/// A flag set on every SIGHUP (re-read the password file).
fn reload_on_sighup() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    {
        let flag = Arc::clone(&flag);
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: re-reading the password file");
                    flag.store(true, Ordering::Relaxed);
                }
            });
        }
    }
    flag
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// What the poll loop needs: the configuration and the state it shares with the HTTP side.
struct PollLoop {
    config: Config,
    shared: Arc<Shared>,
    store: SharedStore,
    exporter_metrics: ExporterMetrics,
    stop: watch::Receiver<bool>,
}

/// Runs the poll loop on a thread of its own, in a current-thread runtime: that one thread
/// drives every node's connection, so a round costs no wakeups of other threads, and a long
/// round at 1000 nodes never delays /metrics, which the main runtime serves. The figures that
/// chose this shape are in docs/performance.md ("Runtime shape").
fn spawn_poller(parts: PollLoop) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("poller".to_string())
        .spawn(move || runtime.block_on(poll_loop(parts)))
}

async fn poll_loop(parts: PollLoop) {
    let PollLoop {
        config,
        shared,
        store,
        exporter_metrics,
        mut stop,
    } = parts;
    let (mut poller, mut round) = Round::start(&config, &store);
    let mut ticker = tokio::time::interval(config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let snapshot = poller.poll_once().await;
        exporter_metrics.record(&snapshot);
        round.after_poll(&snapshot, &store, &exporter_metrics);
        tracing::debug!(
            nodes = snapshot.observations.len(),
            up = snapshot
                .observations
                .values()
                .filter(|o| o.result.is_ok())
                .count(),
            duration_ms = snapshot.duration.as_millis() as u64,
            "poll complete"
        );
        shared.publish(Arc::new(snapshot));
    }
}

/// What the poll loop carries from one round to the next besides the poller: the detector,
/// events not yet on disk, the topology last saved, and the alert planner with its sender.
struct Round {
    detector: Detector,
    pending: Vec<NewEvent>,
    saved: Topology,
    topo_path: std::path::PathBuf,
    alerts: Option<(
        AlertPlanner,
        tokio::sync::mpsc::Sender<Vec<crate::alerter::PostableAlert>>,
    )>,
}

impl Round {
    /// The poller and the round state, resumed from the saved topology: its members are polled
    /// from the first round, and events already in the log after it are not announced again.
    fn start(config: &Config, store: &SharedStore) -> (Poller, Round) {
        let topo_path = topology_path(&config.event_log);
        let topology = load_topology(&topo_path);
        let poller = Poller::new(PollerSettings {
            seeds: config.seeds.clone(),
            connect: config.connect.clone(),
            node_timeout: config.node_timeout,
            poll_interval: config.poll_interval,
            password_file: config.password_file.clone(),
            reload: reload_on_sighup(),
            full_topology_max_nodes: config.full_topology_max_nodes,
            stats_interval: config.stats_interval,
            hot_slots: config.hot_slots,
        })
        .with_known(topology.nodes.values().filter_map(|n| n.addr.clone()));
        let suppress = store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys_after(topology.last_event_id);
        let alerts = config.alertmanager.clone().map(|target| {
            (
                AlertPlanner::new(
                    &config.cluster_name,
                    config.alert_state_fail_for,
                    ALERT_RESEND,
                ),
                spawn_sender(target),
            )
        });
        let round = Round {
            saved: topology.clone(),
            detector: Detector::new(topology, suppress),
            pending: Vec::new(),
            topo_path,
            alerts,
        };
        (poller, round)
    }

    /// Detects, stores (durably), alerts, then saves the topology once nothing is pending.
    fn after_poll(&mut self, snapshot: &Snapshot, store: &SharedStore, metrics: &ExporterMetrics) {
        self.pending.extend(self.detector.observe(snapshot));
        let stored = if self.pending.is_empty() {
            Vec::new()
        } else {
            store_events(store, &mut self.pending, &mut self.detector, metrics)
        };
        if let Some((planner, sender)) = self.alerts.as_mut() {
            let batch = planner.plan(snapshot, &stored);
            if !batch.is_empty() && sender.try_send(batch).is_err() {
                tracing::warn!(
                    "alert sender is behind; dropping a batch (firing alerts are re-sent)"
                );
            }
        }
        // The topology may only advance once every event it implies is on disk; otherwise a
        // crash would lose those events for good.
        if self.pending.is_empty() && self.detector.topology() != &self.saved {
            match save_topology(&self.topo_path, self.detector.topology()) {
                Ok(()) => self.saved = self.detector.topology().clone(),
                Err(e) => tracing::error!(error = %e, "cannot save the detector topology"),
            }
        }
    }
}

/// Appends pending events (durably), then logs and counts them. On failure they stay pending
/// and are retried after the next poll.
fn store_events(
    store: &SharedStore,
    pending: &mut Vec<NewEvent>,
    detector: &mut Detector,
    metrics: &ExporterMetrics,
) -> Vec<Event> {
    let mut guard = store.lock().unwrap_or_else(PoisonError::into_inner);
    match guard.append(pending.clone()) {
        Ok(stored) => {
            pending.clear();
            detector.set_last_event_id(guard.last_id());
            drop(guard);
            for e in &stored {
                metrics.record_event(e);
                let details = serde_json::to_string(&e.details).unwrap_or_default();
                tracing::info!(
                    id = e.id,
                    kind = %e.kind(),
                    key = %e.key,
                    details = %details,
                    "{}",
                    e.summary
                );
            }
            stored
        }
        Err(e) => {
            tracing::error!(error = %e, pending = pending.len(), "cannot store events; will retry");
            if pending.len() > MAX_PENDING_EVENTS {
                let excess = pending.len() - MAX_PENDING_EVENTS;
                pending.drain(..excess);
            }
            Vec::new()
        }
    }
}

/// Polls the cluster for the check: a first round (which already polls the members the seeds
/// reveal) and, when that round named members it did not poll, a second one whose observations
/// override the first's. The whole run ends within [`crate::check::BUDGET_NODE_TIMEOUTS`] `--node-timeout`s;
/// `None` when not even the first round completed in that time.
pub async fn poll_for_check(config: &Config) -> Option<Snapshot> {
    let budget = config.node_timeout * crate::check::BUDGET_NODE_TIMEOUTS;
    let deadline = tokio::time::Instant::now() + budget;
    let mut poller = Poller::new(PollerSettings {
        seeds: config.seeds.clone(),
        connect: config.connect.clone(),
        node_timeout: config.node_timeout,
        poll_interval: config.node_timeout,
        password_file: None,
        reload: Arc::new(AtomicBool::new(false)),
        full_topology_max_nodes: config.full_topology_max_nodes,
        stats_interval: std::time::Duration::from_secs(24 * 3600),
        hot_slots: None,
    });
    let first = tokio::time::timeout_at(deadline, poller.poll_once())
        .await
        .ok()?;
    let missing = first
        .view
        .addrs()
        .into_iter()
        .any(|a| !first.observations.contains_key(&a));
    if !missing {
        return Some(first);
    }
    match tokio::time::timeout_at(deadline, poller.poll_once()).await {
        Ok(second) => {
            let mut merged = first.observations;
            merged.extend(second.observations);
            Some(Snapshot::new(
                first.time,
                first.duration + second.duration,
                merged.into_values().collect(),
            ))
        }
        Err(_) => Some(first),
    }
}
