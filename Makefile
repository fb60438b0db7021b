# vigil — developer entry points. `make demo` and `make test` are the two a newcomer needs.
CARGO ?= cargo
DEMO_ARGS ?=

.PHONY: all deps build demo test test-unit test-integration lint fmt clippy golden clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace

## Run the self-contained demo: embedded RTSP server + MQTT broker, incidents printed live.
demo: deps
	$(CARGO) build -p vigil
	./target/debug/vigil demo $(DEMO_ARGS)

## Every test: unit tests and integration tests against real RTSP, MQTT and ONNX.
test: deps
	$(CARGO) test --workspace --no-fail-fast

test-unit: deps
	$(CARGO) test -p vigil

test-integration: deps
	$(CARGO) test -p vigil-tests

## Re-create tests/goldens/ with the independent reference (ONNX Runtime + numpy in a venv).
REF_VENV ?= .venv-reference
golden:
	test -x $(REF_VENV)/bin/python || python3 -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install -q -r tools/reference/requirements.txt
	$(REF_VENV)/bin/python tools/reference/reference.py

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf demo-out
