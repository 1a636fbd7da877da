//! Binary entry point: parses flags, sets up logging, runs the exporter.

use clap::Parser;
use redis_cluster_exporter::config::{Args, CheckArgs, Config};

fn main() -> anyhow::Result<()> {
    // `check` as the first argument: the one-shot monitoring-plugin mode (see README).
    if std::env::args_os().nth(1).is_some_and(|a| a == "check") {
        std::process::exit(check(std::env::args_os().skip(2)));
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line naming the problem, as the spec asks, instead of clap's usage block.
            let text = e.to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!(
                "redis-cluster-exporter: {}",
                line.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redis-cluster-exporter: {e}");
            std::process::exit(2);
        }
    };
    init_logging(config.json_logs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(redis_cluster_exporter::app::run(config))?;
    Ok(())
}

/// First non-empty line of a clap error, without its `error: ` prefix.
fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

/// `redis-cluster-exporter check`: polls once, prints the report, returns the exit code
/// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; bad flags are UNKNOWN, not the server's 2).
fn check(rest: impl Iterator<Item = std::ffi::OsString>) -> i32 {
    use redis_cluster_exporter::check;
    let bad = |why: String| {
        println!("REDIS CLUSTER UNKNOWN - {why}");
        eprintln!("redis-cluster-exporter check: {why}");
        3
    };
    let argv =
        std::iter::once(std::ffi::OsString::from("redis-cluster-exporter check")).chain(rest);
    let args = match CheckArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return 0;
        }
        Err(e) => return bad(one_line(&e)),
    };
    let opts = check::CheckOptions {
        max_lag_bytes: args.max_lag_bytes,
    };
    let json = args.output == "json";
    let config = match Config::from_args(args.common) {
        Ok(c) => c,
        Err(e) => return bad(e.to_string()),
    };
    // The report says everything; logs only on request (LOG_LEVEL), on stderr.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return bad(format!("cannot start the runtime: {e}")),
    };
    let budget = config.node_timeout * check::BUDGET_NODE_TIMEOUTS;
    let report = match runtime.block_on(redis_cluster_exporter::app::poll_for_check(&config)) {
        Some(snapshot) => check::evaluate(&snapshot, &opts),
        None => check::unknown(
            format!(
                "no poll round completed within {}",
                humantime::format_duration(budget)
            ),
            &opts,
        ),
    };
    // A connect still resolving a name on a blocking thread must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    if json {
        println!("{}", check::render_json(&report));
    } else {
        print!("{}", check::render_human(&report));
    }
    report.exit_code
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
