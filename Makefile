# Two commands do all the set-up: `make demo` and `make test`.
# Both create .venv on first use; a second run with nothing changed re-uses it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.neurodeploy-installed

# The three packages whose published metadata is wrong for Python 3.11 and
# torch 2.13 (see docs/INSTALL.md and pyproject.toml); installed --no-deps.
PINNED_NODEPS := norse==1.1.0 lava-nc==0.10.0 lava-dl==0.6.0
# Test-only exporters installed --no-deps: sinabs 3.x pins nir<=1.0.4, which would break
# snnTorch 1.0's export (it passes v_reset to nir.LIF, which only nir>=1.0.6 accepts);
# neurobench would pull torchaudio, numba and librosa, none of which the tests use.
TEST_NODEPS := sinabs==3.1.3 neurobench==2.3.0

.PHONY: install demo test test-all lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23.2" "setuptools>=77" wheel
	# torch first and pinned: a bare `torch` pulls the several-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,test,cluster]'
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python $(PINNED_NODEPS)
	$(BIN)/python -m pip install -q --no-deps $(TEST_NODEPS)
	touch $@

demo: install
	$(BIN)/neurodeploy demo -o demo-out
	@echo "The neurodeploy command is $(BIN)/neurodeploy; 'source $(BIN)/activate' puts it on PATH."

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_lava_step.py
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/soak_simulate.py
	$(BIN)/python benchmarks/bench_profile.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_graphs.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_fidelity.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_fidelity.py --wide-weights

clean:
	rm -rf $(VENV) build dist *.egg-info demo-out
