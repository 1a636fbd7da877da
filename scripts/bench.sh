#!/usr/bin/env bash
# Performance benchmarks of redis-cluster-exporter (not part of scripts/test.sh).
#
#   scripts/bench.sh [scale|compare|redis-time|latency|all]      (default: all)
#
# scale    the exporter against the cluster simulator (target/release/cluster-sim) at
#          N = $SCALE_NODES nodes, poll 1 s, node timeout 1 s: CPU seconds per poll round, peak RSS,
#          reply bytes read per round, mean poll-round wall time, /metrics size, render and GET
#          time, wakeups per round; CPU per node-poll shows where growth is not linear.
#          Every GET of /metrics by this script asks for gzip (curl --compressed), as Prometheus
#          does; metrics_B is the body's size once unzipped.
#          Each N runs in mode "full" (CLUSTER NODES from every node every round) and, when the
#          exporter has --full-topology-max-nodes, "adaptive" (its default).
# compare  one real 6-node cluster (redis-server + redis-cli --cluster create on free loopback
#          ports): this exporter (1 seed, all nodes polled every 1 s, /metrics scraped every 1 s,
#          then again scraped every $SLOW_SCRAPE s as a Prometheus with the common 15 s interval
#          does) and then prometheus-redis-exporter (multi-target /scrape?target=redis://... of
#          each of the 6 nodes every 1 s; its cost is per scrape, whatever the interval), each for
#          $BENCH_SECONDS: exporter CPU per node-poll, peak RSS,
#          Redis main-thread usec per node-poll (INFO commandstats after CONFIG RESETSTAT),
#          connections opened (total_connections_received).
# redis-time  Redis main-thread time per node per second, side by side, on one master and its
#          replica of the 6-node cluster: CONFIG RESETSTAT on both, one tool for
#          $REDIS_TIME_SECONDS, the tool stopped, then INFO commandstats of both: the usec of every
#          command except the bench's CONFIG RESETSTAT (the INFO that reads them is not in its own
#          output). This exporter with its default flags (the whole cluster polled every 1 s;
#          /metrics scraped every 1 s, which costs Redis nothing), then prometheus-redis-exporter
#          scraped once a second for each of the two nodes (/scrape?target=redis://...), in
#          separate windows of the same length on the same nodes. Target: ours <= 1/4 of theirs.
# latency  /metrics latency p50/p99 with $WRK_CONNECTIONS concurrent scrapers (wrk, gzip asked as Prometheus does): this
#          exporter on the 6-node cluster and on the simulator at $LAT_NODES nodes, and
#          prometheus-redis-exporter's /scrape?target=... on the 6-node cluster.
#
# Environment: BENCH_SECONDS (60), SLOW_SCRAPE (15), REDIS_TIME_SECONDS (30), SCALE_SECONDS (30),
#   SCALE_NODES ("6 60 100 300 1000 2000"; mode full stops at 1000), SCALE_MODES ("full adaptive"), WRK_SECONDS (10), WRK_CONNECTIONS (50), LAT_NODES (100),
#   WRK_GZIP (1: the latency requests send Accept-Encoding: gzip, as Prometheus does; 0: plain),
#   BENCH_PROFILE=1 (perf record the exporter for 10 s at each N, print the top functions),
#   SKIP_BUILD=1 (use the existing target/release binaries), BENCH_OUT (target/bench),
#   EXPORTER (another build of this exporter to measure, e.g. an older commit's, with SKIP_BUILD=1).
# Needs: cargo, redis-server, redis-cli, curl, jq, prometheus-redis-exporter (compare, redis-time),
#   wrk (latency; falls back to parallel curl), perf (BENCH_PROFILE).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WHAT=${1:-all}
BENCH_SECONDS=${BENCH_SECONDS:-60}
SLOW_SCRAPE=${SLOW_SCRAPE:-15}
REDIS_TIME_SECONDS=${REDIS_TIME_SECONDS:-30}
SCALE_SECONDS=${SCALE_SECONDS:-30}
SCALE_NODES=${SCALE_NODES:-"6 60 100 300 1000 2000"}
SCALE_MODES=${SCALE_MODES:-"full adaptive"}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-50}
LAT_NODES=${LAT_NODES:-100}
BENCH_OUT=${BENCH_OUT:-target/bench}
EXPORTER=${EXPORTER:-$PWD/target/release/redis-cluster-exporter}
SIM=$PWD/target/release/cluster-sim
REDIS_EXPORTER=${REDIS_EXPORTER:-/usr/bin/prometheus-redis-exporter}

case "$WHAT" in scale | compare | redis-time | latency | all) ;; *)
  sed -n '2,34p' "$0"
  exit 2
  ;;
esac

mkdir -p "$BENCH_OUT"
REPORT="$BENCH_OUT/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
TMP=$(mktemp -d /tmp/rce-bench.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { echo "$*" | tee -a "$REPORT"; }
log() { echo "== $*" >&2; }
die() {
  echo "bench: $*" >&2
  exit 1
}

# Stops the processes given by pid and forgets them.
stop() {
  local p q keep=()
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for q in "${PIDS[@]}"; do
    for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
    keep+=("$q")
  done
  PIDS=("${keep[@]}")
}

# A port p such that p and p+10000 are free on 127.0.0.1 (no socket in any state) and not handed
# out before. Drawn below the kernel's ephemeral range when it leaves room, as the test harness
# does, so that outgoing connections (and their TIME-WAITs) never sit on a cluster bus port.
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "$EPHEMERAL_LOW" -ge 23000 ]; then PORT_LO=11000 PORT_HI=$((EPHEMERAL_LOW - 10000)); else PORT_LO=20000 PORT_HI=45000; fi
free_port() {
  local p
  for _ in $(seq 1000); do
    p=$((PORT_LO + (RANDOM * 32768 + RANDOM) % (PORT_HI - PORT_LO)))
    case "$USED_PORTS" in *" $p "* | *" $((p + 10000)) "*) continue ;; esac
    if [ -z "$(ss -Htan "( sport = :$p or sport = :$((p + 10000)) )")" ]; then
      USED_PORTS="$USED_PORTS$p $((p + 10000)) "
      echo "$p"
      return
    fi
  done
  die "no free port"
}

# CPU seconds (user + sys) of a process so far: the sum over its threads of
# /proc/PID/task/TID/schedstat (nanoseconds; /proc/PID/stat's ticks are too coarse for a
# 6-node exporter that uses a few milliseconds a minute).
cpu_s() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.6f", s / 1e9}'; }
# Times the process's threads were scheduled in so far (third field of schedstat: timeslices
# run, i.e. wakeups plus preemptions), summed over its threads.
slices() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $3} END {printf "%d", s}'; }
# Threads of the process.
threads() { ls /proc/"$1"/task 2>/dev/null | wc -l; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN {d = b - a; printf "%.6f", d < 0 ? 0 : d}'; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# First sample value of metric $2 at URL $1 (classic text).
# Every GET of /metrics asks for gzip, as Prometheus does (curl --compressed), so the exporter
# makes the bodies Prometheus would make it make.
metric() { curl -sf --compressed "$1" | awk -v n="$2" '!done && ($1 == n || index($1, n "{") == 1) {print $2; done = 1}'; }
up_count() { curl -sf --compressed "$1" | grep -c '^redis_up{.*} 1\(\.0\)\?$' || true; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {printf f, v}'; }

wait_for() { # seconds, description, command...
  local limit=$1 what=$2
  shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || die "timed out after ${limit}s waiting for $what"
    sleep 0.3
  done
}

build() {
  if [ -n "${SKIP_BUILD:-}" ]; then
    [ -x "$EXPORTER" ] && [ -x "$SIM" ] || die "SKIP_BUILD set but target/release binaries missing"
    return
  fi
  log "cargo build --release"
  cargo build --release --bins -q
}

start_sim() { # N, dir -> sets SIM_PID, SIM_PORTS (array), SIM_CONTROL
  local n=$1 dir=$2
  "$SIM" --nodes "$n" --port-file "$dir/ports.json" >"$dir/sim.log" 2>&1 &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  wait_for 30 "simulator ports" test -s "$dir/ports.json"
  mapfile -t SIM_PORTS < <(jq -r '.ports[]' "$dir/ports.json")
  SIM_CONTROL=$(jq -r .control_port "$dir/ports.json")
}

sim_send() { "$SIM" --control-port "$SIM_CONTROL" --send "$1"; }

start_exporter() { # dir, seed urls, extra args... -> sets EXP_PID, EXP_URL
  local dir=$1 seeds=$2
  shift 2
  start_exporter_defaults "$dir" "$seeds" --poll-interval 1s --node-timeout 1s "$@"
}

# The exporter with only the flags it cannot do without (seed, listen address, event log).
start_exporter_defaults() { # dir, seed urls, extra args... -> sets EXP_PID, EXP_URL
  local dir=$1 seeds=$2
  shift 2
  local port
  port=$(free_port)
  (cd "$dir" && exec "$EXPORTER" --redis-addr "$seeds" \
    --listen-address "127.0.0.1:$port" --event-log "$dir/events.jsonl" "$@" \
    >"$dir/exporter.log" 2>&1) &
  EXP_PID=$!
  PIDS+=("$EXP_PID")
  EXP_URL="http://127.0.0.1:$port"
  wait_for 60 "exporter /ready" curl -sf -o /dev/null "$EXP_URL/ready"
}

# prometheus-redis-exporter in multi-target mode, logging to DIR -> sets RE_PID, RE_URL.
start_redis_exporter() { # dir
  local port
  port=$(free_port)
  "$REDIS_EXPORTER" --redis.addr= --web.listen-address "127.0.0.1:$port" >"$1/redis_exporter.log" 2>&1 &
  RE_PID=$!
  PIDS+=("$RE_PID")
  RE_URL="http://127.0.0.1:$port"
  wait_for 30 "redis_exporter" curl -sf -o /dev/null "$RE_URL/metrics"
}

all_up() { [ "$(up_count "$1/metrics")" -ge "$2" ]; }

# Median and p90 of curl GET times (ms) of URL over $2 sequential requests; prints "bytes p50".
get_timing() {
  local url=$1 n=$2 bytes times
  bytes=$(curl -s --compressed "$url" | wc -c)
  times=$(for _ in $(seq "$n"); do curl -s --compressed -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n)
  echo "$bytes $(echo "$times" | awk '{a[NR] = $1 * 1000} END {printf "%.2f", a[int((NR + 1) / 2)]}')"
}

# Median ms of the first GET of URL after a new poll, which renders it (the poll interval is
# 1 s, so GETs 1.2 s apart each find a new poll), over $2 GETs.
render_timing() {
  local url=$1 n=$2
  for _ in $(seq "$n"); do
    sleep 1.2
    curl -s --compressed -o /dev/null -w '%{time_total}\n' "$url"
  done | sort -n | awk '{a[NR] = $1 * 1000} END {printf "%.2f", a[int((NR + 1) / 2)]}'
}

profile() { # pid, label
  command -v perf >/dev/null || {
    log "perf not installed: no profile"
    return
  }
  local data="$TMP/perf-$2.data"
  perf record -e cpu-clock -F 499 -g -p "$1" -o "$data" -- sleep 10 >/dev/null 2>&1 || return 0
  say "-- perf top functions (self time), $2"
  perf report -i "$data" --no-children -F overhead,sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n < 20 {n++; print "   " $0}' | tee -a "$REPORT" || true
}

# ------------------------------------------------------------------------------------------
scale() {
  local modes=() m
  for m in $SCALE_MODES; do
    if [ "$m" = adaptive ] && [[ "$("$EXPORTER" --help)" != *--full-topology-max-nodes* ]]; then
      log "exporter has no --full-topology-max-nodes: mode adaptive = full, skipped"
      continue
    fi
    modes+=("$m")
  done
  say ""
  say "Scale: exporter vs cluster-sim, poll 1s, node timeout 1s, ${SCALE_SECONDS}s per point"
  say "$(printf '%-6s %-9s %7s %10s %11s %10s %12s %9s %9s %11s %9s %9s %9s' N mode rounds 'cpu_ms/rnd' \
    'cpu_us/node' 'sim_ms/rnd' 'bytes/rnd' 'round_s' 'rss_MB' 'metrics_B' 'render_ms' 'get_ms' 'wake/rnd')"
  local n mode dir extra c0 c1 s0 s1 b0 b1 r0 r1 p0 p1 w0 w1 rounds timing render cpu
  for n in $SCALE_NODES; do
    for mode in "${modes[@]}"; do
      if [ "$mode" = full ] && [ "$n" -gt 1000 ]; then
        log "mode full skipped at N=$n (its CLUSTER NODES alone exceed a 1 s round)"
        continue
      fi
      dir="$TMP/scale-$n-$mode"
      mkdir -p "$dir"
      extra=()
      [ "$mode" = full ] && extra=(--full-topology-max-nodes 1000000)
      start_sim "$n" "$dir"
      start_exporter "$dir" "redis://127.0.0.1:${SIM_PORTS[0]}" "${extra[@]}"
      wait_for $((60 + n / 5)) "all $n nodes up" all_up "$EXP_URL" "$n"
      sleep 5
      c0=$(cpu_s "$EXP_PID") s0=$(cpu_s "$SIM_PID") w0=$(slices "$EXP_PID")
      b0=$(sim_send stats | jq .total_reply_bytes)
      r0=$(metric "$EXP_URL/metrics" redis_exporter_poll_duration_seconds_count)
      p0=$(metric "$EXP_URL/metrics" redis_exporter_poll_duration_seconds_sum)
      sleep "$SCALE_SECONDS"
      c1=$(cpu_s "$EXP_PID") s1=$(cpu_s "$SIM_PID") w1=$(slices "$EXP_PID")
      b1=$(sim_send stats | jq .total_reply_bytes)
      r1=$(metric "$EXP_URL/metrics" redis_exporter_poll_duration_seconds_count)
      p1=$(metric "$EXP_URL/metrics" redis_exporter_poll_duration_seconds_sum)
      rounds=$(awk -v a="$r0" -v b="$r1" 'BEGIN {print b - a}')
      [ "$rounds" -gt 0 ] || die "no poll round completed at N=$n"
      timing=$(get_timing "$EXP_URL/metrics" 21)
      render=$(render_timing "$EXP_URL/metrics" 5)
      cpu=$(awk -v d="$(delta "$c0" "$c1")" -v r="$rounds" 'BEGIN {printf "%.2f", d / r * 1000}')
      say "$(printf '%-6s %-9s %7s %10s %11s %10s %12s %9s %9s %11s %9s %9s %9s' "$n" "$mode" "$rounds" \
        "$cpu" "$(awk -v c="$cpu" -v n="$n" 'BEGIN {printf "%.1f", c * 1000 / n}')" \
        "$(awk -v d="$(delta "$s0" "$s1")" -v r="$rounds" 'BEGIN {printf "%.2f", d / r * 1000}')" \
        "$(awk -v a="$b0" -v b="$b1" -v r="$rounds" 'BEGIN {printf "%.0f", (b - a) / r}')" \
        "$(awk -v a="$p0" -v b="$p1" -v r="$rounds" 'BEGIN {printf "%.3f", (b - a) / r}')" \
        "$(awk -v k="$(hwm_kb "$EXP_PID")" 'BEGIN {printf "%.1f", k / 1024}')" \
        "${timing% *}" "$render" "${timing#* }" \
        "$(awk -v a="$w0" -v b="$w1" -v r="$rounds" 'BEGIN {if (b < a) print "-"; else printf "%.0f", (b - a) / r}')")"
      if [ -n "${BENCH_PROFILE:-}" ]; then profile "$EXP_PID" "N=$n-$mode"; fi
      stop "$EXP_PID" "$SIM_PID"
    done
  done
  say "(cpu_ms/rnd: exporter user+sys CPU milliseconds per poll round; sim_ms/rnd: the simulator's;"
  say " bytes/rnd: RESP reply bytes the simulator sent per round; round_s: mean wall time of a"
  say " poll round (redis_exporter_poll_duration_seconds); rss_MB: exporter VmHWM;"
  say " cpu_us/node: cpu_ms/rnd per node, flat where growth is linear; metrics_B: /metrics body"
  say " size; render_ms: median of 5 GETs each the first after a new poll (it renders and gzips);"
  say " get_ms: median of 21 sequential GETs after the window, mostly served from a render;"
  say " wake/rnd: times the exporter's threads were scheduled in per round, from schedstat; a"
  say " thread that exits in the window takes its count along, '-' when that made it negative)"
}

# ------------------------------------------------------------------------------------------
REDIS_PORTS=()
REDIS_PIDS=()
wait_until_up() { # port, pid: true once it answers PING, false if it exits or 15 s pass
  local end=$((SECONDS + 15))
  while [ $SECONDS -lt $end ]; do
    kill -0 "$2" 2>/dev/null || return 1
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG* ]] && return 0
    sleep 0.1
  done
  return 1
}
start_real_cluster() {
  local i p d pid tries
  for i in 0 1 2 3 4 5; do
    for tries in 1 2 3 4 5; do
      p=$(free_port)
      d="$TMP/redis-$p"
      mkdir -p "$d"
      redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 --save '' \
        --appendonly no --dir "$d" --logfile "$d/redis.log" --daemonize no &
      pid=$!
      PIDS+=("$pid")
      if wait_until_up "$p" "$pid"; then break; fi
      log "redis-server on $p did not start ($(tail -1 "$d/redis.log")); another port"
      stop "$pid"
      [ "$tries" -lt 5 ] || die "cannot start redis-server"
    done
    REDIS_PIDS+=("$pid")
    REDIS_PORTS+=("$p")
  done
  local addrs=()
  for p in "${REDIS_PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$TMP/create.log" 2>&1 ||
    die "redis-cli --cluster create failed: $(cat "$TMP/create.log")"
  cluster_ok() {
    local q
    for q in "${REDIS_PORTS[@]}"; do
      [[ "$(redis-cli -p "$q" cluster info)" == *cluster_state:ok* ]] || return 1
      [ "$(redis-cli -p "$q" cluster nodes | wc -l)" -eq 6 ] || return 1
    done
  }
  wait_for 60 "cluster_state:ok on all 6 nodes" cluster_ok
  # A few keys so INFO keyspace is not empty.
  for i in $(seq 1 200); do redis-cli -c -p "${REDIS_PORTS[0]}" set "key:$i" "v$i" >/dev/null; done
  sleep 2
}

reset_redis_stats() {
  local p
  for p in "${REDIS_PORTS[@]}"; do redis-cli -p "$p" config resetstat >/dev/null; done
}

# Sums INFO commandstats over the 6 nodes and prints "usec_total conns node_polls calls_by_cmd".
# Not counted: CONFIG RESETSTAT (the bench's), REPLCONF and PING (replication traffic between
# masters and replicas, present whatever the exporter does; neither exporter sends PING). The two
# redis-cli connections per node that read the stats are subtracted from the connection count.
redis_totals() {
  local p out
  out=$(for p in "${REDIS_PORTS[@]}"; do
    redis-cli -p "$p" info commandstats
    redis-cli -p "$p" info stats
  done)
  echo "$out" | tr -d '\r' | awk -F'[:,=]' '
    /^cmdstat_/ {
      cmd = substr($1, 9)
      if (cmd == "config|resetstat" || cmd == "replconf" || cmd == "ping") next
      calls[cmd] += $3; usec[cmd] += $5; total += $5
    }
    /^total_connections_received:/ { conns += $2 - 2 }
    END {
      list = ""
      for (c in calls) list = list c "=" calls[c] "/" usec[c] "us "
      printf "%d %d %d %s\n", total, conns, calls["cluster|info"], list
    }'
}

scrape_loop_ours() { # url, count file, seconds between scrapes
  local n=0
  while :; do
    curl -s --compressed -o /dev/null "$1" && n=$((n + 1))
    echo "$n" >"$2"
    sleep "$3"
  done
}

scrape_loop_theirs() { # base url, count file
  local n=0 p
  while :; do
    for p in "${REDIS_PORTS[@]}"; do
      curl -s --compressed -o /dev/null "$1/scrape?target=redis://127.0.0.1:$p" &
    done
    wait
    n=$((n + ${#REDIS_PORTS[@]}))
    echo "$n" >"$2"
    sleep 1
  done
}

# One row of the compare table: label, node-polls (or node-scrapes), CPU s, Redis usec, conns,
# VmHWM kB.
compare_row() {
  COMPARE_ROWS+=("$(printf '%-26s %10s %10s %12s %12s %9s %8s' "$1" "$2" \
    "$(fmt "$3" %.3f)" "$(awk -v c="$3" -v n="$2" 'BEGIN {printf "%.1f", c / n * 1e6}')" \
    "$(awk -v u="$4" -v n="$2" 'BEGIN {printf "%.1f", u / n}')" "$5" \
    "$(awk -v k="$6" 'BEGIN {printf "%.1f", k / 1024}')")")
}

# One window of this exporter on the 6-node cluster, /metrics scraped every $2 s: appends a
# row and sets OURS_CPU_LAST, OURS_REDIS_LAST (per node-poll) and OURS_CMDS_LAST.
compare_ours() { # dir, scrape interval
  local dir=$1 every=$2 c1 loop usec conns polls cmds cpu hwm
  log "this exporter, scraped every ${every}s, ${BENCH_SECONDS}s"
  reset_redis_stats
  start_exporter "$dir" "redis://127.0.0.1:${REDIS_PORTS[0]}"
  # c0 = 0: from the process start, so both exporters are charged their start-up.
  scrape_loop_ours "$EXP_URL/metrics" "$dir/ours.count" "$every" &
  loop=$!
  PIDS+=("$loop")
  sleep "$BENCH_SECONDS"
  stop "$loop"
  c1=$(cpu_s "$EXP_PID")
  hwm=$(hwm_kb "$EXP_PID")
  stop "$EXP_PID"
  read -r usec conns polls cmds < <(redis_totals)
  cpu=$(delta 0 "$c1")
  compare_row "ours, scrape ${every}s" "$polls" "$cpu" "$usec" "$conns" "$hwm"
  OURS_CMDS_LAST=$cmds
  OURS_CPU_LAST=$(awk -v c="$cpu" -v n="$polls" 'BEGIN {print c / n}')
  OURS_REDIS_LAST=$(awk -v u="$usec" -v n="$polls" 'BEGIN {print u / n}')
}

COMPARE_ROWS=()
compare() {
  [ -x "$REDIS_EXPORTER" ] || die "$REDIS_EXPORTER not found (apt-get install prometheus-redis-exporter)"
  log "starting a 6-node redis-server cluster"
  [ ${#REDIS_PORTS[@]} -gt 0 ] || start_real_cluster
  local dir="$TMP/compare" c0 c1 loop usec conns cmds cpu hwm
  mkdir -p "$dir"

  compare_ours "$dir" 1
  OURS_CPU_PER=$OURS_CPU_LAST OURS_REDIS_PER=$OURS_REDIS_LAST OURS_CMDS=$OURS_CMDS_LAST
  compare_ours "$dir" "$SLOW_SCRAPE"
  OURS_CPU_PER_SLOW=$OURS_CPU_LAST

  log "prometheus-redis-exporter (multi-target /scrape), ${BENCH_SECONDS}s"
  reset_redis_stats
  start_redis_exporter "$dir"
  local rpid=$RE_PID
  THEIRS_URL=$RE_URL
  c0=0
  scrape_loop_theirs "$THEIRS_URL" "$dir/theirs.count" &
  loop=$!
  PIDS+=("$loop")
  sleep "$BENCH_SECONDS"
  stop "$loop"
  c1=$(cpu_s "$rpid")
  hwm=$(hwm_kb "$rpid")
  THEIRS_PID=$rpid
  read -r usec conns _ cmds < <(redis_totals)
  local scrapes
  scrapes=$(cat "$dir/theirs.count")
  cpu=$(delta "$c0" "$c1")
  compare_row prometheus-redis-exporter "$scrapes" "$cpu" "$usec" "$conns" "$hwm"
  THEIRS_CMDS=$cmds
  local theirs_cpu_per theirs_redis_per
  theirs_cpu_per=$(awk -v c="$cpu" -v n="$scrapes" 'BEGIN {print c / n}')
  theirs_redis_per=$(awk -v u="$usec" -v n="$scrapes" 'BEGIN {print u / n}')

  say ""
  say "Side by side on one 6-node redis-server $(redis-server --version | awk '{print $3}' | tr -d v=) cluster, ${BENCH_SECONDS}s each"
  say "$(printf '%-26s %10s %10s %12s %12s %9s %8s' exporter node-polls cpu_s 'cpu_us/poll' \
    'redis_us/poll' conns rss_MB)"
  local r
  for r in "${COMPARE_ROWS[@]}"; do say "$r"; done
  say "commands (calls/usec summed over the 6 nodes):"
  say "  ours:   $OURS_CMDS"
  say "  theirs: $THEIRS_CMDS"
  say "ratios: exporter CPU per node-poll theirs/ours = $(awk -v a="$theirs_cpu_per" -v b="$OURS_CPU_PER" 'BEGIN {printf "%.1f", a / b}') with both scraped every 1 s," \
    "$(awk -v a="$theirs_cpu_per" -v b="$OURS_CPU_PER_SLOW" 'BEGIN {printf "%.1f", a / b}') with ours scraped every ${SLOW_SCRAPE} s (target >= 30);" \
    "Redis time per node-poll theirs/ours = $(awk -v a="$theirs_redis_per" -v b="$OURS_REDIS_PER" 'BEGIN {printf "%.1f", a / b}') (target >= 4)"
  say "(node-polls: ours = CLUSTER INFO calls, one per node per round; theirs = /scrape requests."
  say " conns: total_connections_received delta summed over the nodes, the bench's own redis-cli"
  say " connections subtracted; rss_MB: VmHWM)"
}

# ------------------------------------------------------------------------------------------
now_s() { date +%s.%N; }

# GETs every URL given (in parallel) once a second, paced on the wall clock so that a slow
# answer does not stretch the period; writes the number of rounds to the count file.
scrape_each_second() { # count file, urls...
  local f=$1 n=0 t0 u
  shift
  t0=$(now_s)
  while :; do
    for u in "$@"; do curl -s --compressed -o /dev/null "$u" & done
    wait
    n=$((n + 1))
    echo "$n" >"$f"
    sleep "$(awk -v a="$t0" -v n="$n" -v now="$(now_s)" 'BEGIN {d = a + n - now; printf "%.3f", (d > 0 ? d : 0)}')"
  done
}

# INFO commandstats of the node on port $1: "usec_total calls_by_cmd", every command but
# CONFIG RESETSTAT (the bench's). The INFO that reads the stats is not in its own output (Redis
# adds a command to commandstats after it ran).
node_redis_usec() {
  redis-cli -p "$1" info commandstats | tr -d '\r' | awk -F'[:,=]' '
    /^cmdstat_/ {
      cmd = substr($1, 9)
      if (cmd == "config|resetstat") next
      total += $5; list = list cmd "=" $3 "/" $5 "us "
    }
    END { printf "%d %s\n", total, list }'
}

# One measuring window on the master $RT_M and replica $RT_R: resets their stats, runs the
# scrape loop over the given URLs for $REDIS_TIME_SECONDS, stops the loop and the tool's pid,
# then reads the stats. Sets RT_SECONDS, RT_USEC_M, RT_USEC_R, RT_CMDS_M, RT_CMDS_R, RT_ROUNDS.
redis_time_window() { # tool pid, count file, urls...
  local pid=$1 count=$2 t0 t1 loop
  shift 2
  redis-cli -p "$RT_M" config resetstat >/dev/null
  redis-cli -p "$RT_R" config resetstat >/dev/null
  t0=$(now_s)
  scrape_each_second "$count" "$@" &
  loop=$!
  PIDS+=("$loop")
  sleep "$REDIS_TIME_SECONDS"
  stop "$loop"
  stop "$pid"
  t1=$(now_s)
  RT_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  RT_ROUNDS=$(cat "$count" 2>/dev/null || echo 0)
  read -r RT_USEC_M RT_CMDS_M < <(node_redis_usec "$RT_M")
  read -r RT_USEC_R RT_CMDS_R < <(node_redis_usec "$RT_R")
}

redis_time() {
  [ -x "$REDIS_EXPORTER" ] || die "$REDIS_EXPORTER not found (apt-get install prometheus-redis-exporter)"
  [ ${#REDIS_PORTS[@]} -gt 0 ] || start_real_cluster
  local dir="$TMP/redis-time" p
  mkdir -p "$dir/ours"
  RT_M="" RT_R=""
  for p in "${REDIS_PORTS[@]}"; do
    if [ "$(redis-cli -p "$p" role | head -1)" = master ]; then
      RT_M=$p
      break
    fi
  done
  [ -n "$RT_M" ] || die "no master among ${REDIS_PORTS[*]}"
  replica_online() {
    RT_R=$(redis-cli -p "$RT_M" info replication | tr -d '\r' | awk -F'[:,=]' '
      /^slave0:/ { for (i = 2; i < NF; i++) if ($i == "port") p = $(i + 1); if ($0 ~ /state=online/) print p }')
    [ -n "$RT_R" ]
  }
  wait_for 30 "a replica of 127.0.0.1:$RT_M online" replica_online

  log "redis-time: this exporter (default flags), ${REDIS_TIME_SECONDS}s on 127.0.0.1:$RT_M and :$RT_R"
  start_exporter_defaults "$dir/ours" "redis://127.0.0.1:${REDIS_PORTS[0]}"
  wait_for 60 "all 6 nodes up" all_up "$EXP_URL" 6
  sleep 2 # past discovery: the window sees the steady state
  redis_time_window "$EXP_PID" "$dir/ours.count" "$EXP_URL/metrics"
  local o_s=$RT_SECONDS o_m=$RT_USEC_M o_r=$RT_USEC_R o_cm=$RT_CMDS_M o_cr=$RT_CMDS_R

  log "redis-time: prometheus-redis-exporter, /scrape of each node once a second, ${REDIS_TIME_SECONDS}s"
  start_redis_exporter "$dir"
  local rpid=$RE_PID
  redis_time_window "$rpid" "$dir/theirs.count" \
    "$RE_URL/scrape?target=redis://127.0.0.1:$RT_M" \
    "$RE_URL/scrape?target=redis://127.0.0.1:$RT_R"
  local t_s=$RT_SECONDS t_m=$RT_USEC_M t_r=$RT_USEC_R t_cm=$RT_CMDS_M t_cr=$RT_CMDS_R t_n=$RT_ROUNDS

  per_s() { awk -v u="$1" -v s="$2" 'BEGIN {printf "%.1f", u / s}'; }
  row() { # label, ours usec, theirs usec
    local ours theirs ratio ok
    ours=$(per_s "$2" "$o_s") theirs=$(per_s "$3" "$t_s")
    ratio=$(awk -v a="$theirs" -v b="$ours" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "inf"}')
    ok=$(awk -v a="$theirs" -v b="$ours" 'BEGIN {print (b * 4 <= a) ? "met" : "NOT met"}')
    say "$(printf '%-26s %14s %16s %13s   %s' "$1" "$ours" "$theirs" "$ratio" "$ok")"
  }
  say ""
  say "Redis main-thread time per node per second, INFO commandstats, windows of ${o_s}s (ours) and ${t_s}s (theirs)"
  say "$(printf '%-26s %14s %16s %13s   %s' node 'ours_us/s' 'theirs_us/s' 'theirs/ours' 'target ours <= 1/4')"
  row "master 127.0.0.1:$RT_M" "$o_m" "$t_m"
  row "replica 127.0.0.1:$RT_R" "$o_r" "$t_r"
  say "commands in the window (calls/usec):"
  say "  ours   master:  $o_cm"
  say "  ours   replica: $o_cr"
  say "  theirs master:  $t_cm"
  say "  theirs replica: $t_cr"
  say "(ours: default flags, all 6 nodes polled every 1 s; theirs: $t_n /scrape rounds, one per node"
  say " per round. Counted: every command in INFO commandstats but the bench's CONFIG RESETSTAT,"
  say " replication traffic included (REPLCONF ACK on the master, PING on the replica): the same in"
  say " both windows.)"
}

# ------------------------------------------------------------------------------------------
# p50 and p99 in ms of GET url under $WRK_CONNECTIONS concurrent connections.
latency_of() {
  local url=$1
  if command -v wrk >/dev/null; then
    wrk -c"$WRK_CONNECTIONS" -t2 -d"${WRK_SECONDS}s" --latency "${WRK_HEADER[@]}" "$url" 2>&1 | tee "$TMP/wrk.out" |
      awk '
        function ms(v) {
          if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
          if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
          if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
          return v
        }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Requests\/sec/ { rps = $2 }
        /Non-2xx/ { bad = $NF }
        END { printf "%.2f %.2f %.0f %s\n", p50, p99, rps, bad == "" ? 0 : bad }'
  else
    seq 1 $((WRK_CONNECTIONS * 40)) | xargs -P"$WRK_CONNECTIONS" -I{} \
      curl -s -o /dev/null -w '%{time_total}\n' "${WRK_HEADER[@]}" "$url" | sort -n |
      awk '{a[NR] = $1 * 1000} END {printf "%.2f %.2f - 0\n", a[int(NR * 0.5)], a[int(NR * 0.99)]}'
  fi
}

latency() {
  command -v wrk >/dev/null || log "wrk not installed: parallel curl instead (apt-get install wrk)"
  # Prometheus asks every target for gzip; WRK_GZIP=0 measures the plain body instead.
  WRK_HEADER=()
  [ "${WRK_GZIP:-1}" = 1 ] && WRK_HEADER=(-H "Accept-Encoding: gzip")
  [ ${#REDIS_PORTS[@]} -gt 0 ] || start_real_cluster
  local dir="$TMP/latency" res rows=()
  mkdir -p "$dir/ours6" "$dir/sim"
  start_exporter "$dir/ours6" "redis://127.0.0.1:${REDIS_PORTS[0]}"
  sleep 3
  res=$(latency_of "$EXP_URL/metrics")
  rows+=("$(printf '%-44s %8s %8s %9s %9s' "redis-cluster-exporter /metrics, 6 nodes" $res)")
  stop "$EXP_PID"

  start_sim "$LAT_NODES" "$dir/sim"
  start_exporter "$dir/sim" "redis://127.0.0.1:${SIM_PORTS[0]}"
  wait_for 120 "all $LAT_NODES nodes up" all_up "$EXP_URL" "$LAT_NODES"
  sleep 3
  local idle_hwm
  idle_hwm=$(hwm_kb "$EXP_PID")
  res=$(latency_of "$EXP_URL/metrics")
  rows+=("$(printf '%-44s %8s %8s %9s %9s' "redis-cluster-exporter /metrics, sim $LAT_NODES nodes" $res)")
  LAT_RSS="RSS at $LAT_NODES nodes: $(awk -v k="$idle_hwm" 'BEGIN {printf "%.1f", k / 1024}') MB peak before the load, $(awk -v k="$(hwm_kb "$EXP_PID")" 'BEGIN {printf "%.1f", k / 1024}') MB after"
  stop "$EXP_PID" "$SIM_PID"

  start_redis_exporter "$dir"
  local rpid=$RE_PID
  res=$(latency_of "$RE_URL/scrape?target=redis://127.0.0.1:${REDIS_PORTS[0]}")
  rows+=("$(printf '%-44s %8s %8s %9s %9s' "prometheus-redis-exporter /scrape, 1 node" $res)")
  stop "$rpid"

  say ""
  say "/metrics latency, $WRK_CONNECTIONS concurrent connections for ${WRK_SECONDS}s (wrk -t2, same 2 cores, ${WRK_HEADER[*]:-no Accept-Encoding})"
  say "$(printf '%-44s %8s %8s %9s %9s' target p50_ms p99_ms req/s non-2xx)"
  local r
  for r in "${rows[@]}"; do say "$r"; done
  say "$LAT_RSS"
}

# ------------------------------------------------------------------------------------------
command -v jq >/dev/null || die "jq is needed"
build
say "redis-cluster-exporter bench $(date -u +%FT%TZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews wall times, not CPU seconds)"
say "machine: $(nproc) CPUs, $(lscpu | awk -F': +' '/Model name/ && !m {m = $2} END {print m}'), $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r)"
case "$WHAT" in
scale) scale ;;
compare) compare ;;
redis-time) redis_time ;;
latency) latency ;;
all)
  scale
  compare
  redis_time
  latency
  ;;
esac
say ""
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say "report: $REPORT"
