"""optimize as commands over the optimizer core (design.optimize): one start, a batch of starts
read from a file (one table of rows per start, a bad start kept as a row saying why) and the
random-direction baseline of a gradient run."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DesignInputError
from ..model.checkpoint import Bundle
from ..model.surrogate import TARGETS
from .common import molecule
from .optimize import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD, DEFAULT_PRIOR_WEIGHT, DEFAULT_SAMPLES,
                       DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE, DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                       Objective, OptimizeResult, check_settings, optimize, random_baseline, require_surrogate)

# per-proposal columns of an optimize batch (after start_id … seed_objective, rank, smiles, valid)
OPTIMIZE_BATCH_COLUMNS = [*TARGETS, "plogp", "plogp_raw", "similarity", "objective", "improvement"]
BATCH_COLUMNS = ["start_id", "start_input", "start_smiles", "method", "decodes", "oracle_calls", "seconds",
                 "seed_objective", "rank", "smiles", "valid", *OPTIMIZE_BATCH_COLUMNS, "error"]
SETTINGS = ("steps", "chains", "step_size", "prior_weight", "top_k", "condition", "method", "budget",
            "min_similarity", "sigma", "condition_sigma", "constrained", "samples", "temperature",
            "sigma_units", "fill_budget", "similarity_penalty")  # optimize's keyword settings (besides seed)


def _model_name(path: str | Path | None) -> str:
    return str(path or "PATH")


def optimize_start(bundle: Bundle, path: str | Path | None, start: str, maximize: Sequence[str] = (),
                   minimize: Sequence[str] = (), targets: Mapping[str, float] | Sequence[str] = (),
                   steps: int = DEFAULT_STEPS, chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
                   prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10, seed: int = 0,
                   condition: str = "optimize", method: str = DEFAULT_METHOD, budget: int | None = None,
                   min_similarity: float = 0.0, objective: str | None = None,
                   sigma: float = DEFAULT_SIGMA, condition_sigma: float = DEFAULT_CONDITION_SIGMA,
                   constrained: bool = True, samples: int = DEFAULT_SAMPLES, temperature: float = DEFAULT_TEMPERATURE,
                   sigma_units: str = DEFAULT_SIGMA_UNITS, fill_budget: bool = False,
                   similarity_penalty: float = 0.0) -> OptimizeResult:
    """Designer.optimize (`path`: the model's checkpoint, named when a surrogate is missing)."""
    obj = Objective.parse(maximize, minimize, targets, objective)
    if method == "gradient":
        require_surrogate(bundle, _model_name(path))
    return optimize(bundle, molecule(bundle, start), obj, steps, chains, step_size, prior_weight,
                    top_k, np.random.default_rng(seed), condition, method, budget, min_similarity, sigma,
                    condition_sigma, constrained, samples, temperature, sigma_units, fill_budget,
                    similarity_penalty)


def optimize_batch(bundle: Bundle, path: str | Path | None, starts: pd.DataFrame, done: set[str] = frozenset(),
                   baseline: bool = False, progress: bool = False, **kwargs) -> Iterator[tuple]:
    """Designer.optimize_batch: (start_id, rows, summary) per start not in `done`, in order."""
    from tqdm import tqdm

    objective = Objective.parse(kwargs.pop("maximize", ()), kwargs.pop("minimize", ()),
                                kwargs.pop("targets", ()), kwargs.pop("objective", None))  # once, before any work
    check_settings(**kwargs, baseline=baseline)  # a baseline needs the gradient method
    if kwargs.get("method", DEFAULT_METHOD) == "gradient":
        require_surrogate(bundle, _model_name(path))
    rows = starts[~starts["start_id"].astype(str).isin(set(map(str, done)))]
    for rec in tqdm(rows.to_dict("records"), desc="optimize", unit="start", disable=not progress):
        yield _batch_start(bundle, str(rec["start_id"]), rec["smiles"], objective, baseline, kwargs)


def _batch_start(bundle: Bundle, sid: str, given: str, objective: Objective, baseline: bool,
                 kwargs: dict) -> tuple[str, pd.DataFrame, dict | None]:
    """One start of a batch → (start_id, its rows, its summary; None when the start is bad)."""
    from ..chem import InvalidSmiles, standardize
    from ..known_molecules import UnknownMolecule
    from ..model.tokenizer import TokenizeError, UnknownTokenError

    head = {"start_id": sid, "start_input": given}
    try:
        smiles = standardize(given)  # the form the model is trained on: largest fragment, uncharged, no stereo
        res = _optimize_one(bundle, smiles, objective, **kwargs)
    except (DesignInputError, InvalidSmiles, UnknownMolecule, TokenizeError, UnknownTokenError) as e:
        row = {**head, "start_smiles": None, "method": kwargs.get("method", DEFAULT_METHOD),
               "smiles": None, "valid": False, "error": str(e)}
        return sid, pd.DataFrame([row]).reindex(columns=BATCH_COLUMNS), None
    tables = [batch_rows(head, res)]
    if baseline:
        base = random_baseline(bundle, res.start, objective, res.trajectory["distance"].to_numpy(),
                               np.random.default_rng(kwargs.get("seed", 0)), kwargs.get("top_k", 10),
                               kwargs.get("condition", "optimize"), kwargs.get("budget"),
                               kwargs.get("min_similarity", 0.0), kwargs.get("constrained", True))
        base.summary["method"] = "random"
        tables.append(batch_rows(head, base))
    return sid, pd.concat(tables, ignore_index=True), res.summary


def _optimize_one(bundle: Bundle, smiles: str, objective: Objective, seed: int = 0, **kwargs) -> OptimizeResult:
    unknown = set(kwargs) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown optimize settings: {sorted(unknown)}")
    return optimize(bundle, molecule(bundle, smiles), objective, rng=np.random.default_rng(seed), **kwargs)


def batch_rows(head: dict, res: OptimizeResult) -> pd.DataFrame:
    """A start's rows of a batch (BATCH_COLUMNS): its best proposals, or one row saying why none."""
    s = res.summary
    spent = {"method": s["method"], "decodes": s["decodes"], "oracle_calls": s["oracle_calls"],
             "seconds": s["seconds"], "seed_objective": s["seed_objective"]}
    if len(res.best):
        df = res.best[["rank", "smiles", "valid", *OPTIMIZE_BATCH_COLUMNS]].copy()
        df["error"] = ""
    else:
        why = (f"no valid proposal with similarity >= {s['min_similarity']:g} in {s['decodes']} decodes "
               f"({s['oracle_calls']} oracle calls)")
        df = pd.DataFrame([{"smiles": None, "valid": False, "error": why}])
    for k, v in reversed([*head.items(), ("start_smiles", res.start.smiles), *spent.items()]):
        df.insert(0, k, v)
    return df.reindex(columns=BATCH_COLUMNS)


def baseline(bundle: Bundle, result: OptimizeResult, seed: int = 0) -> OptimizeResult:
    """Designer.baseline: the random-direction baseline of a gradient run (DesignInputError otherwise)."""
    check_settings(method=result.summary["method"], baseline=True)
    return random_baseline(bundle, result.start, result.objective, result.trajectory["distance"].to_numpy(),
                           np.random.default_rng(seed), top_k=max(len(result.best), 1),
                           condition=result.summary.get("condition", "optimize"),
                           budget=result.summary.get("budget"),
                           min_similarity=result.summary.get("min_similarity", 0.0),
                           constrained=result.summary.get("constrained", True))


def read_starts(path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """Start molecules for a batch: .smi (SMILES then an optional name) or .csv/.tsv/.parquet with a
    SMILES column; start_id from `id_column`, else a column named id/start_id/name, else the row
    number (0-based). Every row is kept; duplicate ids are an error (resume keys on them)."""
    from ..data import read_smiles_file

    df = read_smiles_file(path)
    cols = {c.lower(): c for c in df.columns}
    if id_column is not None:
        if id_column not in df.columns:
            raise DesignInputError(f"--id-column {id_column!r} is not a column of {path}; columns: {', '.join(map(str, df.columns))}")
        ids = df[id_column]
    else:
        key = next((cols[c] for c in ("start_id", "id", "name") if c in cols), None)
        ids = df[key] if key is not None and df[key].astype(str).str.strip().ne("").all() else pd.Series(range(len(df)))
    out = pd.DataFrame({"start_id": ids.astype(str).str.strip().to_numpy(), "smiles": df["smiles"].to_numpy()})
    dup = out["start_id"][out["start_id"].duplicated()]
    if len(dup):
        raise DesignInputError(f"start id {dup.iloc[0]!r} appears more than once in {path}")
    if not len(out):
        raise DesignInputError(f"no start molecules in {path}")
    return out
