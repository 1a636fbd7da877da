//! `cluster-sim`: a synthetic Redis Cluster of N nodes on N loopback ports, for load and failover
//! tests of the exporter. See [`cluster_sim`] and `cluster-sim --help`.

use clap::Parser;
use cluster_sim::control::HELP;
use cluster_sim::model::{Cluster, SimSettings};
use cluster_sim::server::{self, ServerOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// Serves a consistent synthetic Redis Cluster (RESP2: PING, AUTH, CLIENT SETINFO, CLUSTER
/// INFO|NODES|MYID, INFO [sections]) of N nodes, each port answering from its own point of view,
/// and changes its topology on command.
#[derive(Debug, Parser)]
#[command(
    name = "cluster-sim",
    version,
    after_help = concat!(
        "CONTROL: one command per line on the control port (TCP, e.g. `cluster-sim --port-file F \
         --send state`, or bash: exec 3<>/dev/tcp/127.0.0.1/PORT), or on stdin with --stdin. Each \
         command gets one reply line: `OK ...`, `ERR ...`, or one line of JSON.\n\n",
        "  fail <node> [close|stall]\n  promote <replica> [auto|manual|force|takeover]\n  \
         recover <node>\n  state\n  stats\n  help\n  quit\n  shutdown\n\n",
        "Run `--send help` for details. Ports: --base-port P gives nodes P..P+N-1 and control \
         P+N; without it free ports below 55535 are picked (and reserved with the test \
         harness's lock files); --port-file F receives {\"host\",\"control_port\",\"ports\":[...],\"pid\"} \
         once every port is bound."
    )
)]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    /// Replicas per master: the first N/(R+1) nodes are masters, the rest replicas round-robin.
    #[arg(long, default_value_t = 1)]
    replicas_per_master: usize,
    /// First node port (nodes get P..P+N-1; must stay below 55535).
    #[arg(long)]
    base_port: Option<u16>,
    /// Control port (default: base port + N, or a free port).
    #[arg(long)]
    control_port: Option<u16>,
    /// Write the chosen ports as JSON to this file once bound.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Address to bind and announce.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Time after `fail` until other nodes flag the node `fail?`.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pfail_after: Duration,
    /// Time after `fail` until other nodes flag the node `fail`.
    #[arg(long, default_value = "3s", value_parser = duration)]
    fail_after: Duration,
    /// Longest extra delay before a node sees a promotion or a failure (spread over the nodes),
    /// so views briefly disagree.
    #[arg(long, default_value = "0s", value_parser = duration)]
    propagation: Duration,
    /// Promote a replica automatically once a master has been down this long.
    #[arg(long, value_parser = duration)]
    auto_failover: Option<Duration>,
    /// Replication bytes per second each master's offset grows by.
    #[arg(long, default_value_t = 1000)]
    write_rate: u64,
    /// Seed of node ids, run ids and key counts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Password every node requires (AUTH); by default none.
    #[arg(long, env = "CLUSTER_SIM_PASSWORD")]
    password: Option<String>,
    /// Runtime worker threads (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also read control commands from stdin (replies on stdout).
    #[arg(long)]
    stdin: bool,
    /// Client mode: send this control command to a running simulator (found through
    /// --control-port or --port-file), print the reply, exit.
    #[arg(long, value_name = "COMMAND")]
    send: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Some(cmd) = &args.send {
        std::process::exit(match send(&args, cmd) {
            Ok(reply) => {
                println!("{reply}");
                i32::from(reply.starts_with("ERR"))
            }
            Err(e) => {
                eprintln!("cluster-sim: {e}");
                2
            }
        });
    }
    if let Err(e) = serve(args) {
        eprintln!("cluster-sim: {e}");
        std::process::exit(2);
    }
}

fn send(args: &Args, cmd: &str) -> Result<String, String> {
    let port = match (args.control_port, &args.port_file) {
        (Some(p), _) => p,
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            v["control_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("{}: no control_port", f.display()))?
        }
        (None, None) => return Err("--send needs --control-port or --port-file".into()),
    };
    let mut s = std::net::TcpStream::connect((args.host.as_str(), port))
        .map_err(|e| format!("control port {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{cmd}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if cmd.trim().eq_ignore_ascii_case("help") {
        return Ok(HELP.to_string());
    }
    Ok(line.trim_end().to_string())
}

fn serve(args: Args) -> Result<(), String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let bound = server::bind_all(&args.host, args.nodes, args.base_port, args.control_port)?;
    let settings = SimSettings {
        host: args.host.clone(),
        ports: bound.ports(),
        replicas_per_master: args.replicas_per_master,
        pfail_after: args.pfail_after,
        fail_after: args.fail_after,
        propagation: args.propagation,
        write_rate: args.write_rate,
        seed: args.seed,
    };
    let cluster = Cluster::new(settings, Instant::now(), SystemTime::now())?;
    if let Some(f) = &args.port_file {
        server::write_port_file(f, &args.host, &bound)
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let ports = bound.ports();
    println!(
        "cluster-sim: {} nodes ({} masters) on {} ports {}..{}; seed {}:{}; control port {}",
        cluster.len(),
        (cluster.len() / (args.replicas_per_master + 1)).max(1),
        args.host,
        ports.iter().min().copied().unwrap_or(0),
        ports.iter().max().copied().unwrap_or(0),
        args.host,
        ports.first().copied().unwrap_or(0),
        bound.control_port()
    );
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("tokio runtime: {e}"))?;
    let opts = ServerOptions {
        password: args.password.clone(),
        auto_failover: args.auto_failover,
        stdin: args.stdin,
    };
    runtime
        .block_on(server::run(cluster, bound, opts))
        .map_err(|e| e.to_string())
}
