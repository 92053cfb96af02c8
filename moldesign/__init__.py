"""moldesign: de novo molecular design with a conditional SMILES VAE trained on ZINC250k."""
import os
from pathlib import Path

__version__ = "0.1.0"

# The shipped model every command and the API use unless given --model / a path; the one place it
# is named (the CLI, the API and the web app import it). $MOLDESIGN_MODEL overrides it.
DEFAULT_MODEL = Path(os.environ.get("MOLDESIGN_MODEL", Path(__file__).resolve().parent.parent / "models" / "moldesign-zinc.pt"))


def load(model=None, device: str = "auto"):
    """Load a checkpoint (default: the shipped model) → api.Designer with generate, interpolate,
    optimize, encode, decode. Imports torch/RDKit only when called, so `import moldesign` stays cheap."""
    from .api import load as _load

    return _load(model, device)
