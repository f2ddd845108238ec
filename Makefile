# Set-up and everyday commands. Only Python 3.11 (or newer 3.x) and PyPI are needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# No TensorFlow C++ log: its start-up notices, and the "NodeDef mentions attribute" lines
# that tf.data pipelines log at error level, are not errors of ours (Python errors still
# show; the skcrater command makes the same choice, see docs/user_guide/cli.rst).
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: demo test lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot,test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/skcrater demo --out demo_out

# one pytest worker per core (pytest-xdist); tests of one worker never share state
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(VENV)/.installed-test
	$(BIN)/ruff check skcrater tests benchmarks examples
	$(BIN)/ruff format --check skcrater tests benchmarks examples

docs: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build docs/auto_examples demo_out
