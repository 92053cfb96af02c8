"""What the design commands share (generate, raw generation, interpolate, encode/decode, optimize
batches): preparing a user molecule with its notes as warnings, checking requested conditions and
sampling arguments, building condition rows, seeding the generators, the result table of decoded strings, the
--beam checks and the molecule filters from user values.

Warnings go through `warn`, which points them at the caller of the design API (the first frame
outside moldesign/design/ and its facade moldesign/api.py), however deep in the design code they
arise.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..chem import PROPERTIES, canonical_mols, scores_array, tanimoto_to
from ..config import LIKE_TEMPERATURE
from ..decoding.sampling import MAX_BEAM, draw_conditions, model_device
from ..errors import DesignInputError, DesignWarning
from ..model.checkpoint import Bundle
from ..model.surrogate import TARGETS
from ..screening.screen import FilterError
from .filters import MoleculeFilter, Sanity, parse_design_filters, parse_keep
from .rules import (MAX_GENERATE, MAX_RADIUS, MAX_TEMPERATURE, check_integer, check_number,  # noqa: F401
                    check_optimize_sizes, check_seed)
from .seeds import Seed, check_property_value, prepare_molecule, training_range_warning

_DESIGN_DIR = os.path.dirname(__file__)
_INTERNAL = (_DESIGN_DIR + os.sep, os.path.join(os.path.dirname(_DESIGN_DIR), "api.py"))


def warn(message: str) -> None:
    """A DesignWarning attributed to the design API's caller: the first frame outside the design
    code (what Python 3.12's `skip_file_prefixes` does)."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn's caller
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DesignWarning, stacklevel=level)


def fmt_removed(removed: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in removed.items())


def molecule(bundle: Bundle, text: str) -> Seed:
    """seeds.prepare_molecule, with what changed and any training-range excursion warned."""
    sd = prepare_molecule(bundle, text)
    for note in sd.notes:
        warn(note)
    return sd


def generators(bundle: Bundle, seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """The numpy generator (latents, conditions) and the torch one (sampled decoding) of a seed."""
    return np.random.default_rng(seed), torch.Generator(device=model_device(bundle)).manual_seed(seed)


def condition_rows(bundle: Bundle, n: int, given: Mapping[str, float], rng: np.random.Generator,
               base: np.ndarray | None = None) -> np.ndarray:
    """(n, 5) raw conditions: `base` (a seed's properties (5,), or one row per molecule (n, 5))
    with the given properties overriding, or else draws from the training distribution near
    the given properties (sampling.draw_conditions)."""
    if base is None:
        return draw_conditions(bundle, n, rng, given)
    cond = np.array(np.broadcast_to(np.asarray(base, np.float64), (n, len(PROPERTIES))))
    for k, v in given.items():
        cond[:, PROPERTIES.index(k)] = v
    return cond


def checked_conditions(bundle: Bundle, values: Mapping[str, float | None]) -> dict[str, float]:
    """The requested properties that are set, validated (DesignInputError); one outside the
    training range is warned."""
    given = {k: check_property_value(k, v) for k, v in values.items() if v is not None}
    for k, v in given.items():
        reject_far_outside(bundle, k, v)
        msg = training_range_warning(bundle, k, v)
        if msg:
            warn(msg)
    return given


def reject_far_outside(bundle: Bundle, name: str, value: float) -> None:
    """A requested condition more than one training-range width beyond the training range
    ([min - w, max + w], w = max - min) is an input error, not a long run of invalid decodes.
    Inside that band, outside [min, max], the caller only warns (training_range_warning)."""
    stats = bundle.property_stats
    if name not in PROPERTIES or "min" not in stats:
        return
    j = PROPERTIES.index(name)
    lo, hi = float(stats["min"][j]), float(stats["max"][j])
    w = hi - lo
    if not lo - w <= value <= hi + w:
        raise DesignInputError(f"--{name} {value:g} is far outside this model's training range [{lo:.4g}, {hi:.4g}]; "
                               f"accepted: [{lo - w:.4g}, {hi + w:.4g}]")


def result_table(strings: Sequence[str], seed: Seed | None = None) -> pd.DataFrame:
    """Decoded strings → decoded, smiles (canonical when valid), valid, RDKit scores, similarity to
    `seed` (NaN without one)."""
    canon, mols = canonical_mols(strings)
    df = pd.DataFrame({"decoded": list(strings), "smiles": [c if c else s for c, s in zip(canon, strings)],
                       "valid": [c is not None for c in canon]})
    df[list(TARGETS)] = scores_array(mols)
    df["similarity"] = tanimoto_to(seed.mol, mols) if seed is not None else np.nan
    return df


def default_temperature(temperature: float | None, like: str | None) -> float:
    """generate's decoding temperature: as given, else LIKE_TEMPERATURE with a seed, greedy without."""
    if temperature is not None:
        return temperature
    return LIKE_TEMPERATURE if like is not None else 0.0


def check_count(n) -> None:
    """generate's -n: 1 to MAX_GENERATE, as the CLI (the API without the bound ran on for n=10**9)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise DesignInputError(f"-n must be a positive integer, got {n!r}")
    check_integer("-n", n, hi=MAX_GENERATE)


def check_sampling(temperature: float, radius: float | None, like: str | None) -> None:
    """Shared checks of generate's sampling arguments (one-line DesignInputError naming the value,
    the CLI's own words: rules.check_number)."""
    check_number("--temperature", temperature, 0, MAX_TEMPERATURE)
    if radius is not None:
        check_number("--radius", radius, 0, MAX_RADIUS)
    if radius is not None and like is None:
        raise DesignInputError("--radius needs --like (without a seed z is drawn from the prior)")


def check_beam(beam) -> None:
    """--beam: 0..MAX_BEAM, refused before the seed is encoded (decode checks it again)."""
    if not isinstance(beam, (int, np.integer)) or isinstance(beam, bool) or beam < 0:
        raise DesignInputError(f"--beam must be a non-negative integer (0 or 1: greedy), got {beam!r}")
    check_integer("--beam", beam, hi=MAX_BEAM)


def check_beam_seed(beam: int, like: str | None, radius: float | None) -> None:
    """--beam K > 1 decodes one point: the seed's own (--like with --radius 0)."""
    check_beam(beam)
    if beam > 1 and (like is None or radius is None or float(radius) != 0.0):
        raise DesignInputError(f"--beam {beam} needs --like and --radius 0 (beam search decodes the seed's own point)")


def molecule_filter(keep, filters, sanity, min_similarity=None) -> MoleculeFilter:
    """The filters of generate / interpolate from user values (DesignInputError naming a bad one)."""
    try:
        return MoleculeFilter(sanity=sanity if isinstance(sanity, Sanity) else Sanity(enabled=bool(sanity)),
                              keep=parse_keep(keep), filters=parse_design_filters(filters),
                              min_similarity=min_similarity)
    except FilterError as e:
        raise DesignInputError(str(e)) from None
