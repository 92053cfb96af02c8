"""The objective J of lead optimization: a weighted sum of RDKit columns in natural units minus
squared target errors (see the package docstring), parsed from --maximize/--minimize/--objective/
--target, and its surrogate-predictable part for the gradient method."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import torch

from ...chem import PLOGP_LOGP_STD, PLOGP_SA_STD, PROPERTIES
from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ...model.surrogate import TARGETS, Surrogate
from ..seeds import check_property_value

COLUMNS: tuple[str, ...] = TARGETS + ("plogp", "plogp_raw", "similarity")
"""Columns an objective may weight: the surrogate's 7 targets, penalized logP (normalized and
logP − SA) and similarity to the start."""
# Each column as a linear functional of the surrogate's TARGETS predictions (constants dropped:
# they do not move a gradient); columns the surrogate cannot predict are absent.
SURROGATE_LINEAR: dict[str, dict[str, float]] = {
    **{k: {k: 1.0} for k in TARGETS},
    "plogp_raw": {"logp": 1.0, "sa": -1.0},
    "plogp": {"logp": 1.0 / PLOGP_LOGP_STD, "sa": -1.0 / PLOGP_SA_STD},  # ring term: not predicted
}
MAX_WEIGHT = 1e6  # |w| of an --objective term: the columns are O(1)–O(1000), so J stays far from overflow
# ('1e308*qed + 1e308*logp' summed to inf on every molecule and the run reported inf with exit 0)
_TERM = re.compile(r"([+-]?)\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*\*?\s*)?([A-Za-z_]+)\s*")


@dataclass
class Objective:
    """J = Σ weights[k]·x_k (natural units) − Σ ((x_t − targets[t]) / std_t)²; higher is better."""

    weights: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, maximize: Iterable[str] = (), minimize: Iterable[str] = (),
              targets: Mapping[str, float] | Iterable[str] = (), expression: str | None = None) -> "Objective":
        """Validate names and values; `targets` is a dict or strings like 'logp=3.0'; `expression`
        a weighted sum such as '1.0*logp - 1.0*sa' or 'qed + 0.5 similarity'."""
        weights: dict[str, float] = {}

        def add(key: str, w: float) -> None:
            if key in weights:
                raise DesignInputError(f"property {key!r} appears in more than one objective term")
            weights[key] = w

        for m in maximize:
            add(_known(m, "--maximize"), 1.0)
        for m in minimize:
            add(_known(m, "--minimize"), -1.0)
        if expression is not None:
            for key, w in _parse_expression(expression):
                add(_known(key, "--objective"), w)
        items = targets.items() if isinstance(targets, Mapping) else [_split_target(t) for t in targets]
        tg: dict[str, float] = {}
        for k, v in items:
            key = _known(k, "--target", TARGETS)
            if key in weights or key in tg:
                raise DesignInputError(f"property {key!r} appears in more than one objective term")
            tg[key] = check_property_value(key, v, flag=f"--target {key}")
        if not (weights or tg):
            raise DesignInputError("nothing to optimize: give --maximize PROP, --minimize PROP, --objective EXPR "
                                   "or --target PROP=VALUE")
        return cls(weights, tg)

    def describe(self) -> str:
        parts = []
        for k, w in self.weights.items():
            parts.append(f"max {k}" if w == 1 else f"min {k}" if w == -1 else f"{w:+g}*{k}")
        parts += [f"{k}={v:g}" for k, v in self.targets.items()]
        return ", ".join(parts)

    def value(self, cols: Mapping[str, np.ndarray], stds: Mapping[str, float]) -> np.ndarray:
        """RDKit truth: cols maps column name → (n,) values (NaN for invalid) → (n,) J."""
        n = len(next(iter(cols.values())))
        total = np.zeros(n)
        for k, w in self.weights.items():
            total = total + w * np.asarray(cols[k], np.float64)
        for k, t in self.targets.items():
            total = total - ((np.asarray(cols[k], np.float64) - t) / stds[k]) ** 2
        return total

    def linear(self, sur: Surrogate) -> tuple[np.ndarray, float]:
        """The surrogate-predictable weighted part as a (T,) vector a over TARGETS, and its scale
        ‖a∘σ‖ (σ: the surrogate's training std per target; 1 when nothing is predictable)."""
        a = np.zeros(len(TARGETS))
        for k, w in self.weights.items():
            for t, c in SURROGATE_LINEAR.get(k, {}).items():
                a[TARGETS.index(t)] += w * c
        scale = float(np.linalg.norm(a * sur.std.cpu().numpy()))
        return a, scale if scale > 0 else 1.0

    def predictable(self) -> bool:
        """True when the surrogate predicts part of J (score_numpy is not constant)."""
        return bool(self.targets) or any(k in SURROGATE_LINEAR for k in self.weights)

    def gradient_ready(self) -> bool:
        """True when the surrogate sees part of J (else the gradient method has nothing to climb):
        a predictable part, or a similarity weight (its proxy −‖u − u₀‖)."""
        return self.predictable() or "similarity" in self.weights

    def score_torch(self, pred: torch.Tensor, sur: Surrogate, u: torch.Tensor | None = None,
                    u0: torch.Tensor | None = None) -> torch.Tensor:
        """Surrogate estimate of J in training-std units: pred (n, T) raw predictions → (n,).
        A similarity weight acts through −‖u − u0‖ (similarity falls with distance from the start)."""
        a, scale = self.linear(sur)
        total = (pred * torch.as_tensor(a, dtype=pred.dtype, device=pred.device)).sum(dim=1) / scale
        w_sim = self.weights.get("similarity", 0.0)
        if w_sim and u is not None and u0 is not None:
            total = total - w_sim * (u - u0).norm(dim=1)
        for k, t in self.targets.items():
            j = TARGETS.index(k)
            total = total - ((pred[:, j] - t) / sur.std[j]) ** 2
        return total

    def score_numpy(self, pred: np.ndarray, sur: Surrogate) -> np.ndarray:
        """Surrogate prediction of J in natural units (predictable columns only), pred (n, T) → (n,)."""
        cols = {k: pred[:, j] for j, k in enumerate(TARGETS)}
        a, _ = self.linear(sur)
        total = pred @ a
        for k, t in self.targets.items():
            total = total - ((cols[k] - t) / float(sur.std[TARGETS.index(k)])) ** 2
        return np.asarray(total, np.float64)


def _known(name: str, flag: str, allowed=COLUMNS) -> str:
    key = str(name).strip().lower()
    if key not in allowed:
        raise DesignInputError(f"{flag} {name!r} is not a known property; choose from {', '.join(allowed)}")
    return key


def _parse_expression(text: str) -> list[tuple[str, float]]:
    """'1.0*logp - 1.0*sa' → [('logp', 1.0), ('sa', -1.0)]; a one-line error naming the text otherwise
    (also for a weight that is not finite or larger than MAX_WEIGHT in magnitude)."""
    s = str(text).strip()
    terms, pos = [], 0
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m or m.end() == pos or (terms and not m.group(1)):
            raise DesignInputError(f"--objective must be a weighted sum like '1.0*logp - 1.0*sa', got {text!r}")
        w = float(m.group(2)) if m.group(2) else 1.0
        if not np.isfinite(w) or abs(w) > MAX_WEIGHT:
            raise DesignInputError(f"--objective weight {m.group(2)} of {m.group(3)} is out of range: |weight| must "
                                   f"be at most {MAX_WEIGHT:g}, got {text!r}")
        terms.append((m.group(3), -w if m.group(1) == "-" else w))
        pos = m.end()
    if not terms:
        raise DesignInputError(f"--objective must be a weighted sum like '1.0*logp - 1.0*sa', got {text!r}")
    return terms


def _split_target(text: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count("=") != 1:
        raise DesignInputError(f"--target must look like PROP=VALUE (e.g. logp=3.0), got {text!r}")
    k, v = text.split("=")
    return k.strip(), v.strip()


def target_stds(bundle: Bundle) -> dict[str, float]:
    """std per TARGET used by target terms: the surrogate's training std, else the checkpoint's
    property std (qed and sa then 1: no reference spread is stored without a surrogate)."""
    if bundle.surrogate is not None:
        return {k: float(s) for k, s in zip(TARGETS, bundle.surrogate.std.cpu().numpy())}
    std = bundle.property_stats.get("std", [1.0] * len(PROPERTIES))
    return {**{k: float(s) for k, s in zip(PROPERTIES, std)}, "qed": 1.0, "sa": 1.0}
