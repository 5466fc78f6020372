# The two set-up commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else a private copy in .tools/ (pip into a venv works on every Python 3.11+,
# where `pip install --user` is refused by Debian's externally managed Python).
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: all install demo test check lint typecheck imports pytest clean

all: test

.tools/bin/uv:
	@echo "uv not found on PATH: installing it into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/fin-agent demo --dashboard

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy --strict over src/, tests/, dashboard/, bench/ and tools/ (pyproject's [tool.mypy] files)
typecheck: install
	$(VENV)/bin/mypy

# import-linter's allow-list contracts (pyproject's [tool.importlinter], tools/import_contracts.py)
imports: install
	$(VENV)/bin/lint-imports

# Two workers (pytest-xdist): every test that needs a server starts its own or uses its own
# schema, so they run side by side; PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= 2

pytest: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS)

check: lint typecheck imports pytest

test: check

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache
