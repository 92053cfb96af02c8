"""One start's search as a step-wise state machine, so that one start and a batch of starts run
the same code: `ask()` gives the points (n, D) to decode next, or None when the search is over;
`tell(rows)` takes the oracle's rows for their decodes (Oracle.score / score_many, point-major,
cut where the budget ran out) and moves the search on. The driver (batch.py) decodes the points
of every active start in one shared decoder stream. CMA-ES here; the gradient walk in gradient.py."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from .guides import Guides
from .oracle import Oracle
from .points import point_fitness, point_rows
from .settings import MAX_DECODES_PER_CALL
from .space import Space


@dataclass
class StartSearch:
    """What both methods share for one start: the rows of each evaluation, the best feasible point
    so far (where a restart begins), the trajectory parts and the stopping rule of --fill-budget.
    Subclasses implement `_propose()` (the next points) and `_advance(rows, fitness, complete)`."""

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
    stop_at: float | None = None  # end at the first step with a feasible proposal whose objective reaches it
    guides: Guides | None = None  # walked towards before the first run and before every restart (_guide_points)
    known: frozenset = frozenset()  # the guides' SMILES: never proposals (not new, no stop)
    guided: int = 0  # guide points decoded
    walked: set = field(default_factory=set)  # indices of the guides walked towards already
    parts: list = field(default_factory=list)
    runs: int = 0
    generation: int = 0  # across runs
    best_f: float = math.inf
    best_u: np.ndarray | None = None
    best_smiles: str | None = None  # the molecule at best_u (its best feasible decode)
    finished: bool = False
    stopped: bool = False  # finished because a proposal reached stop_at
    seconds: float = 0.0  # this start's share of the wall time (the driver adds it)
    _points: np.ndarray | None = None  # (n, D): asked, not yet told
    _guide_due: bool = True  # the next step walks towards guides (with guides: first, and after each run)
    _guiding: bool = False  # the step asked is such a guide step

    def ask(self) -> np.ndarray | None:
        """The points (n, D) to decode next (the same until told), or None when the search is over."""
        if self.finished:
            return None
        if self._points is None:
            guide = self._guide_points() if self._guide_due else None
            self._guide_due, self._guiding = False, guide is not None and len(guide) > 0
            self._points = guide if self._guiding else self._propose()
        return self._points

    def _guide_points(self) -> np.ndarray | None:
        """With guides: the points from where the next run starts (u₀, then the best feasible point)
        towards the guides nearest to the molecule there that were not walked towards yet
        (guides.Guides.points; (0, D) when none is left). A restart stuck below the goal gets new
        directions from the region it reached, not only from the start's neighbourhood."""
        if self.guides is None:
            return None
        pts, used = self.guides.points(self.bundle, self.best_smiles or self.oracle.seed.smiles, self.centre(),
                                       self.space, skip=self.walked)
        self.walked.update(used)
        self.guided += len(pts)
        return pts

    def tell(self, rows: pd.DataFrame) -> None:
        """The oracle's rows for the decodes of the asked points; moves the search on."""
        u, self._points = self._points, None
        df, f, complete = self._record(u, rows)
        if self._guiding:  # a guide step only records (its best feasible point is where the next run starts)
            self._guiding = False
            self.finished = not complete or self.oracle.exhausted
        else:
            self._advance(df, f, complete)
        if self.stop_at is not None and not self.finished and self._reached(df):
            # the rows so far are exactly the first steps of the search without stop_at (the same
            # draws): stopping changes what is spent, never what was found up to here
            self.finished = self.stopped = True

    def _reached(self, df: pd.DataFrame) -> bool:
        """Whether a feasible row of this step, other than the start and the guides, has objective ≥ stop_at."""
        # set membership in Python: Series.isin(a set of 17k guides) rebuilds a hash table each call (70 ms)
        own = np.array([s == self.oracle.seed.smiles or s in self.known for s in df["smiles"]], dtype=bool)
        hit = df["feasible"].to_numpy(bool) & ~own & (df["objective"].to_numpy(np.float64) >= self.stop_at)
        return bool(hit.any())

    def progress(self) -> float:
        """A rough fraction of this start's work done (for an ETA): oracle calls of the budget with
        --fill-budget, else generations of one run."""
        if self.finished:
            return 1.0
        if self.fill_budget and self.oracle.budget:
            return min(0.99, self.oracle.calls / self.oracle.budget)
        return min(0.99, self.generation / max(1, self._generations()))

    def _record(self, u: np.ndarray, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, bool]:
        """Rows of points u (n, D) → (their trajectory rows, fitness (n,) lower is better, complete:
        every row was scored within the budget). Remembers the best feasible point."""
        df = point_rows(self.bundle, self.oracle, self.u0, u, rows, self.samples)
        ids = pd.DataFrame({"chain": df["point"].to_numpy(), "run": self.runs, "step": self.generation}, index=df.index)
        df = pd.concat([ids, df], axis=1)
        self.parts.append(df)
        self.generation += 1
        hard = point_fitness(df, len(u), self.oracle.min_similarity)  # feasible points only are < 1e6
        i = int(np.argmin(hard))
        if hard[i] < min(self.best_f, 1e6):
            self.best_f, self.best_u = float(hard[i]), u[i].copy()
            mine = df[(df["point"] == i) & df["feasible"]]  # its feasible decodes (one unless samples > 1)
            self.best_smiles = str(mine.loc[mine["objective"].idxmax(), "smiles"])
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

    def end_run(self, calls_before: int, complete: bool) -> None:
        """A run is over: the search ends unless --fill-budget starts another (at the next ask)."""
        if not self.another_run(calls_before, complete):
            self.finished = True
        else:
            self._guide_due = True

    def trajectory(self) -> pd.DataFrame:
        return pd.concat(self.parts, ignore_index=True)

    def extra(self) -> dict:  # the method's settings for the summary
        raise NotImplementedError

    def _propose(self) -> np.ndarray:
        raise NotImplementedError

    def _advance(self, df: pd.DataFrame, f: np.ndarray, complete: bool) -> None:
        raise NotImplementedError

    def _generations(self) -> int:
        raise NotImplementedError


def _cma():
    try:
        import cma
    except ImportError:  # an optional extra: say how to get it
        raise DesignInputError("--method cmaes needs the `cma` package: pip install 'moldesign[cmaes]'") from None
    return cma


@dataclass
class CmaesSearch(StartSearch):
    """CMA-ES over the moving coordinates of u with RDKit fitness (the `cma` package), `popsize`
    points per generation, `generations` per run; with fill_budget, runs restart at the best
    feasible point until the budget is spent. Each run draws its CMA seed from the start's rng and
    samples from its own RandomState(seed): cma's default draws from numpy's global generator
    (np.random.seed at construction), which starts sharing a process would interleave. Same
    seed, same MT19937 stream: a start alone gives the rows it gave before batching existed."""

    popsize: int = 8
    generations: int = 30
    sigma: float = 0.1
    condition_sigma: float = 0.6
    prescreen: int = 1  # candidates per decoded point, ranked by the latent surrogate (1: every candidate decoded)
    _es: object = None
    _xs: list | None = None
    _order: np.ndarray | None = None  # with prescreen: indices into _xs, best predicted first (the first popsize decoded)
    _calls_before: int = 0
    _gen_in_run: int = 0

    def _stds(self) -> np.ndarray:
        """Initial spread per moving coordinate: σ₀·unit for z (unit: 1 or the start's posterior σ),
        condition_sigma for c → (M,)."""
        sp = self.space
        stds = np.concatenate([self.sigma * self.scale[: sp.Z], np.full(len(self.u0) - sp.Z, self.condition_sigma)])
        return stds[sp.moves]

    def _new_run(self) -> None:
        cma = _cma()
        seed = int(self.rng.integers(1, 2**31 - 1))
        popsize = max(2, self.popsize)
        opts = {"popsize": popsize * self.prescreen, "seed": math.nan, "randn": np.random.RandomState(seed).randn,
                "verbose": -9, "maxiter": self.generations, "CMA_stds": self._stds().tolist()}
        if self.prescreen > 1:  # the same parents as without it: the best half of the decoded points
            opts["CMA_mu"] = popsize // 2
        self._es = cma.CMAEvolutionStrategy(self.centre()[self.space.moves].astype(np.float64), 1.0, opts)
        self._calls_before, self._gen_in_run = self.oracle.calls, 0

    def _propose(self) -> np.ndarray:
        if self._es is None:
            self._new_run()
        self._xs = self._es.ask()  # list of (prescreen · popsize) points, each (M,)
        u = np.tile(self.u0, (len(self._xs), 1)).astype(np.float32)
        u[:, self.space.moves] = np.asarray(self._xs, np.float32)
        u = self.space.clip(u)
        if self.prescreen == 1:
            return u
        # the surrogate's prediction of J's predictable part at each candidate (n,); only the best
        # popsize are decoded and scored by RDKit
        sur = self.bundle.surrogate
        predicted = self.oracle.objective.score_numpy(sur.predict(u), sur)
        self._order = np.argsort(-predicted, kind="stable")
        return u[self._order[: max(2, self.popsize)]]

    def _fitness_of_all(self, f: np.ndarray) -> np.ndarray:
        """With prescreen: fitness (prescreen · popsize,) for CMA-ES from the decoded points' f
        (popsize,). The candidates not decoded rank below every decoded one, in the surrogate's
        order (they only enter CMA-ES's negative, active update)."""
        if self.prescreen == 1:
            return f
        full = np.empty(len(self._xs))
        full[self._order[: len(f)]] = f
        full[self._order[len(f):]] = float(np.max(f)) + 1.0 + np.arange(len(self._xs) - len(f))
        return full

    def _advance(self, df: pd.DataFrame, f: np.ndarray, complete: bool) -> None:
        self._gen_in_run += 1
        over = True
        if complete:  # else the budget ran out inside this generation: its ranking is incomplete
            self._es.tell(self._xs, self._fitness_of_all(f).astype(np.float64).tolist())
            over = self.oracle.exhausted or bool(self._es.stop()) or self._gen_in_run >= self.generations
        if over:
            self._es = None
            self.end_run(self._calls_before, complete)

    def _generations(self) -> int:
        return self.generations

    def extra(self) -> dict:
        return {"population": max(2, self.popsize), "generations": self.generations, "sigma": self.sigma,
                "condition_sigma": self.condition_sigma, "similarity_penalty": self.similarity_penalty,
                "prescreen": self.prescreen}
