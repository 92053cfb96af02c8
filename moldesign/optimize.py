"""Gradient-based optimization in the decoder's input space, verified by RDKit (Gómez-Bombarelli
et al. 2018, §4, adapted to a conditional VAE).

The decoder reads u = [z, c]: the latent z and the condition c (five properties, in the scaler's
standardized units). Both decide the molecule, so both are optimized: J(u) = objective(surrogate(u))
+ λ·log N(u; 0, I). From the seed's u₀ = [μ, c_seed], `chains` walkers climb J by normalized
gradient ascent: every step moves u by exactly `step_size` (Euclidean, in latent/standardized
units) along ∇J, so a chain's path length is steps·step_size whatever the scale of the surrogate's
gradients. Chain 0 starts at u₀, the others at [μ + DEFAULT_RADIUS·ε, c_seed] (the `generate`
neighbourhood), so the chains explore different neighbours instead of re-decoding one path. The
prior term (gradient −λu) pulls z toward high prior density, where the decoder was trained, and c
toward the training mean; c is also kept inside the training range. Without it nothing stops the
walk following the surrogate's extrapolation off the data.

`condition="seed"` holds c at the seed's RDKit properties and moves z only (the plain latent-space
optimization of an unconditional VAE).

Every point of every path is decoded greedily under its own c and scored with RDKit (the truth);
surrogate predictions sit beside it in `pred_*` columns.

Baseline (`random_baseline`): the same number of decodes around the same u₀, each at the same
distance from u₀ as one optimizer point but in a uniformly random direction of the space the
optimizer moves in ([z, c], or z alone with condition="seed"), decoded and scored by the same
rules. Only the directions differ, so a win is the gradient's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from .chem import PROPERTIES, mol_scores, scores_array, tanimoto_to
from .checkpoint import Bundle
from .sampling import DesignInputError, Seed, canonical_mols, check_property_value, decode, encode, model_device
from .surrogate import TARGETS, Surrogate, joint_input, split_input

DEFAULT_STEPS = 30  # gradient steps per chain
DEFAULT_CHAINS = 8  # decodes = chains × (steps + 1)
DEFAULT_STEP_SIZE = 0.2  # Euclidean units of u per step: 30 steps ≈ 6 units (a radius-0.3 sample in 64-D is ≈ 2.4
# away); chosen on bench/design_bench.py: at 0.1 chains repeat the same decode, fewer distinct molecules
DEFAULT_PRIOR_WEIGHT = 0.1  # λ; objective terms are in training-std units, so λ·‖u‖ ~ 1 at ‖u‖ ~ 10
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


CONDITIONS = ("optimize", "seed")  # the decoder's condition: optimized with z, or held at the seed's properties


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
        moves = np.concatenate([np.ones(Z, bool), np.full(P, condition == "optimize")])
        return cls(Z, moves, np.asarray(lo, np.float32), np.asarray(hi, np.float32))

    def clip(self, u: np.ndarray) -> np.ndarray:
        u = np.array(u, dtype=np.float32, copy=True)
        u[:, self.Z:] = np.clip(u[:, self.Z:], self.c_lo, self.c_hi)
        return u


def score_points(bundle: Bundle, seed: Seed, u0: np.ndarray, u: np.ndarray, objective: Objective,
                 constrained: bool = True) -> pd.DataFrame:
    """Decode points u = [z, scaled c] (n, Z + 5) greedily, score with RDKit and the surrogate.

    One row per point, in order. `new` marks the first appearance of a valid molecule other than
    the seed; `rank` orders those by RDKit objective (1 = best). u0 (Z + 5,) is the seed's point;
    `distance` is ‖u − u0‖, the columns mw_condition … tpsa_condition the condition decoded under.
    """
    sur = require_surrogate(bundle)
    pred = sur.predict(u)  # (n, T)
    z, cond = split_input(bundle, u)
    strings = decode(bundle, z, cond, temperature=0.0, constrained=constrained)
    canon, mols = canonical_mols(strings)
    truth = scores_array(mols)  # (n, T) RDKit, NaN rows for invalid decodes
    df = pd.DataFrame({"smiles": [c if c is not None else s for c, s in zip(canon, strings)],
                       "valid": [c is not None for c in canon]})
    for j, k in enumerate(TARGETS):
        df[k] = truth[:, j]
    df["similarity"] = tanimoto_to(seed.mol, mols)
    df["objective"] = objective.score_numpy(truth, sur)
    for j, k in enumerate(TARGETS):
        df[f"pred_{k}"] = pred[:, j]
    df["pred_objective"] = objective.score_numpy(pred, sur)
    for j, k in enumerate(PROPERTIES):
        df[f"{k}_condition"] = cond[:, j]
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
    df["distance"] = np.linalg.norm(u - u0[None, :], axis=1)  # ‖u − u0‖
    df["log_prior"] = -0.5 * (z.astype(np.float64) ** 2).sum(1)  # log N(z; 0, I) + const
    return df


def latent_paths(bundle: Bundle, starts: np.ndarray, objective: Objective, steps: int, step_size: float,
                 prior_weight: float, space: Space) -> np.ndarray:
    """Normalized gradient ascent on J from each start (K, Z + 5) → paths (K, steps+1, Z + 5)."""
    sur = require_surrogate(bundle)
    dev = model_device(bundle)
    mask = torch.tensor(space.moves, dtype=torch.float32, device=dev)  # (Z + 5,) 1 = may move
    lo = torch.tensor(space.c_lo, device=dev)
    hi = torch.tensor(space.c_hi, device=dev)
    u = torch.tensor(space.clip(starts), device=dev, requires_grad=True)  # (K, Z + 5)
    path = [u.detach().clone()]
    for _ in range(steps):
        J = objective.score_torch(sur(u), sur) - prior_weight * 0.5 * (u ** 2).sum(dim=1)  # (K,)
        (g,) = torch.autograd.grad(J.sum(), u)  # (K, Z + 5); chains are independent, one backward serves all
        g = g * mask
        gnorm = g.norm(dim=1, keepdim=True)  # (K, 1)
        step = torch.where(gnorm > 1e-12, step_size * g / gnorm.clamp_min(1e-12), torch.zeros_like(g))
        nxt = (u + step).detach()  # at a stationary point u stays put
        nxt[:, space.Z:] = torch.maximum(torch.minimum(nxt[:, space.Z:], hi), lo)  # c inside the training range
        u = nxt.requires_grad_(True)
        path.append(u.detach().clone())
    return torch.stack(path, dim=1).cpu().numpy()


def seed_point(bundle: Bundle, seed: Seed) -> np.ndarray:
    """u₀ = [μ(seed), scaled seed properties] (Z + 5,)."""
    mu, _ = encode(bundle, [seed.smiles], seed.props[None, :])  # (1, Z)
    return joint_input(bundle, mu, seed.props[None, :])[0]


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
             rng: np.random.Generator | None = None, condition: str = "optimize",
             constrained: bool = True) -> OptimizeResult:
    """Climb from the seed's μ and score every decoded point (see the module docstring).

    trajectory: one row per (chain, step) with columns chain, step, smiles, valid, RDKit values,
    similarity, objective, pred_*, pred_objective, *_condition, new, rank, distance, log_prior."""
    from .sampling import DEFAULT_RADIUS, sample_around

    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DesignInputError(f"--steps must be at least 1, got {steps!r}")
    if not isinstance(chains, (int, np.integer)) or chains < 1:
        raise DesignInputError(f"--chains must be at least 1, got {chains!r}")
    if not np.isfinite(step_size) or step_size <= 0:
        raise DesignInputError(f"--step-size must be positive, got {step_size}")
    if not np.isfinite(prior_weight) or prior_weight < 0:
        raise DesignInputError(f"--prior-weight must be >= 0, got {prior_weight}")
    require_surrogate(bundle)
    rng = rng if rng is not None else np.random.default_rng(0)
    space = Space.of(bundle, condition)
    u0 = seed_point(bundle, seed)  # (Z + 5,)
    starts = np.tile(u0, (chains, 1))  # (K, Z + 5)
    starts[1:, : space.Z] = sample_around(u0[: space.Z], chains - 1, DEFAULT_RADIUS, rng)  # neighbours of μ
    paths = latent_paths(bundle, starts, objective, steps, step_size, prior_weight, space)  # (K, S+1, Z + 5)
    table = score_points(bundle, seed, u0, paths.reshape(-1, paths.shape[-1]), objective, constrained)
    table.insert(0, "step", np.tile(np.arange(steps + 1), chains))
    table.insert(0, "chain", np.repeat(np.arange(chains), steps + 1))
    return _finish(table, bundle, seed, objective, top_k,
                   {"method": "gradient", "chains": chains, "steps": steps, "step_size": step_size,
                    "prior_weight": prior_weight, "condition": condition, "constrained": constrained})


def random_baseline(bundle: Bundle, seed: Seed, objective: Objective, distances: np.ndarray,
                    rng: np.random.Generator, top_k: int = 10, condition: str = "optimize",
                    constrained: bool = True) -> OptimizeResult:
    """One decode per distance: u = u₀ + d·v with v a uniformly random unit direction of the space
    the optimizer moves in (c clipped to the training range, as the optimizer's is)."""
    require_surrogate(bundle)
    space = Space.of(bundle, condition)
    u0 = seed_point(bundle, seed)
    d = np.asarray(distances, dtype=np.float64)[:, None]  # (n, 1)
    u = np.empty((len(d), len(u0)), np.float32)
    todo = np.arange(len(d))
    for _ in range(100):  # redraw directions that leave the training range, so distances stay the optimizer's
        v = rng.standard_normal((len(todo), len(u0))) * space.moves  # (m, Z + 5)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        u[todo] = u0[None, :] + d[todo] * v
        todo = todo[(u[todo] != space.clip(u[todo])).any(axis=1)]
        if not len(todo):
            break
    u = space.clip(u)  # the rare point still outside after 100 draws is clipped
    table = score_points(bundle, seed, u0, u, objective, constrained)
    table.insert(0, "step", np.arange(len(u)))
    return _finish(table, bundle, seed, objective, top_k,
                   {"method": "random directions at the same distances", "condition": condition,
                    "constrained": constrained})
