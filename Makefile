# Fresh machine: `make demo` or `make test`. Both build .venv first (once) via `make setup`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offscreen rendering for the embedded simulator (Mesa's EGL; no display needed).
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo test test-ros-compat bench speech-corpus speech-dev-corpus lint clean

setup: $(STAMP)

# requirements.txt says what the code needs; requirements-lock.txt fixes the versions installed.
$(STAMP): requirements.txt requirements-lock.txt requirements-ros.txt requirements-dev.txt \
		setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c requirements-lock.txt \
		-r requirements-ros.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(BIN)/vla-ros sim --command "go to the red cube" --duration 40

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

# The whole suite again in a second venv built like a ROS 2 Jazzy user's: numpy 1.26 and
# OpenCV 4.6 as Ubuntu 24.04 ships them, Jazzy's rclpy wheels, the other dependencies at the
# lowest versions requirements.txt allows (requirements-ros-compat.txt).
COMPAT := .venv-ros-compat
COMPAT_STAMP := $(COMPAT)/.installed

test-ros-compat: $(COMPAT_STAMP)
	$(COMPAT)/bin/pytest

$(COMPAT_STAMP): requirements.txt requirements-ros-compat.txt constraints-ros.txt \
		requirements-dev.txt setup.py setup.cfg
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install --quiet --upgrade pip
	$(COMPAT)/bin/pip install --quiet -r requirements.txt -r requirements-ros-compat.txt \
		-c constraints-ros.txt -r requirements-dev.txt
	$(COMPAT)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

bench: setup
	$(BIN)/vla-ros bench

# The spoken-command corpus of `vla-ros bench --speech` (needs espeak-ng and sox; 75 MB).
speech-corpus: setup
	$(BIN)/python -m vla_ros.bench.speech_corpus --out data/speech_corpus

# Corpora to tune on (other voice/speed pairings and noise; 4 x 75 MB), so that the one above
# stays for measuring: `vla-ros bench --speech --corpus data/speech_dev/seed1` and so on.
speech-dev-corpus: setup
	for seed in 1 2 3 4; do \
		$(BIN)/python -m vla_ros.bench.speech_corpus --seed $$seed --out data/speech_dev/seed$$seed \
		|| exit 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(COMPAT) build install log .pytest_cache .ruff_cache
