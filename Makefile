# Two commands for a fresh clone:  `make demo` (set up + run the default search + export)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RUN_DIR = results/search-mobilenet-x86-cpu-seed0

.PHONY: setup demo test lint bench clean

# The torch build: CUDA where an NVIDIA GPU is, CPU otherwise (scripts/torch_index.py; empty offline).
TORCH_PIP_ARGS ?= $(shell $(PYTHON) scripts/torch_index.py)

$(BIN)/nas: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/pip install -q -c constraints.txt $(TORCH_PIP_ARGS) torch
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	@touch $(BIN)/nas

setup: $(BIN)/nas  ## create .venv: torch's CUDA build with an NVIDIA GPU, else its CPU build; every dependency

demo: setup  ## the default hardware-aware search on the built-in data, its Pareto set exported, the HTML report
	$(BIN)/nas search
	$(BIN)/nas export $(RUN_DIR)
	$(BIN)/nas report $(RUN_DIR)
	@echo "open the report above in a browser; to train a network of the front fully (here the most accurate):"
	@echo "  $(BIN)/nas train $$(ls -d $(RUN_DIR)/export/[0-9]*/ | tail -1 | sed 's:/$$::') --epochs 30"

# Tests and benchmarks start only embedded local Rays of their own: they run them without token auth
# (no ~/.ray/auth_token written). The demo, like any user, gets Ray's own setting.
# Test processes (pytest-xdist): one per CPU, at most 4; TEST_WORKERS=0 runs the suite in this process.
# One thread each (OMP_NUM_THREADS=1): the processes and the searches they start share the cores.
TEST_WORKERS ?= auto

test: setup lint  ## lint, then the test suite (what CI runs), in parallel processes
	RAY_AUTH_MODE=disabled OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist worksteal --durations=15

lint: setup  ## ruff: lint and format check (configured in pyproject.toml)
	$(BIN)/ruff check nas tests benchmarks
	$(BIN)/ruff format --check nas tests benchmarks

bench: setup  ## the cheap benchmarks (JSON under results/benchmarks/); python -m benchmarks --list for all
	RAY_AUTH_MODE=disabled $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info results/search-* results/benchmark-runs
