//! The telemetry collectors on real captured INFO ALL replies (Redis 7.0.15, Valkey 8.1 and
//! 9.1, master and replica): the commandstats/latencystats/errorstats/keyspace parsers, the
//! INFO field table's coverage (every numeric field a server prints is either published or
//! listed as deliberately ignored, so a renamed or new field cannot vanish unnoticed), and the
//! rendered families (no series twice, a field a server does not print is absent, not 0), and
//! the hot-slot and Valkey CLUSTER INFO families from their captured replies; and both formats of
//! a snapshot using every collector, byte for byte against golden files.

use redis_cluster_exporter::events::store::Event;
use redis_cluster_exporter::metrics::table::{IGNORED_FIELDS, INFO_METRICS};
use redis_cluster_exporter::metrics::{ExporterMetrics, Format, render};
use redis_cluster_exporter::model::{
    ConfigValues, FailureReason, NodeData, NodeObservation, NodeStats, PollFailure, Slowlog,
    Snapshot,
};
use redis_cluster_exporter::parse::cluster_info::parse_cluster_info;
use redis_cluster_exporter::parse::info::{Info, parse_info};
use redis_cluster_exporter::parse::slot_stats::{MAX_HOT_SLOTS, SlotMetric, parse_slot_stats};
use redis_cluster_exporter::topology::Topology;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const FIXTURES: &[(&str, &str)] = &[
    (
        "redis7 master",
        include_str!("fixtures/info_all_redis7_master.txt"),
    ),
    (
        "redis7 replica",
        include_str!("fixtures/info_all_redis7_replica.txt"),
    ),
    (
        "valkey81 master",
        include_str!("fixtures/info_all_valkey81_master.txt"),
    ),
    (
        "valkey81 replica",
        include_str!("fixtures/info_all_valkey81_replica.txt"),
    ),
    (
        "valkey91 master",
        include_str!("fixtures/info_all_valkey91_master.txt"),
    ),
    (
        "valkey91 replica",
        include_str!("fixtures/info_all_valkey91_replica.txt"),
    ),
];

/// Numeric fields published by collectors of their own rather than table rows.
const OWN_COLLECTOR_FIELDS: &[&str] = &["master_repl_offset"];

/// Field-name prefixes deliberately not published, with why.
const IGNORED_PREFIXES: &[(&str, &str)] = &[
    // Valkey 9.1 repeats CLUSTER INFO inside INFO ("# Cluster Info"); the exporter reads
    // CLUSTER INFO itself every poll.
    ("cluster_stats_", "CLUSTER INFO is polled directly"),
    ("cluster_slots_", "CLUSTER INFO is polled directly"),
    ("cluster_nodes_", "CLUSTER INFO is polled directly"),
    ("cluster_voting_nodes_", "CLUSTER INFO is polled directly"),
    ("cluster_current_epoch", "CLUSTER INFO is polled directly"),
    ("cluster_known_nodes", "CLUSTER INFO is polled directly"),
    ("cluster_my_epoch", "CLUSTER INFO is polled directly"),
    ("cluster_size", "CLUSTER INFO is polled directly"),
    ("cluster_state", "CLUSTER INFO is polled directly"),
    (
        "total_cluster_links_buffer_limit_exceeded",
        "CLUSTER INFO is polled directly",
    ),
    (
        "engines_",
        "Valkey 9 scripting engines; not in redis_exporter",
    ),
    ("tls_", "Valkey 9 certificate expiry; not in redis_exporter"),
    (
        "io_threaded_",
        "io_threaded_reads/writes_processed are published; the rest are Valkey's",
    ),
];

fn info(name: &str) -> Info {
    let text = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("fixture");
    parse_info(text).expect("fixture parses")
}

#[test]
fn every_numeric_field_is_published_or_deliberately_ignored() {
    let published: BTreeSet<&str> = INFO_METRICS.iter().map(|r| r.field).collect();
    let ignored: BTreeSet<&str> = IGNORED_FIELDS.iter().map(|(f, _)| *f).collect();
    let mut unknown: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, text) in FIXTURES {
        let i = parse_info(text).expect("fixture parses");
        assert_eq!(i.malformed_lines, 0, "{name}");
        for (field, _) in &i.fields {
            let f = field.as_ref();
            let known = published.contains(f)
                || ignored.contains(f)
                || OWN_COLLECTOR_FIELDS.contains(&f)
                || (IGNORED_PREFIXES.iter().any(|(p, _)| f.starts_with(p))
                    && !published.contains(f));
            if !known {
                unknown.entry(name).or_default().push(f.to_string());
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "numeric INFO fields neither in INFO_METRICS nor in IGNORED_FIELDS: {unknown:#?}"
    );
    // And the table's Redis 7 fields are really printed by Redis 7 (a typo would never match).
    let r7 = info("redis7 master");
    let r7r = info("redis7 replica");
    let missing: Vec<&str> = INFO_METRICS
        .iter()
        .map(|r| r.field)
        .filter(|f| r7.field(f).is_none() && r7r.field(f).is_none())
        .collect();
    let only_elsewhere = [
        // Redis < 5 names, and AOF fields printed only while AOF is on.
        "client_longest_output_list",
        "client_biggest_input_buf",
        "aof_current_size",
        "aof_base_size",
        "aof_pending_rewrite",
        "aof_buffer_length",
        "aof_rewrite_buffer_length",
        "aof_pending_bio_fsync",
        "aof_delayed_fsync",
    ];
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|f| !only_elsewhere.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "table fields Redis 7.0.15 never prints: {missing:?}"
    );
}

#[test]
fn commandstats_latencystats_errorstats_and_keyspace() {
    for (name, text) in FIXTURES {
        let i = parse_info(text).expect("fixture parses");
        assert!(!i.commands.is_empty(), "{name}: commandstats");
        assert!(!i.latencies.is_empty(), "{name}: latencystats");
        assert!(
            i.commands.iter().all(|c| c.calls >= 1.0 && c.usec >= 0.0),
            "{name}"
        );
        for l in &i.latencies {
            let ps: Vec<&str> = l.percentiles.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(ps, ["50", "99", "99.9"], "{name}: {}", l.cmd);
        }
        if name.ends_with("master") {
            assert!(!i.errors.is_empty(), "{name}: errorstats");
            let db0 = i.keyspace.iter().find(|k| k.db == "db0").expect("db0");
            assert!(
                db0.keys > 0 && db0.expires > 0 && db0.avg_ttl_ms > 0,
                "{name}: {db0:?}"
            );
        }
    }
    let r7 = info("redis7 master");
    let get = r7
        .commands
        .iter()
        .find(|c| c.cmd == "get")
        .expect("cmdstat_get");
    assert!(
        get.rejected_calls.is_some() && get.failed_calls.is_some(),
        "{get:?}"
    );
    assert!(
        r7.commands.iter().any(|c| c.cmd.contains('|')),
        "subcommands keep the pipe"
    );
    let total_errors: f64 = r7.errors.iter().map(|e| e.count).sum();
    assert_eq!(Some(total_errors), r7.field("total_error_replies"));
}

#[test]
fn malformed_structured_lines_are_skipped_and_counted() {
    let text = "# Commandstats\r\ncmdstat_get:calls=3,usec=9,usec_per_call=3.00\r\ncmdstat_bad:calls=x,usec=1\r\ncmdstat_:calls=1,usec=1\r\ncmdstat_nousec:calls=1\r\n# Latencystats\r\nlatency_percentiles_usec_get:p50=1.0,p99=2.0\r\nlatency_percentiles_usec_x:q50=1\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_BAD:count=-\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\ndb1:expires=3\r\n";
    let i = parse_info(text).expect("parses");
    assert_eq!(i.commands.len(), 1);
    assert_eq!(i.latencies.len(), 1);
    assert_eq!(i.errors.len(), 1);
    assert_eq!(i.keyspace.len(), 1);
    assert_eq!(i.malformed_lines, 6);
}

/// A one-node snapshot: CLUSTER INFO and NODES of a real master, INFO replication cut from the
/// fixture, the whole fixture as the telemetry tier.
fn snapshot_of(fixture: &str) -> Snapshot {
    let all = info(fixture);
    let replication: String = FIXTURES
        .iter()
        .find(|(n, _)| *n == fixture)
        .map(|(_, t)| *t)
        .unwrap_or("")
        .split("# ")
        .find(|s| s.starts_with("Replication"))
        .map(|s| format!("# {s}"))
        .unwrap_or_default();
    let data = NodeData {
        cluster_info: parse_cluster_info(include_str!("fixtures/cluster_info_ok.txt")).unwrap(),
        nodes: Arc::new(
            Topology::parse(include_str!("fixtures/cluster_nodes_master.txt")).unwrap(),
        ),
        info: parse_info(&replication).expect("replication section"),
        stats: Some(Arc::new(NodeStats {
            time: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            info: all,
            config: ConfigValues {
                maxmemory: Some(0.0),
                maxclients: Some(10000.0),
                io_threads: Some(1.0),
            },
            slowlog: Some(Slowlog {
                length: 1.0,
                last: Some((7.0, 1500.0)),
            }),
            latency_spikes: vec![("command".into(), 1_799_999_000.0, 20.0)],
            hot_slots: BTreeMap::new(),
        })),
        soft_failures: Vec::new(),
    };
    Snapshot::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_001),
        Duration::from_millis(2),
        vec![NodeObservation {
            addr: "127.0.0.1:7000".into(),
            result: Ok(data),
            duration: Duration::from_millis(1),
        }],
    )
}

fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn rendered_families_follow_the_fixture_and_no_series_repeats() {
    for (name, _) in FIXTURES {
        let snap = snapshot_of(name);
        let out = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
        let text = std::str::from_utf8(&out).unwrap();
        let mut seen = BTreeSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let series = line.rsplit_once(' ').map(|(s, _)| s).unwrap_or(line);
            assert!(seen.insert(series.to_string()), "{name}: {series} twice");
        }
        let fams = families(text);
        let i = info(name);
        for row in INFO_METRICS {
            let printed = i.field(row.field).is_some();
            assert_eq!(
                fams.contains(row.name),
                printed,
                "{name}: {} ({}) present iff the server prints it",
                row.name,
                row.field
            );
        }
        for fam in [
            "redis_commands_total",
            "redis_commands_duration_seconds_total",
            "redis_latency_percentiles_usec",
            "redis_db_keys",
            "redis_slowlog_length",
            "redis_config_maxclients",
            "redis_instance_info",
            "redis_start_time_seconds",
            "redis_latency_spike_last",
            "redis_latency_spike_duration_seconds",
        ] {
            assert!(fams.contains(fam), "{name}: {fam}");
        }
        assert!(text.contains("redis_last_slow_execution_duration_seconds{addr=\"127.0.0.1:7000\",cluster=\"c\"} 0.0015"));
        assert!(text.contains("redis_start_time_seconds{addr=\"127.0.0.1:7000\",cluster=\"c\"} "));
        let om = render(&snap, &ExporterMetrics::default(), "c", Format::OpenMetrics);
        let om = std::str::from_utf8(&om).unwrap();
        assert!(om.ends_with("# EOF\n"));
        assert!(
            !om.contains("quantile=\"99.9\"")
                || om.contains("# TYPE redis_latency_percentiles_usec unknown")
        );
    }
}

#[test]
fn command_and_error_labels_are_capped_per_node() {
    let mut snap = snapshot_of("redis7 master");
    let obs = snap.observations.values_mut().next().unwrap();
    let data = obs.result.as_mut().unwrap();
    let mut stats = (**data.stats.as_ref().unwrap()).clone();
    let template = stats.info.commands[0].clone();
    let etemplate = stats.info.errors[0].clone();
    for n in 0..3000 {
        let mut c = template.clone();
        c.cmd = format!("mod{n}");
        stats.info.commands.push(c);
        let mut e = etemplate.clone();
        e.err = format!("E{n}");
        stats.info.errors.push(e);
    }
    let calls: f64 = stats.info.commands.iter().map(|c| c.calls).sum();
    let errors: f64 = stats.info.errors.iter().map(|e| e.count).sum();
    data.stats = Some(Arc::new(stats));
    let out = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let text = std::str::from_utf8(&out).unwrap();
    let samples = |name: &str| -> Vec<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
            .collect()
    };
    let cmds = samples("redis_commands_total");
    assert_eq!(cmds.len(), 256);
    assert_eq!(
        cmds.iter().sum::<f64>(),
        calls,
        "nothing lost: the rest is under other"
    );
    assert!(
        text.contains("redis_commands_total{addr=\"127.0.0.1:7000\",cmd=\"other\",cluster=\"c\"}")
    );
    let errs = samples("redis_errors_total");
    assert_eq!(errs.len(), 64);
    assert_eq!(errs.iter().sum::<f64>(), errors);
}

#[test]
fn readme_names_every_table_metric_and_its_source_field() {
    let readme = include_str!("../README.md");
    for row in INFO_METRICS {
        let line = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", row.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", row.name));
        assert!(
            line.contains(&format!("`{}`", row.field)),
            "README row of {} names its field {}: {line}",
            row.name,
            row.field
        );
    }
}

#[test]
fn hostile_structured_lines_stay_bounded_unique_and_non_negative() {
    let mut text = String::from(
        "# Commandstats\r\ncmdstat_get:calls=5,usec=10\r\ncmdstat_get:calls=9,usec=1\r\ncmdstat_set:calls=-1,usec=3\r\n# Latencystats\r\nlatency_percentiles_usec_get:",
    );
    let pairs: Vec<String> = (0..100).map(|p| format!("p{p}=1.0")).collect();
    text.push_str(&pairs.join(","));
    text.push_str(",p0=2.0\r\n# Errorstats\r\nerrorstat_other:count=5\r\n");
    for n in 0..70 {
        text.push_str(&format!("errorstat_E{n:02}:count=1\r\n"));
    }
    text.push_str("# Stats\r\ntotal_connections_received:-5\r\nkeyspace_hits:3\r\n");
    let i = parse_info(&text).expect("parses");
    assert_eq!(
        i.commands.len(),
        1,
        "a name printed twice, and a negative count, are dropped"
    );
    assert_eq!(i.commands[0].calls, 5.0, "the first of two lines wins");
    assert_eq!(
        i.latencies[0].percentiles.len(),
        16,
        "percentiles per line are capped"
    );
    assert_eq!(i.malformed_lines, 2);

    let mut snap = snapshot_of("redis7 master");
    let obs = snap.observations.values_mut().next().unwrap();
    let data = obs.result.as_mut().unwrap();
    let mut stats = (**data.stats.as_ref().unwrap()).clone();
    stats.info = i;
    data.stats = Some(Arc::new(stats));
    let out = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let body = std::str::from_utf8(&out).unwrap();
    let lines = |prefix: &str| body.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(
        lines("redis_errors_total{addr=\"127.0.0.1:7000\",err=\"other\""),
        1
    );
    assert_eq!(lines("redis_errors_total{"), 64);
    let errors: f64 = body
        .lines()
        .filter(|l| l.starts_with("redis_errors_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(errors, 75.0, "the real `other` is summed in, nothing lost");
    assert_eq!(lines("redis_latency_percentiles_usec{"), 16);
    assert_eq!(
        lines("redis_connections_received_total{"),
        0,
        "no negative counter"
    );
    assert_eq!(lines("redis_keyspace_hits_total{"), 1);
}

#[test]
fn the_capped_set_is_chosen_by_name_so_other_only_grows() {
    let info_with = |busy: f64| {
        let mut t = String::from("# Commandstats\r\n");
        for n in 0..300 {
            let calls = if n == 299 { busy } else { 10.0 };
            t.push_str(&format!("cmdstat_c{n:03}:calls={calls},usec=1\r\n"));
        }
        parse_info(&t).expect("parses")
    };
    let kept = |i: &Info| -> Vec<String> {
        redis_cluster_exporter::metrics::commands::capped_commands(i)
            .iter()
            .map(|c| c.cmd.clone())
            .collect()
    };
    let (quiet, busy) = (info_with(10.0), info_with(1e9));
    assert_eq!(
        kept(&quiet),
        kept(&busy),
        "a command getting busy does not reshuffle the set"
    );
    let other = |i: &Info| {
        redis_cluster_exporter::metrics::commands::capped_commands(i)
            .iter()
            .find(|c| c.cmd == "other")
            .map(|c| c.calls)
    };
    assert!(other(&busy) > other(&quiet));
}

#[test]
fn each_table_row_names_the_section_its_field_is_printed_in() {
    use redis_cluster_exporter::metrics::table::Area;
    let section_of = |area: Area| match area {
        Area::Server => "Server",
        Area::Clients => "Clients",
        Area::Memory => "Memory",
        Area::Persistence => "Persistence",
        Area::Stats => "Stats",
        Area::Replication => "Replication",
        Area::Cpu => "CPU",
        Area::Cluster => "Cluster",
    };
    for (name, text) in FIXTURES {
        let mut section = "";
        let mut where_: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            if let Some(s) = line.strip_prefix("# ") {
                section = s.trim();
            } else if let Some((k, _)) = line.split_once(':') {
                where_.entry(k).or_insert(section);
            }
        }
        for row in INFO_METRICS {
            if let Some(found) = where_.get(row.field) {
                assert_eq!(
                    *found,
                    section_of(row.area),
                    "{name}: {} is printed in # {found}",
                    row.field
                );
            }
        }
    }
}

/// The node of a one-node snapshot with its telemetry's hot slots set, and its CLUSTER NODES
/// replaced by `nodes` (the fixture's own line decides whether it owns slots).
fn with_hot_slots(nodes: &str, hot: BTreeMap<SlotMetric, Vec<(u16, u64)>>) -> Snapshot {
    let mut snap = snapshot_of("valkey91 master");
    let obs = snap.observations.values_mut().next().unwrap();
    let data = obs.result.as_mut().unwrap();
    data.nodes = Arc::new(Topology::parse(nodes).unwrap());
    let mut stats = (**data.stats.as_ref().unwrap()).clone();
    stats.hot_slots = hot;
    data.stats = Some(Arc::new(stats));
    snap
}

/// The hot slots of the captured CLUSTER SLOT-STATS reply, as the poller keeps them: slots at 0
/// left out.
fn captured_hot_slots() -> BTreeMap<SlotMetric, Vec<(u16, u64)>> {
    let value = redis::parse_redis_value(include_bytes!(
        "fixtures/cluster_slot_stats_valkey91_enabled.txt"
    ))
    .unwrap();
    let stats = parse_slot_stats(&value, 100).unwrap();
    let mut hot = BTreeMap::new();
    for m in SlotMetric::ALL {
        let top: Vec<(u16, u64)> = stats
            .slots
            .iter()
            .filter_map(|s| Some((s.slot, s.get(m)?)))
            .filter(|(_, v)| *v > 0)
            .collect();
        hot.insert(m, top);
    }
    hot
}

#[test]
fn hot_slots_render_per_slot_for_slot_owners_only_and_capped() {
    let hot = captured_hot_slots();
    let master = include_str!("fixtures/cluster_nodes_master.txt");
    let snap = with_hot_slots(master, hot.clone());
    let out = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let text = std::str::from_utf8(&out).unwrap();
    for line in [
        "# TYPE redis_cluster_slot_keys gauge",
        "redis_cluster_slot_keys{addr=\"127.0.0.1:7000\",slot=\"3\",cluster=\"c\"} 1",
        "# TYPE redis_cluster_slot_cpu_usec_total counter",
        "redis_cluster_slot_cpu_usec_total{addr=\"127.0.0.1:7000\",slot=\"3\",cluster=\"c\"} 12",
        "redis_cluster_slot_network_bytes_in_total{addr=\"127.0.0.1:7000\",slot=\"11\",cluster=\"c\"} 79",
        "redis_cluster_slot_network_bytes_out_total{addr=\"127.0.0.1:7000\",slot=\"15\",cluster=\"c\"} 56",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    let keys = text
        .lines()
        .filter(|l| l.starts_with("redis_cluster_slot_keys{"))
        .count();
    assert_eq!(keys, 6, "one series per slot holding keys");
    assert!(!text.contains("slot=\"0\""), "slots at 0 are not hot");
    let om = render(&snap, &ExporterMetrics::default(), "c", Format::OpenMetrics);
    let om = std::str::from_utf8(&om).unwrap();
    assert!(
        om.contains("# TYPE redis_cluster_slot_cpu_usec counter"),
        "OpenMetrics counter"
    );

    // A replica (its own line says slave) gives none, even with telemetry left from before.
    let replica = include_str!("fixtures/cluster_nodes_replica.txt");
    let snap = with_hot_slots(replica, hot);
    let text = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let text = std::str::from_utf8(&text).unwrap();
    for fam in [
        "redis_cluster_slot_keys",
        "redis_cluster_slot_cpu_usec_total",
        "redis_cluster_slot_network_bytes_in_total",
        "redis_cluster_slot_network_bytes_out_total",
    ] {
        assert!(!text.contains(fam), "replica has {fam}");
    }

    // A broken server listing more than the cap: at most MAX_HOT_SLOTS series.
    let many: Vec<(u16, u64)> = (0..500).map(|s| (s, 1000 - u64::from(s))).collect();
    let snap = with_hot_slots(master, BTreeMap::from([(SlotMetric::KeyCount, many)]));
    let text = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let text = std::str::from_utf8(&text).unwrap();
    let keys = text
        .lines()
        .filter(|l| l.starts_with("redis_cluster_slot_keys{"))
        .count();
    assert_eq!(keys, usize::from(MAX_HOT_SLOTS));
    assert!(
        !text.contains("redis_cluster_slot_cpu_usec_total"),
        "absent, not 0"
    );
}

#[test]
fn valkey_cluster_info_counts_render_only_where_printed() {
    let mut snap = snapshot_of("valkey91 master");
    let obs = snap.observations.values_mut().next().unwrap();
    let data = obs.result.as_mut().unwrap();
    data.cluster_info = parse_cluster_info(include_str!("fixtures/info_all_valkey91_master.txt"))
        .expect("the # Cluster Info section");
    let text = render(&snap, &ExporterMetrics::default(), "c", Format::Text);
    let text = std::str::from_utf8(&text).unwrap();
    for name in [
        "redis_cluster_nodes_pfail",
        "redis_cluster_nodes_fail",
        "redis_cluster_voting_nodes_pfail",
        "redis_cluster_voting_nodes_fail",
    ] {
        let line = format!("{name}{{addr=\"127.0.0.1:7000\",cluster=\"c\"}} 0");
        assert!(text.lines().any(|l| l == line), "missing {line}");
        // snapshot_of's own CLUSTER INFO is a Redis 7 one: none of them.
        let redis = render(
            &snapshot_of("redis7 master"),
            &ExporterMetrics::default(),
            "c",
            Format::Text,
        );
        let redis = std::str::from_utf8(&redis).unwrap().to_string();
        assert!(!redis.contains(name), "{name} on Redis");
    }
}

/// A snapshot exercising every collector: each fixture as one node at its own address (the
/// replicas with a replica's CLUSTER NODES), the captured hot slots on the Valkey 9.1 master, a
/// failed telemetry part on one node, a latency event name to escape, one node that did not
/// answer; and accumulating metrics holding that poll and every event of
/// `fixtures/events_golden.jsonl`.
fn rich_snapshot() -> (Snapshot, ExporterMetrics) {
    let replica_nodes =
        Arc::new(Topology::parse(include_str!("fixtures/cluster_nodes_replica.txt")).unwrap());
    let mut observations = Vec::new();
    for (i, (name, _)) in FIXTURES.iter().enumerate() {
        let mut snap = snapshot_of(name);
        let mut obs = snap.observations.pop_first().unwrap().1;
        obs.addr = format!("127.0.0.1:{}", 7000 + i);
        obs.duration = Duration::from_micros(1500 + 250 * i as u64);
        let data = obs.result.as_mut().unwrap();
        if name.ends_with("replica") {
            data.nodes = Arc::clone(&replica_nodes);
        }
        if *name == "valkey91 master" {
            let mut stats = (**data.stats.as_ref().unwrap()).clone();
            stats.hot_slots = captured_hot_slots();
            data.stats = Some(Arc::new(stats));
        }
        if *name == "redis7 replica" {
            // A label value the encoder must escape.
            let mut stats = (**data.stats.as_ref().unwrap()).clone();
            stats.latency_spikes[0].0 = "we\"ird\\event\nname".into();
            data.stats = Some(Arc::new(stats));
        }
        if *name == "valkey81 master" {
            data.soft_failures.push(PollFailure {
                reason: FailureReason::Protocol,
                message: "slowlog: unexpected reply".into(),
                attempted: true,
            });
        }
        observations.push(obs);
    }
    observations.push(NodeObservation {
        addr: "127.0.0.1:7100".into(),
        result: Err(PollFailure {
            reason: FailureReason::Timeout,
            message: "no reply within 1s".into(),
            attempted: true,
        }),
        duration: Duration::from_secs(1),
    });
    let snap = Snapshot::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_001),
        Duration::from_millis(1002),
        observations,
    );
    let metrics = ExporterMetrics::default();
    metrics.record(&snap);
    metrics.record_render();
    for line in include_str!("fixtures/events_golden.jsonl").lines() {
        let event: Event = serde_json::from_str(line).unwrap();
        metrics.record_event(&event);
    }
    (snap, metrics)
}

/// prometheus-client keeps a family's series in a `HashMap`, so their order in the part it
/// writes (everything before the encoder's first family) changes from run to run: that part is
/// compared as sorted lines, the rest as it is.
fn canonical(body: &str) -> String {
    let split = body
        .find("# HELP redis_exporter_node_poll_duration_seconds ")
        .unwrap_or(0);
    let (registry, families) = body.split_at(split);
    let mut lines: Vec<&str> = registry.lines().collect();
    lines.sort_unstable();
    format!("{}\n{families}", lines.join("\n"))
}

/// Both formats of [`rich_snapshot`] are byte for byte `fixtures/render_golden.txt` and
/// `fixtures/render_golden.openmetrics.txt` (up to the order of prometheus-client's series, see
/// [`canonical`]): any change to the exposition fails here. On a difference the new output is
/// left in the temp dir as `<file>.new`, to diff and copy.
#[test]
fn both_formats_of_a_rich_snapshot_are_the_golden_files() {
    let (snap, metrics) = rich_snapshot();
    let cases = [
        (
            Format::Text,
            "render_golden.txt",
            include_str!("fixtures/render_golden.txt"),
        ),
        (
            Format::OpenMetrics,
            "render_golden.openmetrics.txt",
            include_str!("fixtures/render_golden.openmetrics.txt"),
        ),
    ];
    let mut differ = Vec::new();
    for (format, file, golden) in cases {
        let body = render(&snap, &metrics, "golden", format);
        let body = std::str::from_utf8(&body).unwrap();
        if canonical(body) != canonical(golden) {
            let new = std::env::temp_dir().join(format!("{file}.new"));
            let _ = std::fs::write(&new, body);
            differ.push((file, canonical(body), canonical(golden), new));
        }
    }
    for (file, body, golden, new) in differ {
        for (i, (b, g)) in body.lines().zip(golden.lines()).enumerate() {
            assert_eq!(
                b,
                g,
                "{file} line {} (new output: {})",
                i + 1,
                new.display()
            );
        }
        assert_eq!(body, golden, "{file} (new output: {})", new.display());
    }
}
