# shiftstream: `make demo` runs the job on embedded defaults; `make test` runs the tests. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup:
	@VENV=$(VENV) bash runners/setup.sh

demo: setup
	@$(BIN)/shiftstream demo

test: setup
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf .demo .pytest_cache build *.egg-info
