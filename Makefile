# Two commands on a fresh machine: `make demo` and `make test`.
# TORCH picks the torch build installed before everything else. The default pin is a CPU build here
# (it lies on this machine's disk); on a GPU machine use e.g. `make demo TORCH="torch --index-url <your CUDA index>"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-fast lint docs install install-dev clean

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

clean:
	rm -rf $(VENV) site results/runs results/sweeps results/runs.csv results/.runs.csv.lock
