# bat's two entry points: `make demo` runs the main job end to end, `make test` runs the suite.
# Both first build the project-local virtual environment (.venv) when it is missing or stale.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

# The CPU path pins torch==2.13.0 first: a looser torch requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements/constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# DeepSpeed without its CUDA ops: on the CPU it JIT-builds the one small op it needs on first use
	DS_BUILD_OPS=0 $(BIN)/python -m pip install --quiet -c requirements/constraints-cpu.txt deepspeed
	$(BIN)/python -m pip install --quiet -c requirements/constraints-cpu.txt -e '.[dev]'
	# basic-pitch without its TensorFlow requirement: bat runs its bundled ONNX model (bat/ingest/audio.py)
	$(BIN)/python -m pip install --quiet --no-deps -c requirements/constraints-cpu.txt basic-pitch==0.4.0
	touch $(STAMP)

demo: setup
	$(BIN)/bat demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/featurize.py

clean:
	rm -rf $(VENV) data .prefect
