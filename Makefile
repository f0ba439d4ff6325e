# `make test` is the README's test command and what CI runs: it installs everything into
# .venv, checks style and types, then runs the whole suite on SQLite and on PostgreSQL.
# lifetimes (without its dependencies) ships the CDNOW data set of the demo and the CLV tests;
# only its data files are read.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install test lint demo

$(BIN)/allegiance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps lifetimes==0.11.3
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
