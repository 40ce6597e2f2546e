# Two commands for a newcomer: `make up` (the main job) and `make test` (every gate and test).
VENV ?= .venv
PY := $(VENV)/bin/python
NODE_DIR := tests/interop/node
PIP_VERSION := 25.3

.PHONY: setup venv node services test check root-help up bench clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip==$(PIP_VERSION)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

node: $(NODE_DIR)/node_modules/.installed
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

services:
	bash scripts/ensure-services.sh

setup: venv node

check: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

test: setup services check
	$(VENV)/bin/pytest -q

root-help: venv  # after changing the command tree: the cached `tarscascade --help`
	$(PY) -m tarscascade.cli.app
	$(VENV)/bin/ruff format src/tarscascade/cli/root_help.py

up: venv
	$(VENV)/bin/tarscascade up

bench: venv
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
