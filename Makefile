# The two commands of the README: `make run` (embedded product) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SERVER ?= daphne
# Where agents in sandboxes reach this server's agent API.
OZWEB_AGENT_API_URL ?= http://$(HOST):$(PORT)
export OZWEB_AGENT_API_URL

.PHONY: run test lint bench

# `make run` needs the product only; `make lint` also its checkers (the `lint` extra).
$(VENV)/.installed-lint: EXTRAS := [lint]
$(VENV)/.installed $(VENV)/.installed-lint: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.$(EXTRAS)'
	touch $@

# Embedded default: SQLite, in-process channel layer and worker, Docker if reachable.
run: $(VENV)/.installed
	@# With a reachable engine, runs need the harness image: built once offline, then cached.
	@if docker info >/dev/null 2>&1; then $(BIN)/python manage.py build_harness_image \
	  || echo "The harness image could not be built; runs in Docker fail until it is."; fi
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)/
	@# SERVER=uvicorn serves the same app with uvicorn's websockets protocol (README: Speed).
	@if [ "$(SERVER)" = uvicorn ]; then \
	  exec $(BIN)/uvicorn --host $(HOST) --port $(PORT) --ws websockets ozweb.asgi:application; \
	else exec $(BIN)/daphne -b $(HOST) -p $(PORT) ozweb.asgi:application; fi

# Installs what the tests need (Python deps, Chromium, ...) and runs the whole suite.
test:
	bash scripts/test.sh

# Style, types (mypy with the Django and DRF plugins) and the app layers (import-linter).
lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench:
	$(BIN)/python -m bench.feed
