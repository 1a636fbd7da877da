#!/usr/bin/env bash
# Captures real replies of the local redis-server (Debian 7.0.15 on the dev machine) into
# tests/fixtures/ (or the folder given as $1). Starts its own nodes on free ports in a temp dir
# and kills them on exit. Each file holds the reply body exactly as the server sent it, with
# the reply's own "\r\n" line endings normalised to "\n" (CLUSTER NODES already uses "\n").
#
# Scenario (cluster-node-timeout 2000, 3 masters x 1 replica):
#   healthy views -> MIGRATING/IMPORTING -> kill -9 a master (pfail, fail, cluster_state:fail,
#   promotion) -> restart the old master (rejoins as replica) -> CLUSTER FAILOVER on another
#   shard -> a fresh node (myself only) -> CLUSTER MEET (handshake, best effort).
#   A separate non-cluster server gives the "cluster support disabled" error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/../tests/fixtures}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
NODE_TIMEOUT=2000

WORK="$(mktemp -d -t rce-capture-XXXXXX)"
declare -A PID=()      # port -> pid
declare -A USED=()     # ports handed out by this script

cleanup() {
    local p
    for p in "${!PID[@]}"; do
        kill -CONT "${PID[$p]}" 2>/dev/null || true
        kill -9 "${PID[$p]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[capture] $*" >&2; }
die() { echo "[capture] ERROR: $*" >&2; exit 1; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || (exec 3<>"/dev/tcp/::1/$1") 2>/dev/null; }

# free_port: sets FREE to a port p with p and p+10000 (cluster bus) free, both below the
# ephemeral range. Takes the same per-port lock files as tests/common/mod.rs (flock, held until
# this script exits) so it never races with a test run on the same machine. Not for $(...):
# the locks and the USED set must live in this shell.
LOCKDIR="${TMPDIR:-/tmp}/redis-cluster-exporter-test-ports"
mkdir -p "$LOCKDIR"
lock_port() { # lock_port PORT -> 0 if locked by us (fd stays open)
    local fd
    exec {fd}>>"$LOCKDIR/$1.lock" || return 1
    if flock -n "$fd"; then return 0; fi
    exec {fd}>&-
    return 1
}
free_port() {
    local p i
    for i in $(seq 1 500); do
        p=$(( 11000 + RANDOM % 11000 ))
        [[ -n "${USED[$p]:-}" || -n "${USED[$((p + 10000))]:-}" ]] && continue
        listening "$p" && continue
        listening "$((p + 10000))" && continue
        lock_port "$p" || continue
        lock_port "$((p + 10000))" || continue
        USED[$p]=1
        USED[$((p + 10000))]=1
        FREE=$p
        return 0
    done
    die "no free port pair found"
}

cli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }
q6() { local p=$1 out; shift; out=$(redis-cli -h ::1 -p "$p" "$@") || return 1; printf '%s\n' "${out//$'\r'/}"; }
# q PORT CMD... : reply with "\r" removed, as a string (use with here-strings, not pipes, so that
# `grep -q` never SIGPIPEs redis-cli under pipefail).
q() { local out; out=$(cli "$@") || return 1; printf '%s\n' "${out//$'\r'/}"; }

# Reply body of a command, "\r" removed (redis-cli raw mode prints a bulk reply as-is and only
# adds a newline when the reply does not already end with one).
reply() { cli "$@" | tr -d '\r'; }

save() { # save NAME PORT CMD... : capture a reply into $OUT/NAME
    local name=$1; shift
    reply "$@" >"$OUT/$name"
    log "saved $name ($(wc -l <"$OUT/$name") lines)"
}

# start_node PORT [cluster]
start_node() {
    local port=$1 mode=${2:-cluster} dir="$WORK/$1"
    mkdir -p "$dir"
    local args=(--port "$port" --bind 127.0.0.1 --daemonize no --dir "$dir"
        --logfile "$dir/redis.log" --save '' --appendonly no --enable-debug-command yes)
    local host=127.0.0.1
    if [[ $mode == cluster6 ]]; then host=::1; mode=cluster; args[3]=::1; fi
    if [[ $mode == cluster ]]; then
        args+=(--cluster-enabled yes --cluster-config-file "$dir/nodes.conf"
            --cluster-node-timeout "$NODE_TIMEOUT")
    fi
    redis-server "${args[@]}" >"$dir/stdout.log" 2>&1 &
    PID[$port]=$!
    local i
    for i in $(seq 1 200); do
        [[ "$(redis-cli -h "$host" -p "$port" PING 2>/dev/null || true)" == PONG ]] && return 0
        kill -0 "${PID[$port]}" 2>/dev/null || die "redis-server $port exited: $(cat "$dir/redis.log")"
        sleep 0.05
    done
    die "redis-server $port did not start"
}

kill_node() { kill -9 "${PID[$1]}"; wait "${PID[$1]}" 2>/dev/null || true; unset "PID[$1]"; }

myid() { cli "$1" CLUSTER MYID; }
role() { local r; r=$(cli "$1" ROLE) || return 1; echo "${r%%$'\n'*}"; }

# wait_for SECONDS DESCRIPTION COMMAND... (polls every 100 ms)
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
    until "$@"; do
        (( $(date +%s%N) < deadline )) || die "timed out waiting for $what"
        sleep 0.1
    done
}

cluster_healthy() { # all given ports: state ok, no fail/handshake flags, replicas linked
    local p n=$# expected=$#
    for p in "$@"; do
        grep -qx 'cluster_state:ok' <<<"$(q "$p" CLUSTER INFO)" || return 1
        local nodes; nodes=$(q "$p" CLUSTER NODES) || return 1
        n=$(grep -c . <<<"$nodes")
        [[ $n -eq $expected ]] || return 1
        grep -Eq 'fail|handshake|noaddr|disconnected' <<<"$nodes" && return 1
        local repl; repl=$(q "$p" INFO replication) || return 1
        if grep -qx 'role:slave' <<<"$repl"; then
            grep -qx 'master_link_status:up' <<<"$repl" || return 1
        fi
    done
    return 0
}

# ------------------------------------------------------------------------------------------
log "redis-server: $(redis-server --version)"
log "work dir: $WORK, output: $OUT"

PORTS=()
for i in 0 1 2 3 4 5; do free_port; PORTS+=("$FREE"); done
for p in "${PORTS[@]}"; do start_node "$p"; done
ADDRS=()
for p in "${PORTS[@]}"; do ADDRS+=("127.0.0.1:$p"); done
redis-cli --cluster create "${ADDRS[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/create.log" 2>&1 \
    || die "cluster create failed: $(cat "$WORK/create.log")"
wait_for 60 "healthy cluster" cluster_healthy "${PORTS[@]}"
log "cluster up on ports ${PORTS[*]}"

# Roles: nodes 0..2 are the masters created by redis-cli; find each master's replica.
declare -A ID=()
for p in "${PORTS[@]}"; do ID[$p]=$(myid "$p"); done
replica_of() { # replica_of MASTER_PORT -> port of a replica whose ROLE names it
    local p
    for p in "${PORTS[@]}"; do
        [[ $p == "$1" ]] && continue
        kill -0 "${PID[$p]:-0}" 2>/dev/null || continue
        local r; r=$(q "$p" ROLE) || continue; r=${r//$'\n'/ }
        if [[ $r == "slave 127.0.0.1 $1 "* ]]; then echo "$p"; return 0; fi
    done
    return 1
}
M0=${PORTS[0]}; M1=${PORTS[1]}; M2=${PORTS[2]}
R0=$(replica_of "$M0"); R1=$(replica_of "$M1"); R2=$(replica_of "$M2")
log "masters $M0 $M1 $M2, replicas $R0 $R1 $R2"

# Keys with and without TTL on every master (redis-cli -c follows MOVED).
for i in $(seq 1 60); do
    cli "$M0" -c SET "key:$i" "value-$i" >/dev/null
    if (( i % 3 == 0 )); then cli "$M0" -c EXPIRE "key:$i" 3600 >/dev/null; fi
done
has_keys() { grep -q '^db0:keys=.*expires=[1-9]' <<<"$(q "$1" INFO keyspace)"; }
wait_for 10 "keys on master $M0" has_keys "$M0"
wait_for 10 "keys on replica $R0" has_keys "$R0"
offsets_equal() {
    local a b
    a=$(sed -n 's/^master_repl_offset://p' <<<"$(q "$M0" INFO replication)")
    b=$(sed -n 's/^slave_repl_offset://p' <<<"$(q "$R0" INFO replication)")
    [[ -n $a && $a == "$b" ]]
}
wait_for 10 "replica offset to catch up" offsets_equal

# ---- healthy views ----
save cluster_nodes_master.txt "$M0" CLUSTER NODES
save cluster_nodes_replica.txt "$R0" CLUSTER NODES
save cluster_info_ok.txt "$M0" CLUSTER INFO
SECTIONS=(server clients memory persistence stats replication cpu keyspace)
save info_master.txt "$M0" INFO "${SECTIONS[@]}"
save info_replica.txt "$R0" INFO "${SECTIONS[@]}"
save info_all_master.txt "$M0" INFO ALL

# ---- a replica with cluster-replica-no-failover: flag "nofailover", gossiped to the others ----
cli "$R0" CONFIG SET cluster-replica-no-failover yes >/dev/null
nofailover_seen() { grep -q "^${ID[$R0]} .*slave,nofailover " <<<"$(q "$M0" CLUSTER NODES)"; }
wait_for 10 "nofailover flag seen by $M0" nofailover_seen
save cluster_nodes_nofailover.txt "$M0" CLUSTER NODES
cli "$R0" CONFIG SET cluster-replica-no-failover no >/dev/null
nofailover_gone() { ! grep -q nofailover <<<"$(q "$M0" CLUSTER NODES)"; }
wait_for 10 "nofailover flag cleared" nofailover_gone

# ---- open slots: slot 100 belongs to M0 (0-5460); move it towards M1 and back ----
SLOT=100
cli "$M1" CLUSTER SETSLOT "$SLOT" IMPORTING "${ID[$M0]}" >/dev/null
cli "$M0" CLUSTER SETSLOT "$SLOT" MIGRATING "${ID[$M1]}" >/dev/null
save cluster_nodes_migrating.txt "$M0" CLUSTER NODES
save cluster_nodes_importing.txt "$M1" CLUSTER NODES
grep -q "myself.*\[$SLOT->-${ID[$M1]}\]" "$OUT/cluster_nodes_migrating.txt" || die "no [slot->-id] seen"
grep -q "myself.*\[$SLOT-<-${ID[$M0]}\]" "$OUT/cluster_nodes_importing.txt" || die "no [slot-<-id] seen"
cli "$M0" CLUSTER SETSLOT "$SLOT" STABLE >/dev/null
cli "$M1" CLUSTER SETSLOT "$SLOT" STABLE >/dev/null

# ---- automatic failover: kill -9 master M1, watch every other node every 100 ms ----
OBSERVERS=()
for p in "${PORTS[@]}"; do [[ $p != "$M1" ]] && OBSERVERS+=("$p"); done
SNAP="$WORK/snapshots"; mkdir -p "$SNAP"
DEAD_ID=${ID[$M1]}
got_pfail=""; got_fail=""; got_info_fail=""; promoted=""
log "killing master $M1 ($DEAD_ID); its replica is $R1"
kill_node "$M1"
t0=$(date +%s%N)
k=0
while :; do
    k=$((k + 1))
    for p in "${OBSERVERS[@]}"; do
        reply "$p" CLUSTER NODES >"$SNAP/nodes.$k.$p"
        reply "$p" CLUSTER INFO >"$SNAP/info.$k.$p"
        line=$(grep "^$DEAD_ID " "$SNAP/nodes.$k.$p" || true)
        flags=$(awk '{print $3}' <<<"$line")
        if [[ -z $got_pfail && ",$flags," == *",fail?,"* ]]; then
            got_pfail=1
            cp "$SNAP/nodes.$k.$p" "$OUT/cluster_nodes_pfail.txt"
            log "pfail seen by $p after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $line"
        fi
        if [[ -z $got_fail && ",$flags," == *",master,"* && ",$flags," == *",fail,"* && $line == *" disconnected"* ]]; then
            got_fail=1
            cp "$SNAP/nodes.$k.$p" "$OUT/cluster_nodes_fail.txt"
            log "fail seen by $p after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $line"
        fi
        if [[ -z $got_info_fail ]] && grep -qx 'cluster_state:fail' "$SNAP/info.$k.$p"; then
            got_info_fail=1
            cp "$SNAP/info.$k.$p" "$OUT/cluster_info_fail.txt"
            log "cluster_state:fail seen on $p after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
        fi
    done
    if [[ -z $promoted && $(role "$R1") == master ]]; then
        promoted=$(( ($(date +%s%N) - t0) / 1000000 ))
        log "replica $R1 promoted after $promoted ms"
    fi
    if [[ -n $got_pfail && -n $got_fail && -n $got_info_fail && -n $promoted ]]; then break; fi
    (( $(date +%s%N) - t0 < 30000000000 )) || die "failure window not captured: pfail=$got_pfail fail=$got_fail info_fail=$got_info_fail promoted=$promoted"
    sleep 0.1
done

# After the failover: every observer sees R1 as master with the old slots and cluster ok.
after_failover_ok() {
    local p
    for p in "${OBSERVERS[@]}"; do
        grep -qx 'cluster_state:ok' <<<"$(q "$p" CLUSTER INFO)" || return 1
        grep -Eq "^${ID[$R1]} .*[ ,]master - .* 5461-10922" <<<"$(q "$p" CLUSTER NODES)" || return 1
    done
}
wait_for 30 "views to converge after failover" after_failover_ok
save cluster_nodes_after_failover.txt "$M0" CLUSTER NODES
old_epoch=$(grep "^$DEAD_ID " "$OUT/cluster_nodes_master.txt" | awk '{print $7}')
new_epoch=$(grep "^${ID[$R1]} " "$OUT/cluster_nodes_after_failover.txt" | awk '{print $7}')
(( new_epoch > old_epoch )) || die "epoch did not rise: $old_epoch -> $new_epoch"
log "config epoch $old_epoch -> $new_epoch"

# ---- the old master comes back and turns into a replica of the promoted one ----
start_node "$M1"
rejoined() {
    [[ "$(role "$M1")" == slave ]] || return 1
    grep -q "^$DEAD_ID .* slave ${ID[$R1]} .* connected" <<<"$(q "$M0" CLUSTER NODES)" || return 1
    cluster_healthy "${PORTS[@]}"
}
wait_for 30 "old master to rejoin as replica" rejoined
save cluster_nodes_old_master_rejoined.txt "$M0" CLUSTER NODES

# ---- manual failover on the M2 shard ----
cli "$R2" CLUSTER FAILOVER >/dev/null
is_master() { [[ "$(role "$1")" == master ]]; }
wait_for 30 "manual failover of $R2" is_master "$R2"
mf_done() { grep -q '^cluster_stats_messages_mfstart_sent:' <<<"$(q "$R2" CLUSTER INFO)"; }
wait_for 10 "mfstart counter" mf_done
wait_for 30 "healthy after manual failover" cluster_healthy "${PORTS[@]}"
# Other nodes may still list the old master as a slot-less "master" for a moment: wait until
# every node sees it as a replica of the promoted one.
mf_converged() {
    local p
    for p in "${PORTS[@]}"; do
        grep -q "^${ID[$M2]} .*slave ${ID[$R2]} " <<<"$(q "$p" CLUSTER NODES)" || return 1
    done
}
wait_for 30 "views to converge after manual failover" mf_converged
save cluster_info_after_manual_failover.txt "$R2" CLUSTER INFO

# ---- a fresh node: only itself, no slots; then MEET it and try to see the handshake ----
free_port; NEW=$FREE
start_node "$NEW"
save cluster_nodes_myself_only.txt "$NEW" CLUSTER NODES
rm -f "$OUT/cluster_nodes_handshake.txt"
for attempt in 1 2 3 4 5; do
    # MEET and CLUSTER NODES pipelined on one connection: the handshake entry is only there
    # until the next cluster cron tick (100 ms) completes it.
    out=$(printf 'CLUSTER MEET 127.0.0.1 %s\nCLUSTER NODES\n' "$NEW" | cli "$M0")
    nodes=${out#OK}
    nodes=${nodes#$'\n'}
    if grep -q 'handshake' <<<"$nodes"; then
        printf '%s\n' "$nodes" >"$OUT/cluster_nodes_handshake.txt"
        log "handshake caught on attempt $attempt"
        break
    fi
    # Not caught: let this node finish joining, then retry with another fresh node.
    log "handshake not caught on attempt $attempt"
    known() { grep -q ":$NEW@" <<<"$(q "$M0" CLUSTER NODES)"; }
    wait_for 10 "new node known" known
    free_port; NEW=$FREE
    start_node "$NEW"
done
[[ -f "$OUT/cluster_nodes_handshake.txt" ]] || log "handshake flag NOT caught; no cluster_nodes_handshake.txt"

# ---- IPv6: three masters bound to ::1 (addresses print without brackets) ----
v6probe=$( (exec 3<>/dev/tcp/::1/1) 2>&1 || true)
if [[ $v6probe == *refused* ]]; then
    V6=()
    for i in 1 2 3; do free_port; V6+=("$FREE"); done
    V6ADDRS=()
    for p in "${V6[@]}"; do start_node "$p" cluster6; V6ADDRS+=("::1:$p"); done
    redis-cli --cluster create "${V6ADDRS[@]}" --cluster-yes >"$WORK/create6.log" 2>&1 \
        || die "IPv6 cluster create failed: $(cat "$WORK/create6.log")"
    v6_ok() {
        local p
        for p in "${V6[@]}"; do
            grep -qx 'cluster_state:ok' <<<"$(q6 "$p" CLUSTER INFO)" || return 1
            [[ $(grep -c ' connected' <<<"$(q6 "$p" CLUSTER NODES)") -eq 3 ]] || return 1
        done
    }
    wait_for 30 "IPv6 cluster" v6_ok
    q6 "${V6[0]}" CLUSTER NODES >"$OUT/cluster_nodes_ipv6.txt"
    log "saved cluster_nodes_ipv6.txt"
else
    log "no IPv6 loopback: cluster_nodes_ipv6.txt not captured"
fi

# ---- a non-cluster server: the error a client gets for CLUSTER INFO ----
free_port; SOLO=$FREE
start_node "$SOLO" standalone
# redis-cli prints an error reply's text (without the leading "-") followed by a newline.
reply "$SOLO" CLUSTER INFO >"$OUT/error_not_cluster.txt"
grep -q '^ERR ' "$OUT/error_not_cluster.txt" || die "unexpected error text: $(cat "$OUT/error_not_cluster.txt")"
log "saved error_not_cluster.txt: $(cat "$OUT/error_not_cluster.txt")"

log "done"
