"""Guides: molecules that already have what the search is after (known actives, a library's
best molecules), given with `--guide FILE`. Each start's search first decodes points on the
straight lines from the start's own point u₀ towards the latent points of its GUIDES_PER_START
most similar guides (retrieval-guided search, as RetMol, Wang et al. 2023), so CMA-ES can begin
in the region where such molecules live; then it runs as usual from the best feasible point.

The guides are the user's own molecules, so a decode that *is* a guide is not a proposal: like
the start, it is marked not new, never ranked, and never ends a search at --stop-at. It still
steers CMA-ES (its fitness counts): it tells the search where good molecules are."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from rdkit import DataStructs

from ...chem import InvalidSmiles, morgan_fp, mol_from_smiles, quiet_rdkit, standardize
from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ..seeds import Seed, prepare_molecule
from .space import Space, seed_point

GUIDES_PER_START = 3  # the nearest guides each start walks towards
GUIDE_STEPS = (0.25, 0.5, 0.75, 1.0)  # fractions of the way from u₀ to a guide's point: 3 × 4 = 12 decodes
# (development check, 24 failing QED-task starts: the successes came from 0.5–1.0 of the way; nearer
# fractions decode to the start's own neighbourhood, which CMA-ES covers anyway)
MAX_TRIED = 20  # guides tried per start when the nearest cannot be encoded (vocabulary, length)


@dataclass
class Guides:
    """Standardized canonical guide molecules, their Morgan fingerprints (r = 2, 2048 bits, the
    similarity of the constraint) and the set of their SMILES (the molecules not to propose)."""

    smiles: list[str]
    fps: list
    known: frozenset

    @classmethod
    def of(cls, molecules: Iterable[str]) -> "Guides":
        """Guides from SMILES (standardized as training molecules are; duplicates kept once).
        A SMILES RDKit cannot read raises DesignInputError naming it and its line."""
        smiles: dict[str, None] = {}
        with quiet_rdkit():
            for i, text in enumerate(molecules, 1):
                try:
                    smiles[standardize(str(text))] = None
                except InvalidSmiles:
                    raise DesignInputError(f"guide {i}: {text!r} is not a valid SMILES") from None
        if not smiles:
            raise DesignInputError("the guide file has no molecules")
        keys = list(smiles)
        return cls(keys, [morgan_fp(mol_from_smiles(s)) for s in keys], frozenset(keys))

    def nearest(self, seed: Seed) -> np.ndarray:
        """Indices of the guides by similarity to the start, most similar first (the start itself excluded)."""
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(morgan_fp(mol_from_smiles(seed.smiles)), self.fps))
        order = np.argsort(-sims, kind="stable")
        return order[np.asarray(self.smiles, dtype=object)[order] != seed.smiles]

    def points(self, bundle: Bundle, seed: Seed, u0: np.ndarray, space: Space) -> np.ndarray:
        """The first points of the start's search: u₀ + a·(u_g − u₀) for a in GUIDE_STEPS, for its
        GUIDES_PER_START nearest guides the model can encode → (k · len(GUIDE_STEPS), D), guide-major
        (fewer rows when fewer guides are encodable among the MAX_TRIED nearest)."""
        rows = []
        found = 0
        for g in self.nearest(seed)[:MAX_TRIED]:
            try:
                with warnings.catch_warnings():  # a guide's standardization or range notes are not the user's concern
                    warnings.simplefilter("ignore")
                    ug = seed_point(bundle, prepare_molecule(bundle, self.smiles[g]), space)
            except (DesignInputError, InvalidSmiles):  # outside the vocabulary, too long: the next guide
                continue
            rows += [u0 + a * (ug - u0) for a in GUIDE_STEPS]
            found += 1
            if found == GUIDES_PER_START:
                break
        return space.clip(np.stack(rows).astype(np.float32)) if rows else np.zeros((0, len(u0)), np.float32)
