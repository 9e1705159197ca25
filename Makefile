# Two commands do all the set-up on a fresh Debian machine with the Rust toolchain:
#   make run    the gateway on examples/gateway.toml, with demo upstreams
#   make test   every test
# Both install what is missing first (scripts/setup.sh is idempotent).

.PHONY: setup plugins run test lint docs bench bench-compare fuzz

setup:
	@scripts/setup.sh

plugins: setup
	@scripts/build-plugins.sh

run: setup plugins
	@scripts/run-demo.sh

test: setup plugins
	cargo test --workspace --exclude wasmgate-bench
	cd plugin-sdk/go && ../../scripts/go.sh test ./...

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

docs: setup
	@scripts/plugin-docs.sh

bench: setup
	scripts/build-plugins.sh
	cargo bench -p wasmgate-bench

bench-compare: setup
	bench/compare.sh $(ARGS)

fuzz: setup plugins
	scripts/fuzz.sh $(ARGS)
