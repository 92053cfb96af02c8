"""moldesign: de novo molecular design with a conditional SMILES VAE trained on ZINC250k."""
from .resources import DEFAULT_MODEL  # noqa: F401  (the shipped model; $MOLDESIGN_MODEL overrides it)

__version__ = "0.1.0"


def load(model=None, device: str = "auto"):
    """Load a checkpoint (default: the shipped model) → api.Designer with generate, interpolate,
    optimize, encode, decode. Imports torch/RDKit only when called, so `import moldesign` stays cheap."""
    from .api import load as _load

    return _load(model, device)
