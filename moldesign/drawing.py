"""Grid images of molecules (PNG or SVG) with RDKit's Draw.MolsToGridImage.

Files are written to a temporary name and renamed, so a failed run leaves no half image.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

GRID_SUFFIXES = (".png", ".svg")
MAX_GRID = 100  # beyond this a grid image is unreadable; callers say how many were drawn


def check_grid_path(path: str | Path) -> Path:
    """Raise ValueError for a suffix other than .png/.svg (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() not in GRID_SUFFIXES:
        raise ValueError(f"--grid must end in .png or .svg, got {str(path)!r}")
    return path


def fmt(x, spec: str = ".1f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def legend(row: dict, title: str = "", similarity: bool = True) -> str:
    """Two short lines of key properties for a grid cell (RDKit values from a result row)."""
    if not row.get("valid", True) or row.get("mw") is None or (isinstance(row.get("mw"), float) and math.isnan(row["mw"])):
        return f"{title} invalid".strip()
    first = f"{title + ': ' if title else ''}MW {fmt(row['mw'], '.0f')}  LogP {fmt(row['logp'], '.2f')}"
    second = f"HBD {fmt(row['hbd'], '.0f')} HBA {fmt(row['hba'], '.0f')} TPSA {fmt(row['tpsa'], '.0f')}"
    if "qed" in row:
        second += f" QED {fmt(row['qed'], '.2f')}"
    if similarity and row.get("similarity") is not None and not (isinstance(row["similarity"], float) and math.isnan(row["similarity"])):
        second += f" sim {row['similarity']:.2f}"
    return f"{first}\n{second}"


def grid_image(smiles: Sequence[str | None], legends: Sequence[str], path: str | Path, per_row: int = 5,
               size: tuple[int, int] = (300, 260)) -> int:
    """Draw molecules in a grid (invalid / None entries as empty cells with their legend) and write
    PNG or SVG by suffix. Draws at most MAX_GRID; returns the number drawn."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    path = check_grid_path(path)
    smiles, legends = list(smiles)[:MAX_GRID], list(legends)[:MAX_GRID]
    mols = []
    for s in smiles:
        m = Chem.MolFromSmiles(s) if isinstance(s, str) and s else None
        mols.append(m if m is not None else Chem.Mol())
    svg = path.suffix.lower() == ".svg"
    img = Draw.MolsToGridImage(mols, molsPerRow=min(per_row, max(1, len(mols))), subImgSize=size,
                               legends=legends, useSVG=svg)  # this RDKit has no maxMols cap; we cap at MAX_GRID
    from .data import atomic_path

    with atomic_path(path) as tmp:
        if svg:
            Path(tmp).write_text(img if isinstance(img, str) else img.data)
        else:
            img.save(tmp, format="PNG")
    return len(mols)
