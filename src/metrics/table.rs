//! The INFO field table: each plain numeric INFO field the exporter publishes, with the
//! metric name, type and help redis_exporter gives it, its unit conversion, and the area
//! (collector) it belongs to. Adding a field is one line. Fields deliberately not published are
//! listed in [`IGNORED_FIELDS`], so a test can fail on any field that is neither.

use super::encode::Kind;

/// Which collector publishes a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// INFO server (node state collector).
    Server,
    /// INFO clients.
    Clients,
    /// INFO memory.
    Memory,
    /// INFO persistence.
    Persistence,
    /// INFO stats.
    Stats,
    /// INFO replication.
    Replication,
    /// INFO cpu.
    Cpu,
    /// INFO cluster.
    Cluster,
}

/// One INFO field published as a metric.
#[derive(Debug, Clone, Copy)]
pub struct InfoMetric {
    /// Collector.
    pub area: Area,
    /// Field name in INFO.
    pub field: &'static str,
    /// Metric name (redis_exporter's).
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Factor from the INFO unit to the metric's (1e-6 for µs -> s).
    pub scale: f64,
    /// Help text.
    pub help: &'static str,
}

const fn row(
    area: Area,
    field: &'static str,
    name: &'static str,
    kind: Kind,
    scale: f64,
    help: &'static str,
) -> InfoMetric {
    InfoMetric {
        area,
        field,
        name,
        kind,
        scale,
        help,
    }
}

use Area::*;
use Kind::{Counter as C, CounterNoTotal as U, Gauge as G};

/// Every published INFO field. Names, and the unit of each, are redis_exporter's; where its
/// type is wrong (counters exported as gauges) ours is the right one (see the README).
#[rustfmt::skip]
pub const INFO_METRICS: &[InfoMetric] = &[
    // Server
    row(Server, "uptime_in_seconds", "redis_uptime_in_seconds", G, 1.0, "uptime_in_seconds: seconds since the server started"),
    row(Server, "process_id", "redis_process_id", G, 1.0, "process_id of the server"),
    // Clients
    row(Clients, "connected_clients", "redis_connected_clients", G, 1.0, "connected_clients: client connections (replicas excluded)"),
    row(Clients, "blocked_clients", "redis_blocked_clients", G, 1.0, "blocked_clients: clients in a blocking call"),
    row(Clients, "tracking_clients", "redis_tracking_clients", G, 1.0, "tracking_clients: clients with tracking enabled"),
    row(Clients, "clients_in_timeout_table", "redis_clients_in_timeout_table", G, 1.0, "clients_in_timeout_table: clients in the timeout table"),
    row(Clients, "cluster_connections", "redis_cluster_connections", G, 1.0, "cluster_connections: cluster bus sockets"),
    row(Clients, "client_recent_max_input_buffer", "redis_client_recent_max_input_buffer_bytes", G, 1.0, "client_recent_max_input_buffer: biggest recent client input buffer"),
    row(Clients, "client_recent_max_output_buffer", "redis_client_recent_max_output_buffer_bytes", G, 1.0, "client_recent_max_output_buffer: biggest recent client output buffer"),
    row(Clients, "client_longest_output_list", "redis_client_longest_output_list", G, 1.0, "client_longest_output_list (Redis < 5)"),
    row(Clients, "client_biggest_input_buf", "redis_client_biggest_input_buf", G, 1.0, "client_biggest_input_buf (Redis < 5)"),
    // Memory
    row(Memory, "used_memory", "redis_memory_used_bytes", G, 1.0, "used_memory: bytes allocated by Redis"),
    row(Memory, "used_memory_rss", "redis_memory_used_rss_bytes", G, 1.0, "used_memory_rss: resident set size"),
    row(Memory, "used_memory_peak", "redis_memory_used_peak_bytes", G, 1.0, "used_memory_peak: peak of used_memory"),
    row(Memory, "used_memory_lua", "redis_memory_used_lua_bytes", G, 1.0, "used_memory_lua: Lua engine memory"),
    row(Memory, "used_memory_overhead", "redis_memory_used_overhead_bytes", G, 1.0, "used_memory_overhead: memory for internal structures"),
    row(Memory, "used_memory_startup", "redis_memory_used_startup_bytes", G, 1.0, "used_memory_startup: memory used at startup"),
    row(Memory, "used_memory_dataset", "redis_memory_used_dataset_bytes", G, 1.0, "used_memory_dataset: memory used by the data"),
    row(Memory, "used_memory_scripts", "redis_memory_used_scripts_bytes", G, 1.0, "used_memory_scripts: memory of cached scripts"),
    row(Memory, "maxmemory", "redis_memory_max_bytes", G, 1.0, "maxmemory (0: no limit)"),
    row(Memory, "total_system_memory", "redis_total_system_memory_bytes", G, 1.0, "total_system_memory of the host"),
    row(Memory, "allocator_active", "redis_allocator_active_bytes", G, 1.0, "allocator_active"),
    row(Memory, "allocator_allocated", "redis_allocator_allocated_bytes", G, 1.0, "allocator_allocated"),
    row(Memory, "allocator_resident", "redis_allocator_resident_bytes", G, 1.0, "allocator_resident"),
    row(Memory, "allocator_frag_ratio", "redis_allocator_frag_ratio", G, 1.0, "allocator_frag_ratio"),
    row(Memory, "allocator_frag_bytes", "redis_allocator_frag_bytes", G, 1.0, "allocator_frag_bytes"),
    row(Memory, "allocator_rss_ratio", "redis_allocator_rss_ratio", G, 1.0, "allocator_rss_ratio"),
    row(Memory, "allocator_rss_bytes", "redis_allocator_rss_bytes", G, 1.0, "allocator_rss_bytes"),
    row(Memory, "mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", G, 1.0, "mem_fragmentation_ratio: RSS / used_memory"),
    row(Memory, "mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", G, 1.0, "mem_fragmentation_bytes: RSS - used_memory"),
    row(Memory, "mem_not_counted_for_evict", "redis_mem_not_counted_for_eviction_bytes", G, 1.0, "mem_not_counted_for_evict: replication and AOF buffers"),
    row(Memory, "mem_clients_slaves", "redis_mem_clients_slaves", G, 1.0, "mem_clients_slaves: memory of replica clients"),
    row(Memory, "mem_clients_normal", "redis_mem_clients_normal", G, 1.0, "mem_clients_normal: memory of normal clients"),
    row(Memory, "lazyfree_pending_objects", "redis_lazyfree_pending_objects", G, 1.0, "lazyfree_pending_objects: objects waiting to be freed"),
    row(Memory, "active_defrag_running", "redis_active_defrag_running", G, 1.0, "active_defrag_running"),
    row(Memory, "number_of_cached_scripts", "redis_number_of_cached_scripts", G, 1.0, "number_of_cached_scripts"),
    // Persistence
    row(Persistence, "loading", "redis_loading_dump_file", G, 1.0, "loading: 1 while a dump file is being loaded"),
    row(Persistence, "rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", G, 1.0, "rdb_changes_since_last_save"),
    row(Persistence, "rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", G, 1.0, "rdb_bgsave_in_progress"),
    row(Persistence, "rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", G, 1.0, "rdb_last_save_time: Unix time of the last successful save"),
    row(Persistence, "rdb_last_bgsave_status", "redis_rdb_last_bgsave_status", G, 1.0, "rdb_last_bgsave_status: 1 ok, 0 err"),
    row(Persistence, "rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_sec", G, 1.0, "rdb_last_bgsave_time_sec (-1: none yet)"),
    row(Persistence, "rdb_current_bgsave_time_sec", "redis_rdb_current_bgsave_duration_sec", G, 1.0, "rdb_current_bgsave_time_sec (-1: none running)"),
    row(Persistence, "rdb_last_cow_size", "redis_rdb_last_cow_size_bytes", G, 1.0, "rdb_last_cow_size: copy-on-write bytes of the last save"),
    row(Persistence, "aof_enabled", "redis_aof_enabled", G, 1.0, "aof_enabled"),
    row(Persistence, "aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", G, 1.0, "aof_rewrite_in_progress"),
    row(Persistence, "aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", G, 1.0, "aof_rewrite_scheduled"),
    row(Persistence, "aof_last_rewrite_time_sec", "redis_aof_last_rewrite_duration_sec", G, 1.0, "aof_last_rewrite_time_sec (-1: none yet)"),
    row(Persistence, "aof_current_rewrite_time_sec", "redis_aof_current_rewrite_duration_sec", G, 1.0, "aof_current_rewrite_time_sec (-1: none running)"),
    row(Persistence, "aof_last_cow_size", "redis_aof_last_cow_size_bytes", G, 1.0, "aof_last_cow_size"),
    row(Persistence, "aof_last_bgrewrite_status", "redis_aof_last_bgrewrite_status", G, 1.0, "aof_last_bgrewrite_status: 1 ok, 0 err"),
    row(Persistence, "aof_last_write_status", "redis_aof_last_write_status", G, 1.0, "aof_last_write_status: 1 ok, 0 err"),
    row(Persistence, "aof_current_size", "redis_aof_current_size_bytes", G, 1.0, "aof_current_size (AOF on)"),
    row(Persistence, "aof_base_size", "redis_aof_base_size_bytes", G, 1.0, "aof_base_size (AOF on)"),
    row(Persistence, "aof_pending_rewrite", "redis_aof_pending_rewrite", G, 1.0, "aof_pending_rewrite (AOF on)"),
    row(Persistence, "aof_buffer_length", "redis_aof_buffer_length", G, 1.0, "aof_buffer_length (AOF on)"),
    row(Persistence, "aof_rewrite_buffer_length", "redis_aof_rewrite_buffer_length", G, 1.0, "aof_rewrite_buffer_length (AOF on, Redis < 7)"),
    row(Persistence, "aof_pending_bio_fsync", "redis_aof_pending_bio_fsync", G, 1.0, "aof_pending_bio_fsync (AOF on)"),
    row(Persistence, "aof_delayed_fsync", "redis_aof_delayed_fsync", G, 1.0, "aof_delayed_fsync (AOF on)"),
    row(Persistence, "module_fork_in_progress", "redis_module_fork_in_progress", G, 1.0, "module_fork_in_progress"),
    row(Persistence, "module_fork_last_cow_size", "redis_module_fork_last_cow_size", G, 1.0, "module_fork_last_cow_size"),
    // Stats
    row(Stats, "total_connections_received", "redis_connections_received_total", C, 1.0, "total_connections_received"),
    row(Stats, "total_commands_processed", "redis_commands_processed_total", C, 1.0, "total_commands_processed"),
    row(Stats, "rejected_connections", "redis_rejected_connections_total", C, 1.0, "rejected_connections: refused because of maxclients"),
    row(Stats, "total_net_input_bytes", "redis_net_input_bytes_total", C, 1.0, "total_net_input_bytes"),
    row(Stats, "total_net_output_bytes", "redis_net_output_bytes_total", C, 1.0, "total_net_output_bytes"),
    row(Stats, "expired_keys", "redis_expired_keys_total", C, 1.0, "expired_keys"),
    row(Stats, "evicted_keys", "redis_evicted_keys_total", C, 1.0, "evicted_keys: evicted because of maxmemory"),
    row(Stats, "keyspace_hits", "redis_keyspace_hits_total", C, 1.0, "keyspace_hits"),
    row(Stats, "keyspace_misses", "redis_keyspace_misses_total", C, 1.0, "keyspace_misses"),
    row(Stats, "expired_stale_perc", "redis_expired_stale_percentage", G, 1.0, "expired_stale_perc"),
    row(Stats, "expired_time_cap_reached_count", "redis_expired_time_cap_reached_total", C, 1.0, "expired_time_cap_reached_count"),
    row(Stats, "migrate_cached_sockets", "redis_migrate_cached_sockets_total", G, 1.0, "migrate_cached_sockets: sockets open for MIGRATE (a gauge despite the name)"),
    row(Stats, "active_defrag_hits", "redis_defrag_hits", U, 1.0, "active_defrag_hits"),
    row(Stats, "active_defrag_misses", "redis_defrag_misses", U, 1.0, "active_defrag_misses"),
    row(Stats, "active_defrag_key_hits", "redis_defrag_key_hits", U, 1.0, "active_defrag_key_hits"),
    row(Stats, "active_defrag_key_misses", "redis_defrag_key_misses", U, 1.0, "active_defrag_key_misses"),
    row(Stats, "pubsub_channels", "redis_pubsub_channels", G, 1.0, "pubsub_channels"),
    row(Stats, "pubsub_patterns", "redis_pubsub_patterns", G, 1.0, "pubsub_patterns"),
    row(Stats, "latest_fork_usec", "redis_latest_fork_seconds", G, 1e-6, "latest_fork_usec in seconds: duration of the last fork"),
    row(Stats, "sync_full", "redis_replica_resyncs_full", U, 1.0, "sync_full: full resyncs with replicas"),
    row(Stats, "sync_partial_ok", "redis_replica_partial_resync_accepted", U, 1.0, "sync_partial_ok: partial resyncs accepted"),
    row(Stats, "sync_partial_err", "redis_replica_partial_resync_denied", U, 1.0, "sync_partial_err: partial resyncs denied"),
    row(Stats, "tracking_total_keys", "redis_tracking_total_keys", G, 1.0, "tracking_total_keys"),
    row(Stats, "tracking_total_items", "redis_tracking_total_items", G, 1.0, "tracking_total_items"),
    row(Stats, "tracking_total_prefixes", "redis_tracking_total_prefixes", G, 1.0, "tracking_total_prefixes"),
    row(Stats, "unexpected_error_replies", "redis_unexpected_error_replies", U, 1.0, "unexpected_error_replies"),
    row(Stats, "total_error_replies", "redis_total_error_replies", U, 1.0, "total_error_replies"),
    row(Stats, "dump_payload_sanitizations", "redis_dump_payload_sanitizations", U, 1.0, "dump_payload_sanitizations"),
    row(Stats, "total_reads_processed", "redis_total_reads_processed", U, 1.0, "total_reads_processed"),
    row(Stats, "total_writes_processed", "redis_total_writes_processed", U, 1.0, "total_writes_processed"),
    row(Stats, "io_threaded_reads_processed", "redis_io_threaded_reads_processed", U, 1.0, "io_threaded_reads_processed"),
    row(Stats, "io_threaded_writes_processed", "redis_io_threaded_writes_processed", U, 1.0, "io_threaded_writes_processed"),
    row(Server, "io_threads_active", "redis_io_threads_active", G, 1.0, "io_threads_active"),
    // Replication
    row(Replication, "connected_slaves", "redis_connected_slaves", G, 1.0, "connected_slaves"),
    row(Replication, "master_repl_offset", "redis_master_repl_offset", G, 1.0, "master_repl_offset"),
    row(Replication, "second_repl_offset", "redis_second_repl_offset", G, 1.0, "second_repl_offset (-1: none)"),
    row(Replication, "repl_backlog_size", "redis_replication_backlog_bytes", G, 1.0, "repl_backlog_size"),
    row(Replication, "repl_backlog_active", "redis_repl_backlog_is_active", G, 1.0, "repl_backlog_active"),
    row(Replication, "repl_backlog_first_byte_offset", "redis_repl_backlog_first_byte_offset", G, 1.0, "repl_backlog_first_byte_offset"),
    row(Replication, "repl_backlog_histlen", "redis_repl_backlog_history_bytes", G, 1.0, "repl_backlog_histlen"),
    row(Stats, "slave_expires_tracked_keys", "redis_slave_expires_tracked_keys", G, 1.0, "slave_expires_tracked_keys"),
    row(Replication, "slave_priority", "redis_slave_priority", G, 1.0, "slave_priority (replicas)"),
    // CPU
    row(Cpu, "used_cpu_sys", "redis_cpu_sys_seconds_total", C, 1.0, "used_cpu_sys"),
    row(Cpu, "used_cpu_user", "redis_cpu_user_seconds_total", C, 1.0, "used_cpu_user"),
    row(Cpu, "used_cpu_sys_children", "redis_cpu_sys_children_seconds_total", C, 1.0, "used_cpu_sys_children"),
    row(Cpu, "used_cpu_user_children", "redis_cpu_user_children_seconds_total", C, 1.0, "used_cpu_user_children"),
    row(Cpu, "used_cpu_sys_main_thread", "redis_cpu_sys_main_thread_seconds_total", C, 1.0, "used_cpu_sys_main_thread"),
    row(Cpu, "used_cpu_user_main_thread", "redis_cpu_user_main_thread_seconds_total", C, 1.0, "used_cpu_user_main_thread"),
    // Cluster
    row(Cluster, "cluster_enabled", "redis_cluster_enabled", G, 1.0, "cluster_enabled"),
];

/// Numeric INFO fields deliberately not published as plain table rows, with why. Fields
/// published by a collector of their own (offsets, link state, keyspace) are listed too.
#[rustfmt::skip]
pub const IGNORED_FIELDS: &[(&str, &str)] = &[
    ("arch_bits", "build constant"),
    ("redis_git_sha1", "build identity, not a quantity"),
    ("redis_git_dirty", "build identity, not a quantity"),
    ("master_replid2", "replication id, not a quantity"),
    (
        "expire_cycle_cpu_milliseconds",
        "not in redis_exporter 1.45",
    ),
    ("lazyfreed_objects", "not in redis_exporter 1.45"),
    ("clients_hz", "Valkey; configuration"),
    ("paused_timeout_milliseconds", "Valkey; only while paused"),
    ("replicas_waiting_psync", "Valkey; not in redis_exporter"),
    ("replicas_repl_buffer_size", "Valkey; not in redis_exporter"),
    ("replicas_repl_buffer_peak", "Valkey; not in redis_exporter"),
    ("acl_access_denied_db", "Valkey 9; not in redis_exporter"),
    (
        "acl_access_denied_tls_cert",
        "Valkey 9; not in redis_exporter",
    ),
    ("expired_fields", "Valkey 9; not in redis_exporter"),
    (
        "expired_keys_with_volatile_items_stale_perc",
        "Valkey 9; not in redis_exporter",
    ),
    ("mem_cluster_slot_export", "Valkey 9; not in redis_exporter"),
    ("mem_cluster_slot_import", "Valkey 9; not in redis_exporter"),
    (
        "mem_replicas_repl_buffer",
        "Valkey 9; not in redis_exporter",
    ),
    (
        "slot_migration_fork_in_progress",
        "Valkey 9; not in redis_exporter",
    ),
    (
        "total_net_cluster_slot_export_bytes",
        "Valkey 9; not in redis_exporter",
    ),
    (
        "total_net_cluster_slot_import_bytes",
        "Valkey 9; not in redis_exporter",
    ),
    (
        "used_active_time_main_thread",
        "Valkey 9; not in redis_exporter",
    ),
    ("hz", "configuration"),
    ("configured_hz", "configuration"),
    ("lru_clock", "internal clock"),
    ("server_time_usec", "the exporter's own clock serves"),
    ("uptime_in_days", "redis_uptime_in_seconds"),
    ("tcp_port", "redis_instance_info label"),
    ("maxclients", "redis_config_maxclients from CONFIG GET"),
    ("master_port", "label of the replica families"),
    ("master_link_status", "redis_master_link_up"),
    (
        "master_last_io_seconds_ago",
        "replication collector, with master labels",
    ),
    (
        "master_sync_in_progress",
        "replication collector, with master labels",
    ),
    (
        "slave_repl_offset",
        "redis_slave_repl_offset, with master labels",
    ),
    (
        "slave_read_repl_offset",
        "redis_replication_offset covers it",
    ),
    ("slave_read_only", "redis_slave_info label"),
    ("replica_announced", "flag"),
    (
        "master_failover_state",
        "always no-failover in cluster mode",
    ),
    ("used_memory_peak_perc", "derivable"),
    ("used_memory_dataset_perc", "derivable"),
    ("used_memory_vm_eval", "redis_memory_used_lua_bytes"),
    ("used_memory_vm_functions", "not in redis_exporter"),
    ("used_memory_vm_total", "not in redis_exporter"),
    ("used_memory_functions", "not in redis_exporter"),
    ("used_memory_scripts_eval", "not in redis_exporter"),
    ("number_of_functions", "not in redis_exporter"),
    ("number_of_libraries", "not in redis_exporter"),
    ("rss_overhead_ratio", "derivable"),
    ("rss_overhead_bytes", "derivable"),
    ("allocator_muzzy", "allocator detail"),
    ("mem_aof_buffer", "mem_not_counted_for_evict covers it"),
    ("mem_replication_backlog", "redis_replication_backlog_bytes"),
    ("mem_total_replication_buffers", "not in redis_exporter"),
    ("mem_cluster_links", "not in redis_exporter"),
    (
        "mem_overhead_db_hashtable_rehashing",
        "not in redis_exporter",
    ),
    ("async_loading", "not in redis_exporter"),
    ("loading_start_time", "only while loading"),
    ("current_cow_peak", "only during a fork"),
    ("current_cow_size", "only during a fork"),
    ("current_cow_size_age", "only during a fork"),
    ("current_fork_perc", "only during a fork"),
    ("current_save_keys_processed", "only during a fork"),
    ("current_save_keys_total", "only during a fork"),
    ("rdb_saves", "not in redis_exporter"),
    ("rdb_last_load_keys_expired", "not in redis_exporter"),
    ("rdb_last_load_keys_loaded", "not in redis_exporter"),
    ("aof_rewrites", "not in redis_exporter"),
    ("aof_rewrites_consecutive_failures", "not in redis_exporter"),
    ("total_forks", "not in redis_exporter"),
    (
        "instantaneous_ops_per_sec",
        "a rate: rate(redis_commands_processed_total) is exact",
    ),
    (
        "instantaneous_input_kbps",
        "a rate: rate(redis_net_input_bytes_total) is exact",
    ),
    (
        "instantaneous_output_kbps",
        "a rate: rate(redis_net_output_bytes_total) is exact",
    ),
    ("instantaneous_input_repl_kbps", "a rate"),
    ("instantaneous_output_repl_kbps", "a rate"),
    ("instantaneous_eventloop_cycles_per_sec", "a rate"),
    ("instantaneous_eventloop_duration_usec", "a rate"),
    ("total_net_repl_input_bytes", "not in redis_exporter 1.45"),
    ("total_net_repl_output_bytes", "not in redis_exporter 1.45"),
    ("expired_subkeys", "not in redis_exporter 1.45"),
    ("evicted_clients", "not in redis_exporter 1.45"),
    ("evicted_scripts", "not in redis_exporter 1.45"),
    ("total_eviction_exceeded_time", "not in redis_exporter 1.45"),
    (
        "current_eviction_exceeded_time",
        "not in redis_exporter 1.45",
    ),
    ("pubsubshard_channels", "not in redis_exporter 1.45"),
    ("total_active_defrag_time", "not in redis_exporter 1.45"),
    ("current_active_defrag_time", "not in redis_exporter 1.45"),
    (
        "client_query_buffer_limit_disconnections",
        "not in redis_exporter 1.45",
    ),
    (
        "client_output_buffer_limit_disconnections",
        "not in redis_exporter 1.45",
    ),
    ("reply_buffer_shrinks", "not in redis_exporter 1.45"),
    ("reply_buffer_expands", "not in redis_exporter 1.45"),
    ("eventloop_cycles", "not in redis_exporter 1.45"),
    ("eventloop_duration_sum", "not in redis_exporter 1.45"),
    ("eventloop_duration_cmd_sum", "not in redis_exporter 1.45"),
    ("acl_access_denied_auth", "not in redis_exporter 1.45"),
    ("acl_access_denied_cmd", "not in redis_exporter 1.45"),
    ("acl_access_denied_key", "not in redis_exporter 1.45"),
    ("acl_access_denied_channel", "not in redis_exporter 1.45"),
    ("pubsub_clients", "not in redis_exporter 1.45"),
    ("watching_clients", "not in redis_exporter 1.45"),
    ("total_watched_keys", "not in redis_exporter 1.45"),
    ("total_blocking_keys", "not in redis_exporter 1.45"),
    ("total_blocking_keys_on_nokey", "not in redis_exporter 1.45"),
];
