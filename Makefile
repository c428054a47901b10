# make install | make test | make demo  (all create .venv on first use)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= outputs/demo

.PHONY: install test test-fast test-learned-avx2 lint docs wheel-check demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip || true
	$(PY) -m pip install -q -e '.[test,search,deploy,docs,trackers]'
	touch $(STAMP)

# The suite in TEST_WORKERS pytest-xdist processes (one per core here; tests/conftest.py gives each
# one intra-op thread and one shared synthetic cache), whole test files to a worker so that module
# fixtures run once. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

test-fast: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# The learned-effect tests (-m learned) on the fp32 kernels of a CPU without AVX512/AMX: oneDNN
# capped at AVX2 and ATen's AVX2 kernels. They must pass this way too (CI does not run it).
test-learned-avx2: install
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m learned -rP

lint: install
	$(VENV)/bin/ruff check action3d tests scripts

# The manual (mkdocs.yml, docs/): --strict turns mkdocs' warnings, broken links and anchors included, into a failure.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# Build the wheel, install it (not editable) into a folder outside the checkout that reuses the
# venv's torch, and run `action3d info` and a one-epoch train from another directory.
wheel-check: install
	bash .ci/wheel_check.sh $(PY)

demo: install
	$(VENV)/bin/action3d train recipe=demo hydra.run.dir=$(DEMO_DIR)
	$(VENV)/bin/action3d eval ckpt=$(DEMO_DIR)/best.pt hydra.run.dir=$(DEMO_DIR)/eval

bench: install
	$(PY) scripts/bench_decode.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_pipeline.py

clean:
	rm -rf $(VENV) outputs multirun site .pytest_cache
