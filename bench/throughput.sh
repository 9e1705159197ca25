#!/usr/bin/env bash
# Proxy throughput on ONE worker thread, with 0, 1 and 5 no-op plugins, and with key-auth +
# rate-limiting. Release builds, a demo upstream on loopback, wrk as the client (10 s per run).
#   bench/throughput.sh            (or: make bench)
# Numbers depend on the machine; compare rows of one run, not runs of different machines.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh >/dev/null
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build --quiet --release -p wasmgate --bin wasmgate --example demo_upstream
target_dir="${CARGO_TARGET_DIR:-target}/release"
duration="${DURATION:-10}"
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$target_dir/examples/demo_upstream" 127.0.0.1:19101 upstream >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/plugins"
cp target/test-plugins/noop.wasm target/plugins/key-auth.wasm target/plugins/rate-limiting.wasm "$work/plugins/"

cat > "$work/gateway.toml" <<TOML
[server]
proxy_listen = "127.0.0.1:19100"
worker_threads = 1
access_log = "off"
log_level = "warn"
plugins_file = "plugins.toml"
[[services]]
name = "bench"
url = "http://127.0.0.1:19101"
[[services.routes]]
name = "r"
paths = ["/"]
[[consumers]]
username = "bench"
[[consumers.keyauth_credentials]]
key = "bench-key"
TOML

noops() {
  for i in $(seq 1 "$1"); do
    printf '[modules.noop%s]\npath = "plugins/noop.wasm"\n' "$i"
  done
  for i in $(seq 1 "$1"); do
    printf '[[plugins]]\nname = "noop%s"\nroute = "r"\n' "$i"
  done
}

run() {
  local label="$1" plugins="$2"
  printf 'plugins_dir = "plugins"\ncache_dir = "%s/cache"\n%s\n' "$work" "$plugins" > "$work/plugins.toml"
  "$target_dir/wasmgate" run -c "$work/gateway.toml" 2>"$work/gateway.log" &
  local gw=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null localhost:19100/ -H 'apikey: bench-key' && break; sleep 0.1; done
  wrk -t1 -c32 -d2s -H 'apikey: bench-key' http://127.0.0.1:19100/ >/dev/null
  local out profiler=""
  # PROFILE="<label>" records the gateway with perf during that run (into $PERF_OUT).
  if [ "${PROFILE:-}" = "$label" ]; then
    perf record -g -p "$gw" -o "${PERF_OUT:-/tmp/wasmgate.perf}" -- sleep 5 >/dev/null 2>&1 &
    profiler=$!
  fi
  out=$(wrk -t1 -c32 -d"${duration}s" --latency -H 'apikey: bench-key' http://127.0.0.1:19100/)
  [ -z "$profiler" ] || wait "$profiler"
  kill "$gw"; wait "$gw" 2>/dev/null || true
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-34s %12s %10s %10s %s\n' "$label" "$rps" "$p50" "$p99" "${errors:+non-2xx: $errors}"
}

printf '%-34s %12s %10s %10s\n' "plugins (1 worker thread)" "req/s" "p50" "p99"
run "none" ""
run "1 no-op" "$(noops 1)"
run "5 no-op" "$(noops 5)"
run "key-auth + rate-limiting" "$(printf '[[plugins]]\nname = "key-auth"\nroute = "r"\n[[plugins]]\nname = "rate-limiting"\nroute = "r"\nconfig = { second = 1000000000, limit_by = "consumer" }\n')"
