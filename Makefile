# Two promises: `make demo` and `make test` work on a fresh clone with Python 3.11 + make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
SHELL := /bin/bash
BIN := $(VENV)/bin

.PHONY: demo test chaos bench bench-scale install server worker clean

$(BIN)/itsm: pyproject.toml examples/access-review/pyproject.toml
	@echo "==> creating $(VENV) and installing itsmflow with its dependencies (about a minute, once)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]' | grep --line-buffered -E '^(Collecting|Successfully)'; exit $${PIPESTATUS[0]}
	@echo "==> installing the example package examples/access-review (a process from outside, on the kit)"
	$(BIN)/python -m pip install --progress-bar off -e examples/access-review | grep --line-buffered -E '^(Collecting|Successfully)'; exit $${PIPESTATUS[0]}
	touch $(BIN)/itsm
	@echo "==> installed: $(BIN)/itsm"

install: $(BIN)/itsm

demo: install
	$(BIN)/itsm demo

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

chaos: install
	$(BIN)/python -m pytest -q -s -m slow $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.incident_week
	$(BIN)/python -m bench.kit_week
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.cli_read

bench-scale: install
	$(BIN)/python -m bench.scale

server: install
	$(BIN)/itsm server start

worker: install
	$(BIN)/itsm worker

clean:
	rm -rf $(VENV) .itsm *.egg-info
