# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Each step leaves a stamp, so a second run skips what is already done.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup browser demo test lint bench soak clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP) browser

browser: $(STAMP)
	@bash scripts/ensure-browser.sh $(PY)

demo: setup
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest

soak: setup
	$(PY) -m pytest -m soak tests

bench: setup
	$(PY) bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) state runs demo/runs demo/.state .pytest_cache .mypy_cache .ruff_cache
