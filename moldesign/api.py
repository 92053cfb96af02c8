"""Python API for the design commands: every operation returns a pandas DataFrame.

    import moldesign
    d = moldesign.load()                                 # the shipped model (or load("run.pt"))
    d.generate(like="tamiflu", logp=2.0, n=50)           # Lim et al.: seed + one property changed
    d.generate(like="aspirin", radius=0.5, n=100)        # neighbourhood sampling
    d.interpolate("aspirin", "paracetamol", steps=8)
    d.optimize("aspirin", maximize=["qed"], min_similarity=0.4).best  # CMA-ES; method="gradient" needs a surrogate
    d.encode(["CCO"]), d.decode(z, conditions={"logp": 2.0})

Properties in every table come from RDKit on the output SMILES (chem.py), never from the
requested conditions; surrogate predictions appear only in `pred_*` columns. Problems with the
arguments raise sampling.DesignInputError (one line); warnings (e.g. a condition outside the
training range) go through Python's `warnings` as DesignWarning.

`Designer` is a facade: each command's logic lives in its module under moldesign/design/
(encoding: encode/decode; generate; raw: generate --raw; interpolate; leads: optimize, batches,
baseline; common: what they share), the pictures of results in moldesign/drawing.py. This module
keeps the public names (re-exported below), `load`, and the helpers of both front ends
(surrogate_training_smiles, user_input_errors).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .chem import PROPERTIES
from .config import DEFAULT_OVERSAMPLE, DEFAULT_RADIUS, LIKE_TEMPERATURE, MIN_SIMILARITY_RADIUS
from .decoding.sampling import resolve_device
from .design import common, encoding, generate, interpolate, leads, raw
from .design.filters import MoleculeFilter, Sanity
from .design.generate import GENERATE_COLUMNS
from .design.leads import BATCH_COLUMNS, OPTIMIZE_BATCH_COLUMNS, read_starts
from .design.optimize import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD,
                              DEFAULT_PRIOR_WEIGHT, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS,
                              DEFAULT_STEP_SIZE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, Objective, OptimizeResult)
from .design.raw import RAW_CHUNK, RAW_COLUMNS
from .design.rules import PATH_ANCHOR
from .design.seeds import ID_COLUMNS, SEED_FILE_SUFFIXES, Seed, is_seed_file, read_seeds
from .drawing import generate_grid, generate_plot, interpolate_grid, interpolate_plot, optimize_grid
from .errors import DesignInputError, DesignWarning, NothingValid
from .model import checkpoint
from .model.surrogate import TARGETS
from .frontend import user_input_errors  # noqa: F401  (re-exported: the front ends' user errors)
from .resources import DEFAULT_MODEL

__all__ = [  # the public API, most of it re-exported from where it lives
    "load", "Designer", "surrogate_training_smiles", "user_input_errors", "DEFAULT_MODEL",
    "DesignInputError", "DesignWarning", "NothingValid", "Seed", "Objective", "OptimizeResult", "MoleculeFilter",
    "Sanity", "read_seeds", "is_seed_file", "read_starts",
    "generate_plot", "generate_grid", "interpolate_plot", "interpolate_grid", "optimize_grid",
    "PROPERTIES", "TARGETS", "GENERATE_COLUMNS", "RAW_COLUMNS", "RAW_CHUNK", "OPTIMIZE_BATCH_COLUMNS",
    "BATCH_COLUMNS", "SEED_FILE_SUFFIXES", "ID_COLUMNS", "DEFAULT_OVERSAMPLE", "DEFAULT_RADIUS", "LIKE_TEMPERATURE",
    "MIN_SIMILARITY_RADIUS", "DEFAULT_CHAINS", "DEFAULT_CONDITION_SIGMA", "DEFAULT_METHOD", "DEFAULT_PRIOR_WEIGHT",
    "DEFAULT_SAMPLES", "DEFAULT_SIGMA", "DEFAULT_SIGMA_UNITS", "DEFAULT_STEP_SIZE", "DEFAULT_STEPS",
    "DEFAULT_TEMPERATURE",
]


def load(model: str | Path | None = None, device: str = "auto") -> "Designer":
    """Load a checkpoint (default: the shipped model) into a Designer."""
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise DesignInputError(str(e)) from None
    path = Path(model) if model is not None else DEFAULT_MODEL
    return Designer(checkpoint.load(path, dev), path)


class Designer:
    """A loaded model plus the design operations (generate, interpolate, optimize, encode, decode).
    Each method hands the call to its module under moldesign/design/."""

    def __init__(self, bundle: checkpoint.Bundle, path: str | Path | None = None):
        self.bundle, self.path = bundle, path

    def __repr__(self) -> str:
        cfg = self.bundle.config
        return (f"Designer({str(self.path)!r}, latent_dim={cfg.latent_dim}, vocab={len(self.bundle.vocab)}, "
                f"surrogate={'yes' if self.bundle.surrogate is not None else 'no'})")

    # ------------------------------------------------------------------ basics
    def molecule(self, text: str) -> Seed:
        """A name or SMILES prepared for this model (standardized, stereo dropped; vocabulary and
        length checked); what changed and any training-range excursion is warned as DesignWarning."""
        return common.molecule(self.bundle, text)

    def encode(self, molecules: Sequence[str] | str, with_logvar: bool = False) -> pd.DataFrame:
        """One row per molecule: input, smiles (as encoded), the five RDKit properties, z0..z{Z-1}
        (μ) and, with `with_logvar`, logvar0.."""
        return encoding.encode_molecules(self.bundle, molecules, with_logvar)

    def decode(self, z, conditions: Mapping[str, float] | np.ndarray | None = None, temperature: float = 0.0,
               seed: int = 0, constrained: bool = True, beam: int = 0) -> pd.DataFrame:
        """Decode latents (n, Z) (an array, or the DataFrame from `encode`, whose properties then
        serve as conditions). `conditions`: (n, 5) raw values, a dict of some properties (the rest
        from the `encode` table, else drawn from the training distribution), or None. Columns:
        decoded, smiles (canonical when valid), valid, RDKit properties, qed, sa. `constrained`
        (default) masks decoding with the SMILES grammar/valence rules; `beam` K > 1 beam-searches."""
        return encoding.decode_latents(self.bundle, z, conditions, temperature, seed, constrained, beam)

    # ------------------------------------------------------------------ generate
    def generate(self, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None, hba=None, tpsa=None,
                 radius: float | None = None, temperature: float | None = None, seed: int = 0, raw: bool = False,
                 max_attempts: int | None = None, log: Callable[[str], None] | None = None,
                 min_similarity: float | None = None, keep: str | None = None, filters: Sequence[str] | None = None,
                 sanity: bool | Sanity = True, constrained: bool = True, beam: int = 0,
                 oversample: int | None = None, on_progress: Callable[[float], None] | None = None) -> pd.DataFrame:
        """`n` valid, unique, canonical molecules (never the seed itself) that pass the filters.

        With `like`: the seed is encoded, its five RDKit properties are the condition (overridden
        by any given), z = μ + radius·ε (radius default config.DEFAULT_RADIUS, or
        config.MIN_SIMILARITY_RADIUS with `min_similarity`; prior std units).
        Without: z from the prior (prior.draw_latents: the checkpoint's GMM when fitted, else N(0, I)),
        unset properties drawn from the training distribution.
        Decoding is greedy at temperature 0 (z alone sets the molecule) or samples at T > 0.
        Default temperature: LIKE_TEMPERATURE (0.6) with `like`, 0 without (a greedy decode of a
        seed's μ may sit far from it — celecoxib's at Tanimoto 0.41 on the shipped model — while
        sampling near μ at 0.6 decodes the seed itself and its close analogues).

        Filters (a molecule failing any is not kept; counted by reason in summary["removed"]):
        `min_similarity` S keeps Tanimoto ≥ S to the seed, and the radius then adapts batch by
        batch (shrinks ×0.7 while fewer than a quarter of new molecules reach S, grows ×1.25 while
        most decodes repeat the seed or earlier ones); `keep` a SMARTS every output must contain;
        `filters` expressions in `screen`'s language over filters.DESIGN_FILTER_KEYS; `sanity`
        the default sanity filter (moldesign.design.filters; False turns it off).
        Sorted by: mean |RDKit − requested| / training std over the requested properties when any
        were given, then similarity to the seed (descending); with a seed only, by similarity;
        otherwise in the order sampled. Stops at `n` or after `max_attempts` decodes (default
        max(1000, 20·n·oversample)); raises NothingValid when nothing was kept, warns when fewer than `n`.
        `oversample` K (with `like`; default DEFAULT_OVERSAMPLE, 1 with `min_similarity`, whose
        filter already selects): collect up to K·n distinct candidates that pass the filters and
        keep the first n in the output order: the closest to the requested properties when any
        were given, else the most similar to the seed (a chemist asking for molecules like X wants
        the closest the model proposes, not the first it decodes; bench/like_bench.py, model
        card). K = 1: the first n found.
        `df.attrs["summary"]` holds attempts, validity, kept, removed, radius. `raw=True` returns
        exactly `n` decodes, unfiltered, every string in order: `smiles` as decoded, `valid`,
        `canonical`, RDKit properties (valid rows), similarity.
        `constrained` (default True) masks every decoding step with the SMILES grammar and valence
        rules (moldesign.decoding.grammar); `beam` K > 1 decodes the seed by beam search, which needs
        `like` and radius 0 (a deterministic decode of one point; elsewhere sampling decides).
        `log` gets a progress line and `on_progress` the fraction done (0..1) after every batch.
        Sizes are bounded as on the CLI (moldesign.design.rules): n <= 100,000, max_attempts <=
        2,000,000 (also the most the default budget grows to), radius and temperature <= 100.
        """
        return generate.generate(self.bundle, like, n, mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa, radius=radius,
                                 temperature=temperature, seed=seed, raw=raw, max_attempts=max_attempts, log=log,
                                 min_similarity=min_similarity, keep=keep, filters=filters, sanity=sanity,
                                 constrained=constrained, beam=beam, oversample=oversample, on_progress=on_progress)

    def generate_batch(self, seeds: Sequence[tuple[str, str]], n: int = 50,
                       progress: Callable[[str], None] | None = None, **kwargs) -> pd.DataFrame:
        """`generate(like=smiles, n, **kwargs)` for every (seed_id, smiles) in `seeds`; one table
        with `seed_id` first and `valid` / `error` last. A seed that cannot be used (bad SMILES,
        not encodable, nothing kept) keeps one row: its SMILES, valid False and the error; a bad
        option (the same for every seed) raises at once. `attrs["summary"]` per seed_id."""
        return generate.generate_batch(self.bundle, seeds, n, progress, **kwargs)

    def generate_raw_chunks(self, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None, hba=None,
                            tpsa=None, radius: float | None = None, temperature: float | None = None, seed: int = 0,
                            chunk_size: int = RAW_CHUNK, start_chunk: int = 0, constrained: bool = True,
                            beam: int = 0) -> Iterator[pd.DataFrame]:
        """`generate(raw=True)` as a stream: `n` decodes in chunks of `chunk_size` rows (columns
        RAW_COLUMNS), memory flat in n. Chunk k draws from its own generators, seeded by (seed, k)
        (chunk 0 by seed itself, so n <= chunk_size gives what one batch always gave): chunks can be
        skipped (`start_chunk`, to resume) or produced anywhere without changing the others.
        The arguments are checked now; the decoding happens as the caller iterates."""
        return raw.generate_raw_chunks(self.bundle, like, n, mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa,
                                       radius=radius, temperature=temperature, seed=seed, chunk_size=chunk_size,
                                       start_chunk=start_chunk, constrained=constrained, beam=beam)

    def generate_raw_to(self, out: str | Path | None, like: str | None = None, n: int = 50, *, seed: int = 0,
                        chunk_size: int = RAW_CHUNK, float_format: str | None = None, progress: bool = False,
                        log: Callable[[str], None] = lambda m: None, **kwargs) -> dict:
        """Stream `generate(raw=True)` to a file with flat memory, resumably.

        Each chunk is written as its own parquet part in `<out>.parts/` (atomically: a part that
        exists is complete), beside a manifest of the arguments; a rerun with the same arguments
        skips the parts already there, a rerun with others is refused. When all parts exist they
        are copied, one at a time, into `out` (any output suffix) and the folder is removed.
        out=None: chunks go straight to stdout as CSV (nothing to resume). kwargs: as
        generate_raw_chunks (mw, logp, hbd, hba, tpsa, radius, temperature). Returns attempts,
        valid (fraction) and parts (written now, reused)."""
        return raw.generate_raw_to(self.bundle, self.path, out, like, n, seed=seed, chunk_size=chunk_size,
                                   float_format=float_format, progress=progress, log=log, **kwargs)

    # ------------------------------------------------------------------ interpolate
    def interpolate(self, a: str, b: str, steps: int = 10, method: str = "slerp", *, keep: str | None = None,
                    filters: Sequence[str] | None = None, sanity: bool | Sanity = True, constrained: bool = True,
                    beam: int = 0, anchor: int = PATH_ANCHOR) -> pd.DataFrame:
        """Walk from A's latent to B's in `steps` points (2 to 1,000, both ends included), the condition
        moving linearly from A's properties to B's; greedy decode at each point. Columns: step, alpha,
        smiles (canonical, or the raw string when invalid), valid, error (why RDKit rejects an
        invalid decode), RDKit properties, qed, sa, similarity_a, similarity_b, duplicate (same
        molecule as the previous step), passes and failed_filters (the sanity filter, `keep`
        and `filters` as in `generate`, with similarity = similarity_a). Every step is kept: the
        path is the result, the filters mark it. `constrained`: grammar/valence mask (default on);
        `beam` K > 1: beam search instead of greedy. Each end's latent: the one of `anchor` draws of
        its posterior (μ first) whose decode is most similar to the molecule (0 or 1: μ)."""
        return interpolate.interpolate(self.bundle, a, b, steps, method, keep=keep, filters=filters, sanity=sanity,
                                       constrained=constrained, beam=beam, anchor=anchor)

    # ------------------------------------------------------------------ optimize
    def optimize(self, start: str, maximize: Sequence[str] = (), minimize: Sequence[str] = (),
                 targets: Mapping[str, float] | Sequence[str] = (), steps: int = DEFAULT_STEPS,
                 chains: int = DEFAULT_CHAINS, step_size: float = DEFAULT_STEP_SIZE,
                 prior_weight: float = DEFAULT_PRIOR_WEIGHT, top_k: int = 10, seed: int = 0,
                 condition: str = "optimize", method: str = DEFAULT_METHOD, budget: int | None = None,
                 min_similarity: float = 0.0, objective: str | None = None,
                 sigma: float = DEFAULT_SIGMA, condition_sigma: float = DEFAULT_CONDITION_SIGMA,
                 constrained: bool = True, samples: int = DEFAULT_SAMPLES, temperature: float = DEFAULT_TEMPERATURE,
                 sigma_units: str = DEFAULT_SIGMA_UNITS, fill_budget: bool = False,
                 similarity_penalty: float = 0.0, stop_at: float | None = None,
                 guides: Sequence[str] | None = None, prescreen: int = 1) -> OptimizeResult:
        """Optimize from one start (see moldesign.design.optimize): `method` gradient (surrogate ascent)
        or cmaes (CMA-ES with RDKit fitness); `budget` caps RDKit oracle calls; `min_similarity`
        is a constraint on the proposals; `objective` a weighted sum such as '1.0*logp - 1.0*sa'.
        Returns OptimizeResult(trajectory, best, summary), objective values in natural units.
        `seed` sets the random starts; `condition` "optimize" (c moves with z), "seed" (held) or
        "only" (z held at μ); `constrained` masks decoding with the SMILES grammar (default);
        `samples` decodes per latent point (greedy + samples − 1 at `temperature`); `sigma_units`
        "prior" or "posterior" (z steps in the start's posterior σ); `fill_budget` restarts from the
        best point until `budget` oracle calls are spent; `similarity_penalty` W > 0 turns the
        similarity constraint inside CMA-ES's fitness into a penalty W·(S − similarity); `stop_at`
        ends the search at the first step with a feasible proposal whose objective reaches it;
        `guides`: SMILES of molecules that have the wanted property (cmaes): the search first
        walks towards the start's nearest ones, and never proposes a guide itself; `prescreen` K
        (cmaes, needs the latent surrogate): each generation samples K × chains candidates and
        decodes only the chains the surrogate predicts best."""
        return leads.optimize_start(self.bundle, self.path, start, maximize, minimize, targets, steps, chains,
                                    step_size, prior_weight, top_k, seed, condition, method, budget, min_similarity,
                                    objective, sigma, condition_sigma, constrained, samples, temperature,
                                    sigma_units, fill_budget, similarity_penalty, stop_at, guides, prescreen)

    def optimize_batch(self, starts: pd.DataFrame, done: set[str] = frozenset(), baseline: bool = False,
                       progress: bool = False, **kwargs):
        """Optimize every start of a table with columns start_id and smiles (see read_starts);
        yields (start_id, rows, summary) per start not in `done`, in order. rows: the start's best
        feasible proposals (top_k) with start_id, start_smiles, similarity, objective, improvement,
        decodes, oracle_calls, seconds; a bad start or one without a feasible proposal gives one
        row with valid=False and `error` saying why (never dropped). kwargs: those of `optimize`.
        With `baseline` the random-direction baseline is run too (rows with method 'random')."""
        return leads.optimize_batch(self.bundle, self.path, starts, done, baseline, progress, **kwargs)

    def baseline(self, result: OptimizeResult, seed: int = 0) -> OptimizeResult:
        """The fair baseline for an optimize result: the same number of decodes around the same
        seed, at the optimizer's distances from μ, in random directions (moldesign.design.optimize).
        Only for a gradient run (its trajectory is a walk with distances); DesignInputError otherwise."""
        return leads.baseline(self.bundle, result, seed)

    # ------------------------------------------------------------------ surrogate
    def fit_surrogate(self, smiles: Sequence[str], seed: int = 0, workers: int = 1, progress: bool = False,
                      log: Callable[[str], None] = lambda m: None, **kwargs) -> dict:
        """Fit the latent surrogate on `smiles`, attach it to the model and return the report
        (held-out R² per property). Call `save` to write it into a checkpoint."""
        from .training.fitting import fit_surrogate

        sur, report = fit_surrogate(self.bundle, smiles, seed=seed, workers=workers, progress=progress, log=log,
                                    **kwargs)
        self.bundle.surrogate = sur
        return report

    def fit_prior(self, smiles: Sequence[str], components: int = 16, seed: int = 0) -> dict:
        """Fit the GMM prior on μ of `smiles` and keep it in the bundle (save() writes it)."""
        from .training.fitting import fit_prior

        self.bundle.prior, report = fit_prior(self.bundle, smiles, components, seed)
        return report

    def save(self, path: str | Path) -> None:
        """Write the checkpoint (surrogate included) without AdamW moments: a design artefact stays
        small, and `moldesign train --resume` rebuilds the moments."""
        checkpoint.save(self.bundle, path, include_optimizer=False)
        self.path = Path(path)


def surrogate_training_smiles(data: str, n: int, seed: int = 0) -> list[str]:
    """Up to `n` SMILES for fitting the surrogate or the prior: 'moses' / 'zinc250k' (the prepared
    train split) or a file."""
    from .data import load_moses, load_zinc250k, read_smiles_file

    if n < 10:
        raise DesignInputError(f"-n must be at least 10, got {n}")
    df = {"moses": lambda: load_moses("train"), "zinc250k": lambda: load_zinc250k("train")}.get(
        data, lambda: read_smiles_file(data))()
    if len(df) > n:
        df = df.sample(n=n, random_state=seed)
    return df["smiles"].astype(str).tolist()
