#!/usr/bin/env bash
# `make run`: two demo upstreams on 127.0.0.1:9001/9002 and the gateway on examples/gateway.toml
# (with --watch, so edits to the example apply live). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin wasmgate --example demo_upstream
target_dir="${CARGO_TARGET_DIR:-target}"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for i in 1 2; do
  "$target_dir/debug/examples/demo_upstream" "127.0.0.1:900$i" "replica-$i" &
  pids+=($!)
done
echo "gateway on http://localhost:8000  (try: curl -i localhost:8000/)"
"$target_dir/debug/wasmgate" run -c examples/gateway.toml --watch "$@"
