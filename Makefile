# Two commands on a fresh machine: `make demo` and `make test`.
# TORCH picks the torch build installed before everything else. The default pin is a CPU build here
# (it lies on this machine's disk); on a GPU machine use e.g. `make demo TORCH="torch --index-url <your CUDA index>"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-fast lint docs install install-dev clean gpu-carry gpu-check compare

# The install's seconds go to $(VENV)/install-seconds (python -m bench sweep_overhead reports them).
$(VENV)/.installed: pyproject.toml
	start=$$(date +%s) && \
	$(PYTHON) -m venv $(VENV) && \
	$(PIP) install $(TORCH) && \
	$(PIP) install -e ".[minilm]" && \
	echo $$(( $$(date +%s) - start )) > $(VENV)/install-seconds
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# ARGS: extra Hydra overrides, e.g. `make demo ARGS=force=true` reruns runs that already completed.
demo: $(VENV)/.installed
	$(PY) -m bench train -m experiment=demo $(ARGS)
	$(PY) -m bench report

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed-dev
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check bench variants tests
	$(PY) -m ruff format --check bench variants tests

# The reference pages (docs/, mkdocs.yml) as a site in site/; strict: a warning, such as a broken link, fails.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# The GPU check (docs/speed.md). Here: `make gpu-carry` puts what the lent GPU machine lacks into
# $(GPU_CARRY) (ignored by git; name it in the run's carry): wheels of these packages at the versions this
# environment tests (antlr4-python3-runtime has no wheel on PyPI: built here, pure Python) and the tiny
# run's corpus, then checks that the repository plus $(GPU_CARRY) fit in what a run carries.
# There, with that machine's own python3 and torch: `make gpu-check` writes $(GPU_CHECK_JSON).
GPU_CARRY ?= .gpu-carry
GPU_PACKAGES := hydra-core|omegaconf|datasets|dill|multiprocess|scikit-posthocs|bitsandbytes
GPU_PLATFORM := --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
GPU_CHECK_JSON ?= $(or $(OUT),results)/gpu_check.json

gpu-carry: $(VENV)/.installed-dev
	rm -rf $(GPU_CARRY) && mkdir -p $(GPU_CARRY)
	$(PIP) download --no-deps $(GPU_PLATFORM) -d $(GPU_CARRY) \
		$$($(PY) -m pip freeze | grep -i -E '^($(GPU_PACKAGES))==')
	$(PIP) wheel --no-deps -w $(GPU_CARRY) $$($(PY) -m pip freeze | grep -i '^antlr4-python3-runtime==')
	$(PY) -m bench gpu_check --prepare $(GPU_CARRY)

gpu-check:
	$(PYTHON) -m bench gpu_check --carry $(GPU_CARRY) --out $(GPU_CHECK_JSON)

# The committed comparison (results/compare, docs/comparison.md), run or resumed with the code at the commit
# it was started from (results/compare/CODE_VERSION), checked out in $(COMPARE_CODE), its runs written here;
# ARGS narrows it, e.g. `make compare ARGS=task=snli`.
COMPARE_CODE ?= .compare-code
compare: $(VENV)/.installed
	git worktree add --force --detach $(COMPARE_CODE) $$(cat results/compare/CODE_VERSION) || \
		git -C $(COMPARE_CODE) checkout --detach $$(cat results/compare/CODE_VERSION)
	cd $(COMPARE_CODE) && PYTHONPATH=$$PWD PEFT_BENCH_RESULTS=$(CURDIR)/results \
		$(CURDIR)/$(PY) -m bench tune experiment=compare $(ARGS)

clean:
	rm -rf $(VENV) site results/runs results/sweeps results/runs.csv results/.runs.csv.lock
