# sagelake — the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := PYTHONPATH=plugins:. $(BIN)/python

.PHONY: venv demo test test-unit test-integration test-e2e lint up down status clean lock benchmark explore package

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

# The framework containers' pinned versions (sagelake.local.framework_env): local jobs and endpoints run
# on them, not on the venv's. Rebuilt when the pins change; reused offline afterwards.
FRAMEWORKS := $(VENV)/frameworks/.built

$(FRAMEWORKS): $(STAMP) plugins/sagelake/local/framework_env.py
	$(RUN) -m sagelake.local.framework_env
	@mkdir -p $(dir $(FRAMEWORKS)) && touch $(FRAMEWORKS)

# checkov lints include/infra/ (tests/unit/include/test_infra_templates.py) from its own environment: its
# pins conflict with cfn-lint's in the project venv.
CHECKOV := $(VENV)/tools/checkov/bin/checkov

$(CHECKOV): requirements-checkov.txt $(STAMP)
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(VENV)/tools/checkov
	$(BIN)/uv pip install --quiet --python $(VENV)/tools/checkov/bin/python -r requirements-checkov.txt
	@touch $(CHECKOV)

venv: $(STAMP) $(FRAMEWORKS) $(CHECKOV)

demo: venv  ## start the local stack, run the whole pipeline, print the result
	$(RUN) -m devstack.demo

# Test files run side by side on every core (pytest-xdist, one file per worker at a time: a module's
# fixtures are built once; tests/e2e/live/ is one unit, its tests share a live stack: tests/support/
# xdist_units.py), in collection order: the slow end-to-end units first, not last (xdist's default puts
# units with few tests, i.e. those, at the end). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: venv  ## the whole test suite, offline: unit, integration and end-to-end tiers
	$(BIN)/python -m pytest $(XDIST)

test-unit: venv  ## the fast tier alone: no servers, no Spark
	$(BIN)/python -m pytest $(XDIST) tests/unit

test-integration: venv  ## against the moto server fixture and the local engines
	$(BIN)/python -m pytest $(XDIST) tests/integration

test-e2e: venv  ## DAG runs against a local control plane, and a real Airflow stack
	$(BIN)/python -m pytest $(XDIST) tests/e2e

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

up: venv
	$(RUN) -m devstack.stack up

down:  ## stop what `make demo`/`make up` started (by recorded PID)
	@if [ -x $(BIN)/python ]; then $(RUN) -m devstack.stack down; fi

status: venv
	$(RUN) -m devstack.stack status

clean: down  ## remove all local state (.local/)
	rm -rf .local

lock: venv  ## re-resolve the pinned requirements from requirements*.in
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in --python-version 3.11 --no-header -o requirements-dev.txt

explore: venv  ## an exploration query: make explore ARGS="churn_by_plan_region --start 2026-01-01 --end 2026-01-07"
	$(RUN) -m devstack.explore $(ARGS)

benchmark: venv
	$(RUN) benchmarks/run.py

# Standard library only: no venv needed. ARGS="--set SAGELAKE_BUCKET=my-lake" bakes settings into startup.sh.
package:  ## dist/mwaa/: DAGs folder, plugins.zip, requirements.txt, startup.sh for Amazon MWAA (docs/mwaa.md)
	$(PYTHON) -m devstack.mwaa_package $(ARGS)
