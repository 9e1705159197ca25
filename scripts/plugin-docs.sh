#!/usr/bin/env bash
# Refreshes the generated configuration reference in every bundled plugin's README (between the
# `<!-- config:start -->` and `<!-- config:end -->` markers) from the schema the built module
# exports. `make docs` runs it; a test fails when a README is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh >/dev/null
cargo build --quiet --bin wasmgate
bin="${CARGO_TARGET_DIR:-target}/debug/wasmgate"
for dir in plugins/*/ plugins/go/*/; do
  [ "$dir" = plugins/go/ ] && continue
  name=$(basename "$dir")
  readme="$dir/README.md"
  [ -f "$readme" ] || { echo "missing $readme" >&2; exit 1; }
  table=$("$bin" plugin-doc "target/plugins/$name.wasm")
  python3 - "$readme" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- config:start -->", "<!-- config:end -->"
if start not in text or end not in text:
    sys.exit(f"{path}: add {start} and {end} where the configuration reference goes")
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(f"{head}{start}\n{table.strip()}\n{end}{tail}")
PY
  echo "refreshed $readme"
done
