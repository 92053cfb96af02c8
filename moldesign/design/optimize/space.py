"""Where the search happens: u = [z, scaled condition] (Z + 5), which coordinates move, the
training range of the condition, a start's own point u₀ and the unit of a step near it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ...chem import PROPERTIES
from ...decoding.sampling import encode
from ...errors import DesignInputError, DesignWarning
from ...model.checkpoint import Bundle
from ...model.surrogate import joint_input
from ..seeds import Seed
from .settings import CONDITIONS, SIGMA_UNITS


@dataclass
class Space:
    """Where the walk happens: u = [z, scaled c] (n, Z + 5); `moves` marks the coordinates that may
    change (all of them, or z only with condition="seed"); c stays within [c_lo, c_hi], the
    training range in scaled units. `of` rejects an unknown condition."""

    Z: int
    moves: np.ndarray  # (Z + 5,) bool
    c_lo: np.ndarray  # (5,)
    c_hi: np.ndarray  # (5,)

    @classmethod
    def of(cls, bundle: Bundle, condition: str) -> "Space":
        if condition not in CONDITIONS:
            raise DesignInputError(f"--condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
        Z, P = bundle.config.latent_dim, len(PROPERTIES)
        stats = bundle.property_stats
        lo = bundle.scaler.transform(np.asarray(stats["min"])) if "min" in stats else np.full(P, -np.inf)
        hi = bundle.scaler.transform(np.asarray(stats["max"])) if "max" in stats else np.full(P, np.inf)
        moves = np.concatenate([np.full(Z, condition != "only"), np.full(P, condition != "seed")])
        return cls(Z, moves, np.asarray(lo, np.float32), np.asarray(hi, np.float32))

    def clip(self, u: np.ndarray) -> np.ndarray:
        u = np.array(u, dtype=np.float32, copy=True)
        u[:, self.Z:] = np.clip(u[:, self.Z:], self.c_lo, self.c_hi)
        return u


def seed_point(bundle: Bundle, seed: Seed, space: Space | None = None) -> np.ndarray:
    """u₀ = [μ(seed), scaled seed properties] (Z + 5,). With `space`, a condition outside the
    training range is clipped into it with a DesignWarning naming the properties (never silently)."""
    mu, _ = encode(bundle, [seed.smiles], seed.props[None, :])  # (1, Z)
    u0 = joint_input(bundle, mu, seed.props[None, :])
    if space is not None:
        clipped = space.clip(u0)
        out = [k for j, k in enumerate(PROPERTIES) if clipped[0, space.Z + j] != u0[0, space.Z + j]]
        if out:
            warnings.warn(f"start {seed.smiles}: {', '.join(out)} outside the model's training range; the "
                          f"chains start with the condition clipped into it", DesignWarning, stacklevel=3)
        u0 = clipped
    return u0[0]


def posterior_sd(bundle: Bundle, seed: Seed) -> np.ndarray:
    """σ of the encoder's posterior q(z | seed) per latent coordinate (Z,): how far z can move
    and still describe the start, the natural unit for search steps near it."""
    _, logvar = encode(bundle, [seed.smiles], seed.props[None, :])  # (1, Z)
    return np.exp(0.5 * logvar[0]).astype(np.float32)


def step_scale(bundle: Bundle, seed: Seed, space: Space, units: str) -> np.ndarray:
    """Per-coordinate unit of u (Z + 5,): 1 everywhere ("prior": z in prior std units) or the
    posterior σ of the start for z ("posterior"); condition coordinates keep unit 1."""
    if units not in SIGMA_UNITS:
        raise DesignInputError(f"--sigma-units must be one of {', '.join(SIGMA_UNITS)}, got {units!r}")
    scale = np.ones(space.Z + len(space.c_lo), np.float32)
    if units == "posterior":
        scale[: space.Z] = posterior_sd(bundle, seed)
    return scale
