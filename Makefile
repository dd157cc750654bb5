# Two commands set everything up on a fresh machine:  make demo  and  make test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The CPU build of torch; on machines that keep a local wheel (find-links) pip takes it
# from disk. Override with TORCH_SPEC= to keep whatever torch is already installed.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.annealq-installed
# The project's offline copies of the image datasets (see ../shared/data/README.md);
# annealq itself only reads $$ANNEALQ_DATA, --data-dir or ~/.cache/annealq/data.
export ANNEALQ_DATA ?= ../shared/data

.PHONY: demo test install hint clean

demo: $(STAMP)
	$(VENV)/bin/annealq demo
	$(VENV)/bin/annealq demo --paper
	@$(MAKE) --no-print-directory hint

# two workers (pytest-xdist): ~4 minutes on a 2-core machine instead of ~8
test: $(STAMP)
	$(PY) -m pytest -q -n 2

install: $(STAMP)
	@$(MAKE) --no-print-directory hint

# the CLI lives in the virtual environment, not on PATH
hint:
	@echo "annealq is installed in $(VENV): run '$(VENV)/bin/annealq --help', or"
	@echo "'source $(VENV)/bin/activate' and then 'annealq ...' (see the README)."

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_SPEC),$(PY) -m pip install -q "$(TORCH_SPEC)")
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
