#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time over its corpus in
# fuzz/corpus, which keeps what libFuzzer finds. Installs the nightly toolchain and cargo-fuzz
# first if missing (idempotent). A crash leaves its input in fuzz/artifacts/TARGET and fails.
#
#   make fuzz                         every target, 60 s each
#   FUZZ_SECONDS=600 make fuzz        longer
#   make fuzz ARGS=router             one target
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain (cargo-fuzz needs it for the sanitizer)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(admin_body config router plugin_configure)
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s"
  # The plugin modules compile once per process; 4 GiB leaves room for them and the corpus.
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=4096 -timeout=10
done
