"""Filters for designed molecules: the default sanity filter, `--keep` substructures and the
`screen` filter language (`--filter 'qed>=0.5'`) applied to generate / interpolate tables.

The sanity filter removes what a medicinal chemist would strike out at a glance and what the
decoder produces far more often than its training data contains (issue 11: 7+-membered rings in
20-37% of Tamiflu-like outputs against 2.6% of training molecules). A molecule fails it when it has

* a strained small ring with heteroatoms (SANITY_SMARTS): a 3-membered ring with two heteroatoms
  (oxaziridine, diaziridine, dioxirane), a 3-membered ring with a heteroatom and an sp2 ring atom
  (α-lactone, aziridinone, azirine, thiiranone), a 4-membered ring with two or more heteroatoms
  (1,2-dioxetane, diazetidine); plain epoxides, aziridines, oxetanes and β-lactams pass, as they
  occur in drugs;
* an N-CF3 group (hydrolytically unstable, absent from drug-like sets);
* a ring larger than `max_ring_size` atoms (default 8) in the smallest set of smallest rings;
* a synthetic accessibility score above `max_sa` (default 6.0 on the 1 (easy)..10 (hard) scale).

`Sanity.off()` disables it (`--no-sanity` on the CLI). Every removal is counted by reason.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem

from ..chem import structural_alerts
from ..screening.screen import FilterError, RangeFilter, parse_filter

DEFAULT_MAX_RING_SIZE = 8
DEFAULT_MAX_SA = 6.0
SANITY_SMARTS = {
    "3-ring with 2 heteroatoms": "[!#6;R]1~[!#6;R]~*~1",
    "3-ring with heteroatom and sp2 atom": "[!#6;r3]1~*~[#6;r3;$(*=*)]~1",
    "4-ring with 2 adjacent heteroatoms": "[!#6;R]1~[!#6;R]~*~*~1",
    "4-ring with 2 heteroatoms": "[!#6;R]1~*~[!#6;R]~*~1",
    "N-CF3": "[#7]C(F)(F)F",
}
DESIGN_FILTER_KEYS = ("mw", "logp", "hbd", "hba", "tpsa", "qed", "sa", "similarity", "pains", "brenk")
"""What --filter may test on generate / interpolate rows: every numeric output column plus the
PAINS / Brenk alert counts (computed only when a filter names them)."""


@functools.lru_cache(maxsize=1)
def _sanity_patterns() -> dict[str, Chem.Mol]:
    return {name: Chem.MolFromSmarts(s) for name, s in SANITY_SMARTS.items()}


@dataclass(frozen=True)
class Sanity:
    """The default sanity filter (see module docstring); `enabled=False` lets everything through."""

    enabled: bool = True
    max_ring_size: int = DEFAULT_MAX_RING_SIZE
    max_sa: float = DEFAULT_MAX_SA

    @classmethod
    def off(cls) -> "Sanity":
        return cls(enabled=False)

    def problems(self, mol: Chem.Mol, sa: float | None = None) -> list[str]:
        """Why `mol` fails (empty list: it passes). `sa`: its SA score when already computed."""
        if not self.enabled:
            return []
        out = [name for name, patt in _sanity_patterns().items() if mol.HasSubstructMatch(patt)]
        rings = [len(r) for r in mol.GetRingInfo().AtomRings()]
        if rings and max(rings) > self.max_ring_size:
            out.append(f"ring size {max(rings)} > {self.max_ring_size}")
        if sa is not None and sa == sa and sa > self.max_sa:
            out.append(f"sa > {self.max_sa:g}")
        return out


def parse_keep(smarts: str | None) -> Chem.Mol | None:
    """The --keep substructure as an RDKit query; FilterError naming the text when it does not parse."""
    if smarts is None:
        return None
    q = Chem.MolFromSmarts(smarts) if smarts.strip() else None
    if q is None or q.GetNumAtoms() == 0:
        raise FilterError(f"--keep {smarts!r} is not a valid SMARTS pattern")
    return q


def parse_design_filters(texts: Sequence[str] | None) -> list[RangeFilter]:
    """`screen`'s filter language restricted to columns a design table has (DESIGN_FILTER_KEYS)."""
    out = []
    for t in texts or ():
        f = parse_filter(t)
        if f.key not in DESIGN_FILTER_KEYS:
            raise FilterError(f"filter {t!r}: {f.key!r} is not a column of designed molecules; "
                              f"choose from {', '.join(DESIGN_FILTER_KEYS)}")
        out.append(f)
    return out


@dataclass
class MoleculeFilter:
    """Everything a designed molecule must pass: the sanity filter, the --keep substructure, the
    --filter expressions and a minimum similarity to the seed. `check` gives the reasons a
    molecule fails; `removed` counts molecules by their first failing reason."""

    sanity: Sanity = Sanity()
    keep: Chem.Mol | None = None
    filters: Sequence[RangeFilter] = ()
    min_similarity: float | None = None

    def __post_init__(self):
        self.removed: dict[str, int] = {}
        self._alerts = {f.key for f in self.filters if f.key in ("pains", "brenk")}

    def check(self, mol: Chem.Mol, values: Mapping[str, float]) -> list[str]:
        """Reasons `mol` fails (empty: it passes). `values`: its row (RDKit scores, similarity)."""
        why = []
        if self.min_similarity is not None and not values.get("similarity", np.nan) >= self.min_similarity:
            why.append(f"similarity < {self.min_similarity:g}")
        if self.keep is not None and not mol.HasSubstructMatch(self.keep):
            why.append("lacks --keep substructure")
        why += self.sanity.problems(mol, values.get("sa"))
        if self.filters:
            vals = dict(values)
            for a in self._alerts:
                vals[a] = float(len(structural_alerts(mol, a)))
            why += [f.text for f in self.filters if not f.apply(np.array([vals.get(f.key, np.nan)]))[0]]
        return why

    def passes(self, mol: Chem.Mol, values: Mapping[str, float]) -> bool:
        why = self.check(mol, values)
        if why:
            self.removed[why[0]] = self.removed.get(why[0], 0) + 1
        return not why

    def table_mask(self, df: pd.DataFrame, mols: Sequence[Chem.Mol | None]) -> tuple[np.ndarray, list[str]]:
        """(passes (n,), reasons per row) for a table with one row per molecule (None: invalid)."""
        rows = df.to_dict("records")
        reasons = [("invalid" if m is None else "; ".join(self.check(m, r))) for m, r in zip(mols, rows)]
        return np.array([r == "" for r in reasons], dtype=bool), reasons

    @property
    def active(self) -> bool:
        return self.sanity.enabled or self.keep is not None or bool(self.filters) or self.min_similarity is not None
