"""One self-describing checkpoint file: a plain dict that loads with weights_only=True.

Keys: format_version, model_type, model_config, vocab, property_names, scaler, property_stats
(training distribution, for drawing unset conditions), state_dict, optional surrogate_state_dict
+ surrogate_config, optional optimizer_state + train_state (for --resume), train_info.
Sampling needs nothing but this file.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, from_dict
from .data import PropertyScaler, atomic_path
from .networks import CVAE
from .tokenizer import Vocabulary

FORMAT_VERSION = 1
MODEL_TYPE = "moldesign.cvae"


class CheckpointError(ValueError):
    """A file that is not a loadable moldesign checkpoint (message is one line)."""


@dataclass
class Bundle:
    """Everything needed to sample: the network plus its vocabulary, scaler and metadata."""

    model: CVAE
    vocab: Vocabulary
    scaler: PropertyScaler
    property_stats: dict[str, Any] = field(default_factory=dict)  # mean, cov, min, max of train properties
    train_info: dict[str, Any] = field(default_factory=dict)
    surrogate: Any = None  # surrogate.Surrogate or None
    optimizer_state: dict | None = None
    train_state: dict | None = None
    prior: Any = None  # prior.GaussianMixturePrior fitted on training μ, or None (then N(0, I))

    @property
    def config(self) -> ModelConfig:
        return self.model.cfg


def save(bundle: Bundle, path: str | Path, include_optimizer: bool = True) -> None:
    """Write the checkpoint atomically (temp file + rename)."""
    ckpt = {
        "format_version": FORMAT_VERSION,
        "model_type": MODEL_TYPE,
        "model_config": dataclasses.asdict(bundle.model.cfg),
        "vocab": bundle.vocab.to_dict(),
        "property_names": list(bundle.scaler.names),
        "scaler": bundle.scaler.to_dict(),
        "property_stats": bundle.property_stats,
        "state_dict": bundle.model.state_dict(),
        "train_info": bundle.train_info,
    }
    if bundle.surrogate is not None:
        ckpt["surrogate_config"] = bundle.surrogate.config_dict()
        ckpt["surrogate_state_dict"] = bundle.surrogate.state_dict()
    if bundle.prior is not None:
        ckpt["prior"] = bundle.prior.to_dict()
    if bundle.train_state is not None:  # small: step/epoch position, so a shipped model can resume
        ckpt["train_state"] = bundle.train_state
    if include_optimizer and bundle.optimizer_state is not None:  # AdamW moments: 2x the weights' size
        ckpt["optimizer_state"] = bundle.optimizer_state
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load a checkpoint; any problem becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated, not a torch file, pickled classes, ...
        raise CheckpointError(f"{path} is not a readable moldesign checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("model_type") != MODEL_TYPE:
        kind = ckpt.get("model_type") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a moldesign CVAE checkpoint (model_type={kind!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {ckpt.get('format_version')!r}; this moldesign reads {FORMAT_VERSION}"
        )
    try:
        cfg = from_dict(ModelConfig, ckpt["model_config"], "model_config")
        model = CVAE(cfg)
        model.load_state_dict(ckpt["state_dict"])
        vocab = Vocabulary.from_dict(ckpt["vocab"])
        scaler = PropertyScaler.from_dict(ckpt["scaler"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path} is damaged: {str(e).splitlines()[0]}") from None
    model.to(device).eval()
    surrogate = None
    if "surrogate_state_dict" in ckpt:
        from .surrogate import SURROGATE_VERSION, Surrogate  # local import: surrogate depends on this module's Bundle

        if ckpt["surrogate_config"].get("version") == SURROGATE_VERSION:
            surrogate = Surrogate.from_state(ckpt["surrogate_config"], ckpt["surrogate_state_dict"]).to(device).eval()
        else:  # an older surrogate is left out, not fatal: the VAE itself is fine; optimize asks for a refit
            warnings.warn(f"{path}: surrogate format {ckpt['surrogate_config'].get('version')!r} is outdated and was "
                          f"not loaded; refit it with `moldesign surrogate fit`", stacklevel=2)
    prior = None
    if "prior" in ckpt:
        from .prior import GaussianMixturePrior

        try:
            prior = GaussianMixturePrior.from_dict(ckpt["prior"])
        except (KeyError, ValueError, np.linalg.LinAlgError) as e:  # optional block: the VAE still works
            warnings.warn(f"{path}: its GMM prior is damaged ({str(e).splitlines()[0]}) and was not loaded; "
                          f"sampling uses N(0, I)", stacklevel=2)
    return Bundle(model, vocab, scaler, ckpt.get("property_stats", {}), ckpt.get("train_info", {}),
                  surrogate, ckpt.get("optimizer_state"), ckpt.get("train_state"), prior)
