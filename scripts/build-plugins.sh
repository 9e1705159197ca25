#!/usr/bin/env bash
# Builds every plugin and puts NAME.wasm into target/plugins (the bundled plugins under plugins/)
# and target/test-plugins (the test-only ones under tests/plugins/):
# - Rust crates for wasm32-wasip2 (components);
# - Go modules under plugins/go/ and tests/plugins/go/ with stock Go (GOOS=wasip1 GOARCH=wasm
#   -buildmode=c-shared): core modules, which the gateway makes into components when it loads
#   them (`wasmgate plugin componentize` does the same ahead of time).
# `make plugins`, `make run` and `make test` use it; cargo and go make repeated runs cheap.
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
# Go plugins: the directory name is the module name.
go="$PWD/scripts/go.sh"
export GOFLAGS=-trimpath
go_build() {
  local src="$1" out="$2"
  shift 2
  (cd "$src" && GOOS=wasip1 GOARCH=wasm "$go" build -ldflags="-s -w $*" -buildmode=c-shared -o "$out.tmp" .)
  mv -f "$out.tmp" "$out"
}
go_names=()
for d in plugins/go/*/ tests/plugins/go/*/; do
  [ -f "$d/go.mod" ] || continue
  name="$(basename "$d")"
  case "$d" in tests/*) dest=target/test-plugins ;; *) dest=target/plugins ;; esac
  go_build "$d" "$PWD/$dest/$name.wasm"
  go_names+=("$name")
done
# A second build of the Go probe, for the hot-load test.
if [ -d tests/plugins/go/go-probe ]; then
  go_build tests/plugins/go/go-probe "$PWD/target/test-plugins/go-probe-v2.wasm" -X main.version=2
fi
echo "plugins: ${bundled[*]} ${go_names[*]} -> target/plugins, ${testing[*]} -> target/test-plugins"
