# sagelake — the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := PYTHONPATH=plugins $(BIN)/python

.PHONY: venv demo test lint up down status clean lock benchmark

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: venv  ## start the local stack, run the whole pipeline, print the result
	$(RUN) -m sagelake.local.demo

test: venv  ## the whole test suite, offline
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

up: venv
	$(RUN) -m sagelake.local.stack up

down:  ## stop what `make demo`/`make up` started (by recorded PID)
	@if [ -x $(BIN)/python ]; then $(RUN) -m sagelake.local.stack down; fi

status: venv
	$(RUN) -m sagelake.local.stack status

clean: down  ## remove all local state (.local/)
	rm -rf .local

lock: venv  ## re-resolve the pinned requirements from requirements*.in
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in --python-version 3.11 --no-header -o requirements-dev.txt

benchmark: venv
	$(RUN) benchmarks/run.py
