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

from ..config import ModelConfig, from_dict
from ..data import OutputError, PropertyScaler, atomic_path
from ..errors import CheckpointError  # noqa: F401  (raised here; importable from here as before)
from .networks import CVAE
from .tokenizer import Vocabulary

FORMAT_VERSION = 1
MODEL_TYPE = "moldesign.cvae"


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
        try:
            torch.save(ckpt, tmp)
        except RuntimeError as e:  # torch reports a full disk as "[enforce fail at inline_container.cc...]"
            raise OutputError(f"could not write {path}: {str(e).splitlines()[0][:200]} (disk full?)") from None


def load(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load a checkpoint; any problem becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file not found: {path}")
    if not path.is_file():  # a directory, or a FIFO that would block the read forever
        raise CheckpointError(f"{path} is not a regular file (a directory, pipe or device); --model takes a .pt file")
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
        cfg = from_dict(ModelConfig, _block(ckpt, "model_config", dict, path), "model_config").validate()
        vocab = Vocabulary.from_dict(_block(ckpt, "vocab", dict, path))
        scaler = PropertyScaler.from_dict(_block(ckpt, "scaler", dict, path))
        _check_shapes(cfg, vocab, scaler, ckpt.get("property_stats"), path)
        model = CVAE(cfg)
        model.load_state_dict(_block(ckpt, "state_dict", dict, path))
        damage = weight_damage(model.state_dict())
        if damage:
            raise CheckpointError(f"{path} is damaged: {damage}")
    except CheckpointError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path} is damaged: {type(e).__name__} {str(e).strip().splitlines()[0] if str(e).strip() else ''}".rstrip()) from None
    model.to(device).eval()
    surrogate = _load_surrogate(ckpt, cfg, path, device)
    prior = None
    if "prior" in ckpt:
        from .prior import GaussianMixturePrior

        try:
            if not isinstance(ckpt["prior"], dict):
                raise ValueError(f"'prior' is a {type(ckpt['prior']).__name__}, not a dict")
            prior = GaussianMixturePrior.from_dict(ckpt["prior"])
            if prior.means.shape[1] != cfg.latent_dim:
                raise ValueError(f"prior means have {prior.means.shape[1]} dimensions, the latent {cfg.latent_dim}")
        except (KeyError, ValueError, TypeError, np.linalg.LinAlgError) as e:  # optional block: the VAE still works
            prior = None
            warnings.warn(f"{path}: its GMM prior is damaged ({str(e).splitlines()[0]}) and was not loaded; "
                          f"sampling uses N(0, I)", stacklevel=2)
    return Bundle(model, vocab, scaler, ckpt.get("property_stats", {}), ckpt.get("train_info", {}),
                  surrogate, ckpt.get("optimizer_state"), ckpt.get("train_state"), prior)


MAX_WEIGHT = 1e4
"""A trained network's parameters stay within a few hundred (weight decay, clipping); a larger value
is damage (a flipped exponent, a bad edit), not a model, and would overflow in the first layer."""


def weight_damage(state: dict) -> str | None:
    """What is wrong with a state dict's floating-point tensors (NaN/inf or |w| > MAX_WEIGHT), or None."""
    for name, w in state.items():
        if not torch.is_tensor(w) or not w.is_floating_point() or not w.numel():
            continue
        if not torch.isfinite(w).all():
            return f"{name} holds NaN or infinite values"
        if float(w.abs().max()) > MAX_WEIGHT:
            return f"{name} holds values up to {float(w.abs().max()):.3g} (a trained model's stay below {MAX_WEIGHT:g})"
    return None


def _block(ckpt: dict, key: str, kind: type, path: Path):
    if key not in ckpt:
        raise CheckpointError(f"{path} is damaged: key {key!r} is missing")
    if not isinstance(ckpt[key], kind):
        raise CheckpointError(f"{path} is damaged: {key!r} is a {type(ckpt[key]).__name__}, not a {kind.__name__}")
    return ckpt[key]


def _check_shapes(cfg: ModelConfig, vocab: Vocabulary, scaler: PropertyScaler, stats, path: Path) -> None:
    """The blocks must agree with each other: vocabulary vs embedding/output rows, scaler and
    property statistics vs the condition size. One line naming the first key that does not."""
    from ..config import PROPERTIES

    def bad(key: str, what: str):
        raise CheckpointError(f"{path} is damaged: {key} {what}")

    if len(vocab) != cfg.vocab_size:  # the embedding and output layers have cfg.vocab_size rows
        bad("vocab", f"has {len(vocab)} tokens but the embedding/output layers have {cfg.vocab_size} "
                     f"(model_config.vocab_size)")
    p = cfg.n_props
    if list(scaler.names) != list(PROPERTIES)[:p] or len(scaler.names) != p:
        bad("scaler.names", f"is {list(scaler.names)}, expected {list(PROPERTIES)[:p]}")
    for name, arr in (("scaler.mean", scaler.mean), ("scaler.std", scaler.std)):
        if arr.shape != (p,) or not np.isfinite(arr).all():
            bad(name, f"must be {p} finite numbers, got shape {arr.shape}")
    if (scaler.std <= 0).any():
        bad("scaler.std", "must be positive")
    if not isinstance(stats, dict):
        bad("property_stats", "is missing")
    try:
        sample = np.asarray(stats.get("sample"), dtype=np.float64)
        lo, hi = (np.asarray(stats.get(k), dtype=np.float64) for k in ("min", "max"))
    except (TypeError, ValueError):
        bad("property_stats", "holds non-numeric values")
    if sample.ndim != 2 or sample.shape[1] != p or len(sample) == 0 or not np.isfinite(sample).all():
        bad("property_stats.sample", f"must be a non-empty (n, {p}) table of finite numbers, got shape {sample.shape}")
    for key, arr in (("property_stats.min", lo), ("property_stats.max", hi)):
        if arr.shape != (p,) or not np.isfinite(arr).all():
            bad(key, f"must be {p} finite numbers, got shape {arr.shape}")


def _load_surrogate(ckpt: dict, cfg: ModelConfig, path: Path, device):
    """The optional surrogate block: a damaged or outdated one is left out with a warning (the
    VAE itself is fine; optimize asks for a refit)."""
    if "surrogate_state_dict" not in ckpt and "surrogate_config" not in ckpt:
        return None
    from .surrogate import SURROGATE_VERSION, Surrogate  # local import: surrogate depends on this module's Bundle

    conf = ckpt.get("surrogate_config")
    try:
        if not isinstance(conf, dict) or not isinstance(ckpt.get("surrogate_state_dict"), dict):
            raise ValueError("surrogate_config or surrogate_state_dict is missing")
        if conf.get("version") != SURROGATE_VERSION:
            warnings.warn(f"{path}: surrogate format {conf.get('version')!r} is outdated and was not loaded; "
                          f"refit it with `moldesign surrogate fit`", stacklevel=3)
            return None
        if conf.get("latent_dim") != cfg.latent_dim or conf.get("cond_dim") != cfg.n_props:
            raise ValueError(f"surrogate_config sizes ({conf.get('latent_dim')}, {conf.get('cond_dim')}) do not match "
                             f"the model ({cfg.latent_dim}, {cfg.n_props})")
        damage = weight_damage(ckpt["surrogate_state_dict"])
        if damage or not all(np.isfinite(conf.get(k, [0.0])).all() for k in ("mean", "std")):
            raise ValueError(damage or "its target mean/std are not finite")
        return Surrogate.from_state(conf, ckpt["surrogate_state_dict"]).to(device).eval()
    except Exception as e:  # any damage to the optional block: keep the model, drop the surrogate
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warnings.warn(f"{path}: the surrogate block is damaged ({msg}) and was not loaded; refit it with "
                      f"`moldesign surrogate fit`", stacklevel=3)
        return None
