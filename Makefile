# The two set-up commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: all install demo test check lint typecheck imports pytest clean

all: test

$(UV):
	@echo "uv not found: installing it for this user"
	$(PYTHON) -m pip install --user --quiet uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/fin-agent demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

imports: install
	$(VENV)/bin/lint-imports

pytest: install
	$(VENV)/bin/pytest

check: lint typecheck imports pytest

test: check

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
