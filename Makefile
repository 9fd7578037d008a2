# One way to do each thing; the README and .ci/run call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VALIDATORS := tests/validators/node_modules/.package-lock.json
VIEWER_MODULES := viewer/node_modules/.package-lock.json
VIEWER := viewer/dist/index.html
VIEWER_SOURCES := $(shell find viewer/src -type f 2>/dev/null) viewer/build.mjs

.PHONY: demo test lint format bench services clean viewer

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("arserver needs Python 3.11 or newer; found " + sys.version.split()[0] + " (set PYTHON=...)") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(VALIDATORS): tests/validators/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/validators --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the glTF validator tests will be skipped"; \
	fi

$(VIEWER_MODULES): viewer/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix viewer --no-audit --no-fund --loglevel=error; \
	fi

# The web viewer (three.js + 3d-tiles-renderer from the npm registry, locked); without Node.js
# the server runs without it and /viewer says how to build it.
viewer: $(VIEWER)
$(VIEWER): $(VIEWER_MODULES) $(VIEWER_SOURCES)
	@if command -v npm >/dev/null 2>&1; then \
		npm run --prefix viewer --silent build; \
	else \
		echo "Node.js and npm not found: the viewer is not built (install Node.js 20+ with npm,"; \
		echo "e.g. apt-get install nodejs npm, then run make viewer); everything else works without it"; \
	fi

demo: $(STAMP) viewer
	$(BIN)/arserver demo

test: $(STAMP) $(VALIDATORS) viewer
	$(BIN)/python -m pytest --cov --cov-report=term

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/crs_rd_to_ecef.py
	$(BIN)/python bench/tiles_points.py
	$(BIN)/python bench/tiles_mesh.py
	$(BIN)/python bench/tiles_gis.py
	$(BIN)/python bench/ingest.py

services: $(STAMP)
	bash scripts/services.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache viewer/node_modules viewer/dist viewer/dist-testing
