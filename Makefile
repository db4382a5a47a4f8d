# Two commands do everything on a fresh machine:  make demo  and  make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
OUTPUT ?= skcannon-output
DATA ?= skcannon-data

.PHONY: demo test test-fast lint benchmarks clean

# The environment: torch first (a CPU wheel is on disk; a bare "torch" pulls CUDA), then the rest.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,test]"
	touch $@

## the main job, offline, against the local mirror in ../shared
demo: $(VENV)/.installed
	$(BIN)/skcannon run --mirror $(SHARED)/apogee --shared $(SHARED) --data-dir $(DATA) --output $(OUTPUT)

## lint and the whole test suite (slow end-to-end tests included)
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## the suite without the slow end-to-end tests
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

## speed and accuracy benchmarks (the bench extra installs TheCannon 0.7.3, the baseline)
benchmarks: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(OUTPUT) $(DATA) .pytest_cache .ruff_cache
