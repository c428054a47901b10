# make install | make test | make demo  (all create .venv on first use)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= outputs/demo

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip || true
	$(PY) -m pip install -q -e '.[test,search,deploy]'
	touch $(STAMP)

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

demo: install
	$(VENV)/bin/action3d train hydra.run.dir=$(DEMO_DIR)
	$(VENV)/bin/action3d eval ckpt=$(DEMO_DIR)/best.pt hydra.run.dir=$(DEMO_DIR)/eval

bench: install
	$(PY) scripts/bench_decode.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_pipeline.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
