# The front door: each target is a few lines calling real tools.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
KAFKA_VERSION := 4.4.0
# No registry on our CI machines: tests use the locally built image unless told otherwise
# (`make test KAFKA_IMAGE=apache/kafka:4.4.0` where a registry is reachable).
KAFKA_IMAGE ?= localhost/kafka:$(KAFKA_VERSION)
# The service image's base: local too when Kafka's is (see scripts/build-images).
PYTHON_BASE_IMAGE ?= $(if $(filter localhost/%,$(KAFKA_IMAGE)),localhost/python-base:3.11-bookworm,)
PYTEST_ARGS ?=

.PHONY: install run test lint test-env docs bench bench-smoke kafka-up kafka-down

install:
	@command -v uv >/dev/null || python3 -m pip install --quiet uv
	uv sync --locked

run: install
	scripts/run

lint: install
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy

# Docker engine and, when KAFKA_IMAGE is local, the images; skipped with KAFKA_BOOTSTRAP_SERVERS.
test-env:
	@if [[ -z "$${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then \
	  scripts/docker-engine; \
	  if [[ "$(KAFKA_IMAGE)" == localhost/* ]]; then scripts/build-images; fi; \
	fi

test: lint test-env
	@status=0; KAFKA_IMAGE=$(KAFKA_IMAGE) PYTHON_BASE_IMAGE=$(PYTHON_BASE_IMAGE) TESTCONTAINERS_RYUK_DISABLED=true \
	  TESTCONTAINERS_HOST_OVERRIDE=localhost uv run pytest $(PYTEST_ARGS) || status=$$?; \
	  if [[ $$status -eq 5 ]]; then echo "pytest collected no tests"; status=0; fi; exit $$status

# All contenders against a fresh local broker; writes bench/results and docs/benchmarks.md.
BENCH_RECORDS ?= 200000
bench: install
	uv run python -m bench.run --records $(BENCH_RECORDS) --docs

# A small run that keeps the benchmark working (CI); results go to a temporary folder.
bench-smoke: install
	uv run python -m bench.run --records 2000 --out "$$(mktemp -d)"

# The committed AsyncAPI document; tests/unit/test_docs.py fails when it is stale.
docs: install
	scripts/asyncapi docs/asyncapi.yaml

kafka-up:
	scripts/kafka up

kafka-down:
	scripts/kafka down
