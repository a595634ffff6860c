# testfleet: `make up` runs a hub with one local agent; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= .testfleet
PORT ?= 8470

.PHONY: up test check lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[hub,dev]'
	touch $(STAMP)

## up: start the hub (SQLite in $(DATA_DIR)) and one local agent; Ctrl-C stops both
up: $(STAMP)
	$(BIN)/testfleet up --data-dir $(DATA_DIR) --port $(PORT)

## test: lint, type-check, then the whole test suite
test: check
	$(BIN)/python -m pytest

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

PEERS := .venv-peers/.installed

$(PEERS): benchmarks/peers/requirements-buildbot.txt
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -r benchmarks/peers/requirements-buildbot.txt
	touch $(PEERS)

## bench: the figures in docs/performance.md (with the Buildbot peer, in its own venv)
bench: $(STAMP) $(PEERS)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
