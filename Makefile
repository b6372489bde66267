# The README's two commands: `make test` and `make book`. Both set up .venv first (idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= sample
STAMP := $(VENV)/.m3el-installed
# pip prints a warning for every missing local index folder; they are noise here.
QUIET_PIP := { grep -v 'is neither a file nor a directory' || true; }

.PHONY: setup browser test book bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP)
	@touch $@

# The browser test (tests/test_browser.py) opens the built book in Debian's headless Chromium, driven by
# Playwright (pinned in requirements.txt); Playwright's own browser download is not used.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup browser
	$(PY) -m pytest

# Executes the notebooks that changed (papermill, dependency-keyed cache), builds the book strictly.
book: setup
	$(VENV)/bin/m3el book --profile $(PROFILE)

bench: setup
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
