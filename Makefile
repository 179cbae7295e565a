# Two commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := True
export BENTOML_HOME := $(CURDIR)/bentoml_home

.PHONY: install test test-fast serve data clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

data: install
	$(VENV)/bin/glyphgate data synth --out data/glyphs

serve: install
	@echo "make serve: the scoring service is not built yet (see the serving issue)." >&2
	@exit 1

clean:
	rm -rf $(VENV) data runs bentoml_home test-output
