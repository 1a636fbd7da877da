//! A synthetic Redis Cluster for load and failover tests of the exporter (used by the
//! `cluster-sim` binary, `scripts/bench.sh` and the exporter's `tests/sim_scale.rs`). A crate of
//! its own, so the exporter's library, binary and image carry no simulator code.
//!
//! One process serves N nodes on N loopback ports. Every port speaks enough RESP2 for the exporter
//! (`PING`, `AUTH`, `CLIENT SETINFO`, `CLUSTER INFO|NODES|MYID`, `INFO [sections...]`, pipelined),
//! and answers from that node's own point of view, rendered lazily per request from one shared
//! [`model::Cluster`]. A line-based control interface ([`control`]) fails, promotes and recovers
//! nodes while it runs.
//!
//! - [`resp`]: request parsing and reply encoding (never panics on input).
//! - [`model`]: the cluster state and every reply rendered from it (pure; time is an argument).
//! - [`control`]: the control commands (`fail`, `promote`, `recover`, `state`, ...).
//! - [`server`]: the tokio listeners, connections and control port.

pub mod control;
pub mod model;
pub mod resp;
pub mod server;
