# Visor: `make demo` to try it, `make test` to check it. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_DEPS := frontend/node_modules/.installed
UI := src/visor/static/index.html
UI_SOURCES := $(wildcard frontend/src/*) frontend/index.html frontend/vite.config.ts frontend/tsconfig.json

.PHONY: setup demo test lint serve clean openapi

# The Python packages and the web UI install side by side.
MAKEFLAGS += --jobs=2

setup: $(STAMP) $(UI)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,openvino]' -c constraints.txt
	# fast-hdbscan's numba code compiled once here (~40 s on 2 cores) and cached beside it,
	# rather than in the first `visor clusters` job
	$(BIN)/python -c "import numpy, fast_hdbscan; fast_hdbscan.HDBSCAN(min_cluster_size=10, min_samples=10).fit_predict(numpy.random.default_rng(0).random((500, 2)))"
	touch $(STAMP)

# The web UI: installed from the lock file, built into the Python package (served at /).
$(UI_DEPS): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $(UI_DEPS)

$(UI): $(UI_DEPS) $(UI_SOURCES)
	cd frontend && npm run --silent build -- --logLevel warn

# The UI tests drive Debian's Chromium (Playwright's own browser downloads are not used).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

demo: setup
	$(BIN)/visor demo

serve: setup
	$(BIN)/visor serve

# What the operations' models make and the repository keeps: the OpenAPI document the UI's
# types come from, and the README's table of operations.
openapi: setup
	$(BIN)/python -m visor.api.schema frontend/openapi.json README.md

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the layers (pyproject.toml) import only downwards
	@# No module over 500 lines: one that grows past it is split by what it does.
	@find src/visor -name '*.py' | xargs wc -l | awk '$$2 != "total" && $$1 > 500 \
		{ print $$2 ": " $$1 " lines (500 at most)"; bad = 1 } END { exit bad }'
	$(BIN)/python -m visor.api.schema frontend/openapi.json README.md --check
	cd frontend && npm run --silent typecheck

test: lint $(CHROMIUM)
	cd frontend && npm test --silent
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

clean:
	rm -rf $(VENV) visor-data frontend/node_modules src/visor/static
