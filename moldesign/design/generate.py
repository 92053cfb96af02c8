"""generate: new molecules from the prior or near a seed (--like), under requested conditions and
filters, with oversampling and the adaptive --min-similarity search; generate_batch runs it for
every seed of a seed file. `raw=True` hands over to design.raw (every decode, unfiltered).

The steps: `check_request` turns the user's values into a checked Request; a Search decodes
batches (around the seed's μ, or from the prior), keeps new molecules that pass the filters and,
with --min-similarity, moves its centre and radius; `finish` reports and sorts what was kept.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..chem import PROPERTIES, canonical_mols, mol_scores, tanimoto_to
from ..config import DEFAULT_OVERSAMPLE, DEFAULT_RADIUS, MIN_SIMILARITY_RADIUS
from ..decoding.sampling import decode, encode
from ..errors import DesignInputError, DesignWarning, NothingValid
from ..model.checkpoint import Bundle
from ..model.prior import draw_latents
from .common import (check_beam_seed, check_count, check_sampling, checked_conditions, condition_rows,
                     default_temperature, fmt_removed, generators, molecule, molecule_filter, warn)
from .filters import MoleculeFilter, Sanity
from .latent import sample_around
from .raw import raw_table
from .rules import MAX_DECODES, check_integer, check_seed
from .seeds import Seed, UnusableSeed

GENERATE_COLUMNS = ["smiles", *PROPERTIES, "qed", "sa", "similarity"]
ADAPT_SCALES = np.array([0.25, 0.5, 1.0, 2.0], np.float32)  # radius multiples of an adaptive batch


def generate(bundle: Bundle, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None, hba=None,
             tpsa=None, radius: float | None = None, temperature: float | None = None, seed: int = 0,
             raw: bool = False, max_attempts: int | None = None, log: Callable[[str], None] | None = None,
             min_similarity: float | None = None, keep: str | None = None, filters: Sequence[str] | None = None,
             sanity: bool | Sanity = True, constrained: bool = True, beam: int = 0,
             oversample: int | None = None, on_progress: Callable[[float], None] | None = None) -> pd.DataFrame:
    """Designer.generate (its docstring says what each argument does)."""
    values = dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa)
    if raw:  # every decoded string, in order, as decoded (for measuring validity)
        return raw_table(bundle, like, n, values, radius, temperature, seed, min_similarity, keep, filters, sanity,
                         constrained, beam)
    check_seed(seed)
    req = check_request(bundle, like, n, values, radius, temperature, max_attempts, min_similarity, keep, filters,
                        sanity, beam, oversample)
    rng, gen = generators(bundle, seed)
    sd = molecule(bundle, like) if like is not None else None
    centre = None  # (Z,) where neighbourhood samples are centred
    if sd is not None:
        mu, _ = encode(bundle, [sd.smiles], sd.props[None, :])  # (1, Z), encoded under its own properties
        if req.mfilter.keep is not None and not sd.mol.HasSubstructMatch(req.mfilter.keep):
            warn(f"the seed {sd.label} does not contain --keep {keep!r} itself")
        centre = mu[0]
    search = Search(bundle, req, sd, centre, rng, gen, constrained, beam)
    search.run(log, on_progress)
    return finish(bundle, search)


@dataclass
class Request:
    """generate's checked arguments."""
    n: int
    wanted: int  # candidates to collect before keeping the first n in output order
    budget: int  # decodes at most
    oversample: int
    temperature: float
    radius: float  # the starting radius
    min_similarity: float | None
    mfilter: MoleculeFilter
    given: dict[str, float]  # requested conditions


def check_request(bundle: Bundle, like, n, values: Mapping[str, float | None], radius, temperature, max_attempts,
                  min_similarity, keep, filters, sanity, beam, oversample) -> Request:
    """generate's arguments checked (one-line DesignInputError naming a bad one) and defaulted;
    a requested condition outside the training range is warned."""
    check_beam_seed(beam, like, radius)
    check_count(n)
    temperature = default_temperature(temperature, like)
    check_sampling(temperature, radius, like)
    if min_similarity is not None:
        if not np.isfinite(min_similarity) or not 0 < min_similarity <= 1:
            raise DesignInputError(f"--min-similarity must be in (0, 1], got {min_similarity}")
        if like is None:
            raise DesignInputError("--min-similarity needs --like (similarity is to the seed)")
    oversample = check_oversample(oversample, like, min_similarity)
    wanted = n * oversample
    # the default budget stays within the limit a user may ask for (-n 100,000 x 10 would be 20M)
    budget = (min(MAX_DECODES, max(1000, 20 * wanted)) if max_attempts is None
              else check_integer("--max-attempts", max_attempts, 1, MAX_DECODES))
    mfilter = molecule_filter(keep, filters, sanity, min_similarity)
    if any(f.key == "similarity" for f in mfilter.filters) and like is None:
        raise DesignInputError("a filter on similarity needs --like (similarity is to the seed)")
    given = checked_conditions(bundle, values)
    if radius is None:
        radius = MIN_SIMILARITY_RADIUS if min_similarity is not None else DEFAULT_RADIUS
    return Request(n, wanted, budget, oversample, temperature, float(radius), min_similarity, mfilter, given)


def check_oversample(oversample: int | None, like: str | None, min_similarity: float | None) -> int:
    if oversample is None:
        # --min-similarity is itself the selection (and its radius adapts to what passes)
        oversample = DEFAULT_OVERSAMPLE if like is not None and min_similarity is None else 1
    if not isinstance(oversample, (int, np.integer)) or not 1 <= oversample <= 100:
        raise DesignInputError(f"--oversample must be an integer from 1 to 100, got {oversample!r}")
    if oversample > 1 and like is None:
        raise DesignInputError("--oversample needs --like (candidates are ranked by similarity to the seed)")
    return oversample


@dataclass
class Search:
    """generate's search: decodes batches until `wanted` candidates pass the filters or the budget
    is spent. With --min-similarity (adapt) the centre follows the most similar decode and the
    radius adapts batch by batch (`adapt`)."""
    bundle: Bundle
    req: Request
    seed: Seed | None
    centre: np.ndarray | None  # (Z,)
    rng: np.random.Generator
    gen: object  # torch.Generator of sampled decoding
    constrained: bool
    beam: int
    found: dict[str, dict] = field(init=False, default_factory=dict)  # canonical SMILES → its row, in order found
    seen: set[str] = field(init=False, default_factory=set)  # every canonical SMILES judged (kept or not)
    attempts: int = field(init=False, default=0)
    n_valid: int = field(init=False, default=0)
    radius: float = field(init=False)  # the current radius; radii: every radius used
    radii: list[float] = field(init=False)
    centre_sim: float = field(init=False, default=-1.0)  # similarity to the seed of the best decode so far

    def __post_init__(self):
        self.radius = self.req.radius
        self.radii = [self.radius]
        if self.seed is not None:
            self.seen.add(self.seed.smiles)

    @property
    def adaptive(self) -> bool:
        return self.req.min_similarity is not None

    def run(self, log: Callable[[str], None] | None, on_progress: Callable[[float], None] | None = None) -> None:
        """Decode batches until done; after each, `log` gets the progress line and `on_progress` the
        fraction done (of the candidates wanted or of the budget, whichever is further along)."""
        req = self.req
        while len(self.found) < req.wanted and self.attempts < req.budget:
            # smaller batches when the search adapts, so it can react within the budget
            m = min(req.budget - self.attempts,
                    max(64, min(128 if self.adaptive else 1000, 2 * (req.wanted - len(self.found)))))
            strings, z = self.decode_batch(m)
            canon, mols = canonical_mols(strings)
            self.attempts += m
            sims = tanimoto_to(self.seed.mol, mols) if self.seed is not None else np.full(m, np.nan)  # NaN invalid
            n_new, n_close = self.judge(canon, mols, sims)
            if self.adaptive and len(self.found) < req.wanted:
                self.adapt(sims, z, n_new, n_close, m)
            if log:
                log(self.progress())
            if on_progress:
                on_progress(min(1.0, max(len(self.found) / req.wanted, self.attempts / req.budget)))

    def decode_batch(self, m: int) -> tuple[list[str], np.ndarray]:
        """m decodes: (strings, their latents (m, Z))."""
        bundle, rng = self.bundle, self.rng
        if self.seed is not None:
            if self.adaptive:
                # while the search adapts, each batch spans radius/4 .. 2·radius (a multi-scale
                # search: a greedy decoder is flat in z at small scales and leaves the seed at large)
                scales = np.resize(ADAPT_SCALES, m)[:, None]  # (m, 1)
                Z = bundle.config.latent_dim
                z = self.centre[None, :] + (self.radius * scales * rng.standard_normal((m, Z))).astype(np.float32)
            else:
                z = sample_around(self.centre, m, self.radius, rng)
            cond = condition_rows(bundle, m, self.req.given, rng, self.seed.props)
        else:
            cond = condition_rows(bundle, m, self.req.given, rng)
            z = draw_latents(bundle, m, rng)  # the checkpoint's GMM prior when it has one
        strings = decode(bundle, z, cond, self.req.temperature, generator=self.gen, constrained=self.constrained,
                         beam=self.beam)
        return strings, z

    def judge(self, canon, mols, sims) -> tuple[int, int]:
        """Keep the batch's new molecules that pass the filters → (new, new and similar enough)."""
        n_new = n_close = 0
        for c, mol, sim in zip(canon, mols, sims):
            if c is None:
                continue
            self.n_valid += 1
            if c in self.seen or len(self.found) >= self.req.wanted:
                continue
            self.seen.add(c)
            n_new += 1
            row = {"smiles": c, **mol_scores(mol), "similarity": float(sim)}
            n_close += self.adaptive and sim >= self.req.min_similarity
            if self.req.mfilter.passes(mol, row):
                self.found[c] = row
        return n_new, n_close

    def adapt(self, sims: np.ndarray, z: np.ndarray, n_new: int, n_close: int, m: int) -> None:
        """The decoder may not map μ back onto the seed (greedy decode of μ can sit at Tanimoto
        0.2), so the centre follows the most similar decode found (a hill climb on similarity) and
        the radius follows a success rule: grow after progress or when decodes repeat, shrink
        while new molecules miss the bar."""
        best = int(np.nanargmax(np.where(np.isnan(sims), -1.0, sims)))
        if sims[best] > self.centre_sim:
            self.centre, self.centre_sim = z[best], float(sims[best])
            self.radius = min(2.0, self.radius * 1.1)
        elif n_new and n_close < 0.25 * n_new:
            self.radius = max(0.02, self.radius * 0.8)
        elif n_new < 0.2 * m:
            self.radius = min(2.0, self.radius * 1.25)
        self.radii.append(self.radius)

    def progress(self) -> str:
        req = self.req
        return (f"generate: {self.attempts} decoded, {self.n_valid} valid, "
                + (f"{len(self.found)}/{req.wanted} candidates (the first {req.n} in output order kept)"
                   if req.oversample > 1 else f"{len(self.found)}/{req.n} kept")
                + (f", radius {self.radius:.3g}, best similarity {self.centre_sim:.2f}" if self.adaptive else ""))


def finish(bundle: Bundle, search: Search) -> pd.DataFrame:
    """The search's result: the first n in output order, with attrs summary, requested and seed;
    NothingValid when nothing was kept, a warning when fewer than n."""
    req, found, sd = search.req, search.found, search.seed
    n, attempts, n_valid = req.n, search.attempts, search.n_valid
    removed = dict(sorted(req.mfilter.removed.items(), key=lambda kv: -kv[1]))
    summary = {"attempts": attempts, "valid": n_valid / max(1, attempts), "kept": min(n, len(found)), "requested": n,
               "candidates": len(found), "oversample": req.oversample,
               "removed": removed, "removed_total": sum(removed.values()),
               "radius": search.radius, "radius_start": search.radii[0],
               "best_similarity": (float(np.nanmax([r["similarity"] for r in found.values()]))
                                   if found and sd is not None else None)}
    if not found:
        what = (f"{n_valid} valid, all the seed itself" if n_valid and sd is not None and len(search.seen) == 1
                else f"{n_valid} valid")
        if removed:
            what += f", {sum(removed.values())} removed by filters ({fmt_removed(removed)})"
        raise NothingValid(f"no valid new molecule in {attempts} decodes ({what}); try a larger --radius, "
                           f"another seed or condition, looser filters, or more --max-attempts")
    if len(found) < n:
        warn(f"only {len(found)} of {n} molecules found in {attempts} decodes"
             + (f" ({sum(removed.values())} removed by filters: {fmt_removed(removed)})" if removed else ""))
    df = pd.DataFrame(list(found.values()))
    df = sort_rows(bundle, df, req.given, sd is not None).head(n)  # oversampled: the first n in output order
    df.attrs.update(summary=summary, requested=req.given, seed=sd)
    return df[GENERATE_COLUMNS]


def sort_rows(bundle: Bundle, df: pd.DataFrame, given: Mapping[str, float], has_seed: bool) -> pd.DataFrame:
    """generate's output order: mean |RDKit − requested| / training std over the requested
    properties, then similarity to the seed (descending), then SMILES."""
    keys, asc = [], []
    if given:
        std = np.asarray(bundle.property_stats.get("std", [1.0] * len(PROPERTIES)))
        err = sum(np.abs(df[k] - v) / max(std[PROPERTIES.index(k)], 1e-9) for k, v in given.items())
        df["_err"] = err / len(given)
        keys.append("_err"), asc.append(True)
    if has_seed:
        keys.append("similarity"), asc.append(False)
    if keys:
        df = df.sort_values(keys + ["smiles"], ascending=asc + [True], kind="stable")
    return df.drop(columns=["_err"], errors="ignore").reset_index(drop=True)


def generate_batch(bundle: Bundle, seeds: Sequence[tuple[str, str]], n: int = 50,
                   progress: Callable[[str], None] | None = None, **kwargs) -> pd.DataFrame:
    """Designer.generate_batch: generate(like=smiles) per (seed_id, smiles); a bad seed keeps one
    row (valid False, its error), a bad option raises at once."""
    if not seeds:
        raise DesignInputError("--like file holds no seed molecule")
    parts, summaries = [], {}
    for i, (sid, smi) in enumerate(seeds):
        df, summaries[sid] = _one_seed(bundle, sid, smi, n, kwargs)
        df.insert(0, "seed_id", sid)
        parts.append(df)
        if progress:
            progress(f"seed {i + 1}/{len(seeds)} {sid}: "
                     + (f"{int(df['valid'].sum())} molecules" if df["valid"].all() else f"failed: {df['error'].iat[0]}"))
    out = pd.concat(parts, ignore_index=True).reindex(columns=["seed_id", *GENERATE_COLUMNS, "valid", "error"])
    out.attrs["summary"] = summaries
    return out


def _one_seed(bundle: Bundle, sid: str, smi: str, n: int, kwargs: dict) -> tuple[pd.DataFrame, dict]:
    """One seed of a batch → (its rows, its summary); its warnings name it. A seed that cannot be
    used keeps one row with its error; a bad option (any other DesignInputError) raises."""
    from ..chem import InvalidSmiles
    from ..known_molecules import UnknownMolecule

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DesignWarning)
            df = generate(bundle, like=smi, n=n, **kwargs)
        df = df.assign(valid=True, error="")
        for w in caught:  # per-seed warnings name their seed
            warn(f"seed {sid}: {w.message}")
        return df, df.attrs["summary"]
    except (InvalidSmiles, UnknownMolecule, UnusableSeed, NothingValid) as e:
        error = str(e)
    return pd.DataFrame({"smiles": [smi], "valid": [False], "error": [error]}), {"error": error}
