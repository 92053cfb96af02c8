"""encode and decode as tables: molecules → their properties and latent μ (and log σ²), and
latents (an array or an `encode` table) → decoded molecules scored by RDKit."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..chem import PROPERTIES, canonical_mols, tanimoto_to
from ..decoding.sampling import decode, encode
from ..errors import DesignInputError
from ..model.checkpoint import Bundle
from .common import check_beam, checked_conditions, condition_rows, generators, molecule, result_table
from .seeds import Seed


def anchor_latents(bundle: Bundle, seeds: Sequence[Seed], n: int, rng: np.random.Generator,
                   **decode_kw) -> tuple[np.ndarray, np.ndarray]:
    """A latent per molecule that decodes back to it where one is found: μ and n − 1 draws
    μ + σ·ε of its posterior q(z | x), decoded greedily (`decode_kw`: the caller's decoding
    settings, so that the chosen latent decodes the same way later), the one whose decode is most
    similar to the molecule kept (μ on ties, and for n ≤ 1 without decoding). Why: from μ the
    shipped decoder writes back only ~60% of held-out ZINC molecules, and another draw of the
    posterior often does write the molecule itself. Returns z (k, Z) and the similarity of each
    chosen latent's decode to its molecule (k,) (NaN for n ≤ 1; −1: no draw decoded validly)."""
    props = np.stack([s.props for s in seeds])  # (k, 5)
    mu, logvar = encode(bundle, [s.smiles for s in seeds], props)  # (k, Z) each
    k, Z = mu.shape
    if n <= 1:
        return mu, np.full(k, np.nan)
    z = np.repeat(mu[:, None, :], n, axis=1)  # (k, n, Z); [:, 0] is μ
    z[:, 1:] += np.exp(0.5 * logvar)[:, None, :] * rng.standard_normal((k, n - 1, Z)).astype(np.float32)
    strings = decode(bundle, z.reshape(k * n, Z), np.repeat(props, n, axis=0), temperature=0.0, **decode_kw)
    _, mols = canonical_mols(strings)  # row-major: molecule i's n decodes are mols[i·n : (i+1)·n]
    sims = np.stack([tanimoto_to(s.mol, mols[i * n : (i + 1) * n]) for i, s in enumerate(seeds)])  # (k, n)
    sims = np.nan_to_num(sims, nan=-1.0)  # an invalid decode ranks below every valid one
    best = sims.argmax(axis=1)  # the first maximum: μ when μ decodes to the molecule
    return z[np.arange(k), best], sims[np.arange(k), best]


def encode_molecules(bundle: Bundle, molecules: Sequence[str] | str, with_logvar: bool = False) -> pd.DataFrame:
    """Designer.encode: input, smiles (as encoded), the five RDKit properties, z0.. (μ), logvar0.."""
    molecules = [molecules] if isinstance(molecules, str) else list(molecules)
    seeds = [molecule(bundle, m) for m in molecules]
    props = np.array([s.props for s in seeds])  # (n, 5)
    mu, logvar = encode(bundle, [s.smiles for s in seeds], props)
    df = pd.DataFrame({"input": molecules, "smiles": [s.smiles for s in seeds]})
    for j, k in enumerate(PROPERTIES):
        df[k] = props[:, j]
    parts = [df, pd.DataFrame(mu, columns=[f"z{i}" for i in range(mu.shape[1])])]
    if with_logvar:
        parts.append(pd.DataFrame(logvar, columns=[f"logvar{i}" for i in range(mu.shape[1])]))
    return pd.concat(parts, axis=1)


def decode_latents(bundle: Bundle, z, conditions: Mapping[str, float] | np.ndarray | None = None,
                   temperature: float = 0.0, seed: int = 0, constrained: bool = True, beam: int = 0) -> pd.DataFrame:
    """Designer.decode: latents (n, Z), or an `encode` table whose properties are the base
    conditions, decoded under `conditions` (raw (n, 5) values, a dict of some properties, or None)."""
    check_beam(beam)
    rng, gen = generators(bundle, seed)
    base = None
    if isinstance(z, pd.DataFrame):
        if all(k in z.columns for k in PROPERTIES):
            base = z[list(PROPERTIES)].to_numpy(np.float64)  # (n, 5) the encoded molecules' own properties
        z = z[[c for c in z.columns if c.startswith("z") and c[1:].isdigit()]].to_numpy(np.float32)
    z = np.array(np.atleast_2d(z), dtype=np.float32)  # a writable copy (pandas may hand out read-only views)
    if z.shape[1] != bundle.config.latent_dim:
        raise DesignInputError(f"z has {z.shape[1]} dimensions; this model's latent has {bundle.config.latent_dim}")
    if conditions is None or isinstance(conditions, Mapping):
        cond = condition_rows(bundle, len(z), checked_conditions(bundle, dict(conditions or {})), rng, base)
    else:
        cond = np.broadcast_to(np.asarray(conditions, np.float64), (len(z), len(PROPERTIES))).copy()
    strings = decode(bundle, z, cond, temperature, generator=gen, constrained=constrained, beam=beam)
    return result_table(strings)
