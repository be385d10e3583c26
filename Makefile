# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

LIVEKIT_BIN := .cache/livekit/$(shell cat scripts/livekit-version)/livekit-server
FONTS_STAMP := .cache/fonts/node_modules/.installed

.PHONY: run test lint format install system-deps livekit fonts wheel-smoke bench bench-tokens bench-join node-reference bench-stream bench-delivery bench-redis bench-soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

install: $(DEV_STAMP)

## A meeting on loopback: a local LiveKit (built once, or livekit-server from PATH), ovmeet on
## the embedded default (local storage in ./data, port 6080), the front end if configured; it
## prints the links of a ready room.
run: $(RUN_STAMP)
	$(BIN)/python scripts/run_local.py

## LiveKit's server at the pinned tag (scripts/livekit-version), built with Go once.
livekit: $(LIVEKIT_BIN)

$(LIVEKIT_BIN): scripts/livekit-version
	./scripts/build-livekit.sh

## The front end's web fonts (npm), for MEET_FRONTEND_FONTS_DIR: icons without Google Fonts.
fonts: $(FONTS_STAMP)

$(FONTS_STAMP): ovmeet/support/fonts.py
	@./scripts/system-deps.sh npm
	./scripts/install-fonts.sh

## Chromium and ffmpeg for the browser test, nginx for the several-instances test, redis-server
## for the shared-state test (apt-get, only when missing).
system-deps:
	@./scripts/system-deps.sh chromium ffmpeg nginx redis-server

## Every test, against real servers the tests start themselves (LiveKit, SeaweedFS, the Egress
## stand-in, ovmeet, Chromium).
test: $(DEV_STAMP) system-deps $(LIVEKIT_BIN) $(FONTS_STAMP)
	OVMEET_LIVEKIT_SERVER=$(abspath $(LIVEKIT_BIN)) OVMEET_FONTS_DIR=$(abspath .cache/fonts/node_modules) \
	  $(BIN)/python -m pytest

## Build the wheel, install it in a fresh venv and smoke-test the installed `ovmeet serve`.
wheel-smoke: $(BIN)/python
	PYTHON=$(BIN)/python ./scripts/wheel-smoke.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Every benchmark (about 27 minutes; the soak alone takes 10).
bench: bench-tokens bench-stream bench-delivery bench-redis bench-soak

bench-tokens: $(DEV_STAMP)
	@./scripts/system-deps.sh wrk redis-server
	$(BIN)/python -m bench.tokens

bench-join: $(DEV_STAMP) livekit
	@./scripts/system-deps.sh redis-server
	$(BIN)/python -m bench.join

## The Node backend ovmeet replaces, for the benchmarks: NODE_REFERENCE_GIT=<clone of openvidu-meet>.
node-reference:
	./scripts/build-node-reference.sh $(NODE_REFERENCE_GIT)

bench-stream: $(DEV_STAMP)
	@./scripts/system-deps.sh wrk nginx
	$(BIN)/python -m bench.stream

bench-delivery: $(DEV_STAMP)
	@./scripts/system-deps.sh nginx
	$(BIN)/python -m bench.delivery

bench-redis: $(DEV_STAMP) livekit
	@./scripts/system-deps.sh wrk redis-server
	$(BIN)/python -m bench.redis

bench-soak: $(DEV_STAMP)
	@./scripts/system-deps.sh wrk
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info build dist
