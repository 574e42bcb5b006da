# The front door: each target is a few lines calling real tools.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# Temporary files (pytest's tmp_path, service logs, mktemp) stay in the repository.
export TMPDIR := $(CURDIR)/.cache/tmp
$(shell mkdir -p .cache/tmp)
# The images of the tests: scripts/images takes the official ones (apache/kafka:<kafka.version>,
# the Dockerfile's python base) where they can be pulled, else builds the local ones. Set either
# to choose, e.g. `make test KAFKA_IMAGE=localhost/kafka:<version>`.
KAFKA_IMAGE ?=
PYTHON_BASE_IMAGE ?=
PYTEST_ARGS ?=


.PHONY: install run test lint check test-env docs bench bench-smoke kafka-up kafka-down

install:
	@command -v uv >/dev/null || python3 -m pip install --quiet uv
	@uv sync --locked --quiet

# Quiet: when the broker cannot start, its one line is the last thing printed before make's own.
run: install
	@scripts/run

# Style, types and the import contracts of pyproject.toml ([tool.importlinter]); then the Helm
# chart, offline: helm lint and helm template of both values files, the rendered objects against
# the Kubernetes and the vendored CRD schemas, and the service's own rules (scripts/helm check,
# deploy/helm/check.py; the pinned helm is built from the Go module proxy the first time).
lint: install
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy
	uv run mypy deploy/helm/check.py deploy/schemas/vendor.py
	uv run lint-imports --no-cache
	scripts/helm check

# What to run before a commit: lint, types and the unit tests, in well under a minute.
check: lint
	uv run pytest tests/library tests/service tests/bench tests/deploy -q -p no:cacheprovider

# Docker engine and the images (pulled, or built where that fails); skipped with
# KAFKA_BOOTSTRAP_SERVERS. Prints the choice as `export KAFKA_IMAGE=...` lines.
TEST_ENV = if [[ -z "$${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then scripts/images; fi
test-env:
	@$(TEST_ENV)

# The alerting rules: valid (promtool check rules), and each alert's firing and quiet cases in
# deploy/prometheus/alerts.test.yml (promtool test rules). promtool is Debian's, installed when missing.
.PHONY: alerts
alerts:
	@scripts/prometheus install
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml

test: lint alerts
	@set -eo pipefail; images=$$($(TEST_ENV)); eval "$$images"; \
	  find "$$TMPDIR" -maxdepth 1 -type f -mtime +1 -delete; \
	  status=0; TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost \
	  scripts/test $(PYTEST_ARGS) || status=$$?; \
	  if [[ $$status -eq 5 ]]; then echo "pytest collected no tests"; status=0; fi; exit $$status

# All contenders against a fresh local broker; writes bench/results and docs/benchmarks.md.
BENCH_RECORDS ?= 200000
bench: install
	uv run python -m bench.throughput --records $(BENCH_RECORDS) --docs

# A small run that keeps the benchmark working (CI); results go to a temporary folder, removed after.
bench-smoke: install
	out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; uv run python -m bench.throughput --records 2000 --out "$$out"

# Broker, service and database faults on an own 3-node cluster (brokers 127.0.0.1:20392-20394) and,
# for scenarios 7 and 8, an own PostgreSQL (127.0.0.1:20432), both taken down after; writes
# docs/reliability.md, keeps logs and verify output in .cache/chaos/<time>.
.PHONY: chaos
CHAOS_ORDERS ?= 100000
chaos: install
	uv run python -m bench.chaos --orders $(CHAOS_ORDERS) --scenarios 1,2,3,4,5,6,7,8,9,10,11,12,13 --out docs/reliability.md

# The committed AsyncAPI document; tests/unit/test_docs.py fails when it is stale.
docs: install
	scripts/asyncapi docs/asyncapi.yaml

kafka-up:
	scripts/kafka up

kafka-down:
	scripts/kafka down
