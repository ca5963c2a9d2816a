# The two commands of the README: `make run` (the main job, on the core install) and `make test`
# (the whole suite, with every extra). Both create .venv on first use and reinstall when
# pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-test

.PHONY: run test lint install bench clean

run: $(CORE)
	$(BIN)/strata

test: $(FULL) lint
	$(BIN)/python -m pytest

lint: $(FULL)
	$(BIN)/ruff check strata tests benchmarks

install: $(FULL)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e .
	touch $@

$(FULL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test]'
	touch $@ $(CORE)

bench: $(FULL)
	$(BIN)/python benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
