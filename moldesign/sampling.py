"""Encoding and decoding with a trained bundle: conditions, latents, greedy/temperature sampling.

Higher-level design operations (generate around a seed, interpolate) build on these.
All functions take a checkpoint.Bundle and return plain Python / numpy values.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .checkpoint import Bundle
from .chem import PROPERTIES, properties_array


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def model_device(bundle: Bundle) -> torch.device:
    return next(bundle.model.parameters()).device


def draw_conditions(bundle: Bundle, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, P) raw property vectors drawn from the training distribution stored in the checkpoint
    (rows of a random training sample, so HBD/HBA stay integers and correlations are kept)."""
    sample = np.asarray(bundle.property_stats["sample"], dtype=np.float64)
    return sample[rng.integers(0, len(sample), size=n)]


def scale(bundle: Bundle, raw: np.ndarray) -> torch.Tensor:
    """Raw (n, P) properties → scaled float32 tensor on the model's device."""
    return torch.from_numpy(bundle.scaler.transform(raw)).to(model_device(bundle))


def encode_ids(bundle: Bundle, smiles: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """Token ids (n, L) for canonical SMILES; raises on unknown tokens / too long (message names it)."""
    seqs = [bundle.vocab.encode(s, max_len=bundle.config.max_len) for s in smiles]
    L = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), L, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids.to(model_device(bundle)), [len(s) for s in seqs]


@torch.no_grad()
def encode(bundle: Bundle, smiles: Sequence[str], props: np.ndarray | None = None,
           batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """μ and log σ² (n, Z) of canonical SMILES, conditioned on their RDKit properties (or `props`)."""
    props = properties_array(smiles) if props is None else np.asarray(props, dtype=np.float64)
    mus, logvars = [], []
    bundle.model.eval()
    for i in range(0, len(smiles), batch_size):
        ids, _ = encode_ids(bundle, smiles[i : i + batch_size])
        mu, logvar = bundle.model.encode(ids, scale(bundle, props[i : i + batch_size]))
        mus.append(mu.cpu().numpy())
        logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


@torch.no_grad()
def decode(bundle: Bundle, z: np.ndarray | torch.Tensor, props: np.ndarray, temperature: float = 0.0,
           top_k: int = 0, batch_size: int = 1000, generator: torch.Generator | None = None) -> list[str]:
    """Decode latents (n, Z) under raw conditions (n, P) to strings (not validated).

    temperature 0 = greedy (deterministic); > 0 samples with `generator` for reproducibility.
    """
    device = model_device(bundle)
    z = torch.as_tensor(np.asarray(z, dtype=np.float32) if not torch.is_tensor(z) else z, device=device)
    cond = scale(bundle, np.asarray(props, dtype=np.float64))
    bundle.model.eval()
    out: list[str] = []
    for i in range(0, len(z), batch_size):
        ids = bundle.model.decoder.sample(z[i : i + batch_size].float(), cond[i : i + batch_size],
                                          bundle.config.max_len, temperature, top_k, generator)
        out += [bundle.vocab.decode(row) for row in ids.cpu().tolist()]
    return out


def sample_prior(bundle: Bundle, n: int, seed: int = 0, temperature: float = 1.0,
                 props: np.ndarray | None = None, batch_size: int = 1000) -> tuple[list[str], np.ndarray]:
    """n strings decoded from z ~ N(0, I) with conditions from the training distribution (or
    `props`, shape (n, P) or (P,)). Returns (strings, raw conditions (n, P))."""
    rng = np.random.default_rng(seed)
    if props is None:
        props = draw_conditions(bundle, n, rng)
    props = np.broadcast_to(np.asarray(props, dtype=np.float64), (n, len(PROPERTIES))).copy()
    z = rng.standard_normal((n, bundle.config.latent_dim)).astype(np.float32)
    gen = torch.Generator(device=model_device(bundle)).manual_seed(seed)
    return decode(bundle, z, props, temperature, batch_size=batch_size, generator=gen), props


def reconstruct(bundle: Bundle, smiles: Sequence[str], batch_size: int = 512) -> list[str]:
    """Greedy decode of μ for each canonical SMILES (exact-match reconstruction uses this)."""
    props = properties_array(smiles)
    mu, _ = encode(bundle, smiles, props, batch_size)
    return decode(bundle, mu, props, temperature=0.0, batch_size=batch_size)
