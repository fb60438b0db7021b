# vigil — developer entry points. `make demo` and `make test` are the two a newcomer needs.
CARGO ?= cargo
DEMO_ARGS ?=

.PHONY: all deps build demo test contract fire-eval test-fire test-faults systemd-check cross-test cross-check deb deb-test test-unit test-integration lint fmt clippy golden ort-lib bench bench-env bench-cameras bench-memory bench-decode soak bench-stages fleet-bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace

## Run the self-contained demo: embedded RTSP server + MQTT broker, incidents printed live.
## The demo is its own binary (the vigil-demo crate, demo/): the `vigil` of the release and
## Debian builds carries neither server.
demo: deps
	$(CARGO) build -p vigil -p vigil-demo
	./target/debug/vigil-demo $(DEMO_ARGS)

## ONNX Runtime's library (from the onnxruntime wheel on PyPI) for the `ort` backend and tests.
ORT_LIB := $(CURDIR)/.cache/onnxruntime/libonnxruntime.so
ort-lib:
	@scripts/fetch-onnxruntime.sh >/dev/null

## Every test: unit tests and integration tests against real RTSP, MQTT and ONNX, on both
## inference backends (tract and ONNX Runtime).
## TEST_BUILD is the feature set of the test build; targets that need a native binary build it the
## same way, so after `make test` they rebuild nothing (another feature set rebuilds the agent).
TEST_BUILD = --workspace --features vigil-tests/ort
test: deps ort-lib
	ORT_DYLIB_PATH=$(ORT_LIB) $(CARGO) test $(TEST_BUILD) --no-fail-fast
	$(MAKE) contract

## The fire and smoke evaluation on real footage (docs/fire.md): every fire clip of
## ../shared/media/fire through `vigil replay` with the built-in detector, time to alarm, FURG
## precision/recall, false alarms over FIRE_EVAL_HOURS of negatives. Not part of `make test`.
## FIRE_ONNX=path also evaluates the opt-in YOLOv8 flame model alone and fused with the built-in
## detector (agree, either) on ONNX Runtime; where the model runs on every frame (alone, either)
## the negatives are FIRE_EVAL_ONNX_HOURS (≈ 0.3 s a frame: 0.25 h of footage takes ≈ 40 min).
FIRE_EVAL_HOURS ?= 2
FIRE_EVAL_ONNX_HOURS ?= 0.25
fire-eval: deps ort-lib
	$(CARGO) build $(TEST_BUILD) --bin vigil
	ORT_DYLIB_PATH=$(ORT_LIB) python3 bench/fire/eval.py --vigil target/debug/vigil --hours $(FIRE_EVAL_HOURS) \
	  $(if $(FIRE_ONNX),--fire-onnx $(FIRE_ONNX) --onnx-backend ort --onnx-hours $(FIRE_EVAL_ONNX_HOURS))

## The opt-in fire/smoke model's parity tests. Needs its ONNX file: run
## models/convert/fire_smoke_yolov8.sh, or pass FIRE_ONNX=path/to/light_yolov8_flame_416.onnx.
FIRE_CARD_DIR := models/fire_smoke_yolov8
test-fire: deps ort-lib
	@if [ -n "$(FIRE_ONNX)" ]; then cp "$(FIRE_ONNX)" $(FIRE_CARD_DIR)/light_yolov8_flame_416.onnx; fi
	@test -f $(FIRE_CARD_DIR)/light_yolov8_flame_416.onnx || { echo "make test-fire: $(FIRE_CARD_DIR)/light_yolov8_flame_416.onnx is missing; run models/convert/fire_smoke_yolov8.sh or pass FIRE_ONNX=path" >&2; exit 1; }
	ORT_DYLIB_PATH=$(ORT_LIB) $(CARGO) test $(TEST_BUILD),vigil-tests/fire-model --test parity --test replay fire

## The MQTT contract: docs/asyncapi.yaml parsed and validated by the official AsyncAPI parser
## (npm @asyncapi/parser, pinned in tools/asyncapi/package-lock.json), with its schema files.
contract: deps
	cd tools/asyncapi && npm ci --silent --no-audit --no-fund
	node tools/asyncapi/check.mjs docs/asyncapi.yaml

## Only the fault-injection tests (part of `make test` too): broker outage, agent SIGKILLs,
## camera server killed 20 times, a camera that hangs (stall watchdog), full outbox (unit),
## TLS, dead camera, damaged streams, frozen and covered cameras.
test-faults: deps
	$(CARGO) test -p vigil-tests --test faults --test tls --test end_to_end -- --nocapture
	$(CARGO) test -p vigil --lib publish::durable

## The systemd unit: `systemd-analyze verify` with the binary installed at its ExecStart path
## (/usr/bin/vigil: done only as root, e.g. in the CI container) and the offline security
## exposure score, which must stay at or below 1.5.
systemd-check: deps
	$(CARGO) test --locked -q $(TEST_BUILD) --no-run
	@if [ "$$(id -u)" -eq 0 ]; then install -m 0755 target/debug/vigil /usr/bin/vigil; fi
	@test -x /usr/bin/vigil || { echo "make systemd-check: /usr/bin/vigil is missing (run as root to install the built binary there)" >&2; exit 1; }
	systemd-analyze verify systemd/vigil.service
	@score=$$(systemd-analyze security --offline=true systemd/vigil.service 2>&1 | sed -n 's/.*Overall exposure level for vigil.service: \([0-9.]*\).*/\1/p'); \
	  echo "systemd-analyze security: exposure $$score (limit 1.5)"; \
	  awk -v s="$$score" 'BEGIN { exit !(s != "" && s <= 1.5) }' || { echo "make systemd-check: exposure $$score is above 1.5" >&2; exit 1; }

## ARM builds proven to run (cross/README.md): cross/build.sh builds each target natively in
## release mode against a sysroot of the target's GStreamer; cross/test.sh runs it under qemu-user
## (version, check, detections equal to native and to the reference, an H.264 pipeline).
CROSS_TARGETS ?= aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
cross-test: deps
	for t in $(CROSS_TARGETS); do cross/test.sh $$t || exit 1; done

## Type-check the agent for ARM targets (CROSS_CHECK_TARGETS) against their sysroots, without
## building a binary: what CI does for armv7, whose full build and qemu run `make cross-test`
## does (about 14 minutes more on two cores).
CROSS_CHECK_TARGETS ?= armv7-unknown-linux-gnueabihf
cross-check: deps
	for t in $(CROSS_CHECK_TARGETS); do CROSS_CHECK=1 cross/build.sh $$t || exit 1; done

## Debian packages with cargo-deb (target/debian/): amd64 from a native release build, and one
## per cross target; each inspected (packaging/deb.sh). PROFILE picks the profile (default
## release); DEB_NATIVE_PROFILE overrides it for the amd64 package (CI: dev, the test build's
## binary, which cargo-deb strips). Beside them, the optional vigil-onnxruntime package of ONNX
## Runtime's library for amd64 and, with the aarch64 target, arm64 (packaging/onnxruntime-deb.sh;
## armhf has none and runs tract).
DEB_NATIVE_PROFILE ?= $(or $(PROFILE),release)
ORT_VERSION := $(shell sed -n 's/^version=.{1:-\(.*\)}/\1/p' scripts/fetch-onnxruntime.sh)
deb: deps
	PROFILE=$(DEB_NATIVE_PROFILE) packaging/deb.sh
	for t in $(CROSS_TARGETS); do packaging/deb.sh $$t || exit 1; done
	packaging/onnxruntime-deb.sh amd64 $(ORT_VERSION)
	case " $(CROSS_TARGETS) " in *" aarch64-unknown-linux-gnu "*) packaging/onnxruntime-deb.sh arm64 $(ORT_VERSION);; esac

## Install the amd64 packages on this machine and check them (root only: the CI container).
deb-test: deb
	packaging/deb-test.sh target/debian/vigil_$$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)-1_amd64.deb \
	  target/debian/vigil-onnxruntime_$(ORT_VERSION)-1_amd64.deb

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

## The performance harness (docs/performance.md): six measures (P1–P6), each a ratio against a
## reference measured in the same run, printed as a markdown table. Builds vigil and rtsp-serve
## with BENCH_PROFILE (default release, what ships) and the Python peer's venv. Never part of
## `make test`. With 20 s windows the run took 6.5 minutes on two cores after the build (the default
## 60 s windows take longer); BENCH_ARGS="--seconds 20" for that, "--no-alloc-test" to skip zero_alloc.
BENCH_VENV ?= .venv-bench
BENCH_PROFILE ?= release
BENCH_ARGS ?=
BENCH_DIR = target/$(if $(filter dev,$(BENCH_PROFILE)),debug,$(BENCH_PROFILE))
bench-env: deps ort-lib
	@scripts/install-deps.sh python3-venv python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
	@test -x $(BENCH_VENV)/bin/python || /usr/bin/python3 -m venv --system-site-packages $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/peer/requirements.txt
	$(CARGO) build --locked --profile $(BENCH_PROFILE) -p vigil -p vigil-tests --features vigil/ort --bin vigil --bin rtsp-serve

bench: bench-env
	$(BENCH_VENV)/bin/python bench/harness.py --vigil $(BENCH_DIR)/vigil --rtsp-serve $(BENCH_DIR)/rtsp-serve $(BENCH_ARGS)

## P7, real cameras: 1080p25 cameras per box at 5 fps analysis, analysing the main stream vs a
## 640×360 sub-stream (detect_url), per backend, with each camera's CPU by thread
## (bench/cameras.py; streams from scripts/camera-streams.sh). Not part of `make bench` (≈ 25 min).
CAMERAS_ARGS ?=
bench-cameras: bench-env
	$(BENCH_VENV)/bin/python bench/cameras.py --vigil $(BENCH_DIR)/vigil --rtsp-serve $(BENCH_DIR)/rtsp-serve $(CAMERAS_ARGS)

## P5 in detail: resident memory per backend split into anonymous and file-backed parts, PSS,
## and the cost of one more camera and one more inference thread (bench/memory.py, ≈ 6 min).
MEMORY_ARGS ?=
bench-memory: bench-env
	$(BENCH_VENV)/bin/python bench/memory.py --vigil $(BENCH_DIR)/vigil --rtsp-serve $(BENCH_DIR)/rtsp-serve $(MEMORY_ARGS)

## What decoding only what analysis needs buys: a 1080p25 camera decoded in full, without its
## non-reference frames, and key frames only, on H.264 and H.265 with and without B-frames
## (bench/decode.py, ≈ 3 min after making the streams).
DECODE_ARGS ?=
bench-decode: bench-env
	$(BENCH_VENV)/bin/python bench/decode.py $(DECODE_ARGS)

## The memory soak of P5: 4 cameras for MINUTES, RSS/fds/threads each minute, slope of the second half.
MINUTES ?= 60
soak: bench-env
	$(BENCH_VENV)/bin/python bench/soak.py --minutes $(MINUTES) --vigil $(BENCH_DIR)/vigil --rtsp-serve $(BENCH_DIR)/rtsp-serve

## The fleet load test (docs/fleet.md): FLEET_BOXES simulated boxes, each on vigil's real publish
## path (its own SQLite outbox and TLS session, real payloads), against 24 district brokers rendered
## from deploy/broker/ and bridged to the city broker, all on this machine: the capacity model's
## busy rate, 10×, then doubling up to FLEET_BEYOND× while each step holds. Not part of `make test`
## (about 20 minutes). Results: target/fleet-bench.json and the tables on stdout.
FLEET_BOXES ?= 480
FLEET_BEYOND ?= 160
FLEET_ARGS ?=
fleet-bench: deps
	$(CARGO) build $(TEST_BUILD) --bin vigil-fleet-bench
	./target/debug/vigil-fleet-bench --boxes $(FLEET_BOXES) --rates 1,10 --beyond $(FLEET_BEYOND) --json target/fleet-bench.json $(FLEET_ARGS)

## Per-stage micro-benchmarks: criterion on pre/post-processing, `vigil bench` per model and backend.
bench-stages: deps ort-lib
	$(CARGO) bench -p vigil --bench postprocess --profile dev
	$(CARGO) build -p vigil --features ort
	for card in models/ssd_mobilenet_v2_coco/model.toml models/ssd_mobilenet_v2_coco/model.int8.toml models/nanodet_m_416/model.toml; do \
	  for backend in tract ort; do ORT_DYLIB_PATH=$(ORT_LIB) ./target/debug/vigil bench --backend $$backend --card $$card; done; \
	done

## Fuzz the parsers of hostile input (config, model card and labels, diagnostics requests,
## camera URLs and their redaction, the golden `.npy` reader) with cargo-fuzz on the nightly
## toolchain, FUZZ_SECONDS each (default 60), starting from fuzz/seeds. A crash stops the run
## and leaves its input under fuzz/artifacts/<target>/: turn it into a regular test. The
## property tests of the same parsers (agent/tests/parsers.rs) run in `make test`. Built
## unoptimised by default (FUZZ_PROFILE=--dev: about 10 minutes for the first build on 2 cores,
## against more than 30 optimised); FUZZ_PROFILE= builds optimised for long runs.
FUZZ_SECONDS ?= 60
FUZZ_PROFILE ?= --dev
FUZZ_TARGETS := config card diag_request rtsp_url npy
fuzz:
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do 	  mkdir -p corpus/$$t && 	  cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=8192 || exit 1; 	done

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

clean:
	$(CARGO) clean
	rm -rf demo-out $(BENCH_VENV)
