"""Pictures: grid images of molecules (RDKit's Draw.MolsToGridImage) and plots (matplotlib).

Grids paginate: at most PER_ROW columns and ROWS_PER_PAGE rows per image (a 100-molecule grid
was one unreadable 1500×5200 PNG), further pages beside the first as NAME-2.png, NAME-3.png, ...
Plots: generate (property histograms against the requested targets and the seed, similarity),
interpolate (the path as one row of structures labelled by α, invalid steps marked), evaluate
(generated vs reference property distributions), optimize (objective and best molecule per step;
a batch's best-so-far curves). matplotlib runs headless (Agg backend).
Files are written to a temporary name and renamed, so a failed run leaves no half image.

The pictures of the design commands' results (generate_plot, generate_grid, interpolate_plot,
interpolate_grid, optimize_grid) take their tables as the design API returns them; a seed is any
object with .mol, .smiles and .label (design.seeds.Seed, not imported: drawing and design are
neighbours, neither imports the other).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

GRID_SUFFIXES = (".png", ".svg")
MAX_GRID = 100  # molecules drawn at most (over all pages); callers say how many were drawn
PER_ROW = 5
ROWS_PER_PAGE = 4  # 5 × 4 cells of 300 × 260 px: a 1500 × 1040 image, readable on any screen
PLOT_SUFFIXES = (".png", ".svg")


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


def page_paths(path: str | Path, pages: int) -> list[Path]:
    """NAME.png, NAME-2.png, ... for `pages` pages (the first page keeps the name asked for)."""
    path = Path(path)
    return [path] + [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(2, pages + 1)]


def grid_image(smiles: Sequence[str | None], legends: Sequence[str], path: str | Path, per_row: int = PER_ROW,
               size: tuple[int, int] = (300, 260), rows_per_page: int = ROWS_PER_PAGE) -> int:
    """Draw molecules in grids of at most per_row × rows_per_page (invalid / None entries as
    empty cells with their legend) and write PNG or SVG by suffix: `path`, then path-2, path-3,
    ... for further pages. Draws at most MAX_GRID; returns the number drawn."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    from .data import atomic_path

    path = check_grid_path(path)
    smiles, legends = list(smiles)[:MAX_GRID], list(legends)[:MAX_GRID]
    mols = []
    for s in smiles:
        m = Chem.MolFromSmiles(s) if isinstance(s, str) and s else None
        mols.append(m if m is not None else Chem.Mol())
    svg = path.suffix.lower() == ".svg"
    per_page = per_row * rows_per_page
    pages = max(1, math.ceil(len(mols) / per_page))
    for page, out in enumerate(page_paths(path, pages)):
        sl = slice(page * per_page, (page + 1) * per_page)
        img = Draw.MolsToGridImage(mols[sl], molsPerRow=min(per_row, max(1, len(mols[sl]))), subImgSize=size,
                                   legends=legends[sl], useSVG=svg)
        with atomic_path(out) as tmp:
            if svg:
                Path(tmp).write_text(img if isinstance(img, str) else img.data)
            else:
                img.save(tmp, format="PNG")
    return len(mols)


# ------------------------------------------------------------------ plots (matplotlib)
def check_plot_path(path: str | Path) -> Path:
    """Raise ValueError for a --plot suffix other than .png/.svg (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"--plot must end in .png or .svg, got {str(path)!r}")
    return path


def _figure(n_panels: int, cols: int = 4, panel: tuple[float, float] = (3.2, 2.6)):
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless: no display on servers or in CI
    import matplotlib.pyplot as plt

    rows = max(1, math.ceil(n_panels / cols))
    cols = min(cols, n_panels)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .data import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=110)
    plt.close(fig)


LABELS = {"mw": "MW (g/mol)", "logp": "LogP", "hbd": "HBD", "hba": "HBA", "tpsa": "TPSA (Å²)", "qed": "QED",
          "sa": "SA score", "similarity": "Tanimoto to seed"}


def _hist(ax, values, key: str, **kw) -> None:
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if key in ("hbd", "hba"):  # counts: one bar per integer
        bins = np.arange(v.min() - 0.5, v.max() + 1.5) if len(v) else 10
    else:
        bins = 20
    if len(v):
        ax.hist(v, bins=bins, **kw)


def plot_generate(df, path: str | Path, requested: dict | None = None, seed: dict | None = None,
                  title: str = "") -> Path:
    """Histograms of the outputs' RDKit properties, QED, SA and similarity; dashed red line at a
    requested value, solid black at the seed's own value. With `seed_id`, one colour per seed."""
    path = check_plot_path(path)
    keys = ["mw", "logp", "hbd", "hba", "tpsa", "qed", "sa"]
    if "similarity" in df and df["similarity"].notna().any():
        keys.append("similarity")
    fig, axes = _figure(len(keys))
    groups = list(df.groupby("seed_id", sort=False)) if "seed_id" in df and df["seed_id"].nunique() > 1 else [(None, df)]
    for ax, k in zip(axes, keys):
        for gid, g in groups[:8]:
            _hist(ax, g[k], k, alpha=0.6 if gid is not None else 0.85, label=str(gid) if gid is not None else None)
        if requested and k in requested:
            ax.axvline(requested[k], color="red", ls="--", lw=1.5, label="requested")
        if seed and k in seed and seed[k] == seed[k]:
            ax.axvline(seed[k], color="black", lw=1.5, label="seed")
        ax.set_xlabel(LABELS.get(k, k))
        ax.set_ylabel("molecules")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title or f"{len(df)} generated molecules", fontsize=10)
    _save(fig, path)
    return path


def plot_distributions(generated, reference, path: str | Path, title: str = "",
                       labels: tuple[str, str] = ("generated", "test")) -> Path:
    """Overlaid density histograms per property: generated vs reference (e.g. MOSES test).
    `generated`, `reference`: DataFrames with some of mw logp hbd hba tpsa qed sa."""
    import numpy as np

    path = check_plot_path(path)
    keys = [k for k in ("mw", "logp", "hbd", "hba", "tpsa", "qed", "sa") if k in generated and k in reference]
    fig, axes = _figure(len(keys))
    for ax, k in zip(axes, keys):
        both = np.concatenate([np.asarray(generated[k], float), np.asarray(reference[k], float)])
        both = both[~np.isnan(both)]
        if len(both):
            lo, hi = np.percentile(both, [0.5, 99.5])
            bins = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.5) if k in ("hbd", "hba") else np.linspace(lo, hi, 31)
            for data, lab in ((reference[k], labels[1]), (generated[k], labels[0])):
                ax.hist(np.asarray(data, float), bins=bins, density=True, alpha=0.55, label=lab)
        ax.set_xlabel(LABELS.get(k, k))
        ax.set_ylabel("density")
    if keys:
        axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path


def plot_path(rows: Sequence[dict], path: str | Path, per_row: int = 10, title: str = "") -> Path:
    """An interpolation path as rows of structures (at most `per_row` per line), each labelled
    with its step and α; an invalid step is an empty red-framed cell saying "invalid"."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    path = check_plot_path(path)
    n = len(rows)
    cols = min(per_row, n)
    fig, axes = _figure(n, cols=cols, panel=(2.2, 2.4))
    for ax, r in zip(axes, rows):
        mol = Chem.MolFromSmiles(r["smiles"]) if r.get("valid") and isinstance(r.get("smiles"), str) else None
        ax.set_xticks([]), ax.set_yticks([])
        if mol is not None:
            ax.imshow(Draw.MolToImage(mol, size=(300, 300)))
            label = f"{r['step']}  α={r['alpha']:.2f}" + ("  (same)" if r.get("duplicate") else "")
        else:
            ax.text(0.5, 0.5, "invalid", ha="center", va="center", color="red", fontsize=12, transform=ax.transAxes)
            for spine in ax.spines.values():
                spine.set_color("red")
            label = f"{r['step']}  α={r['alpha']:.2f}  invalid"
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path


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


# ------------------------------------------------------------------ design results
def generate_plot(df, path: str | Path) -> Path:
    """plot_generate of a generate table, with the requested conditions and the seed's values
    from `df.attrs` (a generate_batch table: its valid rows, one colour per seed)."""
    from .chem import mol_scores

    seed = df.attrs.get("seed")
    seed_values = {**mol_scores(seed.mol), "similarity": 1.0} if seed is not None else None
    title = f"{len(df)} molecules" + (f" like {seed.label}" if seed is not None else "")
    if "seed_id" in df:
        title = f"{int(df['valid'].sum())} molecules from {df['seed_id'].nunique()} seeds"
        df = df[df["valid"]]
    return plot_generate(df, path, df.attrs.get("requested") or None, seed_values, title)


def interpolate_plot(df, path: str | Path) -> Path:
    """plot_path of an interpolate table, titled with its two ends."""
    ends = df.attrs.get("ends")
    title = f"{ends[0].label} → {ends[1].label}" if ends else ""
    return plot_path(df.to_dict("records"), path, title=title)


def generate_grid(df, path: str | Path, seed=None) -> int:
    """A grid of a generate table's molecules, the seed (when given) first."""
    from .chem import mol_scores

    rows = df.to_dict("records")
    smiles = [r["smiles"] for r in rows]
    legends = [legend(r, f"#{i + 1}") for i, r in enumerate(rows)]
    if seed is not None:
        s = mol_scores(seed.mol)
        smiles.insert(0, seed.smiles)
        label = seed.label if len(seed.label) <= 20 else seed.label[:19] + "…"
        legends.insert(0, legend({**s, "valid": True}, f"seed {label}", similarity=False))
    return grid_image(smiles, legends, path)


def interpolate_grid(df, path: str | Path) -> int:
    """A grid of an interpolate table's steps (invalid ones as empty cells)."""
    rows = df.to_dict("records")
    legends = [legend({**r, "similarity": None}, f"{r['step']} a={r['alpha']:.2f}{' dup' if r['duplicate'] else ''}")
               for r in rows]
    return grid_image([r["smiles"] if r["valid"] else None for r in rows], legends, path)


def optimize_grid(result, path: str | Path, seed) -> int:
    """A grid of an optimize result's best proposals (`result.best`), the start first."""
    from .chem import mol_scores

    s = mol_scores(seed.mol)
    smiles = [seed.smiles] + result.best["smiles"].tolist()
    legends = [legend({**s, "valid": True}, "start", similarity=False)]
    legends += [legend(r, f"#{int(r['rank'])} J={r['objective']:.2f}") for r in result.best.to_dict("records")]
    return grid_image(smiles, legends, path)


# ------------------------------------------------------------------ optimize progress plots
OPTIMIZE_PLOT_COLUMNS = ("qed", "logp", "mw", "tpsa", "sa", "similarity")  # the best molecule's, vs step


def optimize_plot(curve, path: str | Path, seed_objective: float | None = None, title: str = "",
                  columns: Sequence[str] = OPTIMIZE_PLOT_COLUMNS) -> Path:
    """One start's search against step (a CMA-ES generation; steps run on across restarts): the
    objective (the best new feasible molecule of each step as points, the best so far as a line,
    the start's objective dashed), then RDKit properties of the best-so-far molecule (its
    similarity to the start included). `curve`: design.optimize.best_so_far's table (step,
    oracle_calls, step_best, best_objective, best_<column>)."""
    path = check_plot_path(path)
    cols = [c for c in columns if f"best_{c}" in curve]
    fig, axes = _figure(1 + len(cols), cols=4)
    ax = axes[0]
    ax.scatter(curve["step"], curve["step_best"], s=10, color="#4c72b0", alpha=0.6, label="best of step")
    ax.plot(curve["step"], curve["best_objective"], color="#c44e52", lw=2, label="best so far")
    if seed_objective is not None and seed_objective == seed_objective:
        ax.axhline(seed_objective, color="black", ls="--", lw=1, label="start")
    ax.set_xlabel("step")
    ax.set_ylabel("objective (RDKit)")
    ax.legend(fontsize=7)
    for ax, c in zip(axes[1:], cols):
        ax.plot(curve["step"], curve[f"best_{c}"], color="#55a868", lw=1.5, drawstyle="steps-post")
        ax.set_xlabel("step")
        ax.set_ylabel(f"best molecule: {LABELS.get(c, c)}" if c != "similarity" else "best: Tanimoto to start")
    if len(curve) and "oracle_calls" in curve:
        title = f"{title}  ({int(curve['oracle_calls'].iloc[-1])} oracle calls)".strip()
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path


def optimize_batch_plot(curves: dict, path: str | Path, title: str = "", max_lines: int = 200) -> Path:
    """A batch of starts: each start's best-so-far improvement over its start (objective units)
    against oracle calls (thin lines, at most `max_lines`), with the median and the interquartile
    band over starts (a start counts from its first feasible proposal). `curves`: start id →
    {"oracle_calls": (n,) per step, "improvement": (n,) best so far minus the start's objective,
    None/NaN before the first feasible proposal}."""
    import numpy as np

    path = check_plot_path(path)
    fig, axes = _figure(1, cols=1, panel=(8.0, 4.2))
    ax = axes[0]
    series = [(np.asarray(c["oracle_calls"], float), np.asarray(c["improvement"], float)) for c in curves.values()
              if c and len(c["oracle_calls"])]
    for x, y in series[:max_lines]:
        ax.plot(x, y, color="#4c72b0", lw=0.8, alpha=0.6 if len(series) <= 20 else 0.3, drawstyle="steps-post")
    if series:
        grid = np.linspace(0, max(x[-1] for x, _ in series), 200)  # (200,) common oracle-call axis
        at = np.full((len(series), len(grid)), np.nan)  # (starts, 200): best so far at each grid point
        for i, (x, y) in enumerate(series):
            j = np.searchsorted(x, grid, side="right") - 1
            at[i, j >= 0] = y[j[j >= 0]]
            at[i, grid > x[-1]] = y[-1]  # a start that stopped early keeps its final best
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before any feasible proposal
                q1, med, q3 = np.nanpercentile(at, [25, 50, 75], axis=0)
        ax.fill_between(grid, q1, q3, color="#c44e52", alpha=0.2, label="quartiles over starts")
        ax.plot(grid, med, color="#c44e52", lw=2.2, label="median")
    ax.axhline(0, color="black", ls="--", lw=1)
    ax.set_xlabel("oracle calls")
    ax.set_ylabel("best improvement so far (objective units)")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or f"{len(curves)} starts", fontsize=10)
    _save(fig, path)
    return path
