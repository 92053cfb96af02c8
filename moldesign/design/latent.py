"""Latent geometry for the design commands: noise around a seed's μ, and paths between two latents."""
from __future__ import annotations

import numpy as np

from ..errors import DesignInputError


def sample_around(mu: np.ndarray, n: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """n latents z = μ + radius·ε, ε ~ N(0, I): (n, Z) float32.

    `radius` is in units of the prior's standard deviation per dimension (the prior is N(0, I)),
    so a sample lies at distance ≈ radius·√Z from μ; radius 0 returns μ itself n times.
    Gómez-Bombarelli et al. sampled around aspirin the same way (Gaussian noise of growing size).
    """
    mu = np.asarray(mu, dtype=np.float32).reshape(1, -1)  # (1, Z)
    return (mu + radius * rng.standard_normal((n, mu.shape[1]))).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation between latents a, b (Z,) at `alphas` (K,) → (K, Z).

    Moves along the great circle through a and b (norm interpolated linearly), which keeps points
    at the radius where the prior N(0, I) puts its mass instead of cutting through the low-norm
    centre as a straight line does. Falls back to linear when a and b are (anti)parallel.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    alphas = np.asarray(alphas, np.float64)[:, None]  # (K, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-8 or nb < 1e-8:
        return ((1 - alphas) * a + alphas * b).astype(np.float32)
    ua, ub = a / na, b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6 or np.pi - omega < 1e-6:
        return ((1 - alphas) * a + alphas * b).astype(np.float32)
    dirs = (np.sin((1 - alphas) * omega) * ua + np.sin(alphas * omega) * ub) / np.sin(omega)  # (K, Z), unit
    norms = (1 - alphas) * na + alphas * nb  # (K, 1)
    return (dirs * norms).astype(np.float32)


def interpolate_latents(a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp") -> tuple[np.ndarray, np.ndarray]:
    """`steps` points from a to b inclusive: (alphas (K,), z (K, Z))."""
    if steps < 2:
        raise DesignInputError(f"steps must be at least 2 (both ends), got {steps}")
    alphas = np.linspace(0.0, 1.0, steps)
    if method == "linear":
        z = (1 - alphas[:, None]) * np.asarray(a, np.float64) + alphas[:, None] * np.asarray(b, np.float64)
        return alphas, z.astype(np.float32)
    if method == "slerp":
        return alphas, slerp(a, b, alphas)
    raise DesignInputError(f"unknown interpolation method {method!r}; choose slerp or linear")
