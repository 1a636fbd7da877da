#!/usr/bin/env bash
# Runs the exporter on a local demo cluster: installs redis-server if missing, builds the
# exporter, starts a 6-node Redis Cluster (3 masters, 3 replicas) on loopback, runs the exporter
# on :9121 and tells you where to look. Ctrl-C stops everything.
#   BASE_PORT=7001 (nodes use BASE_PORT..BASE_PORT+5, cluster bus +10000), LISTEN=0.0.0.0:9121
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
BASE_PORT="${BASE_PORT:-7001}"
LISTEN="${LISTEN:-0.0.0.0:9121}"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "== installing redis-server"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

echo "== building the exporter (release)"
cargo build --release --locked -q

WORK="$(mktemp -d /tmp/redis-cluster-demo.XXXXXX)"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "== stopping the demo"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ports=()
for i in 0 1 2 3 4 5; do
  port=$((BASE_PORT + i))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
    echo "port $port or $((port + 10000)) is in use; choose another BASE_PORT" >&2
    exit 1
  fi
  mkdir -p "$WORK/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$WORK/$port/nodes.conf" --cluster-node-timeout 2000 \
    --dir "$WORK/$port" --save '' --appendonly no --logfile "$WORK/$port/redis.log" &
  pids+=($!)
  ports+=("127.0.0.1:$port")
done
for port in "${ports[@]}"; do
  for _ in $(seq 50); do redis-cli -p "${port##*:}" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "== creating the cluster: ${ports[*]}"
redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/create.log"
for _ in $(seq 100); do
  [ "$(redis-cli -p "$BASE_PORT" cluster info | tr -d '\r' | grep cluster_state)" = "cluster_state:ok" ] && break
  sleep 0.1
done

EVENTS="$WORK/events.jsonl"
./target/release/redis-cluster-exporter --redis-addr "redis://127.0.0.1:$BASE_PORT" \
  --listen-address "$LISTEN" --event-log "$EVENTS" --cluster-name demo &
pids+=($!)
HTTP_PORT="${LISTEN##*:}"
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

cat <<MSG

== the demo is running
  cluster nodes : ${ports[*]} (logs in $WORK/<port>/redis.log)
  cluster page  : http://127.0.0.1:$HTTP_PORT/cluster   (live topology; JSON at /api/cluster)
  metrics       : http://127.0.0.1:$HTTP_PORT/metrics
  events        : http://127.0.0.1:$HTTP_PORT/events
  landing page  : http://127.0.0.1:$HTTP_PORT/

  try a failover: kill the master on port $BASE_PORT and watch its replica take over:
      kill \$(redis-cli -p $BASE_PORT info server | tr -d '\r' | sed -n 's/^process_id://p')
  then watch:   curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep -E '^redis_(up|cluster_state|cluster_node_info)'

Ctrl-C stops the cluster and the exporter.
MSG
wait "${pids[@]}"
