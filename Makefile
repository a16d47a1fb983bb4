# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Each step leaves a stamp, so a second run skips what is already done.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup browser services demo console test test-fast test-distributed lint bench bench-distributed soak clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,distributed]'
	@touch $(STAMP)

setup: $(STAMP) browser

browser: $(STAMP)
	@bash scripts/ensure-browser.sh $(PY)

# redis-server and PostgreSQL from Debian, for the distributed tests (they start their own).
services:
	@bash scripts/ensure-services.sh

demo: setup
	$(PY) scripts/demo.py

console: setup
	$(PY) scripts/console_demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The suite in TEST_WORKERS processes (pytest-xdist; each has its own mock portal, Redis and
# PostgreSQL). Most tests wait on Chromium, the portal or a subprocess, so four processes
# keep two cores busy. TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 4
test: setup services lint
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

# The fast loop (under a minute): lint, types, and every test that needs neither Chromium
# nor Redis/PostgreSQL: the decision table, profiles, jobs, configuration, the ledger on
# SQLite, the CLI in-process (click's runner), reports, the mock portal over HTTP.
test-fast: setup lint
	$(PY) -m pytest -q -m "not browser and not e2e and not distributed and not soak" \
		--durations=10 tests

test-distributed: setup services
	$(PY) -m pytest -m distributed tests

soak: setup services
	$(PY) -m pytest -m soak tests

# QUICK=1: about 3 minutes; CHROMIUM=PATH: the browser dhbot runs (default: its own pick).
bench: setup
	$(PY) bench/run.py $(if $(QUICK),--quick,) $(if $(CHROMIUM),--chromium $(CHROMIUM),)

bench-distributed: setup services
	$(PY) bench/distributed.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) state runs demo/runs demo/.state .pytest_cache .mypy_cache .ruff_cache
