# The two commands: `make analyze MUSIC=<dir> [DB=<file>]` and `make test`.
# Each sets up what it needs first: uv (installed into .tools/ when missing) and the locked
# environment in .venv/.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
DB ?= playlista.duckdb
MUSIC ?=

export UV_PYTHON_DOWNLOADS := never
# Trust the machine's certificate store (a proxy's CA lives there), as pip does.
export UV_SYSTEM_CERTS := true

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

.PHONY: setup analyze test lint

setup: .venv/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==0.13.9"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python "$(PYTHON)"
	touch $@

analyze: setup
	@if [ -z "$(MUSIC)" ]; then echo "usage: make analyze MUSIC=<dir> [DB=<file>]" >&2; exit 2; fi
	.venv/bin/playlista analyze $(MUSIC) --db "$(DB)"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: lint
	.venv/bin/pytest
