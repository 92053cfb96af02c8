# Two entry points (see README.md): `make run` and `make test`. Both create .venv on first use,
# installed from requirements/lock.txt (the exact versions the suite passed with), so every machine
# gets the same packages. `make lock` refreshes the lock; `make test-latest` shows drift first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
LATEST := .venv-latest
# torch first, pinned to the local CPU wheel: an unpinned torch would pull GBs of CUDA packages.
TORCH  := torch==2.13.0
EXTRAS := .[dev,fcd,app,dask,cmaes]

.PHONY: install run test bench lock test-latest latest-venv

# -r $(LOCK): the venv holds exactly the locked versions, even an older .venv that is being updated.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(LOCK) --upgrade pip
	$(BIN)/python -m pip install -q -c $(LOCK) $(TORCH)
	$(BIN)/python -m pip install -q -c $(LOCK) -r $(LOCK) -e "$(EXTRAS)"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/moldesign generate --like tamiflu --logp 2.0 -n 10

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The newest releases pyproject's ranges allow, in a fresh $(LATEST) venv. torch stays pinned on the
# same line: an eager upgrade would otherwise replace the CPU wheel with a CUDA build (GBs).
latest-venv:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	$(LATEST)/bin/python -m pip install -q $(TORCH)
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager "$(TORCH)" -e "$(EXTRAS)"

# Drift check: the suite against the newest releases, with an empty pytest cache (as a fresh clone).
test-latest: latest-venv
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider

# Refresh the lock from the newest releases; then `make test` (reinstalls .venv from it) and commit
# the lock only when the suite passes. The local version label (+cpu) is dropped from torch's pin.
lock: latest-venv
	{ echo "# moldesign lock: pip freeze of a fresh venv (make lock, $$(date -u +%F)), $$($(LATEST)/bin/python -V), $$(uname -m)"; \
	  echo "# used as pip -c/-r by make run/test and .ci/run; pyproject.toml keeps ranges for pip users"; \
	  $(LATEST)/bin/python -m pip freeze --all --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
