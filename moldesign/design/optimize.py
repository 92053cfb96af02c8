"""Lead optimization in the decoder's input space, every decoded molecule scored by RDKit (the
oracle): surrogate-gradient ascent (Gómez-Bombarelli et al. 2018, §4, adapted to a conditional
VAE), CMA-ES with RDKit scoring (MolMIM, Reidenbach et al. 2023) and a random-direction baseline.

The decoder reads u = [z, c]: the latent z and the condition c (five properties, in the scaler's
standardized units). Both decide the molecule, so both may move (`condition="optimize"`), or c is
held at the seed's properties and z moves alone (`condition="seed"`), or z is held at μ and only
c moves (`condition="only"`: "the same molecule, but with a higher requested LogP"). c is kept inside the
training range; a seed whose own c lies outside it is clipped with a warning (never silently).

Objective (class Objective): a weighted sum of scored columns in their natural units, minus
squared target errors in training-std units:

    J = Σ_k w_k·x_k − Σ_t ((x_t − target_t)/std_t)²

with columns x_k in COLUMNS: mw logp hbd hba tpsa qed sa (chem.py), plogp (normalized penalized
logP, chem.penalized_logp), plogp_raw (logP − SA, chem.plogp_raw) and similarity (Tanimoto to the
start, Morgan r=2, 2048 bits). `--maximize P` is w_P = +1, `--minimize P` is w_P = −1,
`--objective '1.0*logp - 1.0*sa'` sets the weights. J is what the summary reports (natural units:
`--maximize qed` reports QED) and is always computed by RDKit on the decoded molecule.

Oracle calls: one per distinct valid decoded molecule scored with RDKit (a molecule decoded again
is looked up, not rescored; invalid decodes cost a decode, not a call). `budget` caps them per
start. `min_similarity` S is a constraint: a molecule is feasible when similarity ≥ S, only
feasible molecules are proposed (`best`), and every method steers by it (below).

Methods:
- gradient: J's surrogate-predictable part is a linear functional a·ŝ(u) of the surrogate's
  predictions (plogp → logp/σ_logP − sa/σ_SA; the ring term and similarity are not predicted; a
  similarity weight acts through the proxy −‖u − u₀‖). Chains climb a·ŝ(u)/‖a∘σ‖ + λ·log N(u;0,I)
  by normalized steps of `step_size`: chain 0 from the seed's own point u₀ = [μ, c_seed], the others
  from [μ + sigma·ε, c_seed] (with condition="only": [μ, c_seed + sigma·ε]). Each step's points are decoded and scored; a chain whose
  molecule falls below S returns to its last feasible point with half the step (a trust region);
  after 4 halvings it restarts from a new neighbour of u₀.
- cmaes: CMA-ES (the `cma` package) over the moving coordinates of u, started at u₀ with
  initial spread `sigma` per z coordinate and `condition_sigma` per condition coordinate,
  population `chains`, `steps` generations; fitness is RDKit's J for feasible
  molecules, below every feasible one for infeasible (ranked by similarity) and invalid ones.
- random_baseline: the gradient run's own distances from u₀, in uniformly random directions of
  the same space, scored by the same oracle rules: only the directions differ.

Shared by both methods:
- `samples` K: each latent point is decoded K times, greedily and K − 1 times at `temperature`;
  a point's fitness (CMA-ES) or feasibility (gradient trust region) is that of its best decode.
  A decoder whose greedy reconstruction is weak maps μ of a start to another molecule; its
  samples around μ still include the start and close analogues, so proposals stay similar.
- `sigma_units`: "prior" counts sigma and step_size for z in prior std units (1 per coordinate);
  "posterior" in the start's posterior σ per coordinate (q(z|start)), the latent's own scale of
  "still this molecule" (the ZINC model's σ ranges 0.01–1 across coordinates).
- `fill_budget`: when a run ends (steps/generations done, or CMA-ES's own stop), another starts
  at the best feasible point so far, until `budget` oracle calls are spent; it stops early when a
  run finds nothing new or decodes reach MAX_DECODES_PER_CALL × budget.
- `similarity_penalty` W (CMA-ES): 0 keeps the constraint hard inside the fitness (above); W > 0
  scores an infeasible molecule −J + W·(S − similarity), so a good one just outside can lead.
  Only feasible molecules are ever proposed either way.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from ..chem import PLOGP_LOGP_STD, PLOGP_SA_STD, PROPERTIES, penalized_logp, plogp_raw, scores_array, tanimoto_to
from ..model.checkpoint import Bundle
from ..errors import DesignInputError, DesignWarning
from .seeds import Seed, check_property_value
from ..chem import canonical_mols
from ..decoding.sampling import decode, encode
from ..model.surrogate import TARGETS, Surrogate, joint_input, split_input

DEFAULT_STEPS = 30  # gradient steps per chain (CMA-ES: generations)
DEFAULT_CHAINS = 8  # decodes = chains × (steps + 1) (CMA-ES: population size)
DEFAULT_STEP_SIZE = 0.2  # Euclidean units of u per step: 30 steps ≈ 6 units (a radius-0.3 sample in 64-D is ≈ 2.4
# away); chosen on bench/design_bench.py: at 0.1 chains repeat the same decode, fewer distinct molecules
DEFAULT_PRIOR_WEIGHT = 0.1  # λ; the objective's gradient part is in training-std units, so λ·‖u‖ ~ 1 at ‖u‖ ~ 10
DEFAULT_SIGMA = 0.1  # spread of z around μ (prior std units): CMA-ES's initial step per z coordinate and the
# gradient chains' starting noise. On 8 plogP dev starts at δ 0.4 (MOSES model), σ 0.1 beat 0.3 for CMA-ES
# (logP − SA +0.69 vs +0.00): the MOSES decoder leaves the start's similarity within a short distance
DEFAULT_CONDITION_SIGMA = 0.6  # CMA-ES initial step per condition coordinate (standardized units): moving
# the requested properties with z small helped most on the same starts (+1.27 at σ 0.1 vs +0.69 with c at 0.1)
METHODS = ("cmaes", "gradient")
# CMA-ES is the default: it needs no surrogate, and under a similarity constraint it wins (aspirin,
# max QED, --min-similarity 0.4, shipped model: +0.216 QED in 152 calls vs +0.016 for the gradient walk;
# benchmark tables in models/MODEL_CARD.md, "Optimization on the public benchmarks").
DEFAULT_METHOD = "cmaes"
DEFAULT_SAMPLES = 1  # decodes per latent point: the greedy one plus samples − 1 at --temperature
DEFAULT_TEMPERATURE = 1.0  # of the sampled decodes
DEFAULT_SIGMA_UNITS = "prior"
MAX_SAMPLES = 256
MAX_DECODES_PER_CALL = 20  # --fill-budget stops at 20 × budget decodes (a search that only re-finds molecules)
MAX_HALVINGS = 4  # gradient trust region: step halvings before a chain restarts near u₀
MISSING_SURROGATE = ("this model has no latent surrogate; fit one with "
                     "`moldesign surrogate fit --model {model}` (it is saved into the checkpoint)")

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
        def known(name: str, flag: str, allowed=COLUMNS) -> str:
            key = str(name).strip().lower()
            if key not in allowed:
                raise DesignInputError(f"{flag} {name!r} is not a known property; choose from {', '.join(allowed)}")
            return key

        weights: dict[str, float] = {}
        seen: list[str] = []

        def add(key: str, w: float) -> None:
            if key in weights:
                raise DesignInputError(f"property {key!r} appears in more than one objective term")
            weights[key] = w
            seen.append(key)

        for m in maximize:
            add(known(m, "--maximize"), 1.0)
        for m in minimize:
            add(known(m, "--minimize"), -1.0)
        if expression is not None:
            for key, w in _parse_expression(expression):
                add(known(key, "--objective"), w)
        items = targets.items() if isinstance(targets, Mapping) else [_split_target(t) for t in targets]
        tg: dict[str, float] = {}
        for k, v in items:
            key = known(k, "--target", TARGETS)
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

    def gradient_ready(self) -> bool:
        """True when the surrogate sees part of J (else the gradient method has nothing to climb)."""
        return bool(self.targets) or any(k in SURROGATE_LINEAR or k == "similarity" for k in self.weights)

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


def _parse_expression(text: str) -> list[tuple[str, float]]:
    """'1.0*logp - 1.0*sa' → [('logp', 1.0), ('sa', -1.0)]; a one-line error naming the text otherwise."""
    s = str(text).strip()
    terms, pos = [], 0
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m or m.end() == pos or (terms and not m.group(1)):
            raise DesignInputError(f"--objective must be a weighted sum like '1.0*logp - 1.0*sa', got {text!r}")
        w = float(m.group(2)) if m.group(2) else 1.0
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


@dataclass
class OptimizeResult:
    trajectory: pd.DataFrame  # one row per decoded point: step, smiles, valid, RDKit columns, objective, ...
    best: pd.DataFrame  # distinct feasible molecules (seed excluded) by RDKit objective, best first
    summary: dict  # JSON-able, natural units: start, objective, decodes, oracle_calls, seconds, seed/best, ...
    start: Seed | None = None
    objective: Objective | None = None


def require_surrogate(bundle: Bundle, model_name: str = "PATH") -> Surrogate:
    if bundle.surrogate is None:
        raise DesignInputError(MISSING_SURROGATE.format(model=model_name))
    return bundle.surrogate


SIGMA_UNITS = ("prior", "posterior")  # what --sigma and --step-size count in for z: prior std (1 per
# coordinate) or the start's posterior σ per coordinate
CONDITIONS = ("optimize", "seed", "only")  # the decoder's condition: optimized with z, held at the seed's
# properties (z moves alone), or the only thing that moves (z held at μ: "raise the requested LogP")


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


class Oracle:
    """RDKit scoring of decoded molecules for one start: a cache by canonical SMILES, a count of
    calls (one per distinct valid molecule) and an optional cap (`budget`)."""

    def __init__(self, seed: Seed, objective: Objective, stds: Mapping[str, float], budget: int | None = None,
                 min_similarity: float = 0.0):
        self.seed, self.objective, self.stds = seed, objective, stds
        self.budget, self.min_similarity = budget, float(min_similarity)
        self.cache: dict[str, dict[str, float]] = {}
        self.calls = 0
        self.decodes = 0

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.calls >= self.budget

    def columns(self, mols: list) -> dict[str, np.ndarray]:
        """Every COLUMN for parsed molecules (None → NaN): (n,) arrays."""
        truth = scores_array(mols)  # (n, 7)
        cols = {k: truth[:, j] for j, k in enumerate(TARGETS)}
        cols["plogp"] = np.array([penalized_logp(m) if m is not None else np.nan for m in mols])
        cols["plogp_raw"] = np.array([plogp_raw(m) if m is not None else np.nan for m in mols])
        cols["similarity"] = tanimoto_to(self.seed.mol, mols)
        cols["objective"] = self.objective.value(cols, self.stds)
        return cols

    def seed_values(self) -> dict[str, float]:
        return {k: float(v[0]) for k, v in self.columns([self.seed.mol]).items()}

    def score(self, strings: list[str]) -> pd.DataFrame:
        """Rows for decoded strings, in order, until the budget runs out (later rows are dropped).
        Columns: smiles (canonical, or the raw string when invalid), valid, COLUMNS, objective,
        oracle_call (this row cost a call)."""
        canon, mols = canonical_mols(strings)
        self.decodes += len(strings)
        todo = {}
        keep = len(strings)
        for i, c in enumerate(canon):
            if c is None or c in self.cache or c in todo:
                continue
            if self.budget is not None and self.calls + len(todo) >= self.budget:
                keep = i  # this molecule would be one call too many
                break
            todo[c] = mols[i]
        if todo:
            cols = self.columns(list(todo.values()))
            for j, c in enumerate(todo):
                self.cache[c] = {k: float(v[j]) for k, v in cols.items()}
            self.calls += len(todo)
        rows, first = [], set()
        nan = {k: math.nan for k in COLUMNS + ("objective",)}
        for c, s in zip(canon[:keep], strings[:keep]):
            call = c is not None and c in todo and c not in first
            if call:
                first.add(c)
            rows.append({"smiles": c if c is not None else s, "valid": c is not None,
                         **(self.cache[c] if c is not None else nan), "oracle_call": call})
        df = pd.DataFrame(rows, columns=["smiles", "valid", *COLUMNS, "objective", "oracle_call"])
        df["feasible"] = df["valid"] & (df["similarity"] >= self.min_similarity)
        return df


def score_points(bundle: Bundle, oracle: Oracle, u0: np.ndarray, u: np.ndarray, constrained: bool = True,
                 samples: int = 1, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> pd.DataFrame:
    """Decode points u = [z, scaled c] (n, Z + 5) and score them with the oracle (rows stop where
    the budget ran out). Each point gives `samples` rows, point-major: its greedy decode (sample 0)
    and samples − 1 decodes at `temperature` (the point's neighbourhood in molecule space: with a
    decoder whose greedy reconstruction is weak, the start itself is often among the samples of μ
    and not its greedy decode). Columns: point, sample, the oracle's, surrogate predictions pred_*
    and pred_objective (NaN without a surrogate), the condition decoded under (mw_condition …),
    distance ‖u − u0‖ and log_prior = log N(z; 0, I) + const. `constrained`: grammar/valence-masked
    decoding (default)."""
    n_pts = len(u)
    u = np.repeat(u, samples, axis=0) if samples > 1 else u  # (n·samples, D), point-major
    z, cond = split_input(bundle, u)
    # first_token_floor 0, no beam rescue: a greedy row may restart with any first token the
    # grammar allows. The optimizer scores every candidate with RDKit and its filters, and its
    # benchmark numbers were measured so; with the floor (decoding.FIRST_TOKEN_FLOOR) the README's
    # CMA-ES run from aspirin fell from QED 0.907 to 0.869 (validity 1.000 -> 0.974; session 8)
    strings = decode(bundle, z[::samples], cond[::samples], temperature=0.0, constrained=constrained,
                     first_token_floor=0.0, rescue_beam=0)
    if samples > 1:
        hot = np.ones(len(u), bool)
        hot[::samples] = False  # (n·samples,): the sampled rows
        sampled = iter(decode(bundle, z[hot], cond[hot], temperature=temperature, constrained=constrained,
                              generator=generator))
        greedy = iter(strings)
        strings = [next(sampled) if h else next(greedy) for h in hot]
    df = oracle.score(strings)
    n = len(df)
    df.insert(0, "sample", np.tile(np.arange(samples), n_pts)[:n])
    df.insert(0, "point", np.repeat(np.arange(n_pts), samples)[:n])
    sur = bundle.surrogate
    pred = sur.predict(u[:n]) if sur is not None and n else np.full((n, len(TARGETS)), np.nan)
    for j, k in enumerate(TARGETS):
        df[f"pred_{k}"] = pred[:, j]
    df["pred_objective"] = oracle.objective.score_numpy(pred, sur) if sur is not None else np.nan
    for j, k in enumerate(PROPERTIES):
        df[f"{k}_condition"] = cond[:n, j]
    df["distance"] = np.linalg.norm(u[:n] - u0[None, :], axis=1)
    df["log_prior"] = -0.5 * (z[:n].astype(np.float64) ** 2).sum(1)
    return df


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


def point_fitness(df: pd.DataFrame, n_points: int, min_similarity: float,
                  similarity_penalty: float = 0.0) -> np.ndarray:
    """CMA-ES fitness per point (lower is better) from its decodes' rows (columns point, valid,
    feasible, objective, similarity) → (n_points,): the best of its decodes. A feasible decode
    scores −J. An infeasible valid one, with similarity_penalty w = 0 (a hard constraint), ranks
    below every feasible one, by similarity; with w > 0 it scores −J + w·(S − similarity) (a
    penalty: a good molecule just outside the constraint can still lead the search). An invalid
    decode ranks below everything."""
    big = 1e6
    sim = df["similarity"].fillna(0.0).to_numpy()
    obj = df["objective"].fillna(0.0).to_numpy()
    if similarity_penalty > 0:
        infeasible = -obj + similarity_penalty * (min_similarity - sim)
    else:
        infeasible = big * (1 + min_similarity - sim)
    f = np.where(df["feasible"], -obj, np.where(df["valid"], infeasible, 4 * big))
    out = np.full(n_points, 4 * big)
    np.minimum.at(out, df["point"].to_numpy(), f)
    return out


def _gradient_step(sur: Surrogate, objective: Objective, u: np.ndarray, u0: np.ndarray, step: np.ndarray,
                   prior_weight: float, space: Space, scale: np.ndarray | None = None) -> np.ndarray:
    """One normalized ascent step on J_sur(u) − λ‖u‖²/2 per row: u (K, D), step (K,) lengths → (K, D).
    `scale` (D,): the unit per coordinate (posterior σ for z); the step is then steepest ascent in
    the metric diag(1/scale²), `step` long in those units: direction scale∘ĝ, ĝ = (scale∘g)/‖scale∘g‖."""
    dev = sur.mean.device
    ut = torch.tensor(u, device=dev, requires_grad=True)
    u0t = torch.tensor(u0[None, :], device=dev)
    J = objective.score_torch(sur(ut), sur, ut, u0t) - prior_weight * 0.5 * (ut ** 2).sum(dim=1)  # (K,)
    (g,) = torch.autograd.grad(J.sum(), ut)  # (K, D): chains are independent, one backward serves all
    s = np.ones(u.shape[1], np.float32) if scale is None else scale
    g = g.cpu().numpy() * space.moves * s
    gnorm = np.linalg.norm(g, axis=1, keepdims=True)  # (K, 1)
    direction = np.where(gnorm > 1e-12, g / np.maximum(gnorm, 1e-12), 0.0) * s  # at a stationary point u stays put
    return space.clip(u + step[:, None] * direction)


def latent_paths(bundle: Bundle, starts: np.ndarray, objective: Objective, steps: int, step_size: float,
                 prior_weight: float, space: Space) -> np.ndarray:
    """Unconstrained normalized gradient ascent from each start (K, Z + 5) → paths (K, steps+1, Z + 5)."""
    sur = require_surrogate(bundle)
    u = space.clip(starts)
    u0 = u[0].copy()
    path = [u]
    step = np.full(len(u), step_size, np.float32)
    for _ in range(steps):
        u = _gradient_step(sur, objective, u, u0, step, prior_weight, space)
        path.append(u)
    return np.stack(path, axis=1)


def _finish(table: pd.DataFrame, oracle: Oracle, seed: Seed, objective: Objective, top_k: int, t0: float,
            extra: dict) -> OptimizeResult:
    """Mark new molecules, rank the feasible ones, summarize in natural units."""
    seen = {seed.smiles}
    new = []
    for s, v in zip(table["smiles"], table["valid"]):
        new.append(bool(v) and s not in seen)
        if v:
            seen.add(s)
    table["new"] = new
    seed_vals = oracle.seed_values()
    table["improvement"] = table["objective"] - seed_vals["objective"]
    pick = table["new"] & table["feasible"]
    order = table[pick].sort_values(["objective", "smiles"], ascending=[False, True], kind="stable").index
    table["rank"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.loc[order, "rank"] = np.arange(1, len(order) + 1)
    distinct = table.loc[order]
    top = distinct["objective"].to_numpy()
    r4 = lambda x: None if x is None or not np.isfinite(x) else round(float(x), 4)  # noqa: E731
    summary = {
        "start": seed.label, "start_smiles": seed.smiles, "objective": objective.describe(), **extra,
        "min_similarity": oracle.min_similarity, "budget": oracle.budget,
        "decodes": int(oracle.decodes), "oracle_calls": int(oracle.calls), "seconds": round(time.time() - t0, 2),
        "valid": round(float(table["valid"].mean()), 4) if len(table) else 0.0,
        "distinct": int(table["new"].sum()), "feasible": int(len(distinct)),
        "seed_objective": r4(seed_vals["objective"]),
        "best_objective": r4(top[0]) if len(top) else None,
        "improvement": r4(top[0] - seed_vals["objective"]) if len(top) else None,
        "top3_mean_objective": r4(top[:3].mean()) if len(top) else None,
        "improved_on_seed": int((top > seed_vals["objective"]).sum()),
        "best_smiles": distinct["smiles"].iloc[0] if len(distinct) else None,
        "best_similarity": r4(distinct["similarity"].iloc[0]) if len(distinct) else None,
    }
    for k in objective.weights:  # each weighted column at the start and at the best, natural units
        summary[f"seed_{k}"] = r4(seed_vals[k])
        summary[f"best_{k}"] = r4(distinct[k].iloc[0]) if len(distinct) else None
    return OptimizeResult(table, distinct.head(top_k).reset_index(drop=True), summary, seed, objective)


def check_settings(steps=DEFAULT_STEPS, chains=DEFAULT_CHAINS, step_size=DEFAULT_STEP_SIZE,
                   prior_weight=DEFAULT_PRIOR_WEIGHT, budget=None, min_similarity=0.0, method=DEFAULT_METHOD,
                   condition="optimize", sigma=DEFAULT_SIGMA, condition_sigma=DEFAULT_CONDITION_SIGMA,
                   samples=DEFAULT_SAMPLES, temperature=DEFAULT_TEMPERATURE, sigma_units=DEFAULT_SIGMA_UNITS,
                   fill_budget=False, similarity_penalty=0.0, baseline=False, **_ignored) -> None:
    """One-line DesignInputError for a bad setting (before any work; a batch checks once).
    `baseline`: the random baseline will be run too, which repeats a gradient run's distances."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DesignInputError(f"--steps must be at least 1, got {steps!r}")
    if not isinstance(chains, (int, np.integer)) or chains < 1:
        raise DesignInputError(f"--chains must be at least 1, got {chains!r}")
    if not np.isfinite(step_size) or step_size <= 0:
        raise DesignInputError(f"--step-size must be positive, got {step_size}")
    if not np.isfinite(prior_weight) or prior_weight < 0:
        raise DesignInputError(f"--prior-weight must be >= 0, got {prior_weight}")
    if budget is not None and (not isinstance(budget, (int, np.integer)) or budget < 1):
        raise DesignInputError(f"--budget must be a positive number of oracle calls, got {budget!r}")
    if not np.isfinite(min_similarity) or not 0 <= min_similarity <= 1:
        raise DesignInputError(f"--min-similarity must be in [0, 1], got {min_similarity}")
    if method not in METHODS:
        raise DesignInputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if baseline and method != "gradient":
        raise DesignInputError("--baseline repeats the gradient run's distances; use it with --method gradient")
    if condition not in CONDITIONS:
        raise DesignInputError(f"--condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise DesignInputError(f"--sigma must be positive, got {sigma}")
    if not np.isfinite(condition_sigma) or condition_sigma <= 0:
        raise DesignInputError(f"--condition-sigma must be positive, got {condition_sigma}")
    if not isinstance(samples, (int, np.integer)) or not 1 <= samples <= MAX_SAMPLES:
        raise DesignInputError(f"--samples must be in 1..{MAX_SAMPLES}, got {samples!r}")
    if not np.isfinite(temperature) or not 0 < temperature <= 10:
        raise DesignInputError(f"--temperature must be in (0, 10], got {temperature}")
    if sigma_units not in SIGMA_UNITS:
        raise DesignInputError(f"--sigma-units must be one of {', '.join(SIGMA_UNITS)}, got {sigma_units!r}")
    if fill_budget and budget is None:
        raise DesignInputError("--fill-budget needs --budget N (it runs until N oracle calls are spent)")
    if not np.isfinite(similarity_penalty) or similarity_penalty < 0:
        raise DesignInputError(f"--similarity-penalty must be >= 0, got {similarity_penalty}")


def optimize(bundle: Bundle, seed: Seed, objective: Objective, steps: int = DEFAULT_STEPS,
             chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
             prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10,
             rng: np.random.Generator | None = None, condition: str = "optimize", method: str = DEFAULT_METHOD,
             budget: int | None = None, min_similarity: float = 0.0, sigma: float = DEFAULT_SIGMA,
             condition_sigma: float = DEFAULT_CONDITION_SIGMA, constrained: bool = True,
             samples: int = DEFAULT_SAMPLES, temperature: float = DEFAULT_TEMPERATURE,
             sigma_units: str = DEFAULT_SIGMA_UNITS, fill_budget: bool = False,
             similarity_penalty: float = 0.0) -> OptimizeResult:
    """Optimize from the seed with `method` (see the module docstring); every decode scored by RDKit.

    trajectory: one row per decoded molecule with columns chain, run, step, point, sample, smiles,
    valid, COLUMNS, objective, oracle_call, feasible, pred_*, pred_objective, *_condition,
    distance, log_prior, new, improvement (J − J_seed), rank (feasible new molecules, 1 = best)."""
    check_settings(steps, chains, step_size, prior_weight, budget, min_similarity, method, condition, sigma,
                   condition_sigma, samples, temperature, sigma_units, fill_budget, similarity_penalty)
    if method == "gradient":
        require_surrogate(bundle)
        if not objective.gradient_ready():
            raise DesignInputError(f"the surrogate predicts no part of '{objective.describe()}'; use --method cmaes")
    rng = rng if rng is not None else np.random.default_rng(0)
    t0 = time.time()
    space = Space.of(bundle, condition)
    u0 = seed_point(bundle, seed, space)  # (Z + 5,)
    oracle = Oracle(seed, objective, target_stds(bundle), budget, min_similarity)
    search = _Search(bundle, oracle, u0, space, step_scale(bundle, seed, space, sigma_units), rng,
                     torch.Generator().manual_seed(int(rng.integers(1, 2**31 - 1))), constrained, samples,
                     temperature, fill_budget, similarity_penalty)
    if method == "cmaes":
        extra = _cmaes(search, chains, steps, sigma, condition_sigma)
    else:
        extra = _gradient(search, chains, steps, step_size, prior_weight, sigma)
    extra.update(samples=samples, temperature=temperature, sigma_units=sigma_units, fill_budget=fill_budget,
                 runs=search.runs)
    table = pd.concat(search.parts, ignore_index=True)
    return _finish(table, oracle, seed, objective, top_k, t0,
                   {"method": method, "condition": condition, "constrained": constrained, **extra})


@dataclass
class _Search:
    """What both methods share for one start: the decode-and-score step, the best feasible point
    so far (where a restart begins), the trajectory parts and the stopping rule of --fill-budget."""

    bundle: Bundle
    oracle: Oracle
    u0: np.ndarray  # (D,)
    space: Space
    scale: np.ndarray  # (D,) unit per coordinate (posterior σ for z with sigma_units="posterior")
    rng: np.random.Generator
    generator: torch.Generator  # the sampled decodes'
    constrained: bool
    samples: int
    temperature: float
    fill_budget: bool
    similarity_penalty: float
    parts: list = field(default_factory=list)
    runs: int = 0
    generation: int = 0  # across runs
    best_f: float = math.inf
    best_u: np.ndarray | None = None

    def evaluate(self, u: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, bool]:
        """Decode and score points u (n, D) → (rows, fitness (n,) lower is better, complete: every
        row was scored within the budget). Remembers the best feasible point."""
        df = score_points(self.bundle, self.oracle, self.u0, u, self.constrained, self.samples, self.temperature,
                          self.generator)
        df.insert(0, "step", self.generation)
        df.insert(0, "run", self.runs)
        df.insert(0, "chain", df["point"].to_numpy())
        self.parts.append(df)
        self.generation += 1
        hard = point_fitness(df, len(u), self.oracle.min_similarity)  # feasible points only are < 1e6
        i = int(np.argmin(hard))
        if hard[i] < min(self.best_f, 1e6):
            self.best_f, self.best_u = float(hard[i]), u[i].copy()
        f = hard if self.similarity_penalty == 0 else point_fitness(df, len(u), self.oracle.min_similarity,
                                                                    self.similarity_penalty)
        return df, f, len(df) == len(u) * self.samples

    def centre(self) -> np.ndarray:
        """Where a run starts: u₀ first, then the best feasible point found so far."""
        return self.u0 if self.best_u is None else self.best_u

    def another_run(self, calls_before: int, complete: bool) -> bool:
        """--fill-budget: start another run while oracle calls remain, the last run found something
        new, and decodes stay under MAX_DECODES_PER_CALL × budget (a search that only re-finds known
        molecules stops)."""
        self.runs += 1
        o = self.oracle
        return (self.fill_budget and o.budget is not None and complete and not o.exhausted
                and o.calls > calls_before and o.decodes < MAX_DECODES_PER_CALL * o.budget)


def _gradient(search: _Search, chains, steps, step_size, prior_weight, sigma) -> dict:
    """Trust-region gradient chains (module docstring); with fill_budget, runs restart around the
    best feasible point until the budget is spent → summary extras."""
    sur = require_surrogate(search.bundle)
    space, rng, scale = search.space, search.rng, search.scale

    def neighbours(centre: np.ndarray, n: int) -> np.ndarray:
        u = np.tile(centre, (n, 1))
        if space.moves[: space.Z].any():
            u[:, : space.Z] += sigma * scale[: space.Z] * rng.standard_normal((n, space.Z)).astype(np.float32)
        else:  # condition only: neighbours in c
            u[:, space.Z:] += sigma * rng.standard_normal((n, u.shape[1] - space.Z)).astype(np.float32)
        return space.clip(u)

    restarts = 0
    while True:
        centre = search.centre()
        u = np.tile(centre, (chains, 1)).astype(np.float32)  # (K, D); chain 0 at the centre itself
        if chains > 1 and space.moves[: space.Z].any():
            u[1:] = neighbours(centre, chains - 1)
        last_ok = u.copy()
        step = np.full(chains, step_size, np.float32)
        calls_before = search.oracle.calls
        for t in range(steps + 1):
            df, _, complete = search.evaluate(u)
            if not complete or search.oracle.exhausted or t == steps:
                break
            # trust region: a chain none of whose decodes is feasible goes back, half the step
            pts = df["point"].to_numpy()
            ok = np.zeros(chains, bool)
            np.logical_or.at(ok, pts, df["feasible"].to_numpy())
            valid = np.zeros(chains, bool)
            np.logical_or.at(valid, pts, df["valid"].to_numpy())
            out = valid & ~ok
            last_ok[ok] = u[ok]
            u[out] = last_ok[out]
            step[out] /= 2
            lost = step < step_size / 2 ** MAX_HALVINGS  # this chain cannot leave the boundary: restart near u₀
            if lost.any():
                u[lost] = last_ok[lost] = neighbours(search.u0, int(lost.sum()))
                step[lost] = step_size
                restarts += int(lost.sum())
            u = _gradient_step(sur, search.oracle.objective, u, search.u0, step, prior_weight, space, scale)
        if not search.another_run(calls_before, complete):
            break
    return {"chains": chains, "steps": steps, "step_size": step_size, "prior_weight": prior_weight,
            "sigma": sigma, "restarts": restarts}


def _cmaes(search: _Search, popsize, generations, sigma, condition_sigma) -> dict:
    """CMA-ES over the moving coordinates of u with RDKit fitness (the `cma` package); with
    fill_budget, runs restart at the best feasible point until the budget is spent."""
    try:
        import cma
    except ImportError:  # an optional extra: say how to get it
        raise DesignInputError("--method cmaes needs the `cma` package: pip install 'moldesign[cmaes]'") from None
    space, moves = search.space, search.space.moves
    # per-coordinate initial spread: σ₀·unit for z (unit: 1 or the start's posterior σ), condition_sigma for c
    stds = np.concatenate([sigma * search.scale[: space.Z], np.full(len(search.u0) - space.Z, condition_sigma)])
    stds = stds[moves]
    while True:
        es = cma.CMAEvolutionStrategy(search.centre()[moves].astype(np.float64), 1.0,
                                      {"popsize": max(2, popsize), "seed": int(search.rng.integers(1, 2**31 - 1)),
                                       "verbose": -9, "maxiter": generations, "CMA_stds": stds.tolist()})
        calls_before = search.oracle.calls
        complete = True
        for _ in range(generations):
            xs = es.ask()  # list of (M,) points
            u = np.tile(search.u0, (len(xs), 1)).astype(np.float32)
            u[:, moves] = np.asarray(xs, np.float32)
            u = space.clip(u)
            _, f, complete = search.evaluate(u)
            if not complete:  # budget ran out inside this generation: its ranking is incomplete
                break
            es.tell(xs, f.astype(np.float64).tolist())
            if search.oracle.exhausted or es.stop():
                break
        if not search.another_run(calls_before, complete):
            break
    return {"population": max(2, popsize), "generations": generations, "sigma": sigma,
            "condition_sigma": condition_sigma, "similarity_penalty": search.similarity_penalty}


def random_baseline(bundle: Bundle, seed: Seed, objective: Objective, distances: np.ndarray,
                    rng: np.random.Generator, top_k: int = 10, condition: str = "optimize",
                    budget: int | None = None, min_similarity: float = 0.0, constrained: bool = True) -> OptimizeResult:
    """One decode per distance: u = u₀ + d·v with v a uniformly random unit direction of the space
    the optimizer moves in (c clipped to the training range, as the optimizer's is)."""
    t0 = time.time()
    space = Space.of(bundle, condition)
    u0 = seed_point(bundle, seed, space)
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
    oracle = Oracle(seed, objective, target_stds(bundle), budget, min_similarity)
    table = score_points(bundle, oracle, u0, u, constrained)
    table.insert(0, "step", np.arange(len(table)))
    return _finish(table, oracle, seed, objective, top_k, t0,
                   {"method": "random directions at the same distances", "condition": condition,
                    "constrained": constrained})
