"""Randomized SMILES for training: K precomputed variants per molecule.

The same molecule written from a random atom order (RDKit's MolToRandomSmilesVect) is a new
string with the same meaning. Trained on a fresh variant each epoch, a SMILES model sees many
spellings of each of its ~220k molecules and generalizes instead of memorizing one string per
molecule (Bjerrum 2017; Arús-Pous et al. 2019, J. Cheminform. 11:71, on ZINC and GDB subsets).

Why precomputed: on a 2-core machine an RDKit loader worker would take the core the training
thread does not use, every epoch. K variants are drawn once (cached on disk by content), and each
epoch picks one of the K per molecule at random, so over E epochs a molecule is spelled up to
min(E, K) ways. A variant that does not fit the model (longer than max_len tokens, or a token the
vocabulary lacks, e.g. a ring-closure digit canonical strings never needed) is replaced by the
canonical string, and counted.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

RANDOMIZE_MODES = ("none", "input", "both")
"""none: encoder and decoder read the canonical string; input: the encoder reads a random variant
and the decoder writes the canonical string (CDDD's random → canonical); both: encoder and decoder
read the same random variant (reconstruction then counts the molecule, not the string)."""


@dataclass
class Variants:
    """ids (K, n, L) uint8 token ids with <bos>/<eos>, zero-padded; lengths (K, n) incl. bos/eos;
    n_fallback: variants replaced by the canonical string because they did not fit."""

    ids: np.ndarray
    lengths: np.ndarray
    n_fallback: int
    seconds: float = 0.0

    @property
    def k(self) -> int:
        return self.ids.shape[0]

    def pick(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One variant per molecule, drawn uniformly: (ids (n, L) uint8, lengths (n,))."""
        n = self.ids.shape[1]
        choice = rng.integers(self.k, size=n)
        rows = np.arange(n)
        return self.ids[choice, rows], self.lengths[choice, rows]


def _variants_of(smiles: str, k: int, seed: int) -> list[str]:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return [smiles] * k
    return list(Chem.MolToRandomSmilesVect(mol, k, randomSeed=seed))


def make_variants(smiles: Sequence[str], vocab, max_len: int, k: int, seed: int = 0,
                  log: Callable = print) -> Variants:
    """K random SMILES per molecule, encoded with `vocab`. Deterministic for a given seed: molecule i
    draws with seed (seed * 1_000_003 + i) mod 2^31 so a subset or a reordering draws the same."""
    t0 = time.time()
    n = len(smiles)
    ids = np.zeros((k, n, max_len), dtype=np.uint8)
    lengths = np.zeros((k, n), dtype=np.int16)
    fallback = 0
    for i, s in enumerate(smiles):
        canonical = vocab.encode(s, max_len=max_len)  # the caller kept only encodable molecules
        for j, v in enumerate(_variants_of(s, k, (seed * 1_000_003 + i) % 2**31)):
            try:
                seq = vocab.encode(v, max_len=max_len)
            except (ValueError, KeyError):
                seq, fallback = canonical, fallback + 1
            ids[j, i, : len(seq)] = seq
            lengths[j, i] = len(seq)
    out = Variants(ids, lengths, fallback, time.time() - t0)
    log(f"randomized SMILES: {k} variants of {n} molecules in {out.seconds:.0f} s; "
        f"{fallback} ({fallback / max(1, k * n):.2%}) replaced by the canonical string (too long or unknown token)")
    return out


def cached_variants(smiles: Sequence[str], vocab, max_len: int, k: int, seed: int, cache: Path | None,
                    log: Callable = print) -> Variants:
    """make_variants, cached in `cache` under a key of the molecules, vocabulary, max_len, k and seed."""
    if cache is None:
        return make_variants(smiles, vocab, max_len, k, seed, log)
    key = hashlib.sha256("\n".join([*smiles, "|", *vocab.tokens, "|", str(max_len), str(k), str(seed)]).encode())
    path = Path(cache) / f"variants-{key.hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as z:
            log(f"randomized SMILES: {k} variants per molecule from {path}")
            return Variants(z["ids"], z["lengths"], int(z["n_fallback"]))
    from ..data import atomic_path

    out = make_variants(smiles, vocab, max_len, k, seed, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:  # a killed run leaves no half cache that looks complete
        np.savez(tmp, ids=out.ids, lengths=out.lengths, n_fallback=np.array(out.n_fallback))
    return out
