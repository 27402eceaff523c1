# perpbot — `make demo` runs the main job on ../shared/data, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo lint test bench clean

$(BIN)/perpbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

setup: $(BIN)/perpbot

demo: setup
	$(BIN)/perpbot demo

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
