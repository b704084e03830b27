# The README's two commands: `make reproduce` (every notebook, headless) and `make test`.
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL_DIR := .build/nbval

.PHONY: reproduce test lab clean-build

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m inr_utils.pipeline reproduce

test: $(STAMP)
	rm -rf $(NBVAL_DIR)
	$(PY) -m inr_utils.pipeline prepare $(NBVAL_DIR)
	$(PY) -m pytest tests $(NBVAL_DIR) --nbval-lax --nbval-current-env -p no:cacheprovider

# JupyterLab with the numbered .py notebooks opening as notebooks (Jupytext's viewer); as root
# (a container) it passes --allow-root, which JupyterLab otherwise requires
lab: $(STAMP)
	$(PY) -m pip install --quiet "jupyterlab==4.6.6"
	$(PY) -m inr_utils.pipeline lab-settings $(VENV)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean-build:
	rm -rf .build
