# One entry point for everything; CI runs `make test` through .ci/run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install lock layer synth test unit integration infra e2e lint demo local bench clean

help:
	@echo "make demo   - run the hub on the embedded local stack with the scripted scenario"
	@echo "make local  - start the local stack and keep it running"
	@echo "make test   - every test tier (unit, integration, infra, e2e)"
	@echo "make bench  - cold imports, warm handler time, demo throughput"

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	touch $(STAMP)

install: $(STAMP)

# Re-resolve the one lock file (dev + runtime, every platform, with hashes).
lock:
	$(UV) pip compile pyproject.toml --group dev --universal --generate-hashes --python-version 3.11 -o requirements.lock -q

# The Lambda dependency layer: arm64 manylinux wheels of the runtime set only, no Docker.
layer: $(STAMP)
	$(BIN)/python -m local.build_layer

synth: layer
	$(BIN)/python app.py

test: $(STAMP) layer
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

infra: $(STAMP) layer
	$(BIN)/python -m pytest -q tests/infra

e2e: $(STAMP) layer
	$(BIN)/python -m pytest -q tests/e2e

lint: $(STAMP)  ## what CI checks before the tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP) layer
	$(BIN)/python -m local demo

local: $(STAMP) layer
	$(BIN)/python -m local serve

bench: $(STAMP) layer
	$(BIN)/python -m local.bench

clean:
	rm -rf build cdk.out .pytest_cache
