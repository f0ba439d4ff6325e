# `make test` is the README's test command and what CI runs: it installs everything into
# .venv, checks style and types, then runs the whole suite on SQLite and on PostgreSQL.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install test lint demo

$(BIN)/allegiance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/allegiance

install: $(BIN)/allegiance

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: install lint
	PG_TEST_URL=$(PG_TEST_URL) BIN=$(BIN) scripts/test

demo: install
	$(BIN)/allegiance demo
