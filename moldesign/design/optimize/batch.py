"""Running searches: one start or many at once. Every active start pushes the points it asks for
into one shared decoder stream (points.PointStream); each decoder step advances the rows of all
of them, and a start whose rows are decoded is scored (oracle.PendingScores: in this process or a
worker pool), told its rows and pushes its next points while the others decode on
(run_searches). A start's rows depend
only on its settings, its start and the seed (its own rng, CMA-ES random stream, torch generator
and oracle), never on which starts share the decoder: `optimize` is the batch of one."""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Hashable, Iterable, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ..seeds import Seed
from .gradient import GradientSearch
from .guides import Guides
from .objective import Objective, target_stds
from .oracle import Oracle, PendingScores
from .points import PointStream
from .results import OptimizeResult, finish
from .search import CmaesSearch, StartSearch
from .settings import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD, DEFAULT_PRIOR_WEIGHT,
                       DEFAULT_PRESCREEN, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE,
                       DEFAULT_STEPS, DEFAULT_TEMPERATURE, check_settings, require_surrogate)
from .space import Space, seed_point, step_scale

MAX_ACTIVE = 125  # starts searched at once: 125 × population 8 = 1,000 rows, the decoder's slots;
# more starts add no speed and hold more trajectories in memory


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
    stop_at: float | None = None
    prescreen: int = DEFAULT_PRESCREEN

    def check(self, bundle: Bundle, objective: Objective, model_name: str = "PATH", guided: bool = False) -> None:
        """Every setting (one-line DesignInputError), and what the method needs of model and objective
        (`guided`: with guides)."""
        check_settings(**asdict(self), guided=guided)
        if self.method == "gradient":
            require_surrogate(bundle, model_name)
            if not objective.gradient_ready():
                raise DesignInputError(f"the surrogate predicts no part of '{objective.describe()}'; use --method cmaes")
        if self.prescreen > 1:
            require_surrogate(bundle, model_name)
            if not objective.predictable():
                raise DesignInputError(f"the surrogate predicts no part of '{objective.describe()}': "
                                       "--prescreen has nothing to rank by")


SETTINGS = tuple(f.name for f in fields(Settings))


def new_search(bundle: Bundle, seed: Seed, objective: Objective, s: Settings, rng: np.random.Generator,
               guides: Guides | None = None) -> StartSearch:
    """A start's search in its initial state (encodes the start; draws the sampled decodes' torch
    seed from `rng`, then the method draws from it as it runs). With `guides` (CMA-ES), its first
    step, and the first of each restart, decodes points towards nearest guides (guides.py)."""
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
                  fill_budget=s.fill_budget, similarity_penalty=s.similarity_penalty, stop_at=s.stop_at)
    if guides is not None:
        common.update(guides=guides, known=guides.known)
    if s.method == "cmaes":
        return CmaesSearch(**common, popsize=s.chains, generations=s.steps, sigma=s.sigma,
                           condition_sigma=s.condition_sigma, prescreen=s.prescreen)
    return GradientSearch(**common, chains=s.chains, steps=s.steps, step_size=s.step_size,
                          prior_weight=s.prior_weight, sigma=s.sigma)


def result_of(search: StartSearch, objective: Objective, s: Settings, seconds: float) -> OptimizeResult:
    """A finished search → OptimizeResult (trajectory, best, summary)."""
    extra = {"method": s.method, "condition": s.condition, "constrained": s.constrained, **search.extra(),
             "samples": s.samples, "temperature": s.temperature, "sigma_units": s.sigma_units,
             "fill_budget": s.fill_budget, "stop_at": s.stop_at, "stopped": search.stopped, "runs": search.runs,
             "guide_points": search.guided}
    return finish(search.trajectory(), search.oracle, search.oracle.seed, objective, s.top_k, seconds, extra,
                  search.known)


@dataclass
class BatchStats:
    """Where a batch's time went (seconds, summed over decoder steps) and how much it did."""

    rounds: int = 0  # generations told, over all starts
    steps: int = 0  # decoder steps (one token for every row decoding)
    row_steps: int = 0  # rows decoding, summed over steps (row_steps / steps: the decoder's mean batch)
    decode_s: float = 0.0  # PointStream.step: the model and the grammar
    oracle_s: float = 0.0  # RDKit (parse, scores, fingerprints) and the rows; with a pool, the wait for it
    search_s: float = 0.0  # ask/tell: CMA-ES, gradient steps, surrogate predictions, trajectory rows
    decodes: int = 0
    max_rows: int = 0  # most rows decoding in one step

    def as_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def run_searches(bundle: Bundle, jobs: Iterable[tuple[Hashable, Callable[[], StartSearch]]],
                 window: int = MAX_ACTIVE, pool=None, stats: BatchStats | None = None,
                 on_round: Callable[[list[tuple[Hashable, StartSearch]]], None] | None = None
                 ) -> Iterator[tuple[Hashable, StartSearch | DesignInputError]]:
    """Run searches `window` at a time (a finished one's place goes to the next job) and yield
    (key, finished search) as each ends, or (key, DesignInputError) for a job that cannot start.

    Continuous batching across generations: every search pushes the points it asks for into one
    shared PointStream, each decoder step advances the rows of all of them, and a search whose
    rows are all decoded is scored, told and pushes its next points at once, while the others'
    rows go on decoding. No search waits for another's slow rows, and the decoder's batch stays
    near window × population until the last searches finish. A search's rows depend only on its
    own state (greedy rows are independent), so which searches share the decoder changes no result
    (tested: the same trajectories alone, in a batch, with and without a pool).

    With a worker pool the RDKit scoring of finished searches runs in the workers while this
    process decodes the others' rows (the model and RDKit each keep a core busy).
    `on_round(told)`: called after each decoder step that told searches, with those (key, search)
    pairs. Each search's `seconds` is its own set-up time plus an equal share of every step it
    was active in."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield from _run_searches(bundle, iter(jobs), window, pool, stats, on_round)


# numpy's OpenBLAS at one thread while searches run: CMA-ES's eigendecomposition of its 69 × 69
# covariance (numpy.linalg.eigh) took 24 ms a call beside the decoder's torch threads, OpenBLAS's
# threads spinning against them (session 13, cProfile of 24 starts × 200 calls: 8.9 s of 122 s); an
# eigh between GRU steps took 6.4 ms, 2.5 ms at one thread. torch's own threads (OpenMP) are not limited.
def _run_searches(bundle: Bundle, jobs: Iterator, window: int, pool, stats: BatchStats | None,
                  on_round) -> Iterator[tuple[Hashable, StartSearch | DesignInputError]]:
    active: dict[int, tuple[Hashable, StartSearch]] = {}  # by an id of this run (keys need not be unique)
    stream: PointStream | None = None
    # RDKit passes not yet told, oldest first: (search ids, their scores; in process: computed, ready)
    scoring: list[tuple[list[int], PendingScores]] = []
    next_id = 0
    ended: list[int] = []  # searches over at their ask (yielded at the end of the step)

    def ask(i: int) -> None:  # a search that asks for nothing more is over
        s = active[i][1]
        u = s.ask()
        if u is None:
            ended.append(i)
            return
        stream.push(i, u, s.generator)
        if stats is not None:
            stats.decodes += len(u) * s.samples

    while True:
        ended.clear()
        t0 = time.perf_counter()
        while len(active) < window:  # new searches take free places
            job = next(jobs, None)
            if job is None:
                break
            t = time.perf_counter()
            try:
                search = job[1]()
            except DesignInputError as e:
                yield job[0], e
                continue
            if stream is None:  # a batch shares its decode settings
                stream = PointStream(bundle, search.constrained, search.samples, search.temperature)
            active[next_id] = (job[0], search)
            ask(next_id)
            search.seconds += time.perf_counter() - t
            next_id += 1
        if not active:
            return
        if not (stream.busy or scoring or ended):  # every active search decodes, scores or has ended
            raise RuntimeError("optimizer stalled: active searches with nothing to decode or score")
        t1 = time.perf_counter()
        steps0, rows0 = stream.sampler.steps, stream.sampler.row_steps
        done = stream.step()
        t2 = time.perf_counter()
        if done:
            scoring.append(([i for i, _ in done],
                            PendingScores([active[i][1].oracle for i, _ in done], [x for _, x in done], pool)))
        t3 = time.perf_counter()
        told, wait = [], 0.0
        while scoring and (scoring[0][1].ready() or not stream.busy):  # in order; block only when nothing decodes
            ids, pending = scoring.pop(0)
            t = time.perf_counter()
            rows = pending.rows()
            wait += time.perf_counter() - t
            for i, df in zip(ids, rows):
                active[i][1].tell(df)
                told.append(i)
        for i in told:
            if not active[i][1].finished:
                ask(i)
        t4 = time.perf_counter()
        share = (t4 - t1) / len(active)
        for _, s in active.values():
            s.seconds += share
        if stats is not None:
            stats.steps += stream.sampler.steps - steps0
            stats.row_steps += stream.sampler.row_steps - rows0
            stats.rounds += len(told)
            stats.max_rows = max(stats.max_rows, stream.alive)
            stats.decode_s += t2 - t1
            stats.oracle_s += (t3 - t2) + wait
            stats.search_s += (t1 - t0) + (t4 - t3 - wait)
        if told and on_round is not None:
            on_round([active[i] for i in told])
        for i in told + ended:
            if active[i][1].finished:
                yield active.pop(i)


def optimize(bundle: Bundle, seed: Seed, objective: Objective, steps: int = DEFAULT_STEPS,
             chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
             prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10,
             rng: np.random.Generator | None = None, condition: str = "optimize", method: str = DEFAULT_METHOD,
             budget: int | None = None, min_similarity: float = 0.0, sigma: float = DEFAULT_SIGMA,
             condition_sigma: float = DEFAULT_CONDITION_SIGMA, constrained: bool = True,
             samples: int = DEFAULT_SAMPLES, temperature: float = DEFAULT_TEMPERATURE,
             sigma_units: str = DEFAULT_SIGMA_UNITS, fill_budget: bool = False,
             similarity_penalty: float = 0.0, stop_at: float | None = None,
             guides: Guides | None = None, prescreen: int = DEFAULT_PRESCREEN) -> OptimizeResult:
    """Optimize from the seed with `method` (see the package docstring); every decode scored by RDKit.
    The batch of one (optimize_many runs the same search for many starts at once).

    trajectory: one row per decoded molecule with columns chain, run, step, point, sample, smiles,
    valid, COLUMNS, objective, oracle_call, feasible, pred_*, pred_objective, *_condition,
    distance, log_prior, new, improvement (J − J_seed), rank (feasible new molecules, 1 = best)."""
    s = Settings(steps, chains, step_size, prior_weight, top_k, condition, method, budget, min_similarity, sigma,
                 condition_sigma, constrained, samples, temperature, sigma_units, fill_budget, similarity_penalty,
                 stop_at, prescreen)
    s.check(bundle, objective, guided=guides is not None)
    rng = rng if rng is not None else np.random.default_rng(0)
    t0 = time.time()
    search = new_search(bundle, seed, objective, s, rng, guides)
    for _ in run_searches(bundle, [(0, lambda: search)]):
        pass
    return result_of(search, objective, s, time.time() - t0)


def optimize_many(bundle: Bundle, starts: Iterable[tuple[Hashable, Seed]], objective: Objective, seed: int = 0,
                  window: int = MAX_ACTIVE, workers: int = 1, stats: BatchStats | None = None,
                  on_round: Callable[[list[tuple[Hashable, StartSearch]]], None] | None = None,
                  model_name: str = "PATH", guides: Guides | None = None,
                  **settings) -> Iterator[tuple[Hashable, OptimizeResult | DesignInputError]]:
    """Optimize many starts at once: (key, result) as each start finishes (not in input order), or
    (key, DesignInputError) for a start that cannot be searched. Each start's rng is
    np.random.default_rng(seed), as `optimize(..., rng=np.random.default_rng(seed))` alone: its rows
    are the ones it gets alone. `workers` > 1 computes RDKit's columns in a process pool
    (workers.process_pool: the workers die with this process); `settings`: optimize's keywords."""
    from ...workers import process_pool

    s = Settings(**settings)
    s.check(bundle, objective, model_name, guided=guides is not None)
    jobs = ((k, lambda sd=sd: new_search(bundle, sd, objective, s, np.random.default_rng(seed), guides))
            for k, sd in starts)
    with process_pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for key, found in run_searches(bundle, jobs, window, pool, stats, on_round):
            yield key, found if isinstance(found, DesignInputError) else result_of(found, objective, s, found.seconds)
