# featcache set-up, demo and tests on a fresh machine (Debian/Ubuntu; apt-get needs root or sudo).
# `make demo` and `make test` each do all set-up themselves.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT ?= demo-out

.PHONY: setup system-deps demo test lint bench clean

# espeak-ng/flite speak the demo corpus; chromium renders the HTML report in its test.
system-deps:
	@command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v chromium >/dev/null \
	  || ( $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	       espeak-ng flite chromium )

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first, so that the range in pyproject.toml installs nothing bigger
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: system-deps $(VENV)/.installed

# the whole pipeline offline: synthesized corpus, extract, five fusion runs, analyses, report
demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/featcache demo --out $(DEMO_OUT)

test: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check featcache cli pipelines tests benchmarks
	$(VENV)/bin/ruff format --check featcache cli pipelines tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT) build dist *.egg-info

# every benchmark prints ratios measured side by side in one run (see README, Benchmarks)
bench: setup
	$(PY) -m pip install -q -e '.[test,bench]'  # lilcom, for int8_store.py's comparison
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
