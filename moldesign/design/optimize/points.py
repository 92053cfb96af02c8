"""From latent points to scored rows: decoding the points of one start or of many starts at once,
the per-point columns (surrogate predictions, condition, distance, prior) and CMA-ES's fitness."""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np
import pandas as pd
import torch

from ...chem import PROPERTIES
from ...decoding.sampling import decode, grammar_for, model_device, scale
from ...decoding.search import Sampler
from ...model.checkpoint import Bundle
from ...model.surrogate import TARGETS, split_input
from .oracle import Oracle


DECODE_SLOTS = 1000  # rows the decoder steps at once (sampling.decode's batch): 125 starts × population 8

GREEDY_BACKTRACK: int | None = None
"""Backjumping depth of the optimizer's greedy decodes (None: decode's default, as deep as the
prefix; 0: the grammar/valence mask alone). A backjumping row re-decodes its tail (before
session 13's PointStream, at a batch of a few rows while the round waited), and an invalid decode
costs a search no oracle call, so the mask alone is faster; measured (issue 28, session 11,
`bench/batch_optimize_bench.py`, one thread, rounds):
24 QED-task starts x 1,000 calls 398 s -> 211 s at the same success (0.75), but 100 starts x 2,000
calls gave 0.72 (backjumping, session 10: 0.76), and the README's CMA-ES run from aspirin (`optimize
--start aspirin --maximize qed --min-similarity 0.4 --budget 1000 --fill-budget`) fell from QED
0.907 in 26 s to 0.787 in 67 s (more decodes per call: 5,832 vs 3,408). Quality first: the
default stays backjumping until a search that does not lose those starts is measured.
Per 1,000 decodes near 125 ZINC test molecules: 6.9 s and 0.999 valid with backjumping, 3.6 s
and 0.88 with the mask alone, 2.3 s and 0.74 unconstrained."""


class PointStream:
    """The optimizer's decoder as a stream over a shared `decoding.search.Sampler`: a start pushes
    the points it asks for (`push`), and each `step()` (one decoder step for the rows of every
    start) returns the starts whose rows are all decoded, with their strings, so they can be
    scored, told and push their next points while the other starts' rows go on decoding. A round
    no longer waits for its slowest row: a start whose rows backjump delays itself alone, and its
    re-decoded tail runs beside the other starts' next generations instead of at a batch of a few
    rows (issue 28, session 13; models/MODEL_CARD.md has the numbers).

    Each point's greedy decode (sample 0) goes through the sampler; greedy rows are independent,
    so a start's strings do not depend on which starts share the steps or when it pushed. With
    samples > 1 the start's samples − 1 decodes at `temperature` per point then follow in one
    `decode` call of its own with its own torch.Generator (one generator shared by the batch would
    hand each start different random draws depending on its neighbours). Strings are point-major.

    Backjumping as GREEDY_BACKTRACK says, no beam rescue and no first-token floor: a row left at a
    dead end is an invalid decode (it costs the start no oracle call)."""

    def __init__(self, bundle: Bundle, constrained: bool = True, samples: int = 1, temperature: float = 0.0,
                 slots: int = DECODE_SLOTS):
        L = bundle.config.max_len
        bundle.model.eval()
        self.bundle, self.constrained, self.samples, self.temperature = bundle, constrained, samples, temperature
        self.sampler = Sampler(bundle.model.decoder, L, 0.0, 0, grammar_for(bundle) if constrained else None,
                               backtrack=L if GREEDY_BACKTRACK is None else GREEDY_BACKTRACK,
                               first_token_floor=0.0, slots=slots)
        self.device = model_device(bundle)
        self._owner: dict[int, Hashable] = {}  # row → the start it belongs to
        self._open: dict[Hashable, list] = {}  # start → [rows left, first row, z, raw cond, generator]
        self._ready: list[tuple[Hashable, list[str]]] = []  # starts that pushed no points

    @property
    def busy(self) -> bool:
        """Some start's rows are decoding or waiting for a slot."""
        return bool(self._open or self._ready)

    @property
    def alive(self) -> int:
        """Rows decoding now (the decoder's batch)."""
        return int(self.sampler.alive.size)

    def push(self, key: Hashable, u: np.ndarray, generator: torch.Generator | None = None) -> None:
        """Queue start `key`'s points u (n, Z + 5) = [z, scaled c]; its strings come from a later step()."""
        if key in self._open:
            raise ValueError(f"start {key!r} is already decoding")
        if not len(u):
            self._ready.append((key, []))
            return
        z, cond = split_input(self.bundle, u)  # (n, Z), (n, 5) raw: decode's scaling of them, exactly
        rows = self.sampler.push(torch.as_tensor(z, device=self.device), scale(self.bundle, cond))
        self._owner.update(dict.fromkeys(rows, key))
        self._open[key] = [len(rows), rows.start, z, cond, generator]

    def step(self) -> list[tuple[Hashable, list[str]]]:
        """One decoder step → (start, its strings, point-major) for each start whose rows are now decoded."""
        out, self._ready = self._ready, []
        vocab = self.bundle.vocab
        for r in self.sampler.step():
            entry = self._open[self._owner[r]]
            entry[0] -= 1
            if entry[0]:
                continue
            key = self._owner[r]
            _, first, z, cond, generator = self._open.pop(key)
            greedy = []
            for row in range(first, first + len(z)):
                del self._owner[row]
                greedy.append(vocab.decode(self.sampler.pop(row)[0]))
            out.append((key, self._with_samples(greedy, z, cond, generator)))
        return out

    def _with_samples(self, greedy: list[str], z: np.ndarray, cond: np.ndarray,
                      generator: torch.Generator | None) -> list[str]:
        """A start's greedy strings (one per point) → point-major strings with its sampled decodes."""
        k = self.samples - 1
        if k <= 0:
            return greedy
        hot = iter(decode(self.bundle, np.repeat(z, k, axis=0), np.repeat(cond, k, axis=0),
                          temperature=self.temperature, constrained=self.constrained, generator=generator))
        return [s for g in greedy for s in [g, *(next(hot) for _ in range(k))]]


def decode_points(bundle: Bundle, points: Sequence[np.ndarray], generators: Sequence[torch.Generator | None],
                  constrained: bool = True, samples: int = 1, temperature: float = 0.0) -> list[list[str]]:
    """Decode each start's points u = [z, scaled c] (n_i, Z + 5) → its strings (n_i·samples),
    point-major (a point's greedy decode, then samples − 1 at `temperature`): every start pushed
    into one PointStream, run until all are decoded."""
    stream = PointStream(bundle, constrained, samples, temperature)
    for i, (u, g) in enumerate(zip(points, generators)):
        stream.push(i, u, g)
    out: dict[int, list[str]] = {}
    while stream.busy:
        out.update(stream.step())
    return [out[i] for i in range(len(points))]


def point_rows(bundle: Bundle, oracle: Oracle, u0: np.ndarray, u: np.ndarray, df: pd.DataFrame,
               samples: int = 1) -> pd.DataFrame:
    """The oracle's rows `df` for points u (n, D) decoded `samples` times each (point-major; rows
    stop where the budget ran out) + point, sample, surrogate predictions pred_* and
    pred_objective (NaN without a surrogate), the condition decoded under (mw_condition …),
    distance ‖u − u0‖ and log_prior = log N(z; 0, I) + const. Surrogate predictions are per
    start (an MLP's output can depend on the batch it runs in; a start's rows must not)."""
    n_pts, n = len(u), len(df)
    u = np.repeat(u, samples, axis=0) if samples > 1 else u  # (n·samples, D), point-major
    z, cond = split_input(bundle, u)
    sur = bundle.surrogate
    pred = sur.predict(u[:n]) if sur is not None and n else np.full((n, len(TARGETS)), np.nan)
    # the new columns are gathered and joined once: a column set one at a time is a pandas
    # block insertion each, and was 14% of a batch run's time (cProfile, 16 starts x 300 calls)
    front = {"point": np.repeat(np.arange(n_pts), samples)[:n], "sample": np.tile(np.arange(samples), n_pts)[:n]}
    back = {f"pred_{k}": pred[:, j] for j, k in enumerate(TARGETS)}
    back["pred_objective"] = (oracle.objective.score_numpy(pred, sur) if sur is not None
                              else np.full(n, np.nan))
    back.update({f"{k}_condition": cond[:n, j] for j, k in enumerate(PROPERTIES)})
    back["distance"] = np.linalg.norm(u[:n] - u0[None, :], axis=1)
    back["log_prior"] = -0.5 * (z[:n].astype(np.float64) ** 2).sum(1)
    return pd.concat([pd.DataFrame(front, index=df.index), df, pd.DataFrame(back, index=df.index)], axis=1)


def score_points(bundle: Bundle, oracle: Oracle, u0: np.ndarray, u: np.ndarray, constrained: bool = True,
                 samples: int = 1, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> pd.DataFrame:
    """Decode one start's points u (n, Z + 5) and score them with its oracle (rows stop where the
    budget ran out): decode_points, Oracle.score and point_rows. Each point gives `samples` rows,
    its greedy decode and samples − 1 at `temperature` (the point's neighbourhood in molecule
    space: with a decoder whose greedy reconstruction is weak, the start itself is often among
    the samples of μ and not its greedy decode). `constrained`: grammar/valence-masked decoding."""
    strings = decode_points(bundle, [u], [generator], constrained, samples, temperature)[0]
    return point_rows(bundle, oracle, u0, u, oracle.score(strings), samples)


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
