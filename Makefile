# vigil — developer entry points. `make demo` and `make test` are the two a newcomer needs.
CARGO ?= cargo
DEMO_ARGS ?=

.PHONY: all deps build demo test test-unit test-integration lint fmt clippy clean

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

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf demo-out
