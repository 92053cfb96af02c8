"""Where the shipped model is: the one place it is named (the CLI, the API and the web app import
DEFAULT_MODEL from here). $MOLDESIGN_MODEL overrides it.

In a checkout the model is the top-level models/ folder (the source of truth)."""
from __future__ import annotations

import os
from pathlib import Path

MODEL_NAME = "moldesign-zinc.pt"
CHECKOUT_MODELS = Path(__file__).resolve().parent.parent / "models"


def default_model() -> Path:
    """$MOLDESIGN_MODEL, else the checkout's models/moldesign-zinc.pt."""
    return Path(os.environ.get("MOLDESIGN_MODEL", CHECKOUT_MODELS / MODEL_NAME))


DEFAULT_MODEL = default_model()
