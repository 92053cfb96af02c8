"""Defaults and limits of the optimizer's settings, and the one check every entry point runs
before any work (single start, batch, CLI before the model loads)."""
from __future__ import annotations

import numpy as np

from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ...model.surrogate import Surrogate

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
MIN_SIGMA = 1e-6  # smaller initial steps cannot move a float32 latent (u ~ 1, float32 spacing ~ 6e-8), and
# at 1e-300 CMA-ES's covariance update divides by an underflowed step (cma's AssertionError)
METHODS = ("cmaes", "gradient")
# CMA-ES is the default: it needs no surrogate, and under a similarity constraint it wins (aspirin,
# max QED, --min-similarity 0.4, shipped model: +0.216 QED in 152 calls vs +0.016 for the gradient walk;
# benchmark tables in models/MODEL_CARD.md, "Optimization on the public benchmarks").
DEFAULT_METHOD = "cmaes"
DEFAULT_SAMPLES = 1  # decodes per latent point: the greedy one plus samples − 1 at --temperature
DEFAULT_TEMPERATURE = 1.0  # of the sampled decodes
DEFAULT_SIGMA_UNITS = "prior"
MAX_SAMPLES = 256
DEFAULT_PRESCREEN = 1  # CMA-ES candidates per decoded point ranked by the latent surrogate (1: off)
MAX_PRESCREEN = 64
MAX_DECODES_PER_CALL = 20  # --fill-budget stops at 20 × budget decodes (a search that only re-finds molecules)
MAX_HALVINGS = 4  # gradient trust region: step halvings before a chain restarts near u₀
MISSING_SURROGATE = ("this model has no latent surrogate; fit one with "
                     "`moldesign surrogate fit --model {model}` (it is saved into the checkpoint)")
SIGMA_UNITS = ("prior", "posterior")  # what --sigma and --step-size count in for z: prior std (1 per
# coordinate) or the start's posterior σ per coordinate
CONDITIONS = ("optimize", "seed", "only")  # the decoder's condition: optimized with z, held at the seed's
# properties (z moves alone), or the only thing that moves (z held at μ: "raise the requested LogP")


def require_surrogate(bundle: Bundle, model_name: str = "PATH") -> Surrogate:
    if bundle.surrogate is None:
        raise DesignInputError(MISSING_SURROGATE.format(model=model_name))
    return bundle.surrogate


def _check_search(steps, chains, step_size, prior_weight, budget, min_similarity) -> None:
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


def _check_spread(sigma, condition_sigma) -> None:
    for flag, v in (("--sigma", sigma), ("--condition-sigma", condition_sigma)):
        if not np.isfinite(v) or v <= 0:
            raise DesignInputError(f"{flag} must be positive, got {v}")
        if v < MIN_SIGMA:
            raise DesignInputError(f"{flag} must be at least {MIN_SIGMA:g} (a smaller step cannot move a float32 "
                                   f"latent), got {v:g}")


def check_settings(steps=DEFAULT_STEPS, chains=DEFAULT_CHAINS, step_size=DEFAULT_STEP_SIZE,
                   prior_weight=DEFAULT_PRIOR_WEIGHT, budget=None, min_similarity=0.0, method=DEFAULT_METHOD,
                   condition="optimize", sigma=DEFAULT_SIGMA, condition_sigma=DEFAULT_CONDITION_SIGMA,
                   samples=DEFAULT_SAMPLES, temperature=DEFAULT_TEMPERATURE, sigma_units=DEFAULT_SIGMA_UNITS,
                   fill_budget=False, similarity_penalty=0.0, stop_at=None, prescreen=DEFAULT_PRESCREEN,
                   baseline=False, guided=False, **_ignored) -> None:
    """One-line DesignInputError for a bad setting (before any work; a batch checks once).
    `baseline`: the random baseline will be run too, which repeats a gradient run's distances;
    `guided`: the search is given guides (guides.py: CMA-ES's first step)."""
    _check_search(steps, chains, step_size, prior_weight, budget, min_similarity)
    if method not in METHODS:
        raise DesignInputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if baseline and method != "gradient":
        raise DesignInputError("--baseline repeats the gradient run's distances; use it with --method gradient")
    if guided and method != "cmaes":
        raise DesignInputError("--guide needs --method cmaes")
    if condition not in CONDITIONS:
        raise DesignInputError(f"--condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    _check_spread(sigma, condition_sigma)
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
    if stop_at is not None and (isinstance(stop_at, bool) or not isinstance(stop_at, (int, float, np.number))
                                or not np.isfinite(stop_at)):
        raise DesignInputError(f"--stop-at must be a finite objective value, got {stop_at!r}")
    if isinstance(prescreen, bool) or not isinstance(prescreen, (int, np.integer)) or not 1 <= prescreen <= MAX_PRESCREEN:
        raise DesignInputError(f"--prescreen must be in 1..{MAX_PRESCREEN}, got {prescreen!r}")
    if prescreen > 1 and method != "cmaes":
        raise DesignInputError("--prescreen ranks CMA-ES candidates; use it with --method cmaes")
