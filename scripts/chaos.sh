#!/usr/bin/env bash
# Chaos run with an independent oracle (docs/reliability.md): a real 9-node cluster under a
# steady writer and a seeded fault schedule, an HA pair of exporters, and a score against what the
# cluster really did. Exits non-zero when a target is missed.
#
#   scripts/chaos.sh --seed S --minutes M [--out score.json] [--event-retention N]
#
# --event-retention N is passed to both exporters (default: theirs, 10000); a small N tells RSS
# growth that is the retained events from a leak (docs/reliability.md).
#
# Builds in debug (the test profile). Needs redis-server/redis-cli 7.x; root for the tmpfs of the
# full-disk fault (skipped, and said so in the score, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seed=1 minutes=3 out="" retention=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --minutes) minutes="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --event-retention) retention="$2"; shift 2 ;;
    *) echo "usage: $0 --seed S --minutes M [--out PATH] [--event-retention N]" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$PWD/target/chaos-seed$seed-${minutes}min${retention:+-retention$retention}.json"
mkdir -p "$(dirname "$out")"
echo "== chaos run: seed $seed, $minutes min${retention:+, event retention $retention}, score -> $out"
CHAOS_SEED="$seed" CHAOS_MINUTES="$minutes" CHAOS_OUT="$out" CHAOS_EVENT_RETENTION="$retention" \
  cargo test --locked --test chaos -- --ignored --nocapture --test-threads=1
