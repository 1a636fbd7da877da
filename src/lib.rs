//! redis-cluster-exporter: watches a whole Redis Cluster and exports it to Prometheus.
//!
//! Data flows one way: [`config`] -> [`poller`] (IO, via [`client`]) -> [`parse`] (pure) ->
//! [`topology`] (compact per-node views) -> [`model`] snapshot -> {[`metrics`] render, [`overview`] document} -> [`http`]. [`app`] wires them
//! together.

pub mod alerter;
pub mod app;
pub mod check;
pub mod client;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod model;
pub mod overview;
pub mod parse;
pub mod poller;
pub mod tls;
pub mod topology;
