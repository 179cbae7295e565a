# Two commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := True
export BENTOML_HOME := $(CURDIR)/bentoml_home

.PHONY: install browser test test-fast serve bento data model clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The demo-page test drives Debian's Chromium; install it once when it is missing (needs root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -q && apt-get install -y -q chromium chromium-driver; } >/dev/null || \
	  echo "make: could not install chromium/chromium-driver; the demo-page tests will be skipped" >&2

test: install browser
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

GG := $(VENV)/bin/glyphgate
DATA ?= data/glyphs
RUNS ?= runs
ARTIFACTS ?= artifacts/default

data: install
	$(GG) data synth --out $(DATA)

# The shipped default model, made only by the project's own commands (about 35 minutes on
# 2 CPU cores): corpus -> JEM -> classifier baseline (same epochs) -> export -> calibrate -> card.
model: install
	$(GG) data synth --out $(DATA)
	$(GG) train --data $(DATA) --out $(RUNS)/default-jem
	$(GG) train --data $(DATA) --out $(RUNS)/default-classifier --mode classifier
	$(GG) export --ckpt $(RUNS)/default-jem/checkpoints/last.ckpt --out $(ARTIFACTS)
	$(GG) export --ckpt $(RUNS)/default-classifier/checkpoints/last.ckpt --out $(RUNS)/default-classifier/artifacts
	$(GG) calibrate --artifacts $(ARTIFACTS) --data $(DATA) --baseline $(RUNS)/default-classifier/artifacts
	$(GG) card --artifacts $(ARTIFACTS) --run $(RUNS)/default-jem --data $(DATA) --baseline-run $(RUNS)/default-classifier

# Serves artifacts/default (shipped in the repo) on http://127.0.0.1:3000; no training needed.
# GLYPHGATE_ARTIFACTS, GLYPHGATE_PORT, GLYPHGATE_HOST, GLYPHGATE_API_TOKEN change it.
serve: install
	$(VENV)/bin/bentoml serve serving.service:Gate

bento: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/bentoml build

clean:
	rm -rf $(VENV) data runs bentoml_home test-output
