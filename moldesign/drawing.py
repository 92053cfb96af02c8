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


def mol_image(smiles: str | None, size: tuple[int, int] = (260, 200)):
    """One molecule as a PIL image (RDKit Draw.MolToImage), or None when `smiles` does not parse."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles else None
    return Draw.MolToImage(mol, size=size) if mol is not None and mol.GetNumAtoms() else None


def property_histograms(df, targets: dict, seed: dict | None = None, names: Sequence[str] = ()):
    """A matplotlib Figure: one histogram per property of the rows of `df` (RDKit values), a solid
    line at each requested target and a dashed one at the seed's value. `names`: the columns to
    draw (default the five conditioning properties)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: figures are rendered to images by the caller
    import matplotlib.pyplot as plt

    from .chem import PROPERTIES

    names = list(names) or list(PROPERTIES)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 2.6), squeeze=False)
    for ax, k in zip(axes[0], names):
        values = df[k].dropna().to_numpy() if k in df else []
        ax.hist(values, bins=min(20, max(5, len(values) // 2)), color="#4c72b0", alpha=0.8)
        if seed is not None and k in seed:
            ax.axvline(seed[k], color="#55a868", ls="--", lw=1.5, label="seed")
        if k in targets:
            ax.axvline(targets[k], color="#c44e52", lw=2, label="target")
        ax.set_title(k.upper() if k != "logp" else "LogP", fontsize=10)
        ax.tick_params(labelsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def trajectory_plot(trajectory, seed_objective: float | None = None):
    """A matplotlib Figure of an optimize trajectory: RDKit objective (points; invalid decodes
    left out) and the surrogate's prediction (line) against step, one colour per chain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3.6))  # wide: the app stretches figures to the page width
    for chain, g in trajectory.groupby("chain"):
        color = f"C{int(chain) % 10}"
        ax.plot(g["step"], g["pred_objective"], color=color, lw=1, alpha=0.7)
        v = g[g["valid"]]
        ax.scatter(v["step"], v["objective"], color=color, s=12, label=f"chain {chain}")
    if seed_objective is not None:
        ax.axhline(seed_objective, color="k", ls="--", lw=1, label="seed (RDKit)")
    ax.set_xlabel("step")
    ax.set_ylabel("objective (points: RDKit, lines: surrogate)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
