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
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .model import checkpoint
from .chem import PROPERTIES, mol_scores, scores_array, tanimoto_to
from .config import DEFAULT_OVERSAMPLE, LIKE_TEMPERATURE, MIN_SIMILARITY_RADIUS
from .design.optimize import (DEFAULT_CHAINS, DEFAULT_METHOD, DEFAULT_CONDITION_SIGMA, DEFAULT_PRIOR_WEIGHT, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, Objective, OptimizeResult, check_settings, optimize as _optimize, random_baseline)
from .model.prior import draw_latents
from .config import DEFAULT_RADIUS
from .errors import DesignInputError, DesignWarning, NothingValid
from .design.seeds import Seed, check_property_value, prepare_molecule, training_range_warning
from .chem import canonical_mols
from .decoding.sampling import decode as _decode, draw_conditions, encode as _encode, model_device, resolve_device
from .design.latent import interpolate_latents, sample_around
from .model.surrogate import TARGETS
from .design.filters import MoleculeFilter, Sanity, parse_design_filters, parse_keep
from .screening.screen import FilterError

from .resources import DEFAULT_MODEL  # noqa: E402,F401  (re-exported: the shipped model)
GENERATE_COLUMNS = ["smiles", *PROPERTIES, "qed", "sa", "similarity"]
RAW_COLUMNS = ["smiles", "valid", "canonical", *TARGETS, "similarity"]
RAW_CHUNK = 10_000  # decodes per streamed chunk (and per resumable part file) of `generate --raw`
# per-proposal columns of an optimize batch (after start_id … seed_objective, rank, smiles, valid)
OPTIMIZE_BATCH_COLUMNS = [*TARGETS, "plogp", "plogp_raw", "similarity", "objective", "improvement"]
BATCH_COLUMNS = ["start_id", "start_input", "start_smiles", "method", "decodes", "oracle_calls", "seconds",
                 "seed_objective", "rank", "smiles", "valid", *OPTIMIZE_BATCH_COLUMNS, "error"]


def _fmt_removed(removed: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in removed.items())


def load(model: str | Path | None = None, device: str = "auto") -> "Designer":
    """Load a checkpoint (default: the shipped model) into a Designer."""
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise DesignInputError(str(e)) from None
    path = Path(model) if model is not None else DEFAULT_MODEL
    return Designer(checkpoint.load(path, dev), path)


def _default_temperature(temperature: float | None, like: str | None) -> float:
    """generate's decoding temperature: as given, else LIKE_TEMPERATURE with a seed, greedy without."""
    if temperature is not None:
        return temperature
    return LIKE_TEMPERATURE if like is not None else 0.0


def _check_sampling(temperature: float, radius: float | None, like: str | None) -> None:
    """Shared checks of generate's sampling arguments (one-line DesignInputError naming the value)."""
    if not np.isfinite(temperature) or temperature < 0:
        raise DesignInputError(f"--temperature must be >= 0, got {temperature}")
    if radius is not None and (not np.isfinite(radius) or radius < 0):
        raise DesignInputError(f"--radius must be >= 0, got {radius}")
    if radius is not None and like is None:
        raise DesignInputError("--radius needs --like (without a seed z is drawn from the prior)")


class Designer:
    """A loaded model plus the design operations (generate, interpolate, optimize, encode, decode)."""

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
        sd = prepare_molecule(self.bundle, text)
        for note in sd.notes:
            warnings.warn(note, DesignWarning, stacklevel=3)
        return sd

    def _generators(self, seed: int) -> tuple[np.random.Generator, torch.Generator]:
        return np.random.default_rng(seed), torch.Generator(device=model_device(self.bundle)).manual_seed(seed)

    def encode(self, molecules: Sequence[str] | str, with_logvar: bool = False) -> pd.DataFrame:
        """One row per molecule: input, smiles (as encoded), the five RDKit properties, z0..z{Z-1}
        (μ) and, with `with_logvar`, logvar0.."""
        molecules = [molecules] if isinstance(molecules, str) else list(molecules)
        seeds = [self.molecule(m) for m in molecules]
        props = np.array([s.props for s in seeds])  # (n, 5)
        mu, logvar = _encode(self.bundle, [s.smiles for s in seeds], props)
        df = pd.DataFrame({"input": molecules, "smiles": [s.smiles for s in seeds]})
        for j, k in enumerate(PROPERTIES):
            df[k] = props[:, j]
        parts = [df, pd.DataFrame(mu, columns=[f"z{i}" for i in range(mu.shape[1])])]
        if with_logvar:
            parts.append(pd.DataFrame(logvar, columns=[f"logvar{i}" for i in range(mu.shape[1])]))
        return pd.concat(parts, axis=1)

    def _conditions(self, n: int, given: Mapping[str, float], rng: np.random.Generator,
                    base: np.ndarray | None = None) -> np.ndarray:
        """(n, 5) raw conditions: `base` (a seed's properties (5,), or one row per molecule (n, 5))
        with the given properties overriding, or else draws from the training distribution near
        the given properties (sampling.draw_conditions)."""
        if base is None:
            return draw_conditions(self.bundle, n, rng, given)
        cond = np.array(np.broadcast_to(np.asarray(base, np.float64), (n, len(PROPERTIES))))
        for k, v in given.items():
            cond[:, PROPERTIES.index(k)] = v
        return cond

    def _checked_conditions(self, values: Mapping[str, float | None]) -> dict[str, float]:
        given = {k: check_property_value(k, v) for k, v in values.items() if v is not None}
        for k, v in given.items():
            self._reject_far_outside(k, v)
            msg = training_range_warning(self.bundle, k, v)
            if msg:
                warnings.warn(msg, DesignWarning, stacklevel=3)
        return given

    def _reject_far_outside(self, name: str, value: float) -> None:
        """A requested condition more than one training-range width beyond the training range
        ([min - w, max + w], w = max - min) is an input error, not a long run of invalid decodes.
        Inside that band, outside [min, max], the caller only warns (training_range_warning)."""
        stats = self.bundle.property_stats
        if name not in PROPERTIES or "min" not in stats:
            return
        j = PROPERTIES.index(name)
        lo, hi = float(stats["min"][j]), float(stats["max"][j])
        w = hi - lo
        if not lo - w <= value <= hi + w:
            raise DesignInputError(f"--{name} {value:g} is far outside this model's training range [{lo:.4g}, {hi:.4g}]; "
                                   f"accepted: [{lo - w:.4g}, {hi + w:.4g}]")

    def decode(self, z, conditions: Mapping[str, float] | np.ndarray | None = None, temperature: float = 0.0,
               seed: int = 0, constrained: bool = True, beam: int = 0) -> pd.DataFrame:
        """Decode latents (n, Z) (an array, or the DataFrame from `encode`, whose properties then
        serve as conditions). `conditions`: (n, 5) raw values, a dict of some properties (the rest
        from the `encode` table, else drawn from the training distribution), or None. Columns:
        decoded, smiles (canonical when valid), valid, RDKit properties, qed, sa. `constrained`
        (default) masks decoding with the SMILES grammar/valence rules; `beam` K > 1 beam-searches."""
        _check_beam(beam)
        rng, gen = self._generators(seed)
        base = None
        if isinstance(z, pd.DataFrame):
            if all(k in z.columns for k in PROPERTIES):
                base = z[list(PROPERTIES)].to_numpy(np.float64)  # (n, 5) the encoded molecules' own properties
            z = z[[c for c in z.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy(np.float32)
        z = np.array(np.atleast_2d(z), dtype=np.float32)  # a writable copy (pandas may hand out read-only views)
        if z.shape[1] != self.bundle.config.latent_dim:
            raise DesignInputError(f"z has {z.shape[1]} dimensions; this model's latent has {self.bundle.config.latent_dim}")
        if conditions is None or isinstance(conditions, Mapping):
            cond = self._conditions(len(z), self._checked_conditions(dict(conditions or {})), rng, base)
        else:
            cond = np.broadcast_to(np.asarray(conditions, np.float64), (len(z), len(PROPERTIES))).copy()
        strings = _decode(self.bundle, z, cond, temperature, generator=gen, constrained=constrained, beam=beam)
        return self._table(strings)

    def _table(self, strings: Sequence[str], seed: Seed | None = None) -> pd.DataFrame:
        canon, mols = canonical_mols(strings)
        df = pd.DataFrame({"decoded": list(strings), "smiles": [c if c else s for c, s in zip(canon, strings)],
                           "valid": [c is not None for c in canon]})
        df[list(TARGETS)] = scores_array(mols)
        df["similarity"] = tanimoto_to(seed.mol, mols) if seed is not None else np.nan
        return df

    # ------------------------------------------------------------------ generate
    def generate(self, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None, hba=None, tpsa=None,
                 radius: float | None = None, temperature: float | None = None, seed: int = 0, raw: bool = False,
                 max_attempts: int | None = None, log: Callable[[str], None] | None = None,
                 min_similarity: float | None = None, keep: str | None = None, filters: Sequence[str] | None = None,
                 sanity: bool | Sanity = True, constrained: bool = True, beam: int = 0,
                 oversample: int | None = None) -> pd.DataFrame:
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
        """
        if raw:  # every decoded string, in order, as decoded (for measuring validity): generate_raw_chunks
            if min_similarity is not None:
                raise DesignInputError("--min-similarity does not apply to --raw (every decode is written, unfiltered)")
            self._molecule_filter(keep, filters, sanity)  # unused by --raw, but a bad value is still an error
            setup = self._raw_setup(like, n, dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa), radius,
                                    temperature, RAW_CHUNK, beam)
            df = pd.concat(list(self._raw_chunks(*setup, n, seed, RAW_CHUNK, 0, constrained, beam)), ignore_index=True)
            df.attrs["summary"] = {"attempts": n, "valid": float(df["valid"].mean()),
                                   "unique_valid": int(df["canonical"].nunique())}
            df.attrs.update(requested=setup[2], seed=setup[0])
            return df
        self._check_beam_seed(beam, like, radius)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise DesignInputError(f"-n must be a positive integer, got {n!r}")
        temperature = _default_temperature(temperature, like)
        _check_sampling(temperature, radius, like)
        if min_similarity is not None:
            if not np.isfinite(min_similarity) or not 0 < min_similarity <= 1:
                raise DesignInputError(f"--min-similarity must be in (0, 1], got {min_similarity}")
            if like is None:
                raise DesignInputError("--min-similarity needs --like (similarity is to the seed)")
        if oversample is None:
            # --min-similarity is itself the selection (and its radius adapts to what passes)
            oversample = DEFAULT_OVERSAMPLE if like is not None and min_similarity is None else 1
        if not isinstance(oversample, (int, np.integer)) or not 1 <= oversample <= 100:
            raise DesignInputError(f"--oversample must be an integer from 1 to 100, got {oversample!r}")
        if oversample > 1 and like is None:
            raise DesignInputError("--oversample needs --like (candidates are ranked by similarity to the seed)")
        wanted = n * oversample  # candidates to collect before keeping the n most similar
        budget = max(1000, 20 * wanted) if max_attempts is None else int(max_attempts)
        if budget < 1:
            raise DesignInputError(f"--max-attempts must be positive, got {max_attempts}")
        mfilter = self._molecule_filter(keep, filters, sanity, min_similarity)
        if any(f.key == "similarity" for f in mfilter.filters) and like is None:
            raise DesignInputError("a filter on similarity needs --like (similarity is to the seed)")
        given = self._checked_conditions({"mw": mw, "logp": logp, "hbd": hbd, "hba": hba, "tpsa": tpsa})
        if radius is None:
            radius = MIN_SIMILARITY_RADIUS if min_similarity is not None else DEFAULT_RADIUS
        radius = float(radius)
        rng, gen = self._generators(seed)
        Z = self.bundle.config.latent_dim
        sd = self.molecule(like) if like is not None else None
        if sd is not None:
            mu, _ = _encode(self.bundle, [sd.smiles], sd.props[None, :])  # (1, Z), encoded under its own properties
            if mfilter.keep is not None and not sd.mol.HasSubstructMatch(mfilter.keep):
                warnings.warn(f"the seed {sd.label} does not contain --keep {keep!r} itself", DesignWarning, stacklevel=2)

        centre = mu[0] if sd is not None else None  # (Z,) where neighbourhood samples are centred
        adapt = min_similarity is not None

        def batch(m: int, with_z: bool = False):
            if sd is not None:
                # while the search adapts, each batch spans radius/4 .. 2·radius (a multi-scale
                # search: a greedy decoder is flat in z at small scales and leaves the seed at large)
                if adapt:
                    scales = np.resize(np.array([0.25, 0.5, 1.0, 2.0], np.float32), m)[:, None]  # (m, 1)
                    z = centre[None, :] + (radius * scales * rng.standard_normal((m, Z))).astype(np.float32)
                else:
                    z = sample_around(centre, m, radius, rng)
                cond = self._conditions(m, given, rng, sd.props)
            else:
                cond = self._conditions(m, given, rng)
                z = draw_latents(self.bundle, m, rng)  # the checkpoint's GMM prior when it has one
            strings = _decode(self.bundle, z, cond, temperature, generator=gen, constrained=constrained, beam=beam)
            return (strings, z) if with_z else strings

        found: dict[str, dict] = {}  # canonical SMILES → its row (RDKit scores, similarity), in order of discovery
        seen: set[str] = set() if sd is None else {sd.smiles}  # every canonical SMILES judged (kept or not)
        attempts = n_valid = 0
        radii = [radius]
        centre_sim = -1.0  # similarity to the seed of the best decode so far (the centre's molecule)
        while len(found) < wanted and attempts < budget:
            # smaller batches when the search adapts, so it can react within the budget
            m = min(budget - attempts, max(64, min(128 if adapt else 1000, 2 * (wanted - len(found)))))
            strings, z = batch(m, with_z=True)
            canon, mols = canonical_mols(strings)
            attempts += m
            sims = tanimoto_to(sd.mol, mols) if sd is not None else np.full(m, np.nan)  # (m,), NaN invalid
            n_new = n_close = 0
            for c, mol, sim in zip(canon, mols, sims):
                if c is None:
                    continue
                n_valid += 1
                if c in seen or len(found) >= wanted:
                    continue
                seen.add(c)
                n_new += 1
                row = {"smiles": c, **mol_scores(mol), "similarity": float(sim)}
                n_close += adapt and sim >= min_similarity
                if mfilter.passes(mol, row):
                    found[c] = row
            if adapt and len(found) < wanted:
                # The decoder may not map μ back onto the seed (greedy decode of μ can sit at
                # Tanimoto 0.2), so the centre follows the most similar decode found (a hill climb
                # on similarity) and the radius follows a success rule: grow after progress or
                # when decodes repeat, shrink while new molecules miss the bar.
                best = int(np.nanargmax(np.where(np.isnan(sims), -1.0, sims)))
                if sims[best] > centre_sim:
                    centre, centre_sim = z[best], float(sims[best])
                    radius = min(2.0, radius * 1.1)
                elif n_new and n_close < 0.25 * n_new:
                    radius = max(0.02, radius * 0.8)
                elif n_new < 0.2 * m:
                    radius = min(2.0, radius * 1.25)
                radii.append(radius)
            if log:
                log(f"generate: {attempts} decoded, {n_valid} valid, "
                    + (f"{len(found)}/{wanted} candidates (the first {n} in output order kept)" if oversample > 1
                       else f"{len(found)}/{n} kept")
                    + (f", radius {radius:.3g}, best similarity {centre_sim:.2f}" if adapt else ""))
        candidates = len(found)
        removed = dict(sorted(mfilter.removed.items(), key=lambda kv: -kv[1]))
        summary = {"attempts": attempts, "valid": n_valid / max(1, attempts), "kept": min(n, len(found)), "requested": n,
                   "candidates": candidates, "oversample": oversample,
                   "removed": removed, "removed_total": sum(removed.values()),
                   "radius": radius, "radius_start": radii[0],
                   "best_similarity": float(np.nanmax([r["similarity"] for r in found.values()])) if found and sd is not None else None}
        if not found:
            what = (f"{n_valid} valid, all the seed itself" if n_valid and sd is not None and len(seen) == 1
                    else f"{n_valid} valid")
            if removed:
                what += f", {sum(removed.values())} removed by filters ({_fmt_removed(removed)})"
            raise NothingValid(f"no valid new molecule in {attempts} decodes ({what}); try a larger --radius, "
                               f"another seed or condition, looser filters, or more --max-attempts")
        if len(found) < n:
            warnings.warn(f"only {len(found)} of {n} molecules found in {attempts} decodes"
                          + (f" ({sum(removed.values())} removed by filters: {_fmt_removed(removed)})" if removed else ""),
                          DesignWarning, stacklevel=2)
        df = pd.DataFrame(list(found.values()))
        df = self._sort(df, given, sd is not None).head(n)  # oversampled: the first n in output order
        df.attrs.update(summary=summary, requested=given, seed=sd)
        return df[GENERATE_COLUMNS]

    def generate_raw_chunks(self, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None, hba=None,
                            tpsa=None, radius: float | None = None, temperature: float | None = None, seed: int = 0,
                            chunk_size: int = RAW_CHUNK, start_chunk: int = 0, constrained: bool = True,
                            beam: int = 0) -> Iterator[pd.DataFrame]:
        """`generate(raw=True)` as a stream: `n` decodes in chunks of `chunk_size` rows (columns
        RAW_COLUMNS), memory flat in n. Chunk k draws from its own generators, seeded by (seed, k)
        (chunk 0 by seed itself, so n <= chunk_size gives what one batch always gave): chunks can be
        skipped (`start_chunk`, to resume) or produced anywhere without changing the others.
        The arguments are checked now; the decoding happens as the caller iterates."""
        setup = self._raw_setup(like, n, dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa), radius, temperature,
                                chunk_size, beam)
        return self._raw_chunks(*setup, n, seed, chunk_size, start_chunk, constrained, beam)

    def _raw_setup(self, like: str | None, n: int, conditions: dict, radius: float | None,
                   temperature: float | None, chunk_size: int, beam: int) -> tuple:
        """Checked arguments of a raw stream → (seed, its μ (1, Z) or None, conditions, radius, temperature)."""
        temperature = _default_temperature(temperature, like)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise DesignInputError(f"-n must be a positive integer, got {n!r}")
        self._check_beam_seed(beam, like, radius)
        if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise DesignInputError(f"chunk size must be a positive integer, got {chunk_size!r}")
        _check_sampling(temperature, radius, like)
        given = self._checked_conditions(conditions)
        radius = DEFAULT_RADIUS if radius is None else float(radius)
        sd = self.molecule(like) if like is not None else None
        mu = _encode(self.bundle, [sd.smiles], sd.props[None, :])[0] if sd is not None else None  # (1, Z), own properties
        return sd, mu, given, radius, temperature

    def _raw_chunks(self, sd: Seed | None, mu, given: dict, radius: float, temperature: float, n: int, seed: int,
                    chunk_size: int, start_chunk: int, constrained: bool, beam: int) -> Iterator[pd.DataFrame]:
        Z = self.bundle.config.latent_dim
        for k in range(start_chunk, -(-n // chunk_size)):
            m_chunk = min(chunk_size, n - k * chunk_size)
            rng, gen = self._generators(seed if k == 0 else
                                        int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
            strings: list[str] = []
            while len(strings) < m_chunk:
                m = min(1000, m_chunk - len(strings))  # decoder batch: (m, Z) latents
                if sd is not None:
                    z, cond = sample_around(mu[0], m, radius, rng), self._conditions(m, given, rng, sd.props)
                else:
                    cond = self._conditions(m, given, rng)
                    z = draw_latents(self.bundle, m, rng)  # the checkpoint's GMM prior when it has one
                strings += _decode(self.bundle, z, cond, temperature, generator=gen, constrained=constrained,
                                   beam=beam)
            df = self._table(strings, sd)
            df["canonical"] = df["smiles"].where(df["valid"])
            df = df.drop(columns=["smiles"]).rename(columns={"decoded": "smiles"})
            yield df[RAW_COLUMNS]

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
        import pyarrow.parquet as pq
        from tqdm import tqdm

        from .data import ChunkWriter, DataError, atomic_path, file_sha256

        chunks = self.generate_raw_chunks(like, n, seed=seed, chunk_size=chunk_size, **kwargs)  # checks the arguments
        n_chunks = -(-n // chunk_size)
        bar = tqdm(total=n, desc="generate", unit="mol", disable=not progress, mininterval=1.0)
        n_valid = reused = 0
        try:
            if out is None:
                with ChunkWriter(None, float_format) as writer:
                    for df in chunks:
                        writer.write(df)
                        n_valid += int(df["valid"].sum())
                        bar.update(len(df))
                return {"attempts": n, "valid": n_valid / n, "parts": 0, "reused": 0}
            out = Path(out)
            parts = out.with_name(out.name + ".parts")
            manifest = {"format": 1, "n": int(n), "seed": int(seed), "chunk_size": int(chunk_size), "like": like,
                        **{k: (None if v is None else str(v)) for k, v in sorted(kwargs.items())},
                        "model_sha256": file_sha256(self.path) if self.path is not None else None}
            if (parts / "manifest.json").exists():
                previous = json.loads((parts / "manifest.json").read_text())
                if previous != manifest:
                    differ = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
                    raise DataError(f"{parts} holds the parts of another run (different {', '.join(differ)}); "
                                    f"delete it or choose another -o")
            else:
                parts.mkdir(parents=True, exist_ok=True)
                with atomic_path(parts / "manifest.json") as tmp:
                    Path(tmp).write_text(json.dumps(manifest, indent=1))
            name = lambda k: parts / f"part-{k:06d}.parquet"  # noqa: E731
            done = 0  # parts are written in order: the first missing one is where to resume
            while done < n_chunks and name(done).exists():
                done += 1
            reused = done
            if done:
                log(f"resuming: {done} of {n_chunks} parts already in {parts}")
                bar.update(min(n, done * chunk_size))
            for k, df in enumerate(self.generate_raw_chunks(like, n, seed=seed, chunk_size=chunk_size,
                                                            start_chunk=done, **kwargs), start=done):
                with atomic_path(name(k)) as tmp:
                    df.to_parquet(tmp, index=False)
                bar.update(len(df))
            with ChunkWriter(out, float_format) as writer:  # part by part: flat memory
                for k in range(n_chunks):
                    df = pq.read_table(name(k)).to_pandas()
                    n_valid += int(df["valid"].sum())
                    writer.write(df)
            shutil.rmtree(parts)
            return {"attempts": n, "valid": n_valid / n, "parts": n_chunks - reused, "reused": reused}
        finally:
            bar.close()

    @staticmethod
    def _check_beam_seed(beam: int, like: str | None, radius: float | None) -> None:
        _check_beam(beam)
        if beam > 1 and (like is None or radius is None or float(radius) != 0.0):
            raise DesignInputError(f"--beam {beam} needs --like and --radius 0 (beam search decodes the seed's own point)")

    def _molecule_filter(self, keep, filters, sanity, min_similarity=None) -> MoleculeFilter:
        """The filters of generate / interpolate from user values (DesignInputError naming a bad one)."""
        try:
            return MoleculeFilter(sanity=sanity if isinstance(sanity, Sanity) else Sanity(enabled=bool(sanity)),
                                  keep=parse_keep(keep), filters=parse_design_filters(filters),
                                  min_similarity=min_similarity)
        except FilterError as e:
            raise DesignInputError(str(e)) from None

    def generate_batch(self, seeds: Sequence[tuple[str, str]], n: int = 50,
                       progress: Callable[[str], None] | None = None, **kwargs) -> pd.DataFrame:
        """`generate(like=smiles, n, **kwargs)` for every (seed_id, smiles) in `seeds`; one table
        with `seed_id` first and `valid` / `error` last. A seed that cannot be used (bad SMILES,
        not encodable, nothing kept) keeps one row: its SMILES, valid False and the error; a bad
        option (the same for every seed) raises at once. `attrs["summary"]` per seed_id."""
        from .chem import InvalidSmiles
        from .known_molecules import UnknownMolecule

        if not seeds:
            raise DesignInputError("--like file holds no seed molecule")
        parts, summaries = [], {}
        for i, (sid, smi) in enumerate(seeds):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", DesignWarning)
                    df = self.generate(like=smi, n=n, **kwargs)
                df = df.assign(valid=True, error="")
                for w in caught:  # per-seed warnings name their seed
                    warnings.warn(f"seed {sid}: {w.message}", DesignWarning, stacklevel=2)
                summaries[sid] = df.attrs["summary"]
            except (InvalidSmiles, UnknownMolecule, NothingValid) as e:
                df = pd.DataFrame({"smiles": [smi], "valid": [False], "error": [str(e)]})
                summaries[sid] = {"error": str(e)}
            except DesignInputError as e:
                if "cannot be encoded" not in str(e) and "too long" not in str(e):
                    raise  # a bad option, not a bad seed
                df = pd.DataFrame({"smiles": [smi], "valid": [False], "error": [str(e)]})
                summaries[sid] = {"error": str(e)}
            df.insert(0, "seed_id", sid)
            parts.append(df)
            if progress:
                progress(f"seed {i + 1}/{len(seeds)} {sid}: "
                         + (f"{int(df['valid'].sum())} molecules" if df["valid"].all() else f"failed: {df['error'].iat[0]}"))
        out = pd.concat(parts, ignore_index=True).reindex(columns=["seed_id", *GENERATE_COLUMNS, "valid", "error"])
        out.attrs["summary"] = summaries
        return out

    def _sort(self, df: pd.DataFrame, given: Mapping[str, float], has_seed: bool) -> pd.DataFrame:
        keys, asc = [], []
        if given:
            std = np.asarray(self.bundle.property_stats.get("std", [1.0] * len(PROPERTIES)))
            err = sum(np.abs(df[k] - v) / max(std[PROPERTIES.index(k)], 1e-9) for k, v in given.items())
            df["_err"] = err / len(given)
            keys.append("_err"), asc.append(True)
        if has_seed:
            keys.append("similarity"), asc.append(False)
        if keys:
            df = df.sort_values(keys + ["smiles"], ascending=asc + [True], kind="stable")
        return df.drop(columns=["_err"], errors="ignore").reset_index(drop=True)

    # ------------------------------------------------------------------ interpolate
    def interpolate(self, a: str, b: str, steps: int = 10, method: str = "slerp", *, keep: str | None = None,
                    filters: Sequence[str] | None = None, sanity: bool | Sanity = True, constrained: bool = True,
                    beam: int = 0) -> pd.DataFrame:
        """Walk from μ(A) to μ(B) in `steps` points (both ends included), the condition moving
        linearly from A's properties to B's; greedy decode at each point. Columns: step, alpha,
        smiles (canonical, or the raw string when invalid), valid, error (why RDKit rejects an
        invalid decode), RDKit properties, qed, sa, similarity_a, similarity_b, duplicate (same
        molecule as the previous step), passes and failed_filters (the sanity filter, `keep`
        and `filters` as in `generate`, with similarity = similarity_a). Every step is kept: the
        path is the result, the filters mark it. `constrained`: grammar/valence mask (default on);
        `beam` K > 1: beam search instead of greedy."""
        from .screening.screen import explain_invalid

        _check_beam(beam)
        if not isinstance(steps, (int, np.integer)) or steps < 2:
            raise DesignInputError(f"--steps must be at least 2 (both ends), got {steps!r}")
        mfilter = self._molecule_filter(keep, filters, sanity)
        sa, sb = self.molecule(a), self.molecule(b)
        props = np.stack([sa.props, sb.props])  # (2, 5)
        mu, _ = _encode(self.bundle, [sa.smiles, sb.smiles], props)
        alphas, z = interpolate_latents(mu[0], mu[1], steps, method)
        cond = (1 - alphas[:, None]) * props[0] + alphas[:, None] * props[1]  # (K, 5)
        strings = _decode(self.bundle, z, cond, temperature=0.0, constrained=constrained, beam=beam)
        canon, mols = canonical_mols(strings)
        df = pd.DataFrame({"step": np.arange(steps), "alpha": alphas,
                           "smiles": [c if c else s for c, s in zip(canon, strings)],
                           "valid": [c is not None for c in canon],
                           "error": ["" if c is not None else "invalid decode: " + explain_invalid(s)
                                     for c, s in zip(canon, strings)]})
        df[list(TARGETS)] = scores_array(mols)
        df["similarity_a"] = tanimoto_to(sa.mol, mols)
        df["similarity_b"] = tanimoto_to(sb.mol, mols)
        df["duplicate"] = [i > 0 and canon[i] is not None and canon[i] == canon[i - 1] for i in range(steps)]
        df["passes"], df["failed_filters"] = mfilter.table_mask(df.assign(similarity=df["similarity_a"]), mols)
        df.attrs["ends"] = (sa, sb)
        return df

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
                 similarity_penalty: float = 0.0) -> OptimizeResult:
        """Optimize from one start (see moldesign.design.optimize): `method` gradient (surrogate ascent)
        or cmaes (CMA-ES with RDKit fitness); `budget` caps RDKit oracle calls; `min_similarity`
        is a constraint on the proposals; `objective` a weighted sum such as '1.0*logp - 1.0*sa'.
        Returns OptimizeResult(trajectory, best, summary), objective values in natural units.
        `seed` sets the random starts; `condition` "optimize" (c moves with z), "seed" (held) or
        "only" (z held at μ); `constrained` masks decoding with the SMILES grammar (default);
        `samples` decodes per latent point (greedy + samples − 1 at `temperature`); `sigma_units`
        "prior" or "posterior" (z steps in the start's posterior σ); `fill_budget` restarts from the
        best point until `budget` oracle calls are spent; `similarity_penalty` W > 0 turns the
        similarity constraint inside CMA-ES's fitness into a penalty W·(S − similarity)."""
        from .design.optimize import require_surrogate

        obj = Objective.parse(maximize, minimize, targets, objective)
        if method == "gradient":
            require_surrogate(self.bundle, str(self.path or "PATH"))
        return _optimize(self.bundle, self.molecule(start), obj, steps, chains, step_size, prior_weight,
                         top_k, np.random.default_rng(seed), condition, method, budget, min_similarity, sigma,
                         condition_sigma, constrained, samples, temperature, sigma_units, fill_budget,
                         similarity_penalty)

    def optimize_batch(self, starts: pd.DataFrame, done: set[str] = frozenset(), baseline: bool = False,
                       progress: bool = False, **kwargs):
        """Optimize every start of a table with columns start_id and smiles (see read_starts);
        yields (start_id, rows, summary) per start not in `done`, in order. rows: the start's best
        feasible proposals (top_k) with start_id, start_smiles, similarity, objective, improvement,
        decodes, oracle_calls, seconds; a bad start or one without a feasible proposal gives one
        row with valid=False and `error` saying why (never dropped). kwargs: those of `optimize`.
        With `baseline` the random-direction baseline is run too (rows with method 'random')."""
        from tqdm import tqdm

        from .chem import InvalidSmiles, standardize
        from .known_molecules import UnknownMolecule
        from .model.tokenizer import TokenizeError, UnknownTokenError

        from .design.optimize import require_surrogate

        objective = Objective.parse(kwargs.pop("maximize", ()), kwargs.pop("minimize", ()),
                                    kwargs.pop("targets", ()), kwargs.pop("objective", None))  # once, before any work
        check_settings(**kwargs, baseline=baseline)  # a baseline needs the gradient method
        if kwargs.get("method", DEFAULT_METHOD) == "gradient":
            require_surrogate(self.bundle, str(self.path or "PATH"))
        rows = starts[~starts["start_id"].astype(str).isin(set(map(str, done)))]
        for rec in tqdm(rows.to_dict("records"), desc="optimize", unit="start", disable=not progress):
            sid, given = str(rec["start_id"]), rec["smiles"]
            head = {"start_id": sid, "start_input": given}
            try:
                smiles = standardize(given)  # the form the model is trained on: largest fragment, uncharged, no stereo
                res = self._optimize_one(smiles, objective, **kwargs)
            except (DesignInputError, InvalidSmiles, UnknownMolecule, TokenizeError, UnknownTokenError) as e:
                yield sid, pd.DataFrame([{**head, "start_smiles": None, "method": kwargs.get("method", DEFAULT_METHOD),
                                          "smiles": None, "valid": False, "error": str(e)}]).reindex(
                                              columns=BATCH_COLUMNS), None
                continue
            tables = [self._batch_rows(head, res)]
            if baseline:
                base = random_baseline(self.bundle, res.start, objective, res.trajectory["distance"].to_numpy(),
                                       np.random.default_rng(kwargs.get("seed", 0)), kwargs.get("top_k", 10),
                                       kwargs.get("condition", "optimize"), kwargs.get("budget"),
                                       kwargs.get("min_similarity", 0.0), kwargs.get("constrained", True))
                base.summary["method"] = "random"
                tables.append(self._batch_rows(head, base))
            yield sid, pd.concat(tables, ignore_index=True), res.summary

    def _optimize_one(self, smiles: str, objective: Objective, seed: int = 0, **kwargs) -> OptimizeResult:
        names = ("steps", "chains", "step_size", "prior_weight", "top_k", "condition", "method", "budget",
                 "min_similarity", "sigma", "condition_sigma", "constrained", "samples", "temperature",
                 "sigma_units", "fill_budget", "similarity_penalty")
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"unknown optimize settings: {sorted(unknown)}")
        return _optimize(self.bundle, self.molecule(smiles), objective, rng=np.random.default_rng(seed), **kwargs)

    @staticmethod
    def _batch_rows(head: dict, res: OptimizeResult) -> pd.DataFrame:
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

    def baseline(self, result: OptimizeResult, seed: int = 0) -> OptimizeResult:
        """The fair baseline for an optimize result: the same number of decodes around the same
        seed, at the optimizer's distances from μ, in random directions (moldesign.design.optimize).
        Only for a gradient run (its trajectory is a walk with distances); DesignInputError otherwise."""
        check_settings(method=result.summary["method"], baseline=True)
        return random_baseline(self.bundle, result.start, result.objective, result.trajectory["distance"].to_numpy(),
                               np.random.default_rng(seed), top_k=max(len(result.best), 1),
                               condition=result.summary.get("condition", "optimize"),
                               budget=result.summary.get("budget"),
                               min_similarity=result.summary.get("min_similarity", 0.0),
                               constrained=result.summary.get("constrained", True))

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


def read_starts(path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """Start molecules for a batch: .smi (SMILES then an optional name) or .csv/.tsv/.parquet with a
    SMILES column; start_id from `id_column`, else a column named id/start_id/name, else the row
    number (0-based). Every row is kept; duplicate ids are an error (resume keys on them)."""
    from .data import read_smiles_file

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


def _check_beam(beam) -> None:
    if not isinstance(beam, (int, np.integer)) or beam < 0:
        raise DesignInputError(f"--beam must be a non-negative integer (0 or 1: greedy), got {beam!r}")


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


# ------------------------------------------------------------------ batch seeds
SEED_FILE_SUFFIXES = (".smi", ".txt", ".csv", ".tsv", ".parquet")
ID_COLUMNS = ("id", "seed_id", "name")


def is_seed_file(text: str | None) -> bool:
    """True when a --like value names a seed file (by suffix) rather than a molecule."""
    if not text:
        return False
    p = Path(text)
    suffix = p.suffixes[-2].lower() if p.suffix.lower() == ".gz" and len(p.suffixes) > 1 else p.suffix.lower()
    return suffix in SEED_FILE_SUFFIXES


def read_seeds(path: str | Path, smiles_col: str | None = None) -> list[tuple[str, str]]:
    """(seed_id, SMILES) per row of a .smi/.csv/.tsv/.parquet file. seed_id: the first of the
    columns id, seed_id, name (any case; a .smi file's second field is `name`) whose values are
    all present, else the 1-based row number."""
    from .data import read_smiles_file

    df = read_smiles_file(path, smiles_col)
    lower = {c.lower(): c for c in df.columns}
    ids = None
    for k in ID_COLUMNS:
        if k in lower:
            v = df[lower[k]].astype(str).str.strip()
            if len(v) and (v != "").all() and v.notna().all():
                ids = v.tolist()
                break
    if ids is None:
        ids = [str(i + 1) for i in range(len(df))]
    return list(zip(ids, df["smiles"].astype(str).tolist()))


# ------------------------------------------------------------------ grids and plots
def generate_plot(df: pd.DataFrame, path: str | Path) -> Path:
    """drawing.plot_generate with the requested conditions and the seed's values from `df.attrs`."""
    from .drawing import plot_generate

    seed = df.attrs.get("seed")
    seed_values = {**mol_scores(seed.mol), "similarity": 1.0} if seed is not None else None
    title = f"{len(df)} molecules" + (f" like {seed.label}" if seed is not None else "")
    if "seed_id" in df:
        title = f"{int(df['valid'].sum())} molecules from {df['seed_id'].nunique()} seeds"
        df = df[df["valid"]]
    return plot_generate(df, path, df.attrs.get("requested") or None, seed_values, title)


def interpolate_plot(df: pd.DataFrame, path: str | Path) -> Path:
    from .drawing import plot_path

    ends = df.attrs.get("ends")
    title = f"{ends[0].label} → {ends[1].label}" if ends else ""
    return plot_path(df.to_dict("records"), path, title=title)


def generate_grid(df: pd.DataFrame, path: str | Path, seed: Seed | None = None) -> int:
    from .drawing import grid_image, legend

    rows = df.to_dict("records")
    smiles = [r["smiles"] for r in rows]
    legends = [legend(r, f"#{i + 1}") for i, r in enumerate(rows)]
    if seed is not None:
        s = mol_scores(seed.mol)
        smiles.insert(0, seed.smiles)
        label = seed.label if len(seed.label) <= 20 else seed.label[:19] + "…"
        legends.insert(0, legend({**s, "valid": True}, f"seed {label}", similarity=False))
    return grid_image(smiles, legends, path)


def interpolate_grid(df: pd.DataFrame, path: str | Path) -> int:
    from .drawing import grid_image, legend

    rows = df.to_dict("records")
    legends = [legend({**r, "similarity": None}, f"{r['step']} a={r['alpha']:.2f}{' dup' if r['duplicate'] else ''}")
               for r in rows]
    return grid_image([r["smiles"] if r["valid"] else None for r in rows], legends, path)


def optimize_grid(result: OptimizeResult, path: str | Path, seed: Seed) -> int:
    from .drawing import grid_image, legend

    s = mol_scores(seed.mol)
    smiles = [seed.smiles] + result.best["smiles"].tolist()
    legends = [legend({**s, "valid": True}, "start", similarity=False)]
    legends += [legend(r, f"#{int(r['rank'])} J={r['objective']:.2f}") for r in result.best.to_dict("records")]
    return grid_image(smiles, legends, path)


def user_input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the user's input (option, file, checkpoint) is bad: the CLI exits 2 with one
    line, the web app shows the line. One list for both front ends."""
    import gzip
    import zipfile
    import zlib

    from .model.checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .model.prior import PriorError
    from .model.tokenizer import TokenizeError, UnknownTokenError

    from .errors import UserError

    types = (UserError, CheckpointError, ConfigError, DataError, TokenizeError, UnknownTokenError, PriorError,
             EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile)
    try:  # unreadable input files that a reader did not already turn into a DataError
        import pandas as pd

        types += (pd.errors.ParserError, pd.errors.EmptyDataError)
    except ImportError:  # pragma: no cover
        pass
    try:  # RDKit-backed errors; `train` from a pack runs where RDKit is absent
        from .chem import InvalidSmiles
        from .known_molecules import UnknownMolecule
    except ImportError:
        return types
    return types + (InvalidSmiles, UnknownMolecule)
