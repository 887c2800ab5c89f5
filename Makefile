# The two commands of the README: `make train` (the main job) and `make test` (lint, types, then the test suite).
# Each sets up .venv first if pyproject.toml or the set-up script changed since the last time.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup train demo lint test bench

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

setup: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/grpo train

demo: $(STAMP)
	$(PY) -m grpo_envs.demo

# ruff (lint + format) and mypy, as CI runs them before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q
