# Two commands: `make up` runs the main job on the embedded broker, `make test` runs the whole suite.
# Both install what they need into .venv first (Python 3.11+, pip and make are all a machine needs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint install clean chromium promtool amtool

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/ketenbus up --scenario national

# The browser tests drive Debian's chromium through the Python playwright package (Playwright's
# own browser download is not reachable from the build machines); install it when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The alert rules are checked with promtool, from Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

# The Alertmanager config is checked with amtool, from Debian's prometheus-alertmanager package.
amtool:
	@command -v amtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; }

test: $(STAMP) chromium promtool amtool
	$(BIN)/ruff check broker schemas adapters tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	KETENBUS_TEST_REQUIRE_BROWSER=1 KETENBUS_TEST_REQUIRE_PROMTOOL=1 KETENBUS_TEST_REQUIRE_AMTOOL=1 \
	  $(BIN)/python -m pytest -ra

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .ketenbus
