"""The limits and checks that the three front ends share: the CLI's option callbacks, the Python
API's argument checks and the web app's fields all call these, so one value gets one verdict and
one message everywhere. Free of torch and RDKit: the CLI imports it while parsing options.

Upper bounds on sizes keep one run within about an hour and a few GB on a CPU (a decode is ~1 ms
per molecule per token batch; memory grows with n x max_len).
"""
from __future__ import annotations

import math
import numbers

from ..errors import DesignInputError

SEED_MAX = 2**32 - 1  # numpy's seed range
MAX_GENERATE = 100_000  # generate -n (valid molecules; with raw, decodes)
MAX_DECODES = 2_000_000  # generate --max-attempts, and its default budget
MAX_PATH_STEPS = 1_000  # interpolate --steps
PATH_ANCHOR = 32  # interpolate --anchor: posterior draws decoded per end (design/interpolate.py says why)
MAX_PATH_ANCHOR = 1_024
MAX_OPT_STEPS = 10_000  # optimize --steps
MAX_CHAINS = 1_024  # optimize --chains
MAX_OPT_DECODES = 100_000  # optimize: chains x steps decodes, scored in one pass
MAX_RADIUS = 100.0  # generate --radius, in prior std units (beyond ~3 a sample has left the prior)
MAX_TEMPERATURE = 100.0  # decoding temperature (at 100 every allowed token is about equally likely)

# What the default sanity filter drops (design.filters.Sanity, SANITY_SMARTS), in the words of
# every help text; tests/webapp checks the named examples against the filter itself.
SANITY_RULE = ("drop 3-membered rings with two heteroatoms or with a heteroatom and a double-bonded carbon "
               "(oxaziridines, α-lactones, aziridinones), 4-membered rings with two heteroatoms (dioxetanes, "
               "diazetidines), N-CF3, rings of more than 8 atoms and SA > 6; epoxides, aziridines, oxetanes and "
               "β-lactams pass")


def check_number(flag: str, value, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number in [lo, hi], else DesignInputError naming `flag` and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DesignInputError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DesignInputError(f"{flag} must be a finite number, got {value}")
    if lo is not None and value < lo:
        raise DesignInputError(f"{flag} must be >= {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise DesignInputError(f"{flag} must be <= {hi:g}, got {value:g}")
    return float(value)


def check_integer(flag: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in [lo, hi], else DesignInputError naming `flag` and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DesignInputError(f"{flag} must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise DesignInputError(f"{flag} must be >= {lo:,}, got {value:,}")
    if hi is not None and value > hi:
        raise DesignInputError(f"{flag} must be at most {hi:,}, got {value:,}")
    return int(value)


def check_seed(seed) -> int:
    """A random seed numpy accepts (0 to 2^32 - 1)."""
    return check_integer("--seed", seed, 0, SEED_MAX)


def check_optimize_sizes(steps, chains) -> None:
    """optimize's --steps / --chains within the shared limits (for the optimizer's own checks and
    the web app)."""
    check_integer("--steps", steps, 1, MAX_OPT_STEPS)
    check_integer("--chains", chains, 1, MAX_CHAINS)
    if steps * chains > MAX_OPT_DECODES:
        raise DesignInputError(f"--steps x --chains = {steps * chains:,} decodes; at most {MAX_OPT_DECODES:,} per run")
