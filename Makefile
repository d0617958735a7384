# calsync — one entry point for setup, tests, the local stack and the demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TASKS_VENV := .venv-tasks
CHECKOV_VENV := .venv-checkov
TOOLS_VENV := .venv-tools
PIP := -m pip install -q --disable-pip-version-check
SEEDS ?= 100

.PHONY: lock audit setup test lint typecheck pytest up down demo bundle bench chaos clock-sweep clean

# The runtime comes from the hashed lock (what the bundles deploy); dev tools are added after it and
# may not move a locked version: the lock is installed again, then pip checks the whole venv.
$(VENV)/.stamp: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP) --require-hashes -r requirements.txt
	$(PY) $(PIP) -r requirements-dev.txt
	$(PY) $(PIP) --require-hashes --no-deps -r requirements.txt
	$(PY) $(PIP) --no-deps -e .
	$(PY) -m pip check
	touch $@

$(TASKS_VENV)/.stamp: requirements-tasks.txt
	test -x $(TASKS_VENV)/bin/python || $(PYTHON) -m venv $(TASKS_VENV)
	$(TASKS_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-tasks.txt
	touch $@

$(CHECKOV_VENV)/.stamp: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(TOOLS_VENV)/.stamp: requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python $(PIP) -r requirements-tools.txt
	touch $@

setup: $(VENV)/.stamp $(TASKS_VENV)/.stamp $(CHECKOV_VENV)/.stamp ## create .venv (app + dev), .venv-tasks (Cloud Tasks emulator) and .venv-checkov

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup $(VENV)/.bench-stamp  # bench/ is checked against its reference libraries (gcal_sync)
	$(VENV)/bin/mypy shared functions devstack bench scripts

pytest: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest ## setup if needed, then ruff, mypy and the whole test suite

up: setup ## start the local stack (emulators + functions) on 127.0.0.1
	$(PY) -m devstack up

down: ## stop exactly what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "nothing to stop"; fi

demo: setup ## run the main job locally on emulators
	$(PY) -m devstack demo

bundle: setup ## build the Cloud Functions source zips into build/
	$(PY) scripts/bundle.py

$(VENV)/.bench-stamp: $(VENV)/.stamp requirements-bench.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench: setup $(VENV)/.bench-stamp ## benchmarks on the local stack (BENCH_ARGS=--full for P5 6,000 / P6 10,000 / P8 10,000)
	$(PY) -m bench $(BENCH_ARGS)

chaos: setup ## chaos convergence runs
	$(PY) -m devstack.chaos --seeds $(SEEDS)

clock-sweep: setup ## the unit, function and demo tests with the clock moved to 8 instants (needs faketime)
	scripts/clock_sweep.sh $(PYTEST_ARGS)

lock: $(TOOLS_VENV)/.stamp ## rewrite requirements.txt: every runtime dependency of requirements.in, pinned with hashes
	$(TOOLS_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file=requirements.txt requirements.in

audit: $(TOOLS_VENV)/.stamp ## pip-audit of the runtime lock (says so, without failing, when no advisory service answers)
	$(TOOLS_VENV)/bin/python scripts/audit.py requirements.txt

clean: down
	rm -rf build .devstack .pytest_cache .mypy_cache .ruff_cache
