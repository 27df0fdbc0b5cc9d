# llmops: `make run` (try it, no services needed) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DEBUG ?= 1

.PHONY: run install migrate demo test test-fast browser lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo

run: demo
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	LLMOPS_TESTING=1 $(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	LLMOPS_TESTING=1 $(BIN)/pytest -m "not browser and not worker" $(PYTEST_ARGS)

browser: install
	LLMOPS_TESTING=1 $(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-results
