#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for $FUZZ_SECONDS seconds each (default 60).
#
# cargo-fuzz needs a nightly compiler (-Zsanitizer=address); on a stable-only machine
# RUSTC_BOOTSTRAP=1 unlocks the nightly flags of the installed stable rustc. Each target's corpus
# (fuzz/corpus/<target>, gitignored) is seeded from tests/fixtures, with LF and CRLF variants,
# before it runs. Crashes land in fuzz/artifacts/<target>/ and make the script exit non-zero.
#
#   FUZZ_SECONDS=180 scripts/fuzz.sh              # all targets, 3 minutes each
#   FUZZ_TARGETS="cluster_nodes" scripts/fuzz.sh  # a subset
#   FUZZ_ARGS="-max_len=65536" scripts/fuzz.sh   # extra libFuzzer flags
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TARGETS="${FUZZ_TARGETS:-cluster_nodes cluster_info info resp}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# seed <target> <fixture glob>...: copies the fixtures into the target's corpus (LF and CRLF).
seed() {
  local target="$1"
  shift
  local dir="fuzz/corpus/$target"
  mkdir -p "$dir"
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp "$f" "$dir/$(basename "$f")"
    sed 's/$/\r/' "$f" >"$dir/crlf_$(basename "$f")"
  done
}

fx=tests/fixtures
for target in $FUZZ_TARGETS; do
  case "$target" in
    cluster_nodes) seed "$target" "$fx"/cluster_nodes_*.txt "$fx"/seed_cluster_nodes_*.txt "$fx"/error_*.txt ;;
    cluster_info) seed "$target" "$fx"/cluster_info_*.txt "$fx"/seed_cluster_info_*.txt "$fx"/error_*.txt ;;
    info) seed "$target" "$fx"/info_*.txt "$fx"/seed_info_*.txt "$fx"/error_*.txt ;;
    resp)
      # A few pipelines' replies: bulk, error, integer, nested arrays, a push frame.
      mkdir -p fuzz/corpus/resp
      printf '$5\r\nhello\r\n-ERR no\r\n:42\r\n' >fuzz/corpus/resp/scalars
      printf '*2\r\n*3\r\n:1\r\n:2\r\n*0\r\n$-1\r\n' >fuzz/corpus/resp/nested
      printf '>2\r\n+message\r\n$1\r\nx\r\n%%1\r\n+k\r\n:1\r\n' >fuzz/corpus/resp/resp3
      ;;
    *)
      echo "unknown fuzz target: $target" >&2
      exit 2
      ;;
  esac
  echo "== cargo fuzz run $target (${FUZZ_SECONDS}s)"
  cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${extra[@]+"${extra[@]}"}
done
echo "== fuzzing done: no crash in ${FUZZ_TARGETS// /, }"
