# perpbot — `make demo` runs the main job on ../shared/data, `make test` runs the tests.
# The demo gets its own venv with the core install only (no test tooling, no extras);
# the tests get .venv with everything (".[test]").
PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
DEMO_VENV ?= .venv-demo
DEMO_BIN  := $(DEMO_VENV)/bin

.PHONY: setup setup-demo demo lint test bench clean

$(BIN)/perpbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

# numba caches a compiled function by its own file only: a change to a function it calls in another file
# (sim/sizing.py, risk/rules.py, the kernel under the portfolio loop) would keep running the stale code after
# an update. Any change to the compiled sources drops every cache (recompiled on first use).
NUMBA_SRC := $(wildcard src/perpbot/sim/*.py) src/perpbot/risk/rules.py
.numba-sources: $(NUMBA_SRC)
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete
	@touch $@

$(DEMO_BIN)/perpbot: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/pip install --quiet --upgrade pip
	$(DEMO_BIN)/pip install --quiet -e .
	@touch $@

setup: $(BIN)/perpbot .numba-sources

setup-demo: $(DEMO_BIN)/perpbot .numba-sources

demo: setup-demo
	$(DEMO_BIN)/perpbot demo

lint: setup
	$(BIN)/ruff check src tests benchmarks research
	$(BIN)/mypy

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_backtest.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf runs .pytest_cache
