# The README's two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run run-cluster test test-fast lint format bench bench-smoke bench-answers security train-router clean help zendesk-build zendesk-package

help:
	@echo "make run          run the assistant on the embedded defaults (http://127.0.0.1:8080)"
	@echo "make test         install test extras and run the whole test suite"
	@echo "make run-cluster  two instances behind nginx (sticky sessions): 8080 -> 8081, 8082"
	@echo "make bench        benchmarks; reports in bench/results/"
	@echo "make bench-smoke  every benchmark at toy scale (seconds each), reports in a temp dir"
	@echo "make bench-answers  end-to-end answer benchmark (dev + test cases); bench/results/answers.md"
	@echo "make security     security suite (JWT, isolation, fuzzing, rate limits); report in bench/results/"
	@echo "make lint         ruff"
	@echo "make zendesk-build    rebuild the sidebar bundle (needs node + npm; the bundle is committed)"
	@echo "make zendesk-package  validate the Zendesk app manifest and zip it (PUBLIC_URL=https://...)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, pinned to the CPU wheel on this machine's disk: a looser request pulls a CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[test]"
	@touch $@

run: $(VENV)/.installed
	$(BIN)/sidebar-assistant run

run-cluster: $(VENV)/.installed
	$(BIN)/sidebar-assistant run-cluster

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -ra -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run_all

bench-smoke: $(VENV)/.installed-test
	$(BIN)/python -m bench.run_all --smoke

# Every labelled agent question over the demo tenant, asked through Socket.IO and scored (bench/answers).
bench-answers: $(VENV)/.installed-test
	$(BIN)/python -m bench.answers --split all

# Reproduces the FunctionGemma router's LoRA adapter for the built-in agents (CPU: minutes per epoch).
train-router: $(VENV)/.installed-test
	$(BIN)/python -m orchestrator.routing.functiongemma.train --output-dir orchestrator/routing/functiongemma/adapters/demo --epochs 2 --eval store/demo_data/eval/routing_queries.jsonl

security: $(VENV)/.installed-test
	$(BIN)/python -m bench.security_suite

# Reliability suites (docs/reliability.md); reports in bench/results/load.* and chaos.*
load: $(VENV)/.installed-test
	$(BIN)/python -m bench.load_suite $(LOAD_ARGS)

chaos: $(VENV)/.installed-test
	$(BIN)/python -m bench.chaos_suite $(CHAOS_ARGS)

# The sidebar's front-end: zendesk_app/src -> backend/static/sidebar (committed, so `make run` needs no node).
zendesk-build:
	cd zendesk_app && npm ci --no-audit --no-fund --ignore-scripts && node build.mjs

# Validates manifest.json against Zendesk's manifest rules, then zips the app for upload.
zendesk-package:
	$(PYTHON) zendesk_app/tools/package.py $(if $(PUBLIC_URL),--url $(PUBLIC_URL))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
