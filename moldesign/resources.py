"""Where the shipped model is: the one place it is named (the CLI, the API and the web app import
DEFAULT_MODEL from here). $MOLDESIGN_MODEL overrides it.

In a checkout the model is the top-level models/ folder (the source of truth). A wheel carries
that folder's moldesign-zinc.pt and MODEL_CARD.md as moldesign/_models/ (package data, see
[tool.setuptools.package-dir] in pyproject.toml): an installed moldesign finds its model there.
Cheap to import (no torch)."""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

MODEL_NAME = "moldesign-zinc.pt"
PACKAGED_MODELS = "_models"  # moldesign/_models/ in a wheel: models/ mapped by pyproject.toml
CHECKOUT_MODELS = Path(__file__).resolve().parent.parent / "models"


def shipped_model() -> Path:
    """The installed package's _models/moldesign-zinc.pt, else the checkout's
    models/moldesign-zinc.pt (also when neither exists: that is the path an error names)."""
    packaged = files(__package__) / PACKAGED_MODELS / MODEL_NAME
    # a real file only: torch.load and the callers need a path, not a zip member
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    return CHECKOUT_MODELS / MODEL_NAME


def default_model() -> Path:
    """$MOLDESIGN_MODEL (when set and not empty), else the shipped model."""
    return Path(os.environ.get("MOLDESIGN_MODEL") or shipped_model())


DEFAULT_MODEL = default_model()
