# alm-bench developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install run test test-fast bench bench-full clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install alm-bench (editable, dev extras, pinned torch pair)

run: install  ## solve the default problem (seed-000 toy: min x^2 s.t. x >= 3) with classic ALM
	$(VENV)/bin/alm-bench train $(ARGS)

test: install  ## run the whole test suite, slow tests included (W&B offline; no network, no GPU needed)
	WANDB_MODE=offline $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install  ## the tests not marked slow (no training, no subprocess, small solves): under a minute
	WANDB_MODE=offline $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: install  ## quick benchmarks (minutes): ratios against baselines measured in the same process
	$(PY) -m bench

clean:  ## remove run folders and caches (keeps .venv)
	rm -rf outputs multirun wandb .pytest_cache build dist *.egg-info

bench-full: install  ## every benchmark at full size (long)
	$(PY) -m bench --full
