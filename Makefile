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
	$(PY) -m pip install -q --no-deps timbral-models==0.4.0  # AC metric; its declared pins are stale (README)
	touch $@ $(CORE_STAMP)

# The examples rendered, then the main job: three descriptions designed by the offline designer
# (no network, no key; a model named in the environment is ignored here on purpose).
DEMO_PROMPTS := "glassy electric piano, soft attack" "deep punchy bass" "slow warm pad with vibrato"

demo: $(CORE_STAMP)
	$(VENV)/bin/patchsmith demo --out demo-out
	@for prompt in $(DEMO_PROMPTS); do \
		dir=demo-out/design-$$(printf '%s' "$$prompt" | tr -cs 'A-Za-z0-9' '-' | sed 's/-*$$//' | tr 'A-Z' 'a-z'); \
		env -u PATCHSMITH_MODEL -u PATCHSMITH_BASE_URL $(VENV)/bin/patchsmith design "$$prompt" -o "$$dir" || exit 1; \
	done

test: $(DEV_STAMP)
	$(PY) -m pytest -q

bench-fidelity: $(DEV_STAMP)
	$(PY) benchmarks/fidelity.py

bench-speed: $(DEV_STAMP)
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info
