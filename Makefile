# Two commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := True
export BENTOML_HOME := $(CURDIR)/bentoml_home

.PHONY: install browser tesseract lint format test test-fast serve bento data examples real-data real-eval peers model compare clean

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

# The peer table's OCR rows read crops with Debian's Tesseract 5 and its Fraktur models;
# install them once when missing (needs root), else `glyphgate peers` skips those rows and says so.
tesseract:
	@command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx frk || \
	  { apt-get update -q && apt-get install -y -q tesseract-ocr tesseract-ocr-frk tesseract-ocr-script-frak; } >/dev/null || \
	  echo "make: could not install tesseract-ocr/-frk; the peer table's Tesseract rows will be skipped" >&2

# ruff: lint and format check (line length 110, pyproject.toml); `make format` rewrites.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install browser tesseract lint
	$(PY) -m pytest -q

test-fast: install lint
	$(PY) -m pytest -q -m "not slow"

GG := $(VENV)/bin/glyphgate
DATA ?= data/glyphs
RUNS ?= runs
ARTIFACTS ?= artifacts/default

data: install
	$(GG) data synth --out $(DATA)

examples: install
	rm -rf examples && $(GG) data examples --out examples

# Real pages (never in the repository): REAL's works are split by corpus/vd_sbb_splits.json;
# its test works and the Kant pages (KANT) are only ever measured. Leave REAL empty to train on
# the synthetic corpus alone; the card then says so.
REAL ?= $(wildcard ../shared/real/vd-sbb-16c)
KANT ?= $(wildcard ../shared/real/kant_aufklaerung_1784)
REAL_DATA ?= data/real/vd-sbb
KANT_DATA ?= data/real/kant
REAL_FLAG := $(if $(REAL),--real $(REAL_DATA))
# With real pages the shipped threshold and p-values rest on the real validation works' glyphs.
CAL_REAL_FLAG := $(if $(REAL),--real $(REAL_DATA))

real-data: install
ifneq ($(REAL),)
	rm -rf $(REAL_DATA)
	$(GG) data import-page $(REAL) --split-by-work corpus/vd_sbb_splits.json --out $(REAL_DATA)
endif
ifneq ($(KANT),)
	rm -rf $(KANT_DATA)-bin $(KANT_DATA)-nrm
	$(GG) data import-page $(KANT)/OCR-D-GT-WORD --image $(KANT)/OCR-D-IMG-BIN --out $(KANT_DATA)-bin
	$(GG) data import-page $(KANT)/OCR-D-GT-WORD --image $(KANT)/OCR-D-IMG-NRM --out $(KANT_DATA)-nrm
endif

# Real-page figures of a calibrated artifacts folder (report/index.html and MODEL_CARD.md show them),
# the shipped classifier baseline measured on the same crops. --in-place: evaluate and calibrate
# refuse to rewrite the shipped model (artifacts/default) unless told to, and here it is the point.
BASELINE := artifacts/baseline
BASELINE_EVAL = $(if $(wildcard $(BASELINE)/calibration.json),--baseline $(BASELINE))
real-eval: install
ifneq ($(REAL),)
	$(GG) evaluate --in-place --artifacts $(ARTIFACTS) $(BASELINE_EVAL) --data $(REAL_DATA)/test --name vd-sbb-test \
	  --source "OCR-D-GT-VD-SBB (Berlin State Library), test works of corpus/vd_sbb_splits.json, glyph-level PAGE-XML; CC BY-SA 4.0"
endif
ifneq ($(KANT),)
	$(GG) evaluate --in-place --artifacts $(ARTIFACTS) $(BASELINE_EVAL) --data $(KANT_DATA)-bin --name kant-bin \
	  --source "Kant, Was ist Aufklärung?, Berlinische Monatsschrift 1784, pp. 0017+0020, binarised; Deutsches Textarchiv via OCR-D assets, CC BY-SA 4.0"
	$(GG) evaluate --in-place --artifacts $(ARTIFACTS) $(BASELINE_EVAL) --data $(KANT_DATA)-nrm --name kant-nrm \
	  --source "Kant, Was ist Aufklärung?, Berlinische Monatsschrift 1784, pp. 0017+0020, greyscale; Deutsches Textarchiv via OCR-D assets, CC BY-SA 4.0"
endif

# The gate beside its peers (baseline, Mahalanobis/kNN features, Tesseract) on the real test
# collections: peers.json, shown by the report and the card.
PEER_SETS = $(if $(REAL),--collection vd-sbb-test=$(REAL_DATA)/test) \
	$(if $(KANT),--collection kant-bin=$(KANT_DATA)-bin --collection kant-nrm=$(KANT_DATA)-nrm)
peers: install tesseract
	$(if $(strip $(PEER_SETS)),$(GG) peers --artifacts $(ARTIFACTS) --baseline $(BASELINE) --data $(DATA) \
	  $(REAL_FLAG) $(PEER_SETS),@echo "make peers: no real pages (REAL/KANT empty); nothing to measure")

# The shipped default model, made only by the project's own commands (about 40 minutes on
# 2 CPU cores): corpus + real glyphs -> JEM (MODE: jem, or icd = JEM trained with improved
# contrastive divergence) -> classifier baseline (same data and epochs) -> export -> calibrate
# -> real-page figures -> peer table -> generation figures -> card. The classifier baseline
# ships beside it in artifacts/baseline, calibrated the same way.
MODE ?= jem
OTHER ?= $(if $(filter icd,$(MODE)),jem,icd)
OTHER_ART := $(RUNS)/default-$(OTHER)/artifacts
COMPARE_FLAG = $(if $(wildcard $(OTHER_ART)/generation.json),--compare $(OTHER_ART) $(RUNS)/default-$(OTHER))
BEFORE := $(RUNS)/before
BEFORE_FLAG = --before $(BEFORE)
CARD = $(GG) card --artifacts $(ARTIFACTS) --run $(RUNS)/default-$(MODE) --data $(DATA) \
	  --baseline-run $(RUNS)/default-classifier $(COMPARE_FLAG) $(BEFORE_FLAG) $(if $(REAL),--real-pages $(REAL))

# The model being replaced keeps its gate figures in $(BEFORE) for the card's before/after table.
model: install tesseract
	mkdir -p $(BEFORE)
	-cp $(ARTIFACTS)/calibration.json $(ARTIFACTS)/real_scans.json $(BEFORE)/
	$(GG) data synth --out $(DATA)
	$(MAKE) real-data
	$(GG) train --data $(DATA) $(REAL_FLAG) --out $(RUNS)/default-$(MODE) --mode $(MODE)
	$(GG) train --data $(DATA) $(REAL_FLAG) --out $(RUNS)/default-classifier --mode classifier
	$(GG) export --ckpt $(RUNS)/default-$(MODE)/checkpoints/last.ckpt --out $(ARTIFACTS)
	$(GG) export --ckpt $(RUNS)/default-classifier/checkpoints/last.ckpt --out $(BASELINE)
	$(GG) calibrate --in-place --artifacts $(BASELINE) --data $(DATA) --no-rbm $(CAL_REAL_FLAG)
	$(GG) calibrate --in-place --artifacts $(ARTIFACTS) --data $(DATA) --baseline $(BASELINE) $(CAL_REAL_FLAG)
	$(MAKE) real-eval
	$(MAKE) peers
	$(GG) generate --evaluate --ckpt $(ARTIFACTS) --baseline $(BASELINE) --data $(DATA) --out $(ARTIFACTS)/generation.json
	$(CARD)

# The other mode at the same budget, measured the same way, for the card's side-by-side table
# (after `make model`; about 40 minutes more).
compare: install
	$(GG) train --data $(DATA) $(REAL_FLAG) --out $(RUNS)/default-$(OTHER) --mode $(OTHER)
	$(GG) export --ckpt $(RUNS)/default-$(OTHER)/checkpoints/last.ckpt --out $(OTHER_ART)
	$(GG) calibrate --in-place --artifacts $(OTHER_ART) --data $(DATA) --baseline $(BASELINE) $(CAL_REAL_FLAG)
	$(MAKE) real-eval ARTIFACTS=$(OTHER_ART)
	$(GG) generate --evaluate --ckpt $(OTHER_ART) --baseline $(BASELINE) --data $(DATA) --out $(OTHER_ART)/generation.json
	$(CARD)

# Serves artifacts/default (shipped in the repo) on http://127.0.0.1:3000; no training needed.
# GLYPHGATE_ARTIFACTS, GLYPHGATE_PORT, GLYPHGATE_HOST, GLYPHGATE_API_TOKEN change it.
serve: install
	$(VENV)/bin/bentoml serve serving.service:Gate

bento: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/bentoml build
	@echo "Bento stored in $(BENTOML_HOME). Serve or containerize it from that store:"
	@echo "  BENTOML_HOME=$(BENTOML_HOME) $(VENV)/bin/bentoml serve glyphgate:latest"
	@echo "  BENTOML_HOME=$(BENTOML_HOME) $(VENV)/bin/bentoml containerize glyphgate:latest"

clean:
	rm -rf $(VENV) data runs bentoml_home test-output
