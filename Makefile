# mnistctl developer commands. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build tested here (CUDA build, runs on CPU too); other deps resolve from pyproject.toml.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
PYTEST := $(PY) -m pytest

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install mnistctl with its dev tools

fit: install ## install, then train the default config on the bundled MNIST (about 3 minutes on 2 CPU cores)
	$(VENV)/bin/mnistctl fit --config configs/base.yaml

fit-fast: install ## install, then train configs/fast.yaml (99% in about a minute)
	$(VENV)/bin/mnistctl fit --config configs/fast.yaml

# pytest exits 5 when it selects no test; that is not a failure of the suite.
test: install ## install, then run every test tier (fast, slow, sweep, SLURM; under 30 minutes)
	$(PYTEST) -m "" ; rc=$$?; [ $$rc -eq 5 ] && exit 0 || exit $$rc

test-fast: install ## install, then run the fast tier only (under 5 minutes)
	$(PYTEST) -m "not slow and not slurm" ; rc=$$?; [ $$rc -eq 5 ] && exit 0 || exit $$rc

bench: install ## measure mnistctl against the original recipe and a plain PyTorch loop, per instruction set (under 15 minutes)
	$(PY) -m benchmarks --seeds 3

bench-quick: install ## the benchmark on a fraction of an epoch, no time-to-99% runs (a few minutes)
	$(PY) -m benchmarks --quick

# No `install` prerequisite: the GPU machine has no network. PYTHON=python3 for a Python without .venv.
gpu-check: ## on a CUDA machine, offline: the gpu tier, the fast tier and the GPU benchmark rows (under 13 minutes)
	scripts/gpu-check.sh

gpu-audit: install ## without a GPU: the fast tier as if one CUDA GPU were there (tests that forget to pin the CPU fail)
	PYTHONPATH=$(CURDIR)/scripts/fake_cuda $(PYTEST) -m "not slow and not slurm and not gpu" -rf

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check mnistctl benchmarks tests && $(VENV)/bin/ruff format --check mnistctl benchmarks tests

clean: ## remove run folders, sweep folders and caches (not the venv)
	rm -rf runs multirun sweeps .pytest_cache .ruff_cache

.PHONY: help install fit fit-fast test test-fast bench bench-quick gpu-check gpu-audit lint clean
