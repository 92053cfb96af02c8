"""Latent priors for unconditioned sampling: the VAE's N(0, I), or a Gaussian mixture fitted to the
posterior means μ of training molecules.

Why: with a low KL weight (model 2 uses β = 0.02 in per-molecule units) the aggregate posterior
q(z) = E_x q(z|x) no longer fills N(0, I); samples from N(0, I) then land where the decoder has
seen nothing and decode to invalid strings. A mixture fitted to μ of training molecules
(scikit-learn's GaussianMixture, full covariances) puts samples where molecules are.

Stored in the checkpoint as plain tensors under "prior": {"type": "gmm", "weights" (K,),
"means" (K, Z), "covariances" (K, Z, Z), "n_fit", "seed"}.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

PRIORS = ("auto", "gmm", "normal")


class PriorError(ValueError):
    """A prior that cannot be used (asked for a GMM the checkpoint does not hold); one line."""


@dataclass
class GaussianMixturePrior:
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, Z)
    covariances: np.ndarray  # (K, Z, Z)
    n_fit: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        # Cholesky factors once, so sampling is a matrix product per component
        self._chol = np.linalg.cholesky(self.covariances)  # (K, Z, Z)

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n latents (n, Z) float32: a component by weight, then mean + L·ε."""
        k = rng.choice(self.n_components, size=n, p=self.weights / self.weights.sum())
        eps = rng.standard_normal((n, self.means.shape[1]))
        z = self.means[k] + np.einsum("nij,nj->ni", self._chol[k], eps)
        return z.astype(np.float32)

    def to_dict(self) -> dict:
        return {"type": "gmm", "weights": torch.from_numpy(self.weights), "means": torch.from_numpy(self.means),
                "covariances": torch.from_numpy(self.covariances), "n_fit": int(self.n_fit), "seed": int(self.seed)}

    @classmethod
    def from_dict(cls, d: dict) -> "GaussianMixturePrior":
        def arr(key):
            v = d[key]
            return v.detach().cpu().numpy().astype(np.float64) if torch.is_tensor(v) else np.asarray(v, np.float64)

        if d.get("type") != "gmm":
            raise PriorError(f"unknown prior type {d.get('type')!r}")
        w, m, c = arr("weights"), arr("means"), arr("covariances")
        for name, a in (("weights", w), ("means", m), ("covariances", c)):
            if not np.isfinite(a).all():
                raise PriorError(f"its {name} hold NaN or infinite values")
        if (w < 0).any() or w.sum() <= 0:
            raise PriorError("its weights are negative or sum to zero")
        K = len(w)
        if w.ndim != 1 or m.ndim != 2 or m.shape[0] != K or c.shape != (K, m.shape[1], m.shape[1]):
            raise PriorError(f"prior shapes do not match: weights {w.shape}, means {m.shape}, covariances {c.shape}")
        return cls(w, m, c, int(d.get("n_fit", 0)), int(d.get("seed", 0)))


def draw_latents(bundle, n: int, rng: np.random.Generator, prior: str = "auto") -> np.ndarray:
    """(n, Z) latents from the chosen prior. auto = the checkpoint's GMM when it has one, else N(0, I)."""
    if prior not in PRIORS:
        raise PriorError(f"unknown prior {prior!r}; choose {', '.join(PRIORS)}")
    gmm = getattr(bundle, "prior", None)
    if prior == "gmm" and gmm is None:
        raise PriorError("this model has no fitted GMM prior; run `moldesign prior fit` or use --prior normal")
    if gmm is not None and prior in ("auto", "gmm"):
        return gmm.sample(n, rng)
    return rng.standard_normal((n, bundle.config.latent_dim)).astype(np.float32)
