# The two set-up commands are `make up` and `make test`; both bootstrap .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./.kiln

.PHONY: install up test check lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock scripts/bootstrap.sh
	PYTHON=$(PYTHON) bash scripts/bootstrap.sh
	@touch $@

up: install
	$(BIN)/kiln up --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --demo

test: install
	bash scripts/check.sh

check: test

lint: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python -m bench.foundation
	$(BIN)/python -m bench.clusters
	$(BIN)/python -m bench.pools
	$(BIN)/python -m bench.execution
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.tables
	$(BIN)/python -m bench.ml
	$(BIN)/python -m bench.web --latency

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
