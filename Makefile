# perflake: `make run` brings up the demo, `make test` runs the suite. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
LAKE ?= demo-lake
PORT ?= 9092
APP_PORT ?= 8501
DAYS ?= 60
SEED ?= 7
TOPIC ?= perf.job-events
export PYTHONUNBUFFERED := 1

.PHONY: help setup run test check lint format typecheck bench bench-ingest bench-app bench-compare bench-report clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/perflake: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	@# --inexact keeps uv itself, which lives in the same environment and is not in the lock.
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --frozen --inexact --compile-bytecode --python $(BIN)/python
	@touch $@

setup: $(BIN)/perflake ## Create .venv from uv.lock with the project (editable) and dev tools

run: setup ## Broker + demo studio + ingest + the app on http://localhost:$(APP_PORT)
	@$(BIN)/perflake demo --lake $(LAKE) --port $(PORT) --days $(DAYS) --seed $(SEED) --app-port $(APP_PORT)

test: setup ## Run the whole test suite (unit, broker integration, browser)
	@$(BIN)/pytest

check: setup ## Format check, lint, type check, import boundary and tests
	@$(BIN)/ruff format --check .
	@$(BIN)/ruff check .
	@$(BIN)/mypy app ingest lake queries
	@$(BIN)/pytest

format: setup ## Reformat the code
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

bench: bench-ingest bench-app bench-compare bench-report ## Run every benchmark

bench-ingest: setup ## Ingest rate vs a bare kafka-python consumer, RSS, Parquet vs JSON bytes
	@$(BIN)/python -m tests.bench.bench_ingest

bench-app: setup ## Every page's queries over a 10M-job, 365-day lake, cold and warm, vs pandas
	@$(BIN)/python -m tests.bench.bench_app

bench-compare: setup ## How often the comparison verdict is right on simulated workflow pairs
	@$(BIN)/python -m tests.bench.bench_compare

bench-report: setup ## 30-day PDF performance report over a 1M-job lake, cold and warm, vs reading the period into Polars
	@$(BIN)/python -m tests.bench.bench_report

clean: ## Remove the virtual environment and the demo lake
	rm -rf $(VENV) $(LAKE)
