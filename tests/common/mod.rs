//! Real-process test harness, one module per real component: Redis Cluster nodes (`cluster`),
//! a standalone Redis (`standalone`), the exporter binary (`exporter`), with the pieces they share
//! (`server`: one redis-server process; `ports`; `resp`: a tiny RESP client; `util`), a raw HTTP
//! client (`http`) and a Prometheus text-format reader (`exposition`). `peer` (redis_exporter for
//! parity tests) and `valkey` (a Valkey binary) live here too; Prometheus/Alertmanager (`prom.rs`,
//! `alertmanager.rs`) and the fake Redis (`fake_redis.rs`) are included by the test files that
//! need them with `#[path = "common/x.rs"] mod x;`.
//!
//! This file owns only the module list and the re-exports, so test files keep importing
//! everything as `common::Name`.
//!
//! Everything here is blocking (std only, plus `tempfile`) and panics with a clear message on
//! failure or timeout. Every process started here is SIGKILLed on Drop and its temp dir removed.
#![allow(dead_code)]

mod cluster;
mod exporter;
mod exposition;
mod http;
mod ports;
mod resp;
mod server;
mod standalone;
mod util;

pub mod peer;
pub mod valkey;

// Every test binary uses a different part of the harness.
#[allow(unused_imports)]
pub use self::{
    cluster::{ClusterOptions, NodeState, RedisCluster},
    exporter::{EXPORTER_ENV_VARS, Exporter, cluster_sim_bin},
    exposition::{metric_samples, metric_value, up_count},
    http::{header_value, http_get, http_get_with_headers, try_http_get},
    ports::free_port,
    resp::{NodeLine, Resp, parse_cluster_nodes, parse_info, resp_command},
    server::{REDIS_CLI, REDIS_SERVER},
    standalone::RedisStandalone,
    util::wait_until,
};
