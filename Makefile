# Two commands: `make up` runs the main job on the embedded broker, `make test` runs the whole suite.
# Both install what they need into .venv first (Python 3.11+, pip and make are all a machine needs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/ketenbus up --scenario national

test: $(STAMP)
	$(BIN)/ruff check broker schemas adapters tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -ra

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ketenbus
