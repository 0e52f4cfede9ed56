# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: on our machines pip takes 2.13.0 from a CPU build on disk; any other version pulls GBs of CUDA.
TORCH ?= torch==2.13.0

.PHONY: demo test install clean

$(BIN)/rnnkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/rnnkit

demo: install
	$(BIN)/rnnkit charlm train --preset cpu-demo --out runs/demo --overwrite  # the demo may replace its own earlier run

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile  # one worker per core; a file's module fixtures are built once

clean:
	rm -rf $(VENV) runs build *.egg-info
