"""Guides: molecules that already have what the search is after (known actives, a library's
best molecules), given with `--guide FILE`. Each start's search first decodes points on the
straight lines from the start's own point u₀ towards the latent points of its GUIDES_PER_START
most similar guides (retrieval-guided search, as RetMol, Wang et al. 2023), so CMA-ES can begin
in the region where such molecules live; then it runs as usual from the best feasible point.
Before each restart (--fill-budget) the search walks again, from its best feasible point towards
the guides nearest to the best molecule found that it has not walked towards yet: as in RetMol,
the guides follow what the search has reached (search.StartSearch._guide_points; on the QED
task's 100 development starts this solved one more start, losing none: models/MODEL_CARD.md).

The guides are the user's own molecules, so a decode that *is* a guide is not a proposal: like
the start, it is marked not new, never ranked, and never ends a search at --stop-at. It still
steers CMA-ES (its fitness counts): it tells the search where good molecules are."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Collection, Iterable

import numpy as np
from rdkit import DataStructs

from ...chem import InvalidSmiles, morgan_fp, mol_from_smiles, quiet_rdkit, standardize
from ...errors import DesignInputError
from ...model.checkpoint import Bundle
from ..seeds import prepare_molecule
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

    def nearest(self, smiles: str) -> np.ndarray:
        """Indices of the guides by similarity to a molecule (standardized SMILES), most similar
        first, the molecule itself excluded."""
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(morgan_fp(mol_from_smiles(smiles)), self.fps))
        order = np.argsort(-sims, kind="stable")
        return order[np.asarray(self.smiles, dtype=object)[order] != smiles]

    def points(self, bundle: Bundle, smiles: str, origin: np.ndarray, space: Space,
               skip: Collection[int] = ()) -> tuple[np.ndarray, list[int]]:
        """Points on the lines from `origin` (D,) towards the latent points of the GUIDES_PER_START
        guides nearest to `smiles` that are not in `skip` and that the model can encode:
        origin + a·(u_g − origin) for a in GUIDE_STEPS → ((k · len(GUIDE_STEPS), D) guide-major,
        the k guides' indices); fewer when fewer are encodable among the MAX_TRIED nearest."""
        rows, used = [], []
        for g in [int(i) for i in self.nearest(smiles) if int(i) not in skip][:MAX_TRIED]:
            try:
                with warnings.catch_warnings():  # a guide's standardization or range notes are not the user's concern
                    warnings.simplefilter("ignore")
                    ug = seed_point(bundle, prepare_molecule(bundle, self.smiles[g]), space)
            except (DesignInputError, InvalidSmiles):  # outside the vocabulary, too long: the next guide
                continue
            rows += [origin + a * (ug - origin) for a in GUIDE_STEPS]
            used.append(g)
            if len(used) == GUIDES_PER_START:
                break
        pts = space.clip(np.stack(rows).astype(np.float32)) if rows else np.zeros((0, len(origin)), np.float32)
        return pts, used
