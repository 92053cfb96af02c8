"""Latent surrogate: an MLP [z, c] → (mw, logp, hbd, hba, tpsa, qed, sa), fit on encoded molecules.

Used by `optimize` to climb property gradients in the decoder's input space (Gómez-Bombarelli et
al. 2018 trained a property predictor jointly with the VAE; here it is fit afterwards on a trained
model, so the VAE is untouched). Targets are computed with RDKit (chem.compute_table) and
standardized; the network predicts in standardized units and `forward` returns raw units.

Why [z, c] and not z alone: in a conditional VAE the five properties reach the decoder as the
condition c, so the encoder has no reason to store them in z, and a z-only regressor explains
little of them (held-out R² 0.1-0.5 on the first shipped model). The decoder's molecule is a
function of (z, c), so the surrogate reads both: u = [z, scaler(c)] (Z + 5 inputs, c in the
checkpoint's standardized units). For the five conditioned properties it learns "≈ c", which is
true as far as the decoder honours its condition; QED and SA it learns from both parts.
`fit_surrogate` therefore also reports `r2_decoded`: how well the prediction at (μ, c) matches the
RDKit properties of what the decoder actually emits there, the number that matters to `optimize`.

Training inputs are z ~ q(z|x) = μ + σ·ε, resampled every epoch, not μ alone: the optimizer walks
off the encoded points, and the noise makes the regressor smooth over the region the decoder was
trained on. c is the molecule's own (exact) properties. Held-out R² is measured on μ of molecules
never seen in fitting.

Stored in the checkpoint as `surrogate_config` (plain dict: sizes, target names, mean/std,
metrics) and `surrogate_state_dict` (tensors), so `torch.load(weights_only=True)` still works.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..chem import PROPERTIES, SCORES
from ..errors import CheckpointError

TARGETS: tuple[str, ...] = PROPERTIES + SCORES  # the 7 predicted properties, in column order
SURROGATE_VERSION = 2  # 2: input [z, scaled c]; version 1 (z only) is not read: refit it


class Surrogate(nn.Module):
    """MLP (B, Z + C) → (B, T) raw-unit predictions of TARGETS; input u = [z, scaled condition]."""

    def __init__(self, latent_dim: int, cond_dim: int = len(PROPERTIES), hidden: Sequence[int] = (256, 256),
                 targets: Sequence[str] = TARGETS, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, metrics: dict | None = None):
        super().__init__()
        self.latent_dim, self.cond_dim = int(latent_dim), int(cond_dim)
        self.hidden, self.targets = tuple(int(h) for h in hidden), tuple(targets)
        self.metrics = dict(metrics or {})
        layers, d = [], self.input_dim
        for h in self.hidden:
            layers += [nn.Linear(d, h), nn.SiLU()]  # smooth activation: its gradients drive optimize
            d = h
        layers.append(nn.Linear(d, len(self.targets)))
        self.net = nn.Sequential(*layers)
        T = len(self.targets)
        # target scaling lives in the config (plain lists); buffers only move it with .to(device)
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * T, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * T, dtype=torch.float32),
                             persistent=False)

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.cond_dim

    def forward_scaled(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)  # (B, T) standardized

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u) * self.std + self.mean  # (B, T) raw units

    @torch.no_grad()
    def predict(self, u: np.ndarray) -> np.ndarray:
        """(n, Z + C) inputs [z, scaled c] → (n, T) raw predictions (numpy)."""
        dev = self.mean.device
        return self(torch.as_tensor(np.asarray(u, np.float32), device=dev)).cpu().numpy().astype(np.float64)

    def index(self, name: str) -> int:
        return self.targets.index(name)

    # ---- checkpoint hooks (see checkpoint.save / load)
    def config_dict(self) -> dict:
        return {"version": SURROGATE_VERSION, "latent_dim": self.latent_dim, "cond_dim": self.cond_dim,
                "hidden": list(self.hidden),
                "targets": list(self.targets), "mean": [float(x) for x in self.mean.cpu()],
                "std": [float(x) for x in self.std.cpu()], "metrics": self.metrics}

    @classmethod
    def from_state(cls, config: dict, state: dict) -> "Surrogate":
        if config.get("version") != SURROGATE_VERSION:
            raise CheckpointError(f"surrogate format {config.get('version')!r}; this moldesign reads "
                                  f"{SURROGATE_VERSION} (refit it with `moldesign surrogate fit`)")
        s = cls(config["latent_dim"], config["cond_dim"], config["hidden"], config["targets"], config["mean"],
                config["std"], config.get("metrics"))
        s.load_state_dict(state)
        return s


def joint_input(bundle, z: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """Surrogate input u = [z, scaler(cond)]: z (n, Z), raw conditions (n, 5) → (n, Z + 5) float32."""
    return np.concatenate([np.asarray(z, np.float32), bundle.scaler.transform(cond)], axis=1)


def split_input(bundle, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of joint_input: (n, Z + 5) → z (n, Z) float32, raw conditions (n, 5)."""
    Z = bundle.config.latent_dim
    return np.asarray(u[:, :Z], np.float32), bundle.scaler.inverse(u[:, Z:])
