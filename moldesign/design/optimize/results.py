"""What a search leaves: the trajectory with new molecules marked and the feasible ones ranked,
the best table, the summary in natural units, and the best-so-far curve per step (for plots)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..seeds import Seed
from .objective import Objective
from .oracle import Oracle


@dataclass
class OptimizeResult:
    trajectory: pd.DataFrame  # one row per decoded point: step, smiles, valid, RDKit columns, objective, ...
    best: pd.DataFrame  # distinct feasible molecules (seed excluded) by RDKit objective, best first
    summary: dict  # JSON-able, natural units: start, objective, decodes, oracle_calls, seconds, seed/best, ...
    start: Seed | None = None
    objective: Objective | None = None


def _r4(x):
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def finish(table: pd.DataFrame, oracle: Oracle, seed: Seed, objective: Objective, top_k: int, seconds: float,
           extra: dict, known: frozenset = frozenset()) -> OptimizeResult:
    """Mark new molecules, rank the feasible ones, summarize in natural units (a value that is not
    finite is reported as None, never inf or NaN). `known`: molecules that are never new (the guides)."""
    seen = {seed.smiles} | known
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
    summary = {
        "start": seed.label, "start_smiles": seed.smiles, "objective": objective.describe(), **extra,
        "min_similarity": oracle.min_similarity, "budget": oracle.budget,
        "decodes": int(oracle.decodes), "oracle_calls": int(oracle.calls), "seconds": round(seconds, 2),
        "valid": round(float(table["valid"].mean()), 4) if len(table) else 0.0,
        "distinct": int(table["new"].sum()), "feasible": int(len(distinct)),
        "seed_objective": _r4(seed_vals["objective"]),
        "best_objective": _r4(top[0]) if len(top) else None,
        "improvement": _r4(top[0] - seed_vals["objective"]) if len(top) else None,
        "top3_mean_objective": _r4(top[:3].mean()) if len(top) else None,
        "improved_on_seed": int((top > seed_vals["objective"]).sum()),
        "best_smiles": distinct["smiles"].iloc[0] if len(distinct) else None,
        "best_similarity": _r4(distinct["similarity"].iloc[0]) if len(distinct) else None,
    }
    for k in objective.weights:  # each weighted column at the start and at the best, natural units
        summary[f"seed_{k}"] = _r4(seed_vals[k])
        summary[f"best_{k}"] = _r4(distinct[k].iloc[0]) if len(distinct) else None
    return OptimizeResult(table, distinct.head(top_k).reset_index(drop=True), summary, seed, objective)


CURVE_COLUMNS = ("mw", "logp", "hbd", "hba", "tpsa", "qed", "sa", "plogp", "similarity")


def best_so_far(trajectory: pd.DataFrame) -> pd.DataFrame:
    """Per step (a generation of CMA-ES, an evaluation of the gradient chains; across restarts):
    oracle calls so far, the best objective of the step's new feasible molecules (NaN: none), the
    best so far, and the RDKit columns of the best-so-far molecule → (steps, ...) DataFrame. A
    finished trajectory (columns step, new, feasible, objective, oracle_call, smiles, CURVE_COLUMNS)."""
    t = trajectory
    steps = np.sort(t["step"].unique())
    calls = t.groupby("step")["oracle_call"].sum().reindex(steps, fill_value=0).cumsum()
    pick = t[t["new"] & t["feasible"]]
    per_step = pick.groupby("step")["objective"].max().reindex(steps)
    top_row = pick.groupby("step")["objective"].idxmax()  # step → index of its best new feasible row
    rows, best = [], None
    for s in steps:
        if s in top_row.index:
            top = t.loc[top_row[s]]
            if best is None or top["objective"] > best["objective"]:
                best = top
        row = {"step": int(s), "oracle_calls": int(calls[s]), "step_best": per_step[s],
               "best_objective": best["objective"] if best is not None else np.nan,
               "best_smiles": best["smiles"] if best is not None else None}
        row.update({f"best_{k}": best[k] if best is not None else np.nan for k in CURVE_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)
