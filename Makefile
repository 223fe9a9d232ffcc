# The two commands: `make run` and `make test`. Both set up a fresh Debian machine first
# (system packages, Rust build, Whisper models), idempotently.

CARGO ?= cargo
export IVR_MODELS_DIR ?= $(HOME)/.cache/ivr/models
# Models the tests need: English tiny for the round trips, multilingual base for Mongolian.
TEST_MODELS ?= tiny.en base

.PHONY: run test setup models lint bench-stt bench-calls clean-models

## make run: install what is missing, fetch the models, build, start the server (embedded
## defaults: gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080, data in ./data); it prints how to call.
run: setup
	$(CARGO) build --release -p ivr
	./target/release/ivr models fetch tiny.en base
	./target/release/ivr serve

## make test: install what is missing, fetch the models, run every test.
test: setup
	$(CARGO) build -p ivr
	$(CARGO) run -q -p ivr -- models fetch $(TEST_MODELS)
	scripts/pyenv.sh
	$(CARGO) test --workspace --no-fail-fast
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

setup:
	@scripts/setup.sh

models: setup
	$(CARGO) run -q --release -p ivr -- models fetch $(TEST_MODELS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The speech-to-text table of docs/performance.md.
bench-stt: setup
	$(CARGO) run -q --release -p ivr -- bench stt --models tiny.en,base --threads 1,2

## Simultaneous robot callers against the assistant: turn latency and CPU.
bench-calls: setup
	$(CARGO) run -q --release -p ivr -- bench calls --concurrent 4

clean-models:
	rm -rf "$(IVR_MODELS_DIR)"
