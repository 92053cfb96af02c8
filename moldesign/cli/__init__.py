"""The `moldesign` command line: thin wrappers that parse options, call the Python API, write files.

`app` is the console script (`moldesign = "moldesign.cli:app"`); `python -m moldesign.cli` runs it
too. What the commands share is in common.py; each other module holds one command group.
Exit codes: 0 ok; 1 nothing valid / runtime failure; 2 usage or bad input (one line, no traceback).
"""
from .common import app

# Importing a command module registers its commands on `app`; this order is the order of `--help`.
from . import data, train, generate, interpolate, optimize, fitting, webapp, screen, evaluate  # noqa: E402,F401,I001

__all__ = ["app"]
