#!/usr/bin/env bash
# Builds every plugin crate for wasm32-wasip2 and puts NAME.wasm into target/plugins (the bundled
# plugins under plugins/) and target/test-plugins (the test-only ones under tests/plugins/).
# `make plugins`, `make run` and `make test` use it; cargo makes repeated runs cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
target_dir="${CARGO_TARGET_DIR:-target}"
artifacts="$target_dir/wasm32-wasip2/plugin"

crates() { for d in "$@"; do [ -f "$d/Cargo.toml" ] && basename "$d"; done; }
mapfile -t bundled < <(crates plugins/*/)
mapfile -t testing < <(crates tests/plugins/*/)

build() { cargo build --quiet --target wasm32-wasip2 --profile plugin "$@"; }
# Copy aside, then rename: a gateway watching the directory never sees half a file.
install_wasm() { cp "$artifacts/${1//-/_}.wasm" "$2.tmp" && mv -f "$2.tmp" "$2"; }

args=()
for c in "${bundled[@]}" "${testing[@]}"; do args+=(-p "$c"); done
build "${args[@]}"
mkdir -p target/plugins target/test-plugins
for c in "${bundled[@]}"; do install_wasm "$c" "target/plugins/$c.wasm"; done
for c in "${testing[@]}"; do install_wasm "$c" "target/test-plugins/$c.wasm"; done

# A second version of `stamp`, for the hot-load tests.
if [ -d tests/plugins/stamp ]; then
  build -p stamp --features v2
  install_wasm stamp target/test-plugins/stamp-v2.wasm
  build -p stamp
fi
echo "plugins: ${bundled[*]} -> target/plugins; ${testing[*]} -> target/test-plugins"
