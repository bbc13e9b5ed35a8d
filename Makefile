# OmniRoute — the two commands: `make run` (install + start) and `make test` (install + full test suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 20128
HOST ?= 0.0.0.0
WORKERS ?= 1

.PHONY: install install-dev run serve dev migrate test lint typecheck pytest bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Idempotent: re-installs only when a requirements file changed.
$(VENV)/.base-installed: requirements/base.txt | $(VENV)/bin/python
	$(PIP) install --quiet --progress-bar on -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet --progress-bar on -r requirements/dev.txt
	touch $(VENV)/.base-installed $@

install: $(VENV)/.base-installed

install-dev: $(VENV)/.dev-installed

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --noinput -v 0

# Production server: uvicorn + uvloop + httptools, WORKERS processes.
serve: migrate
	$(VENV)/bin/uvicorn omniroute_site.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --loop uvloop --http httptools --no-access-log --no-proxy-headers \
		--timeout-graceful-shutdown 30 --lifespan on

run: serve

# Development server (Daphne via runserver, auto-reload).
dev: migrate
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy .

pytest: install-dev
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
