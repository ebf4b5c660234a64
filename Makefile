# The kit's two commands: `make replicate` (the main job) and `make test` (the tests).
# `make replicate` runs the toy replication (all methods, seed 0: what fits 30 minutes on 2 cores) through the resumable
# pipeline and prints where the report is. Each creates .venv on first use and installs the kit with pinned versions (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/toy
CONFIG ?= configs/toy.yaml
# auto: one job per GPU on CUDA (each pinned to its GPU), two on a CPU (two seeds on two cores)
JOBS ?= auto

.PHONY: replicate test test-notebooks clean-venv

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "prefalign-lite needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,pipeline]"
	touch $@

replicate: $(VENV)/.installed
	$(PY) -m prefalign_lite run --config $(CONFIG) --out $(OUT) --jobs $(JOBS)

test: $(VENV)/.installed
	$(PY) -m pytest

# nbval on the method notebooks 11 and 13-17 at their defaults too (about half an hour on 2 cores)
test-notebooks: $(VENV)/.installed
	PREFALIGN_NBVAL_ALL=1 $(PY) -m pytest notebooks

clean-venv:
	rm -rf $(VENV)
