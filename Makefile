# featcache set-up, demo and tests on a fresh machine (Debian/Ubuntu; apt-get needs root or sudo).
# `make demo` and `make test` each do all set-up themselves.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT ?= demo-out

# Which build of torch: TORCH=cpu (CPU-only wheels, ~200 MB, from TORCH_CPU_INDEX), TORCH=gpu (the
# public index's default build, which on Linux is CUDA with its nvidia-* packages, several GB), or
# TORCH=auto (default): gpu when `nvidia-smi -L` lists a GPU, else cpu. For the CPU build a torch
# wheel pip already has locally (its find-links) is used first, so no network is needed then.
# Changing TORCH later: `make clean` first (the venv is built once).
TORCH ?= auto
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
ifeq ($(filter auto cpu gpu,$(TORCH)),)
$(error TORCH must be auto, cpu or gpu, not '$(TORCH)')
endif
HAS_GPU := $(shell nvidia-smi -L 2>/dev/null | grep -q GPU && echo yes)
TORCH_BUILD := $(if $(filter auto,$(TORCH)),$(if $(HAS_GPU),gpu,cpu),$(TORCH))

.PHONY: setup system-deps demo test lint bench clean

# espeak-ng/flite speak the demo corpus; chromium renders the HTML report in its test.
system-deps:
	@command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v chromium >/dev/null \
	  || ( $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	       --no-install-recommends espeak-ng flite chromium )

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, the build chosen above, so that the range in pyproject.toml installs nothing else
	@echo "torch $(TORCH_VERSION): the $(TORCH_BUILD) build (TORCH=$(TORCH)$(if $(HAS_GPU),; nvidia-smi found a GPU,; no GPU found))"
ifeq ($(TORCH_BUILD),cpu)
	# a torch wheel pip already has locally (offline, torch alone), then its dependencies as usual;
	# else torch and its dependencies from the CPU wheel index
	( $(PY) -m pip install -q --no-index --no-deps torch==$(TORCH_VERSION) 2>/dev/null \
	  && $(PY) -m pip install -q torch==$(TORCH_VERSION) ) \
	  || $(PY) -m pip install -q torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX)
else
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
endif
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
