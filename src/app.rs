//! Wires the parts together: the poll loop (poller -> snapshot -> metrics render) and the HTTP
//! server, with graceful shutdown on SIGINT/SIGTERM.

use crate::config::Config;
use crate::http::{Shared, router};
use crate::metrics::{ExporterMetrics, render};
use crate::poller::{Poller, PollerSettings};
use std::sync::Arc;
use tokio::sync::watch;

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
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), AppError> {
    let shared = Arc::new(Shared::default());
    let listener = tokio::net::TcpListener::bind(config.listen_address)
        .await
        .map_err(|source| AppError::Listen {
            addr: config.listen_address,
            source,
        })?;
    let local = listener.local_addr().map_err(AppError::Serve)?;
    tracing::info!(listen = %local, seeds = ?config.seeds.iter().map(|s| s.addr()).collect::<Vec<_>>(), cluster = %config.cluster_name, "redis-cluster-exporter started");

    let (stop_tx, stop_rx) = watch::channel(false);
    let poll_task = tokio::spawn(poll_loop(
        config.clone(),
        Arc::clone(&shared),
        stop_rx.clone(),
    ));

    let mut http_stop = stop_rx.clone();
    let server =
        axum::serve(listener, router(Arc::clone(&shared))).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        });
    let signals = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    };
    let (served, ()) = tokio::join!(server.into_future(), signals);
    let _ = poll_task.await;
    served.map_err(AppError::Serve)
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

async fn poll_loop(config: Config, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut poller = Poller::new(PollerSettings {
        seeds: config.seeds.clone(),
        credentials: config.credentials.clone(),
        node_timeout: config.node_timeout,
        max_reply_bytes: config.max_reply_bytes,
        poll_interval: config.poll_interval,
    });
    let exporter_metrics = ExporterMetrics::default();
    let mut ticker = tokio::time::interval(config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let snapshot = poller.poll_once().await;
        exporter_metrics.record(&snapshot);
        shared.publish(render(&snapshot, &exporter_metrics, &config.cluster_name));
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
    }
}
