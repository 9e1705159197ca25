# Two commands do all the set-up on a fresh Debian machine with the Rust toolchain:
#   make run    the gateway on examples/gateway.toml, with demo upstreams
#   make test   every test
# Both install what is missing first (scripts/setup.sh is idempotent).

.PHONY: setup run test lint bench

setup:
	@scripts/setup.sh

run: setup
	@scripts/run-demo.sh

test: setup
	cargo test --workspace --exclude wasmgate-bench

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup
	cargo bench -p wasmgate-bench
