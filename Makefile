# llmops: `make run` (try it, no services needed) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# `make run` is a developer's server: DEBUG on, SQLite, eager Celery, local-memory cache.
# Only the targets that serve or seed get it; tests and benchmarks keep their own settings.
DEV_ENV := DEBUG=1

.PHONY: run install lock migrate demo test test-fast browser lint check bench screenshots clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs are reproducible: every dependency comes pinned and hash-checked from
# requirements.lock (made from pyproject.toml by `make lock`); the project itself is then
# installed without dependencies. The stamp records a finished install; it is redone when
# pyproject.toml or the lock changes.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Re-pin after changing dependencies in pyproject.toml (needs the package index).
lock: | $(BIN)/python
	$(BIN)/pip install -q 'uv>=0.13,<0.14'
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--no-header -o requirements.lock

install: $(VENV)/.installed

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

demo: migrate
	$(DEV_ENV) $(BIN)/python manage.py demo

run: demo
	@echo "llmops on http://127.0.0.1:$(PORT)/  (log in as acme-admin / demo)"
	$(DEV_ENV) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	LLMOPS_TESTING=1 $(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	LLMOPS_TESTING=1 $(BIN)/pytest -m "not browser and not worker" $(PYTEST_ARGS)

browser: install
	LLMOPS_TESTING=1 $(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

check: lint
	LLMOPS_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run

bench: install
	$(BIN)/python benchmarks/run.py $(BENCH)

screenshots: install
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-results
