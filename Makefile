# Fresh clone -> everything: a virtual environment with the pinned Python packages, and the pinned npm
# toolchain (solc, anvil) inside the project. Nothing is installed outside the checkout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-fast bench compile clean

setup: $(STAMP) node_modules/.package-lock.json

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	# npm ci refuses a lock file without the optional anvil builds of other platforms, which this registry lacks;
	# the versions are pinned exactly in package.json and package-lock.json
	npm install --no-audit --no-fund --no-save

## The main job: a real MobileNetV2-int8 on a real photo, a cheating solver and a lying challenger caught on chain.
demo: setup
	$(BIN)/pinpoint demo

## The whole test suite (starts its own anvil from node_modules).
test: setup
	$(BIN)/python -m pytest -q -n 2

test-fast: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: setup
	$(BIN)/python benchmarks/pinpoint_bench.py

compile: setup
	$(BIN)/python -m protocol.chain.compile

clean:
	rm -rf $(VENV) node_modules build *.egg-info
