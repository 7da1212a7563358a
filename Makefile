# mlobs: the targets humans and CI share. `make run` and `make test` set everything up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MLOBS  := $(BIN)/mlobs
export DATA_DIR  ?= data
export MODEL_DIR ?= models
MODELS := fraud price churn
MODEL_FILES := $(foreach m,$(MODELS),$(MODEL_DIR)/$(m)/metadata.json)
PROFILE_FILES := $(foreach m,$(MODELS),$(MODEL_DIR)/$(m)/reference.json)

.PHONY: help dev dev-pip run run-api run-api-dev generate-data train-models setup-reference models test test-unit \
        test-integration lint format bench bench-drift bench-http bench-load bench-feedback bench-catalog bench-ingest bench-client docker-up docker-down docker-logs clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# The environment: uv installs the locked set. uv on PATH is used; without it, uv is installed
# into the venv first (ensurepip covers venvs made without pip, such as uv's own).
UV := $(or $(shell command -v uv 2>/dev/null),$(BIN)/uv)

$(BIN)/.installed: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@command -v uv >/dev/null 2>&1 || test -x $(BIN)/uv || { \
	  $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check uv; }
	$(UV) sync --frozen --extra dev --inexact --compile-bytecode --python $(BIN)/python
	@touch $@

dev: $(BIN)/.installed ## Create .venv with the package and its development tools (uv, locked)

dev-pip: ## The same with plain pip, unlocked (slower)
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -e ".[dev]" && touch $(BIN)/.installed

$(MODEL_DIR)/%/metadata.json: | $(BIN)/.installed
	$(MLOBS) train-models --model $* --only-missing

$(MODEL_DIR)/%/reference.json: $(MODEL_DIR)/%/metadata.json
	$(MLOBS) setup-reference --model $* --only-missing

models: $(MODEL_FILES) $(PROFILE_FILES) ## Train the models and build the reference profiles that are missing

generate-data: $(BIN)/.installed ## Generate the synthetic data sets into DATA_DIR
	$(MLOBS) generate-data

train-models: $(BIN)/.installed ## (Re)train all three models (and their reference profiles)
	$(MLOBS) train-models

setup-reference: $(BIN)/.installed ## (Re)build the reference profiles of the trained models
	$(MLOBS) setup-reference

run: models ## Set up whatever is missing, then serve the API on port 8000
	$(MLOBS) serve --port 8000

run-api: models ## Serve the API on port 8000
	$(MLOBS) serve --host 0.0.0.0 --port 8000

run-api-dev: models ## Serve the API on port 8000 with hot reload
	$(MLOBS) serve --port 8000 --reload

test: $(BIN)/.installed ## Run the whole test suite
	$(BIN)/pytest

test-unit: $(BIN)/.installed ## Run the unit tests
	$(BIN)/pytest tests/unit

test-integration: $(BIN)/.installed ## Run the integration tests
	$(BIN)/pytest tests/integration

lint: $(BIN)/.installed ## ruff, ruff format --check, mypy (strict) and the import layers
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(BIN)/.installed ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests scripts benchmarks
	$(BIN)/ruff format src tests scripts benchmarks

bench: $(BIN)/.installed ## In-process model benchmarks (figures in benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/bench_models.py

bench-drift: $(BIN)/.installed ## Drift detection quality, check() speed, live-window cost
	$(BIN)/python benchmarks/bench_drift.py

bench-load: $(BIN)/.installed models ## 60 s at half saturation, then a graceful stop (needs wrk)
	$(BIN)/python benchmarks/bench_load.py

bench-catalog: $(BIN)/.installed ## Registration time, single-row ONNX/skops against their libraries, hot-registration delay
	$(BIN)/python benchmarks/bench_catalog.py

bench-ingest: $(BIN)/.installed ## POST /models/{name}/predictions throughput against a bare insert
	$(BIN)/python benchmarks/bench_ingest.py

bench-client: $(BIN)/.installed ## What mlobs.client's log() costs the caller, live and with the service away
	$(BIN)/python benchmarks/bench_client.py

bench-feedback: $(BIN)/.installed ## Label ingestion, label processing and the performance summary
	$(BIN)/python benchmarks/bench_feedback.py

bench-http: $(BIN)/.installed models ## HTTP benchmark against an echo route (needs wrk)
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
	$(BIN)/python benchmarks/bench_http.py

docker-up: ## Build and start the full stack (API, PostgreSQL, Prometheus, Alertmanager, Grafana)
	docker compose up -d --build

docker-down: ## Stop the stack
	docker compose down

docker-logs: ## Follow the stack's logs
	docker compose logs -f

clean: ## Remove the environment, generated data and models
	rm -rf $(VENV) $(DATA_DIR) $(MODEL_DIR) .pytest_cache .mypy_cache .ruff_cache htmlcov .coverage
