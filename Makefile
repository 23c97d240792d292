# shiftstream: `make demo` runs the job on embedded defaults; `make test` runs the tests. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast bench clean

setup:
	@VENV=$(VENV) bash runners/setup.sh

demo: setup
	@$(BIN)/shiftstream demo

test: setup
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# the edit loop: the core, the reference runner, the CLI and the conformance suite's reference cases; no engines,
# no broker, no model training (about a minute on 2 cores, against 8-10 for the whole suite). `make test` stays the whole suite, and what CI runs.
test-fast: setup
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not slow and not kafka" -q $(PYTEST_ARGS)

bench: setup
	@$(BIN)/python -m pip install -q -r requirements-bench.txt -c requirements.lock
	@$(BIN)/python -m bench

clean:
	rm -rf .demo .pytest_cache build *.egg-info
