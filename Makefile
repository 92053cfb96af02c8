# Two entry points (see README.md): `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test bench

# torch first, pinned to the local CPU wheel: an unpinned torch would pull GBs of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,fcd,app]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/moldesign generate --like tamiflu --logp 2.0 -n 10

test: $(STAMP)
	$(BIN)/python -m pytest -q
