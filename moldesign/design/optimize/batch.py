"""Running searches: one start or many at once. Every round, each active start asks for its next
points, the points of ALL of them are decoded in one `decode` call (decode_points), the oracle
rows of all of them are scored in one pass (score_many), and each start is told its own rows. A
start's rows depend only on its settings, its start and the seed (its own rng, CMA-ES random
stream, torch generator and oracle), never on which starts share its rounds: `optimize` is the
batch of one."""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Hashable, Iterable, Iterator

import numpy as np
import torch

from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ..seeds import Seed
from .gradient import GradientSearch
from .objective import Objective, target_stds
from .oracle import Oracle, PendingScores, score_many
from .points import decode_points
from .results import OptimizeResult, finish
from .search import CmaesSearch, StartSearch
from .settings import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD, DEFAULT_PRIOR_WEIGHT,
                       DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE, DEFAULT_STEPS,
                       DEFAULT_TEMPERATURE, check_settings, require_surrogate)
from .space import Space, seed_point, step_scale

MAX_ACTIVE = 125  # starts searched at once: 125 × population 8 = 1,000 rows, decode's batch (its slots);
# more starts per round add no speed and hold more trajectories in memory


@dataclass(frozen=True)
class Settings:
    """optimize's search settings (the package docstring says what each does)."""

    steps: int = DEFAULT_STEPS
    chains: int = DEFAULT_CHAINS
    step_size: float = DEFAULT_STEP_SIZE
    prior_weight: float = DEFAULT_PRIOR_WEIGHT
    top_k: int = 10
    condition: str = "optimize"
    method: str = DEFAULT_METHOD
    budget: int | None = None
    min_similarity: float = 0.0
    sigma: float = DEFAULT_SIGMA
    condition_sigma: float = DEFAULT_CONDITION_SIGMA
    constrained: bool = True
    samples: int = DEFAULT_SAMPLES
    temperature: float = DEFAULT_TEMPERATURE
    sigma_units: str = DEFAULT_SIGMA_UNITS
    fill_budget: bool = False
    similarity_penalty: float = 0.0

    def check(self, bundle: Bundle, objective: Objective, model_name: str = "PATH") -> None:
        """Every setting (one-line DesignInputError), and what the method needs of model and objective."""
        check_settings(**asdict(self))
        if self.method == "gradient":
            require_surrogate(bundle, model_name)
            if not objective.gradient_ready():
                raise DesignInputError(f"the surrogate predicts no part of '{objective.describe()}'; use --method cmaes")


SETTINGS = tuple(f.name for f in fields(Settings))


def new_search(bundle: Bundle, seed: Seed, objective: Objective, s: Settings, rng: np.random.Generator) -> StartSearch:
    """A start's search in its initial state (encodes the start; draws the sampled decodes' torch
    seed from `rng`, then the method draws from it as it runs)."""
    space = Space.of(bundle, s.condition)
    u0 = seed_point(bundle, seed, space)  # (Z + 5,)
    oracle = Oracle(seed, objective, target_stds(bundle), s.budget, s.min_similarity)
    j0 = oracle.seed_values()["objective"]
    if not np.isfinite(j0):  # every row would be ±inf/NaN too: refuse rather than report inf
        raise DesignInputError(f"the objective '{objective.describe()}' is {j0} at start {seed.smiles}; "
                               "use smaller weights")
    common = dict(bundle=bundle, oracle=oracle, u0=u0, space=space,
                  scale=step_scale(bundle, seed, space, s.sigma_units), rng=rng,
                  generator=torch.Generator().manual_seed(int(rng.integers(1, 2**31 - 1))),
                  constrained=s.constrained, samples=s.samples, temperature=s.temperature,
                  fill_budget=s.fill_budget, similarity_penalty=s.similarity_penalty)
    if s.method == "cmaes":
        return CmaesSearch(**common, popsize=s.chains, generations=s.steps, sigma=s.sigma,
                           condition_sigma=s.condition_sigma)
    return GradientSearch(**common, chains=s.chains, steps=s.steps, step_size=s.step_size,
                          prior_weight=s.prior_weight, sigma=s.sigma)


def result_of(search: StartSearch, objective: Objective, s: Settings, seconds: float) -> OptimizeResult:
    """A finished search → OptimizeResult (trajectory, best, summary)."""
    extra = {"method": s.method, "condition": s.condition, "constrained": s.constrained, **search.extra(),
             "samples": s.samples, "temperature": s.temperature, "sigma_units": s.sigma_units,
             "fill_budget": s.fill_budget, "runs": search.runs}
    return finish(search.trajectory(), search.oracle, search.oracle.seed, objective, s.top_k, seconds, extra)


@dataclass
class BatchStats:
    """Where a batch's time went (seconds, summed over rounds) and how much it did."""

    rounds: int = 0
    decode_s: float = 0.0  # decode_points: the model
    oracle_s: float = 0.0  # score_many: RDKit (parse, scores, fingerprints) and the rows
    search_s: float = 0.0  # ask/tell: CMA-ES, gradient steps, surrogate predictions, trajectory rows
    decodes: int = 0
    max_rows: int = 0  # most decodes in one round

    def as_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


class _Round:
    """One round of a group of searches: every unfinished search asks, all points are decoded
    together, and their RDKit scoring is started (in this process, or handed to the pool's workers
    with `pool`: PendingScores); `finish()` tells each search its own rows."""

    def __init__(self, bundle: Bundle, searches: list[StartSearch], pool=None, stats: BatchStats | None = None):
        t0 = time.perf_counter()
        self.stats, self.pending, self.rows = stats, None, None
        self.asked = [(s, u) for s in searches for u in [s.ask()] if u is not None]
        if not self.asked:
            return
        first = self.asked[0][0]  # a batch shares its decode settings
        t1 = time.perf_counter()
        strings = decode_points(bundle, [u for _, u in self.asked], [s.generator for s, _ in self.asked],
                                first.constrained, first.samples, first.temperature)
        t2 = time.perf_counter()
        oracles = [s.oracle for s, _ in self.asked]
        if pool is None:
            self.rows = score_many(oracles, strings)
        else:
            self.pending = PendingScores(oracles, strings, pool)
        t3 = time.perf_counter()
        if stats is not None:
            n = sum(len(x) for x in strings)
            stats.rounds += 1
            stats.decodes += n
            stats.max_rows = max(stats.max_rows, n)
            stats.decode_s += t2 - t1
            stats.oracle_s += t3 - t2
            stats.search_s += t1 - t0

    def finish(self) -> None:
        if not self.asked:
            return
        t0 = time.perf_counter()
        rows = self.rows if self.pending is None else self.pending.rows()
        t1 = time.perf_counter()
        for (s, _), df in zip(self.asked, rows):
            s.tell(df)
        if self.stats is not None:
            self.stats.oracle_s += t1 - t0  # with a pool: the wait for the workers, what decoding did not hide
            self.stats.search_s += time.perf_counter() - t1


def run_searches(bundle: Bundle, jobs: Iterable[tuple[Hashable, Callable[[], StartSearch]]],
                 window: int = MAX_ACTIVE, pool=None, stats: BatchStats | None = None,
                 on_round: Callable[[list[tuple[Hashable, StartSearch]]], None] | None = None
                 ) -> Iterator[tuple[Hashable, StartSearch | DesignInputError]]:
    """Run searches `window` at a time (a finished one's place goes to the next job) and yield
    (key, finished search) as each ends, or (key, DesignInputError) for a job that cannot start.
    `on_round(active)`: called after each round with the (key, search) pairs that took part.
    Each search's `seconds` is its own set-up time plus an equal share of every round it was in.

    With a worker pool the active searches form two groups that take turns, a pipeline: while the
    workers compute RDKit's scores of one group's decodes, this process decodes the other's (the
    model and RDKit each keep a core busy instead of waiting for one another). A search's rows
    depend only on its own state, so the groups change no result (tested: the same trajectories
    with and without a pool)."""
    jobs = iter(jobs)
    groups: list[list[tuple[Hashable, StartSearch]]] = [[], []] if pool is not None else [[]]
    rounds: list[_Round | None] = [None] * len(groups)
    started = [0.0] * len(groups)
    g = 0
    while True:
        # new starts join the smaller group whose round is not under way, up to `window` in all
        while sum(map(len, groups)) < window:
            free = [i for i in range(len(groups)) if rounds[i] is None]
            job = next(jobs, None) if free else None
            if job is None:
                break
            t = time.perf_counter()
            try:
                search = job[1]()
            except DesignInputError as e:
                yield job[0], e
                continue
            search.seconds += time.perf_counter() - t
            min((groups[i] for i in free), key=len).append((job[0], search))
        active = groups[g]
        if not any(groups) and not any(r is not None for r in rounds):
            return
        started[g] = time.perf_counter()
        rounds[g] = _Round(bundle, [s for _, s in active], pool, stats) if active else None
        g = (g + 1) % len(groups)  # the other group's round (started before this decode) ends now
        if rounds[g] is not None:
            rounds[g].finish()
            rounds[g] = None
            done = groups[g]
            t = (time.perf_counter() - started[g]) / len(done) / len(groups)
            for _, s in done:
                s.seconds += t
            if on_round is not None:
                on_round(done)
            yield from ((k, s) for k, s in done if s.finished)
            groups[g] = [(k, s) for k, s in done if not s.finished]


def optimize(bundle: Bundle, seed: Seed, objective: Objective, steps: int = DEFAULT_STEPS,
             chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
             prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10,
             rng: np.random.Generator | None = None, condition: str = "optimize", method: str = DEFAULT_METHOD,
             budget: int | None = None, min_similarity: float = 0.0, sigma: float = DEFAULT_SIGMA,
             condition_sigma: float = DEFAULT_CONDITION_SIGMA, constrained: bool = True,
             samples: int = DEFAULT_SAMPLES, temperature: float = DEFAULT_TEMPERATURE,
             sigma_units: str = DEFAULT_SIGMA_UNITS, fill_budget: bool = False,
             similarity_penalty: float = 0.0) -> OptimizeResult:
    """Optimize from the seed with `method` (see the package docstring); every decode scored by RDKit.
    The batch of one (optimize_many runs the same search for many starts at once).

    trajectory: one row per decoded molecule with columns chain, run, step, point, sample, smiles,
    valid, COLUMNS, objective, oracle_call, feasible, pred_*, pred_objective, *_condition,
    distance, log_prior, new, improvement (J − J_seed), rank (feasible new molecules, 1 = best)."""
    s = Settings(steps, chains, step_size, prior_weight, top_k, condition, method, budget, min_similarity, sigma,
                 condition_sigma, constrained, samples, temperature, sigma_units, fill_budget, similarity_penalty)
    s.check(bundle, objective)
    rng = rng if rng is not None else np.random.default_rng(0)
    t0 = time.time()
    search = new_search(bundle, seed, objective, s, rng)
    for _ in run_searches(bundle, [(0, lambda: search)]):
        pass
    return result_of(search, objective, s, time.time() - t0)


def optimize_many(bundle: Bundle, starts: Iterable[tuple[Hashable, Seed]], objective: Objective, seed: int = 0,
                  window: int = MAX_ACTIVE, workers: int = 1, stats: BatchStats | None = None,
                  on_round: Callable[[list[tuple[Hashable, StartSearch]]], None] | None = None,
                  model_name: str = "PATH",
                  **settings) -> Iterator[tuple[Hashable, OptimizeResult | DesignInputError]]:
    """Optimize many starts at once: (key, result) as each start finishes (not in input order), or
    (key, DesignInputError) for a start that cannot be searched. Each start's rng is
    np.random.default_rng(seed), as `optimize(..., rng=np.random.default_rng(seed))` alone: its rows
    are the ones it gets alone. `workers` > 1 computes RDKit's columns in a process pool
    (workers.process_pool: the workers die with this process); `settings`: optimize's keywords."""
    from ...workers import process_pool

    s = Settings(**settings)
    s.check(bundle, objective, model_name)
    jobs = ((k, lambda sd=sd: new_search(bundle, sd, objective, s, np.random.default_rng(seed))) for k, sd in starts)
    with process_pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for key, found in run_searches(bundle, jobs, window, pool, stats, on_round):
            yield key, found if isinstance(found, DesignInputError) else result_of(found, objective, s, found.seconds)
