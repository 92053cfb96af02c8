"""Gradient-based latent optimization with RDKit verification (Gómez-Bombarelli et al. 2018, §4).

J(z) = objective(surrogate(z)) + λ·log N(z; 0, I). From the seed's μ, `chains` walkers climb J by
normalized gradient ascent: every step moves z by exactly `step_size` (Euclidean, latent units)
along ∇J, so a chain's path length is steps·step_size whatever the scale of the surrogate's
gradients. Chain 0 starts at μ, the others at μ + DEFAULT_RADIUS·ε (the `generate` neighbourhood),
so the chains explore different neighbours instead of re-decoding one path. The prior term
−λ·½‖z‖² (gradient −λz) pulls z back toward high prior density, where the decoder was trained;
without it nothing stops the walk following the surrogate's extrapolation off the data.

Every point of every path is decoded greedily. The CVAE decoder also reads a condition c; it is
anchored on the truth and moved by the surrogate: c(z) = c_seed + f(z)[:5] − f(μ)[:5] (clipped to
the training range), so step 0 decodes under the seed's RDKit properties and the condition then
follows what the latent is predicted to have become (condition="seed" keeps c = c_seed instead).
Every decoded molecule is scored with RDKit (the truth); surrogate predictions sit beside it in
`pred_*` columns.

Baseline (`random_baseline`): the same number of decodes around the same seed, each at the same
distance from μ as one optimizer point but in a uniformly random direction, decoded and scored by
the same rules. Only the directions differ, so a win is the gradient's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from .chem import PROPERTIES, mol_scores, tanimoto_to
from .checkpoint import Bundle
from .sampling import DesignInputError, Seed, canonical_mols, check_property_value, decode, encode, model_device
from .surrogate import TARGETS, Surrogate

DEFAULT_STEPS = 30  # gradient steps per chain
DEFAULT_CHAINS = 8  # decodes = chains × (steps + 1)
DEFAULT_STEP_SIZE = 0.1  # Euclidean latent units per step: 30 steps ≈ 3 units, ~ the distance of a radius-0.3 sample in 64-D
DEFAULT_PRIOR_WEIGHT = 0.1  # λ; objective terms are in training-std units, so λ·‖z‖ ~ 1 at ‖z‖ ~ 10
MISSING_SURROGATE = ("this model has no latent surrogate; fit one with "
                     "`moldesign surrogate fit --model {model}` (it is saved into the checkpoint)")


@dataclass
class Objective:
    """What to optimize, in standardized units (each property divided by its training std):

    J = Σ_maximize (p − mean)/std − Σ_minimize (p − mean)/std − Σ_targets ((p − t)/std)²
    Higher is better; with targets only, the best possible value is 0.
    """

    maximize: tuple[str, ...] = ()
    minimize: tuple[str, ...] = ()
    targets: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, maximize: Iterable[str] = (), minimize: Iterable[str] = (),
              targets: Mapping[str, float] | Iterable[str] = ()) -> "Objective":
        """Validate names and values; `targets` is a dict or strings like 'logp=3.0'."""
        def known(name: str, flag: str) -> str:
            key = str(name).strip().lower()
            if key not in TARGETS:
                raise DesignInputError(f"{flag} {name!r} is not a known property; choose from {', '.join(TARGETS)}")
            return key

        mx = tuple(known(m, "--maximize") for m in maximize)
        mn = tuple(known(m, "--minimize") for m in minimize)
        items = targets.items() if isinstance(targets, Mapping) else [_split_target(t) for t in targets]
        tg: dict[str, float] = {}
        for k, v in items:
            key = known(k, "--target")
            tg[key] = check_property_value(key, v, flag=f"--target {key}")
        clash = (set(mx) | set(mn)) & set(tg) | set(mx) & set(mn)
        if clash:
            raise DesignInputError(f"property {sorted(clash)[0]!r} appears in more than one objective term")
        if not (mx or mn or tg):
            raise DesignInputError("nothing to optimize: give --maximize PROP, --minimize PROP or --target PROP=VALUE")
        return cls(mx, mn, tg)

    def describe(self) -> str:
        parts = [f"max {m}" for m in self.maximize] + [f"min {m}" for m in self.minimize]
        parts += [f"{k}={v:g}" for k, v in self.targets.items()]
        return ", ".join(parts)

    def _terms(self, values, mean, std, lib):
        """values (n, T) in raw units, mean/std (T,) → (n,) objective (torch or numpy via `lib`)."""
        total = 0.0
        for k in self.maximize:
            j = TARGETS.index(k)
            total = total + (values[:, j] - mean[j]) / std[j]
        for k in self.minimize:
            j = TARGETS.index(k)
            total = total - (values[:, j] - mean[j]) / std[j]
        for k, t in self.targets.items():
            j = TARGETS.index(k)
            total = total - ((values[:, j] - t) / std[j]) ** 2
        return total

    def score_torch(self, pred: torch.Tensor, sur: Surrogate) -> torch.Tensor:
        return self._terms(pred, sur.mean, sur.std, torch)

    def score_numpy(self, values: np.ndarray, sur: Surrogate) -> np.ndarray:
        return np.asarray(self._terms(values, sur.mean.cpu().numpy(), sur.std.cpu().numpy(), np), dtype=np.float64)


def _split_target(text: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count("=") != 1:
        raise DesignInputError(f"--target must look like PROP=VALUE (e.g. logp=3.0), got {text!r}")
    k, v = text.split("=")
    return k.strip(), v.strip()


@dataclass
class OptimizeResult:
    trajectory: pd.DataFrame  # one row per decoded point: step, smiles, valid, RDKit props, pred_*, objective, ...
    best: pd.DataFrame  # distinct valid molecules (seed excluded) by RDKit objective, best first
    summary: dict  # JSON-able: start, objective, decodes, valid, distinct, seed/best objective, ...
    start: Seed | None = None
    objective: Objective | None = None


def require_surrogate(bundle: Bundle, model_name: str = "PATH") -> Surrogate:
    if bundle.surrogate is None:
        raise DesignInputError(MISSING_SURROGATE.format(model=model_name))
    return bundle.surrogate


CONDITIONS = ("follow", "seed")


def decode_conditions(bundle: Bundle, seed_props: np.ndarray, pred: np.ndarray, pred_seed: np.ndarray,
                      condition: str = "follow") -> np.ndarray:
    """Raw conditions (n, 5) for decoding: "follow" = seed's RDKit properties + surrogate-predicted
    change, clipped to the training range; "seed" = the seed's properties throughout.
    pred (n, T), pred_seed (T,) = surrogate at the seed's μ."""
    if condition == "seed":
        return np.tile(seed_props, (len(pred), 1))
    j = [TARGETS.index(k) for k in PROPERTIES]
    cond = seed_props[None, :] + pred[:, j] - pred_seed[j]
    stats = bundle.property_stats
    if "min" in stats:
        cond = np.clip(cond, np.asarray(stats["min"]), np.asarray(stats["max"]))
    return cond


def score_latents(bundle: Bundle, seed: Seed, mu: np.ndarray, z: np.ndarray, objective: Objective,
                  condition: str = "follow") -> pd.DataFrame:
    """Decode latents z (n, Z) greedily under decode_conditions, score with RDKit and the surrogate.

    One row per latent, in order. `new` marks the first appearance of a valid molecule other than
    the seed; `rank` orders those by RDKit objective (1 = best). mu (Z,) is the seed's μ.
    """
    sur = require_surrogate(bundle)
    pred = sur.predict(z)  # (n, T)
    cond = decode_conditions(bundle, seed.props, pred, sur.predict(mu[None, :])[0], condition)
    strings = decode(bundle, z, cond, temperature=0.0)
    canon, mols = canonical_mols(strings)
    truth = np.full((len(z), len(TARGETS)), np.nan)
    for i, m in enumerate(mols):
        if m is not None:
            s = mol_scores(m)
            truth[i] = [s[k] for k in TARGETS]
    df = pd.DataFrame({"smiles": [c if c is not None else s for c, s in zip(canon, strings)],
                       "valid": [c is not None for c in canon]})
    for j, k in enumerate(TARGETS):
        df[k] = truth[:, j]
    df["similarity"] = tanimoto_to(seed.mol, mols)
    df["objective"] = objective.score_numpy(truth, sur)
    for j, k in enumerate(TARGETS):
        df[f"pred_{k}"] = pred[:, j]
    df["pred_objective"] = objective.score_numpy(pred, sur)
    seen = {seed.smiles}
    new = []
    for c in canon:
        new.append(c is not None and c not in seen)
        if c is not None:
            seen.add(c)
    df["new"] = new
    order = df[df["new"]].sort_values(["objective", "smiles"], ascending=[False, True], kind="stable").index
    df["rank"] = pd.array([pd.NA] * len(df), dtype="Int64")
    df.loc[order, "rank"] = np.arange(1, len(order) + 1)
    df["distance"] = np.linalg.norm(z - mu[None, :], axis=1)  # ‖z − μ_seed‖
    df["log_prior"] = -0.5 * (z.astype(np.float64) ** 2).sum(1)  # log N(z; 0, I) + const
    return df


def latent_paths(bundle: Bundle, starts: np.ndarray, objective: Objective, steps: int, step_size: float,
                 prior_weight: float) -> np.ndarray:
    """Normalized gradient ascent on J from each start (K, Z) → paths (K, steps+1, Z), [:, 0] = starts."""
    sur = require_surrogate(bundle)
    z = torch.tensor(np.array(starts, dtype=np.float32), device=model_device(bundle), requires_grad=True)  # (K, Z)
    path = [z.detach().clone()]
    for _ in range(steps):
        J = objective.score_torch(sur(z), sur) - prior_weight * 0.5 * (z ** 2).sum(dim=1)  # (K,)
        (g,) = torch.autograd.grad(J.sum(), z)  # (K, Z); chains are independent, so one backward serves all
        gnorm = g.norm(dim=1, keepdim=True)  # (K, 1)
        step = torch.where(gnorm > 1e-12, step_size * g / gnorm.clamp_min(1e-12), torch.zeros_like(g))
        z = (z + step).detach().requires_grad_(True)  # at a stationary point z stays put
        path.append(z.detach().clone())
    return torch.stack(path, dim=1).cpu().numpy()


def _finish(table: pd.DataFrame, bundle: Bundle, seed: Seed, objective: Objective, top_k: int,
            extra: dict) -> OptimizeResult:
    """Best distinct molecules and the summary of a scored table."""
    sur = require_surrogate(bundle)
    s = mol_scores(seed.mol)
    seed_obj = float(objective.score_numpy(np.array([[s[k] for k in TARGETS]]), sur)[0])
    distinct = table[table["new"]].sort_values("rank")
    top = distinct["objective"].to_numpy()
    summary = {
        "start": seed.label, "start_smiles": seed.smiles, "objective": objective.describe(), **extra,
        "decodes": int(len(table)), "valid": round(float(table["valid"].mean()), 4),
        "distinct": int(len(distinct)), "seed_objective": round(seed_obj, 4),
        "best_objective": round(float(top[0]), 4) if len(top) else None,
        "top3_mean_objective": round(float(top[:3].mean()), 4) if len(top) else None,
        "improved_on_seed": int((top > seed_obj).sum()),
        "best_smiles": distinct["smiles"].iloc[0] if len(distinct) else None,
    }
    return OptimizeResult(table, distinct.head(top_k).reset_index(drop=True), summary, seed, objective)


def optimize(bundle: Bundle, seed: Seed, objective: Objective, steps: int = DEFAULT_STEPS,
             chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
             prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10,
             rng: np.random.Generator | None = None, condition: str = "follow") -> OptimizeResult:
    """Climb from the seed's μ and score every decoded point (see the module docstring).

    trajectory: one row per (chain, step) with columns chain, step, smiles, valid, RDKit values,
    similarity, objective, pred_*, pred_objective, new, rank, distance, log_prior."""
    from .sampling import DEFAULT_RADIUS, sample_around

    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DesignInputError(f"--steps must be at least 1, got {steps!r}")
    if not isinstance(chains, (int, np.integer)) or chains < 1:
        raise DesignInputError(f"--chains must be at least 1, got {chains!r}")
    if not np.isfinite(step_size) or step_size <= 0:
        raise DesignInputError(f"--step-size must be positive, got {step_size}")
    if not np.isfinite(prior_weight) or prior_weight < 0:
        raise DesignInputError(f"--prior-weight must be >= 0, got {prior_weight}")
    if condition not in CONDITIONS:
        raise DesignInputError(f"--condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    require_surrogate(bundle)
    rng = rng if rng is not None else np.random.default_rng(0)
    mu, _ = encode(bundle, [seed.smiles], seed.props[None, :])  # (1, Z)
    starts = np.concatenate([mu, sample_around(mu[0], chains - 1, DEFAULT_RADIUS, rng)])  # (K, Z)
    paths = latent_paths(bundle, starts, objective, steps, step_size, prior_weight)  # (K, S+1, Z)
    table = score_latents(bundle, seed, mu[0], paths.reshape(-1, paths.shape[-1]), objective, condition)
    table.insert(0, "step", np.tile(np.arange(steps + 1), chains))
    table.insert(0, "chain", np.repeat(np.arange(chains), steps + 1))
    return _finish(table, bundle, seed, objective, top_k,
                   {"method": "gradient", "chains": chains, "steps": steps, "step_size": step_size,
                    "prior_weight": prior_weight, "condition": condition})


def random_baseline(bundle: Bundle, seed: Seed, objective: Objective, distances: np.ndarray,
                    rng: np.random.Generator, top_k: int = 10, condition: str = "follow") -> OptimizeResult:
    """One decode per distance: z = μ + d·u with u a uniformly random unit direction."""
    require_surrogate(bundle)
    mu, _ = encode(bundle, [seed.smiles], seed.props[None, :])  # (1, Z)
    u = rng.standard_normal((len(distances), mu.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)  # (n, Z) unit directions
    z = (mu + np.asarray(distances)[:, None] * u).astype(np.float32)
    table = score_latents(bundle, seed, mu[0], z, objective, condition)
    table.insert(0, "step", np.arange(len(z)))
    return _finish(table, bundle, seed, objective, top_k,
                   {"method": "random directions at the same distances", "condition": condition})
