# Fresh machine: `make demo` or `make test`. Both build .venv first (once) via `make setup`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offscreen rendering for the embedded simulator (Mesa's EGL; no display needed).
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo test bench speech-corpus lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-ros.txt requirements-dev.txt setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-ros.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(BIN)/vla-ros sim --command "go to the red cube" --duration 40

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: setup
	$(BIN)/vla-ros bench

# The spoken-command corpus of `vla-ros bench --speech` (needs espeak-ng and sox; 75 MB).
speech-corpus: setup
	$(BIN)/python -m vla_ros.bench.speech_corpus --out data/speech_corpus

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
