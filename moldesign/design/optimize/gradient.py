"""The gradient method as a state machine (trust-region chains climbing the latent surrogate), its
ascent step, unconstrained latent paths, and the random-direction baseline of a gradient run."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...model.checkpoint import Bundle
from ...model.surrogate import Surrogate
from ..seeds import Seed
from .objective import Objective, target_stds
from .oracle import Oracle
from .points import score_points
from .results import OptimizeResult, finish
from .search import StartSearch
from .settings import MAX_HALVINGS, require_surrogate
from .space import Space, seed_point


@dataclass
class GradientSearch(StartSearch):
    """Trust-region gradient chains (package docstring): chain 0 from the run's centre, the others
    from its neighbours; each evaluation's infeasible chains go back to their last feasible point
    with half the step, a chain halved MAX_HALVINGS times restarts near u₀; `steps` steps (steps + 1
    evaluations) per run; with fill_budget, runs restart around the best feasible point."""

    chains: int = 8
    steps: int = 30
    step_size: float = 0.2
    prior_weight: float = 0.1
    sigma: float = 0.1
    restarts: int = 0
    _u: np.ndarray | None = None  # (K, D) the chains' points
    _last_ok: np.ndarray | None = None  # (K, D)
    _step: np.ndarray | None = None  # (K,)
    _t: int = 0
    _calls_before: int = 0

    def _neighbours(self, centre: np.ndarray, n: int) -> np.ndarray:
        sp, scale = self.space, self.scale
        u = np.tile(centre, (n, 1))
        if sp.moves[: sp.Z].any():
            u[:, : sp.Z] += self.sigma * scale[: sp.Z] * self.rng.standard_normal((n, sp.Z)).astype(np.float32)
        else:  # condition only: neighbours in c
            u[:, sp.Z:] += self.sigma * self.rng.standard_normal((n, u.shape[1] - sp.Z)).astype(np.float32)
        return sp.clip(u)

    def _propose(self) -> np.ndarray:
        if self._u is None:  # a new run
            centre = self.centre()
            u = np.tile(centre, (self.chains, 1)).astype(np.float32)  # (K, D); chain 0 at the centre itself
            if self.chains > 1 and self.space.moves[: self.space.Z].any():
                u[1:] = self._neighbours(centre, self.chains - 1)
            self._u, self._last_ok = u, u.copy()
            self._step = np.full(self.chains, self.step_size, np.float32)
            self._t, self._calls_before = 0, self.oracle.calls
        return self._u

    def _advance(self, df: pd.DataFrame, f: np.ndarray, complete: bool) -> None:
        if not complete or self.oracle.exhausted or self._t == self.steps:
            self._u = None
            self.end_run(self._calls_before, complete)
            return
        u, last_ok, step, K = self._u, self._last_ok, self._step, self.chains
        # trust region: a chain none of whose decodes is feasible goes back, half the step
        pts = df["point"].to_numpy()
        ok = np.zeros(K, bool)
        np.logical_or.at(ok, pts, df["feasible"].to_numpy())
        valid = np.zeros(K, bool)
        np.logical_or.at(valid, pts, df["valid"].to_numpy())
        out = valid & ~ok
        last_ok[ok] = u[ok]
        u[out] = last_ok[out]
        step[out] /= 2
        lost = step < self.step_size / 2 ** MAX_HALVINGS  # this chain cannot leave the boundary: restart near u₀
        if lost.any():
            u[lost] = last_ok[lost] = self._neighbours(self.u0, int(lost.sum()))
            step[lost] = self.step_size
            self.restarts += int(lost.sum())
        sur = require_surrogate(self.bundle)
        self._u = _gradient_step(sur, self.oracle.objective, u, self.u0, step, self.prior_weight, self.space,
                                 self.scale)
        self._t += 1

    def _generations(self) -> int:
        return self.steps + 1

    def extra(self) -> dict:
        return {"chains": self.chains, "steps": self.steps, "step_size": self.step_size,
                "prior_weight": self.prior_weight, "sigma": self.sigma, "restarts": self.restarts}


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
    return finish(table, oracle, seed, objective, top_k, time.time() - t0,
                  {"method": "random directions at the same distances", "condition": condition,
                   "constrained": constrained})
