"""optimize as commands over the optimizer core (design.optimize): one start, a batch of starts
read from a file (one table of rows per start, a bad start kept as a row saying why) and the
random-direction baseline of a gradient run."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..chem import InvalidSmiles
from ..errors import DesignInputError
from ..known_molecules import UnknownMolecule
from ..model.checkpoint import Bundle
from ..model.surrogate import TARGETS
from ..model.tokenizer import TokenizeError, UnknownTokenError
from .common import molecule
from .optimize import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD, DEFAULT_PRESCREEN,
                       DEFAULT_PRIOR_WEIGHT, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE,
                       DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                       SETTINGS, Guides, Objective, OptimizeResult, Settings, best_so_far, check_settings, optimize,
                       optimize_many, random_baseline, require_surrogate)

# per-proposal columns of an optimize batch (after start_id … seed_objective, rank, smiles, valid)
OPTIMIZE_BATCH_COLUMNS = [*TARGETS, "plogp", "plogp_raw", "similarity", "objective", "improvement"]
BATCH_COLUMNS = ["start_id", "start_input", "start_smiles", "method", "decodes", "oracle_calls", "seconds",
                 "seed_objective", "rank", "smiles", "valid", *OPTIMIZE_BATCH_COLUMNS, "error"]


_START_ERRORS = (DesignInputError, InvalidSmiles, UnknownMolecule, TokenizeError, UnknownTokenError)  # a bad start: a row


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
                   similarity_penalty: float = 0.0, stop_at: float | None = None,
                   guides: Sequence[str] | None = None, prescreen: int = DEFAULT_PRESCREEN) -> OptimizeResult:
    """Designer.optimize (`path`: the model's checkpoint, named when a surrogate is missing)."""
    obj = Objective.parse(maximize, minimize, targets, objective)
    if method == "gradient" or prescreen > 1:
        require_surrogate(bundle, _model_name(path))
    index = None if guides is None else Guides.of(guides)  # optimize() checks the method
    return optimize(bundle, molecule(bundle, start), obj, steps, chains, step_size, prior_weight,
                    top_k, np.random.default_rng(seed), condition, method, budget, min_similarity, sigma,
                    condition_sigma, constrained, samples, temperature, sigma_units, fill_budget,
                    similarity_penalty, stop_at, index, prescreen)


def optimize_batch(bundle: Bundle, path: str | Path | None, starts: pd.DataFrame, done: set[str] = frozenset(),
                   baseline: bool = False, progress: bool = False, **kwargs) -> Iterator[tuple]:
    """Designer.optimize_batch: (start_id, rows, summary) per start not in `done`, every start
    searched at once (design.optimize.optimize_many). In input order by default; `ordered=False`
    yields each start as it finishes (a resumable writer keeps every finished start at once; bad
    starts come first). Other keywords besides optimize's: `workers` (RDKit scoring processes),
    `window` (starts searched at once), `stats` (a BatchStats to fill). The summary of a searched
    start carries `curve`: oracle calls and best-so-far objective per step (for plots)."""
    objective = Objective.parse(kwargs.pop("maximize", ()), kwargs.pop("minimize", ()),
                                kwargs.pop("targets", ()), kwargs.pop("objective", None))  # once, before any work
    ordered, seed = kwargs.pop("ordered", True), kwargs.pop("seed", 0)
    run = {k: kwargs.pop(k) for k in ("workers", "window", "stats") if k in kwargs}
    guides = kwargs.pop("guides", None)
    unknown = set(kwargs) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown optimize settings: {sorted(unknown)}")
    check_settings(**kwargs, baseline=baseline, guided=guides is not None)  # baseline: gradient; guides: cmaes
    run["guides"] = None if guides is None else Guides.of(guides)  # after the check: 17k molecules take seconds
    Settings(**kwargs).check(bundle, objective, _model_name(path))  # what the method needs, before any row
    rows = starts[~starts["start_id"].astype(str).isin(set(map(str, done)))].to_dict("records")
    bar = _Progress(len(rows), progress)
    try:
        results = _batch_results(bundle, rows, objective, baseline, seed, {**run, "model_name": _model_name(path)},
                                 kwargs, bar)
        yield from (results if not ordered else _in_order(results, [str(r["start_id"]) for r in rows]))
    finally:
        bar.close()


class _Progress:
    """Starts done / total with an ETA on stderr: each start counts the fraction of its work done
    (its oracle calls of the budget; 1 when finished or bad), since all starts of a batch advance
    together and counting finished starts alone would sit at 0 until the end."""

    EVERY = 1.0  # seconds between redraws

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.done: dict[str, float] = {}  # start id → fraction done
        self._shown = -math.inf  # when the bar was last drawn (time.monotonic)
        self.bar = tqdm(total=total, desc="optimize", unit="start", disable=not enabled, mininterval=self.EVERY,
                        bar_format="{desc}: {n:.1f}/{total} starts |{bar}| [{elapsed}<{remaining}]")

    def finished(self, sid: str) -> None:
        self.done[sid] = 1.0
        self._show()

    def update(self, active: list) -> None:
        """After a decoder step that told searches: those (start id, search) pairs."""
        for sid, search in active:
            self.done[sid] = search.progress()
        self._show()

    def _show(self) -> None:
        """Redraw at most once per EVERY seconds: update() comes after most decoder steps."""
        now = time.monotonic()
        if now - self._shown < self.EVERY:
            return
        self._shown = now
        self.bar.n = min(self.bar.total, sum(self.done.values()))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.n = min(self.bar.total, sum(self.done.values()))
        self.bar.close()


def _batch_results(bundle: Bundle, rows: list[dict], objective: Objective, baseline: bool, seed: int, run: dict,
                   settings: dict, bar: _Progress) -> Iterator[tuple[str, pd.DataFrame, dict | None]]:
    """Bad starts first (one error row each), then every good start as its search ends."""
    good = []
    for rec in rows:
        sid, given = str(rec["start_id"]), rec["smiles"]
        try:
            good.append((sid, (given, molecule(bundle, standardize_start(given)))))
        except _START_ERRORS as e:
            bar.finished(sid)
            yield sid, _error_rows(sid, given, settings, str(e)), None
    seeds = {sid: pair for sid, pair in good}
    found = optimize_many(bundle, ((sid, sd) for sid, (_, sd) in good), objective, seed=seed,
                          on_round=bar.update, **run, **settings)
    for sid, res in found:
        bar.finished(sid)
        given = seeds[sid][0]
        if isinstance(res, DesignInputError):
            yield sid, _error_rows(sid, given, settings, str(res)), None
            continue
        head = {"start_id": sid, "start_input": given}
        tables = [batch_rows(head, res)]
        if baseline:
            base = random_baseline(bundle, res.start, objective, res.trajectory["distance"].to_numpy(),
                                   np.random.default_rng(seed), settings.get("top_k", 10),
                                   settings.get("condition", "optimize"), settings.get("budget"),
                                   settings.get("min_similarity", 0.0), settings.get("constrained", True))
            base.summary["method"] = "random"
            tables.append(batch_rows(head, base))
        curve = best_so_far(res.trajectory)
        res.summary["curve"] = {"oracle_calls": curve["oracle_calls"].tolist(),
                                "best_objective": [None if v != v else round(float(v), 4)
                                                   for v in curve["best_objective"]]}
        yield sid, pd.concat(tables, ignore_index=True), res.summary


def _in_order(results: Iterator[tuple], order: list[str]) -> Iterator[tuple]:
    """Yield results in `order`, holding back any that finish before an earlier start."""
    held, nxt = {}, 0
    for item in results:
        held[item[0]] = item
        while nxt < len(order) and order[nxt] in held:
            yield held.pop(order[nxt])
            nxt += 1


def standardize_start(given: str) -> str:
    """The form the model is trained on: largest fragment, uncharged, no stereo (chem.standardize)."""
    from ..chem import standardize

    return standardize(given)


def _error_rows(sid: str, given: str, settings: dict, error: str) -> pd.DataFrame:
    row = {"start_id": sid, "start_input": given, "start_smiles": None,
           "method": settings.get("method", DEFAULT_METHOD), "smiles": None, "valid": False, "error": error}
    return pd.DataFrame([row]).reindex(columns=BATCH_COLUMNS)


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


_STRING_COLUMNS = ("start_id", "start_input", "start_smiles", "method", "smiles")
_INT_COLUMNS = ("decodes", "oracle_calls", "rank")


def batch_table(parts: Sequence[pd.DataFrame], order: Sequence[str]) -> pd.DataFrame:
    """A batch's rows, fresh or read back from a partial file, as one table (BATCH_COLUMNS) with the
    same dtypes either way (strings or None, nullable integers, bool, float64; error "" when
    none), starts in `order` (start ids), each start's rows in their own order."""
    parts = [p for p in parts if len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=BATCH_COLUMNS)
    table = table.reindex(columns=BATCH_COLUMNS)
    for c in _STRING_COLUMNS:
        table[c] = table[c].astype(object).where(table[c].notna(), None)
    table["start_id"] = table["start_id"].astype(str)
    table["error"] = table["error"].astype(object).where(table["error"].notna(), "")
    for c in _INT_COLUMNS:
        table[c] = pd.to_numeric(table[c]).astype("Int64")
    table["valid"] = table["valid"].fillna(False).astype(bool)
    for c in ("seconds", "seed_objective", *OPTIMIZE_BATCH_COLUMNS):
        table[c] = pd.to_numeric(table[c]).astype(np.float64)
    rank = {k: i for i, k in enumerate(map(str, order))}
    return table.sort_values("start_id", key=lambda c: c.map(rank), kind="stable").reset_index(drop=True)


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
