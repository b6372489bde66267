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

.PHONY: setup test book bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP)
	@touch $@

test: setup
	$(PY) -m pytest

book: setup
	@echo "The book is not built yet (see issue 7); set-up finished."

bench: setup
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
