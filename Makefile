# The two commands: `make demo` (the main job) and `make test`. Both create and reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE_STAMP := $(VENV)/.core-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: demo test bench-fidelity bench-speed clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(CORE_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(CORE_STAMP)

demo: $(CORE_STAMP)
	$(VENV)/bin/patchsmith demo --out demo-out

test: $(DEV_STAMP)
	$(PY) -m pytest -q

bench-fidelity: $(DEV_STAMP)
	$(PY) benchmarks/fidelity.py

bench-speed: $(DEV_STAMP)
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info
