# The two commands a newcomer runs (see README.md): `make run` and `make test`.
# Everything they need is installed from here: the virtualenv, Python packages, and (as root)
# the Debian packages listed in deps/debian-packages.txt.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PPS    := $(VENV)/bin/pps
STAMP  := $(VENV)/.stamp-install
PYTEST_ARGS ?=

.PHONY: run test lint bench fuzz setup system-deps typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## setup: create .venv and install ppsguard with everything it needs, and compile its bytecode
## (as a non-editable pip install does: where PYTHONDONTWRITEBYTECODE=1 is set, every `pps` run
## would otherwise compile the modules it imports again, ~0.1 s each)
setup: $(STAMP)
	$(PY) -m compileall -q src/ppsguard > /dev/null

## system-deps: install the Debian packages the lab tests need (root only; skipped otherwise)
system-deps:
	bash scripts/system-deps.sh deps/debian-packages.txt

## run: set up and run the main job: audit this machine (against ./registry.yaml when present),
## writing the building picture to audit.html and a Markdown report to audit.md.
## Exit 1 from the audit means "findings reported", which is the job done.
run: setup
	$(PPS) sockets
	$(PPS) audit $(wildcard registry.yaml) --html audit.html --markdown audit.md; test $$? -le 1
	@echo "reports: audit.html (open in a browser), audit.md"

## lint: ruff (check and format) and mypy --strict on src/
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy --strict src/ppsguard

## test: set up, lint, then run the whole suite (pytest's "no tests collected" counts as success)
test: setup system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

## fuzz: the fuzzing harness at length (every parser of outside input; CI runs it briefly in
## `make test`). FUZZ_EXAMPLES inputs per parser, default 5000; failures print the input.
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz PPSGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(PY) -m pytest tests/property/test_parsers_fuzz.py -q

## bench: run every benchmark in benchmarks/ (each prints its ratios against the anchor)
bench: setup system-deps
	@set -e; for script in benchmarks/*.py; do \
	  echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
