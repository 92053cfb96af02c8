"""The oracle: RDKit scoring of decoded molecules for one start (a cache by canonical SMILES, one
call per distinct valid molecule, an optional budget), in two phases so that a batch of starts
computes the start-independent columns of all its new molecules at once, in this process or in a
worker pool (`score_many`); similarity to the start and J are then per start."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from rdkit import DataStructs

from ...chem import (PLOGP_CYCLE_MEAN, PLOGP_CYCLE_STD, PLOGP_LOGP_MEAN, PLOGP_LOGP_STD, PLOGP_SA_MEAN,
                     PLOGP_SA_STD, canonical_mols, morgan_fp, ring_penalty, scores_array)
from ...model.surrogate import TARGETS
from ..seeds import Seed
from .objective import COLUMNS, Objective

MOLECULE_COLUMNS: tuple[str, ...] = TARGETS + ("plogp", "plogp_raw")  # what a molecule alone decides
POOL_CHUNK = 64  # molecules per worker task: ~0.15 s of RDKit, large enough to hide the pickling
ROW_COLUMNS = ["smiles", "valid", *COLUMNS, "objective", "oracle_call"]


def molecule_columns(mols: Sequence) -> np.ndarray:
    """(n, 9) MOLECULE_COLUMNS of parsed molecules: RDKit's 7 scores, then penalized logP and
    logP − SA from the same logP and SA (chem.penalized_logp / plogp_raw compute SA again each;
    the same float expressions, so the same values, at a third of SA's cost)."""
    truth = scores_array(mols)  # (n, 7), NaN rows for None
    out = np.full((len(mols), len(MOLECULE_COLUMNS)), np.nan)
    out[:, : len(TARGETS)] = truth
    i_logp, i_sa = TARGETS.index("logp"), TARGETS.index("sa")
    for i, m in enumerate(mols):
        if m is None:
            continue
        logp, sa = float(truth[i, i_logp]), float(truth[i, i_sa])
        out[i, -2] = float((logp - PLOGP_LOGP_MEAN) / PLOGP_LOGP_STD + (-sa - PLOGP_SA_MEAN) / PLOGP_SA_STD
                           + (-ring_penalty(m) - PLOGP_CYCLE_MEAN) / PLOGP_CYCLE_STD)
        out[i, -1] = float(logp - sa)
    return out


def _columns_of_smiles(smiles: list[str]) -> np.ndarray:
    """molecule_columns in a worker: canonical SMILES → (n, 9) (parsed as canonical_mols re-parses them)."""
    from rdkit import Chem

    return molecule_columns([Chem.MolFromSmiles(s) for s in smiles])


def column_table(todo: Mapping[str, object], pool=None) -> dict[str, np.ndarray]:
    """canonical SMILES → its (9,) MOLECULE_COLUMNS, for every molecule of `todo` (canonical → Mol).
    With a pool (workers.process_pool) and more than two chunks of work, the chunks go to workers."""
    keys = list(todo)
    if not keys:
        return {}
    if pool is not None and len(keys) > 2 * POOL_CHUNK:
        return _gather(keys, _submit(keys, pool))
    return dict(zip(keys, molecule_columns([todo[k] for k in keys])))


def _submit(keys: list[str], pool) -> list:
    """Hand the columns of canonical SMILES `keys` to the pool's workers, POOL_CHUNK per task: futures."""
    return [pool.submit(_columns_of_smiles, keys[i : i + POOL_CHUNK]) for i in range(0, len(keys), POOL_CHUNK)]


def _gather(keys: list[str], futures: list) -> dict[str, np.ndarray]:
    """Wait for _submit's futures: canonical SMILES → its (9,) MOLECULE_COLUMNS."""
    blocks = [f.result() for f in futures]
    return dict(zip(keys, np.concatenate(blocks))) if blocks else {}


@dataclass
class Plan:
    """What one oracle will score of one list of decoded strings: their canonical forms and Mols,
    the molecules new to its cache in first-seen order (canonical → Mol), and how many strings
    fit in the budget (`keep`; later rows are dropped)."""

    strings: list[str]
    canon: list
    todo: dict
    keep: int


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
        self._seed_fp = morgan_fp(seed.mol)

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.calls >= self.budget

    def columns(self, mols: list, table: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every COLUMN and the objective for parsed molecules (None → NaN): (n,) arrays.
        `table`: their (n, 9) MOLECULE_COLUMNS when already computed (a batch's bulk pass)."""
        block = molecule_columns(mols) if table is None else table
        cols = {k: block[:, j] for j, k in enumerate(MOLECULE_COLUMNS)}
        sim = np.full(len(mols), np.nan)  # chem.tanimoto_to with the start's fingerprint computed once
        idx = [i for i, m in enumerate(mols) if m is not None]
        if idx:
            sim[idx] = DataStructs.BulkTanimotoSimilarity(self._seed_fp, [morgan_fp(mols[i]) for i in idx])
        cols["similarity"] = sim
        cols["objective"] = self.objective.value(cols, self.stds)
        return cols

    def seed_values(self) -> dict[str, float]:
        return {k: float(v[0]) for k, v in self.columns([self.seed.mol]).items()}

    def plan(self, strings: list[str]) -> Plan:
        """Phase 1: parse `strings` and pick the molecules to score, in order, until the budget."""
        canon, mols = canonical_mols(strings)
        self.decodes += len(strings)
        todo: dict = {}
        keep = len(strings)
        for i, c in enumerate(canon):
            if c is None or c in self.cache or c in todo:
                continue
            if self.budget is not None and self.calls + len(todo) >= self.budget:
                keep = i  # this molecule would be one call too many
                break
            todo[c] = mols[i]
        return Plan(list(strings), canon, todo, keep)

    def commit(self, plan: Plan, table: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
        """Phase 2: score the plan's new molecules (`table`: canonical → (9,) columns, else computed
        here) and return its rows: smiles (canonical, or the raw string when invalid), valid,
        COLUMNS, objective, oracle_call (this row cost a call), feasible."""
        if plan.todo:
            block = None if table is None else np.stack([table[c] for c in plan.todo])  # (m, 9)
            cols = self.columns(list(plan.todo.values()), block)
            for j, c in enumerate(plan.todo):
                self.cache[c] = {k: float(v[j]) for k, v in cols.items()}
            self.calls += len(plan.todo)
        rows, first = [], set()
        nan = {k: math.nan for k in COLUMNS + ("objective",)}
        for c, s in zip(plan.canon[: plan.keep], plan.strings[: plan.keep]):
            call = c is not None and c in plan.todo and c not in first
            if call:
                first.add(c)
            rows.append({"smiles": c if c is not None else s, "valid": c is not None,
                         **(self.cache[c] if c is not None else nan), "oracle_call": call})
        df = pd.DataFrame(rows, columns=ROW_COLUMNS)
        df["feasible"] = df["valid"] & (df["similarity"] >= self.min_similarity)
        return df

    def score(self, strings: list[str]) -> pd.DataFrame:
        """Rows for decoded strings, in order, until the budget runs out (later rows are dropped)."""
        return self.commit(self.plan(strings))


def score_many(oracles: Sequence[Oracle], strings: Sequence[list[str]], pool=None) -> list[pd.DataFrame]:
    """Each oracle's rows for its strings, as `Oracle.score` gives them, with the start-independent
    columns of every new molecule computed in one pass (a molecule new to two starts once)."""
    plans, todo = _plans(oracles, strings)
    table = column_table(todo, pool)
    return [o.commit(p, table) for o, p in zip(oracles, plans)]


def _plans(oracles: Sequence[Oracle], strings: Sequence[list[str]]) -> tuple[list[Plan], dict]:
    """Each oracle's Plan, and the new molecules of all of them (canonical → Mol, first seen once)."""
    plans = [o.plan(s) for o, s in zip(oracles, strings)]
    todo: dict = {}
    for p in plans:
        for c, m in p.todo.items():
            todo.setdefault(c, m)
    return plans, todo


class PendingScores:
    """score_many in two halves for a pipeline: the constructor plans and hands the new molecules'
    RDKit work to the pool's workers (returns at once); `rows()` waits for it and commits. While the
    workers score some starts' molecules, this process decodes the others' (batch.run_searches).
    Without a pool the constructor computes the columns itself and is ready at once."""

    def __init__(self, oracles: Sequence[Oracle], strings: Sequence[list[str]], pool=None):
        self.oracles = oracles
        self.plans, todo = _plans(oracles, strings)
        self.keys = list(todo)
        self.table = column_table(todo) if pool is None else None
        self.futures = _submit(self.keys, pool) if pool is not None else []

    def ready(self) -> bool:
        """The columns are computed (rows() will not wait)."""
        return all(f.done() for f in self.futures)

    def rows(self) -> list[pd.DataFrame]:
        table = self.table if self.table is not None else _gather(self.keys, self.futures)
        return [o.commit(p, table) for o, p in zip(self.oracles, self.plans)]
