"""`moldesign generate`: molecules with requested properties, from the prior or around a seed
(--like a molecule or a file of seeds); --raw streams every decode."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..config import DEFAULT_OVERSAMPLE, DEFAULT_RADIUS, LIKE_TEMPERATURE, MIN_SIMILARITY_RADIUS  # light: no torch
from ..design.rules import MAX_RADIUS, MAX_TEMPERATURE, SANITY_RULE
from ..errors import UserError
from .common import (MAX_DECODES, MAX_GENERATE, Device, DeviceOpt, ModelOpt, OutOpt, PriorChoice, PriorOpt, QuietOpt,
                     SeedOpt, UnconstrainedOpt, app, bounded, check_grid, check_no_overwrite, check_out_path,
                     check_plot, cli_errors, design_errors, designer, finite, info, nothing_valid, use_prior,
                     write_table)


def _generate_raw(d, like: Optional[str], n: int, out: Optional[Path], seed: int, conditions: dict,
                  grid: Optional[Path], plot: Optional[Path], quiet: bool) -> None:
    """--raw: every decode streamed in chunks (flat memory for any -n, resumable parts beside -o);
    --grid / --plot from the first decodes (chunk 0 is seeded by --seed)."""
    from ..data import CSV_FLOAT_FORMAT

    s = d.generate_raw_to(out, like, n, seed=seed, float_format=CSV_FLOAT_FORMAT, progress=not quiet,
                          log=lambda m: info(m, quiet), **conditions)
    info(f"{n} rows; {n} decodes, validity {s['valid']:.3f}"
         + (f"; {s['reused']} of {s['reused'] + s['parts']} parts reused" if s["reused"] else ""), quiet)
    if grid is not None or plot is not None:
        from ..api import generate_grid, generate_plot

        df = d.generate(like, min(n, 1000), raw=True, seed=seed, **conditions)
        if grid is not None:
            drawn = generate_grid(df[df["valid"]].assign(smiles=df["canonical"]), grid,
                                  d.molecule(like) if like else None)
            info(f"grid of {drawn} molecules -> {grid}", quiet)
        if plot is not None:
            info(f"plot -> {generate_plot(df, plot)} (first {len(df)} decodes)", quiet)


def _generate_batch(d, like: str, seeds, n: int, options: dict, out: Optional[Path], quiet: bool):
    """Every seed of a seed file; no molecule from any seed: the table (errors) is written, exit 1
    (common.nothing_valid)."""
    info(f"{len(seeds)} seeds from {like}", quiet)
    df = d.generate_batch(seeds, n, progress=None if quiet else (lambda m: info(m, quiet)), **options)
    n_ok = sum("error" not in v for v in df.attrs["summary"].values())
    info(f"{int(df['valid'].sum())} molecules from {n_ok} of {len(seeds)} seeds", quiet)
    if not df["valid"].any():
        write_table(df, out)
        raise nothing_valid(f"molecule from any of the {len(seeds)} seeds of {like}", len(df), out)
    return df


def _summary_line(df, sanity: bool, min_similarity: Optional[float]) -> str:
    s = df.attrs.get("summary", {})
    line = f"{len(df)} rows; {s.get('attempts')} decodes, validity {s.get('valid', 0):.3f}"
    if s.get("candidates", 0) > len(df):
        line += f"; best {len(df)} of {s['candidates']} candidates"
    if s.get("removed"):
        line += (f"; filters removed {s['removed_total']} ("
                 + ", ".join(f"{k}: {v}" for k, v in s["removed"].items()) + ")")
    elif sanity:
        line += "; filters removed 0"
    if min_similarity is not None:
        line += f"; radius {s['radius_start']:.3g} -> {s['radius']:.3g}"
    return line


def _draw(d, df, like: Optional[str], batch: bool, grid: Optional[Path], plot: Optional[Path], quiet: bool) -> None:
    if grid is not None:
        from ..api import generate_grid

        kept = df[df["valid"]] if batch else df
        drawn = generate_grid(kept, grid, d.molecule(like) if like and not batch else None)
        info(f"grid of {drawn} molecules -> {grid}", quiet)
    if plot is not None:
        from ..api import generate_plot

        info(f"plot -> {generate_plot(df, plot)}", quiet)


@app.command()
def generate(
    like: Optional[str] = typer.Option(None, "--like", help="Seed molecule (SMILES or name, e.g. tamiflu): sample around it, its properties are the default condition. A .smi/.csv/.tsv/.parquet FILE runs every seed in it (id column: id, seed_id or name, else the row number) and writes seed_id on every row."),
    mw: Optional[str] = typer.Option(None, "--mw", help="Requested molecular weight (g/mol, > 0)."),
    logp: Optional[str] = typer.Option(None, "--logp", help="Requested Crippen LogP."),
    hbd: Optional[str] = typer.Option(None, "--hbd", help="Requested H-bond donors (integer >= 0)."),
    hba: Optional[str] = typer.Option(None, "--hba", help="Requested H-bond acceptors (integer >= 0)."),
    tpsa: Optional[str] = typer.Option(None, "--tpsa", help="Requested TPSA (Å², > 0)."),
    n: int = typer.Option(50, "-n", callback=bounded(None, MAX_GENERATE), help=f"Number of valid, unique molecules (with --raw: number of decodes); at most {MAX_GENERATE:,}."),
    radius: Optional[float] = typer.Option(None, "--radius", callback=finite(0, MAX_RADIUS), help=f"With --like: std of the Gaussian noise added to the seed's latent, per dimension in prior units (default {DEFAULT_RADIUS}; {MIN_SIMILARITY_RADIUS} where --min-similarity's search starts)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", callback=finite(0, MAX_TEMPERATURE), help=f"Decoding temperature; 0 = greedy (the molecule is set by z alone). Default {LIKE_TEMPERATURE} with --like, 0 without."),
    raw: bool = typer.Option(False, "--raw", help="Write every decoded string in order with a `valid` column (measures validity). Streamed in chunks of 10,000 with flat memory; with -o, parts go to OUT.parts/ first, so an interrupted run resumes when rerun with the same arguments."),
    max_attempts: Optional[int] = typer.Option(None, "--max-attempts", callback=bounded(None, MAX_DECODES), help=f"Decode budget (default max(1000, 20·n·oversample); at most {MAX_DECODES:,}, the default too)."),
    min_similarity: Optional[float] = typer.Option(None, "--min-similarity", callback=finite(), help="With --like: keep only molecules with Tanimoto >= S to the seed (Morgan r=2); the radius adapts while searching."),
    keep: Optional[str] = typer.Option(None, "--keep", help="SMARTS substructure every output must contain, e.g. 'c1ccccc1S(N)(=O)=O'."),
    filters: Optional[list[str]] = typer.Option(None, "--filter", help="PROPERTY OP NUMBER, repeatable, as in screen: --filter 'qed>=0.5' --filter 'similarity>0.4'. PROPERTY: mw logp hbd hba tpsa qed sa similarity pains brenk."),
    sanity: bool = typer.Option(True, "--sanity/--no-sanity", help=f"Default sanity filter: {SANITY_RULE}; the count removed is reported."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Also draw the seed and molecules to FILE.png or FILE.svg (20 per image; more pages as FILE-2.png ...)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Histograms of the outputs' properties vs the requested values and the seed, and of similarity, to FILE.png or FILE.svg."),
    unconstrained: bool = UnconstrainedOpt,
    beam: int = typer.Option(0, "--beam", help="With --like and --radius 0: decode the seed's point by beam search of this width (0/1: greedy)."),
    oversample: Optional[int] = typer.Option(None, "--oversample", help=f"With --like: collect K·n distinct candidates and keep the first n in output order (closest to the requested properties, else most similar to the seed); default {DEFAULT_OVERSAMPLE}, or 1 with --min-similarity; 1: the first n found."),
    prior: PriorChoice = PriorOpt,
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Generate molecules with requested properties, from the prior or around a seed (--like).

    Unset properties come from the seed, else from training molecules near the requested ones.
    Output columns: smiles, mw, logp, hbd, hba, tpsa, qed, sa (RDKit, on the output SMILES),
    similarity (Morgan r=2 Tanimoto to the seed). Sorted by closeness to the requested properties
    (mean |error| / training std) when any were given, then by similarity to the seed; in sampling
    order otherwise.
    """
    from ..api import is_seed_file, read_seeds

    with cli_errors(), design_errors():
        check_out_path(out)
        check_grid(grid)
        check_plot(plot)
        batch = is_seed_file(like)
        check_no_overwrite({"--like": like if batch else None, "--model": model},
                           {"--out": out, "--grid": grid, "--plot": plot})
        if batch and raw:
            raise UserError("--raw takes one --like molecule, not a seed file")
        seeds = read_seeds(like) if batch else None  # DataError (missing file, no SMILES column) → exit 2
        d = designer(model, device)
        use_prior(d.bundle, prior)
        conditions = dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa, radius=radius, temperature=temperature,
                          constrained=not unconstrained, beam=beam)
        if raw:
            if min_similarity is not None or keep is not None or filters or oversample is not None:
                raise UserError("--raw writes every decode unfiltered: --min-similarity, --oversample, --keep and "
                                "--filter do not apply")
            return _generate_raw(d, like, n, out, seed, conditions, grid, plot, quiet)
        options = dict(conditions, seed=seed, max_attempts=max_attempts, min_similarity=min_similarity, keep=keep,
                       filters=filters, sanity=sanity, oversample=oversample)
        if batch:
            df = _generate_batch(d, like, seeds, n, options, out, quiet)
        else:
            df = d.generate(like, n, raw=False, log=None if quiet else (lambda m: info(m, quiet)), **options)
            info(_summary_line(df, sanity, min_similarity), quiet)
        _draw(d, df, like, batch, grid, plot, quiet)
        write_table(df, out)
