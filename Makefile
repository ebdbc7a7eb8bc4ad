# The README's commands. Each target is self-sufficient: `make test` and `make demo` set up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
PLUGINS := $(wildcard plugins/*/pyproject.toml)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Only a CPU wheel of this torch is on the build machines; installing it first, pinned,
# stops any later resolver from pulling a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: setup test demo bench clean-setup

setup: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS) Makefile
	@# FluidSynth renders the synthetic data; Chromium runs the browser test of the HTML report.
	@missing=""; \
	ldconfig -p | grep -q libfluidsynth.so.3 || missing="$$missing libfluidsynth3"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	@# asteroid 0.7.0 pins torchmetrics<=0.11.4 and wants torchaudio + lightning, none of which
	@# its losses and models need: install it without its metadata's deps, then what it imports.
	$(BIN)/pip install -q --no-deps asteroid==0.7.0
	$(BIN)/pip install -q requests huggingface_hub pandas asteroid-filterbanks julius
	$(BIN)/pip install -q $(TORCH) -e ".[dev]" $(foreach p,$(PLUGINS),-e $(dir $(p)))
	@touch $(STAMP)

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q

demo: setup
	$(BIN)/mstt run recipes/cerberus_set4.yaml recipes/quick.yaml --out runs/demo

bench: setup
	$(BIN)/pytest -q benchmarks --benchmark-only

clean-setup:
	rm -f $(STAMP)
