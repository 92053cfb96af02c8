"""`moldesign interpolate`: decode the latent path between two molecules."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from .common import (MAX_PATH_ANCHOR, MAX_PATH_STEPS, PATH_ANCHOR, Device, DeviceOpt, ModelOpt, OutOpt, QuietOpt,
                     SeedOpt, UnconstrainedOpt, app, bounded, check_grid, check_no_overwrite, check_out_path,
                     check_plot, cli_errors, design_errors, designer, info, nothing_valid, write_table)


class InterpMethod(str, Enum):
    slerp = "slerp"
    linear = "linear"


@app.command()
def interpolate(
    mol_a: str = typer.Argument(..., metavar="MOL_A", help="Start molecule (SMILES or name)."),
    mol_b: str = typer.Argument(..., metavar="MOL_B", help="End molecule (SMILES or name)."),
    steps: int = typer.Option(10, "--steps", callback=bounded(None, MAX_PATH_STEPS), help=f"Points on the path, both ends included (2 to {MAX_PATH_STEPS:,})."),
    method: InterpMethod = typer.Option(InterpMethod.slerp, "--method", help="slerp (stays at prior radius) or linear."),
    keep: Optional[str] = typer.Option(None, "--keep", help="SMARTS substructure a step must contain to pass."),
    filters: Optional[list[str]] = typer.Option(None, "--filter", help="PROPERTY OP NUMBER, repeatable, as in screen (similarity = to MOL_A). Marks steps in passes / failed_filters; every step is kept."),
    sanity: bool = typer.Option(True, "--sanity/--no-sanity", help="Mark steps failing the default sanity filter (see generate --help) in passes / failed_filters."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Also draw the path to FILE.png or FILE.svg."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw the path as rows of structures labelled by step and α, invalid steps marked, to FILE.png or FILE.svg."),
    unconstrained: bool = UnconstrainedOpt,
    beam: int = typer.Option(0, "--beam", help="Decode each point by beam search of this width (0/1: greedy)."),
    anchor: int = typer.Option(PATH_ANCHOR, "--anchor", callback=bounded(0, MAX_PATH_ANCHOR), help="Each end's latent: the one of N draws of its posterior (the mean first) whose decode is most similar to the molecule, so the path starts and ends at the inputs where the model can write them (0 or 1: the mean)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Walk the latent path between two molecules (condition interpolated too), decode greedily.

    Rows: step, alpha, smiles, valid, error (why an invalid decode is invalid), RDKit properties,
    qed, sa, similarity_a, similarity_b, duplicate (same molecule as the step before), passes,
    failed_filters. Greedy decoding: --seed changes nothing. No valid step at all: the path is
    written (every step with its error) and the exit code is 1.
    """
    with cli_errors(), design_errors():
        check_out_path(out)
        check_grid(grid)
        check_plot(plot)
        check_no_overwrite({"--model": model}, {"--out": out, "--grid": grid, "--plot": plot})
        if steps < 2:
            raise UserError(f"--steps must be at least 2 (both ends), got {steps}")
        d = designer(model, device)
        df = d.interpolate(mol_a, mol_b, steps, method.value, keep=keep, filters=filters, sanity=sanity,
                           constrained=not unconstrained, beam=beam, anchor=anchor)
        info(f"{steps} steps: {int(df['valid'].sum())} valid, "
             f"{df.loc[df['valid'], 'smiles'].nunique()} distinct molecules, {int(df['passes'].sum())} pass the filters",
             quiet)
        if grid is not None:
            from ..api import interpolate_grid

            info(f"grid of {interpolate_grid(df, grid)} steps -> {grid}", quiet)
        if plot is not None:
            from ..api import interpolate_plot

            info(f"plot -> {interpolate_plot(df, plot)}", quiet)
        write_table(df, out)
        if not df["valid"].any():
            from ..chem import shorten

            raise nothing_valid(f"step on the path from {shorten(mol_a, 40)} to {shorten(mol_b, 40)}", len(df), out)
