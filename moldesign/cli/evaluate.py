"""`moldesign reconstruct` (encode and decode molecules, count exact reconstructions) and
`moldesign evaluate` (MOSES metrics, reconstruction and conditioning error as JSON)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import RunFailure, UserError
from ..resources import DEFAULT_MODEL
from .common import (MAX_EVALUATE, Device, DeviceOpt, ModelOpt, OutOpt, PriorChoice, PriorOpt, QuietOpt, SeedOpt,
                     UnconstrainedOpt, app, bounded, check_no_overwrite, check_out_path, check_plot, cli_errors,
                     design_errors, finite, info, is_existing_file, load_bundle, nothing_valid, use_prior, write_table)


def _read_molecules(input_arg: str, smiles_col: Optional[str]) -> list[str]:
    """reconstruct's INPUT: every SMILES of a table file, or one SMILES / known molecule name (a
    text too long to be a file name, e.g. a 500-atom SMILES, is read as a SMILES)."""
    import pandas as pd

    from ..known_molecules import resolve_molecule
    from ..screening.screen import INPUT_SUFFIXES, iter_input_chunks

    path = Path(input_arg)
    if is_existing_file(path):
        return pd.concat(list(iter_input_chunks(path, smiles_col, 100_000)))["input"].tolist()
    if path.suffix.lower() in INPUT_SUFFIXES + (".gz",):
        raise UserError(f"file not found: {path}")
    return [resolve_molecule(input_arg)[1]]


def _no_valid_reconstruction(table, input_arg: str, out: Optional[Path]):
    """Every row failed (not encodable, or an invalid decode): the table is written, then exit 1
    (common.nothing_valid); one molecule's line also says why."""
    from ..chem import shorten

    if is_existing_file(Path(input_arg)):
        return nothing_valid(f"reconstruction among the {len(table)} rows of {input_arg}", len(table), out)
    return nothing_valid(f"reconstruction of {shorten(input_arg, 40)}: {table['error'].iloc[0]}", 1, out)


@app.command()
def reconstruct(
    input_arg: str = typer.Argument(..., metavar="INPUT", help="SMILES file (.smi .csv .tsv .parquet .sdf), or one SMILES or known molecule name."),
    smiles_col: Optional[str] = typer.Option(None, "--smiles-col", help="Column with the SMILES in a table file."),
    beam: int = typer.Option(0, "--beam", help="Beam search of this width instead of greedy decoding of mu (0/1: greedy)."),
    unconstrained: bool = UnconstrainedOpt,
    seed: int = SeedOpt,
    device: Device = DeviceOpt,
    model: Optional[Path] = ModelOpt,
    out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Encode molecules to mu and decode (greedy, or --beam K; grammar mask unless --unconstrained); report exact reconstructions.

    Rows `input, canonical, output, exact, error` in input order (exact = same non-isomeric
    canonical SMILES; error says why a molecule could not be encoded or its decode is invalid).
    When every row has an error the table is still written and the exit code is 1."""
    import torch

    from ..screening.metrics import reconstruction_table

    from ..design.common import check_beam

    with cli_errors(), design_errors():
        check_out_path(out)
        check_no_overwrite({"INPUT": input_arg, "--model": model}, {"--out": out})
        check_beam(beam)  # before any work: a beam of 100,000 would run for days
        smiles = _read_molecules(input_arg, smiles_col)
        bundle = load_bundle(model, device)
        torch.manual_seed(seed)  # greedy decoding is deterministic; seeded for uniformity
        table = reconstruction_table(bundle, smiles, constrained=not unconstrained, beam=beam)
        n_ok = int(table["canonical"].notna().sum())
        write_table(table, out)
        n_bad_decode = int(table["error"].str.startswith("invalid decode").sum())
        info(f"reconstructed {int(table['exact'].sum())} of {len(table)} exactly; "
             f"{len(table) - n_ok} not encodable; {n_bad_decode} invalid decodes" + (f" -> {out}" if out else ""), quiet)
        if len(table) and (table["error"] != "").all():
            raise _no_valid_reconstruction(table, input_arg, out)


def _check_evaluate_args(out: Optional[Path], n: int, n_reconstruct: int, n_per_target: int, temperature: float,
                         plot: Optional[Path], reference_dir: Optional[Path], files: dict) -> None:
    """Every path and size of `evaluate`, before the model loads (one-line exit 2)."""
    if out is not None and out.suffix.lower() != ".json":
        raise UserError(f"--out must end in .json, got {str(out)!r}")
    check_out_path(out, suffixes=(".json",))
    if n < 1 or n_reconstruct < 0 or n_per_target < 0 or temperature < 0:
        raise UserError(f"need -n >= 1, --reconstruct-n >= 0, --target-n >= 0, --temperature >= 0; "
                        f"got {n}, {n_reconstruct}, {n_per_target}, {temperature}")
    check_plot(plot)
    if reference_dir is not None and not reference_dir.is_dir():
        raise UserError(f"--reference-dir is not a folder: {reference_dir}")
    for opt, path in files.items():
        if path is not None and not path.is_file():
            raise UserError(f"{opt} file not found: {path}")


def _plot_samples(samples: list[str], test_smiles: list[str], plot: Path, seed: int, log) -> None:
    from ..drawing import plot_distributions
    from ..screening import metrics

    plot_distributions(metrics.property_frame(samples, seed=seed), metrics.property_frame(test_smiles, seed=seed),
                       plot, title=f"{len(samples)} valid generated vs {len(test_smiles)} test molecules")
    log(f"plot -> {plot}")


def _write_json(text: str, out: Optional[Path]) -> None:
    if out is None:
        typer.echo(text)
    else:
        from ..data import atomic_path

        with atomic_path(out) as tmp:
            Path(tmp).write_text(text + "\n")


@app.command()
def evaluate(
    n: int = typer.Option(10000, "-n", callback=bounded(None, MAX_EVALUATE), help=f"Molecules to sample (unique@10000 is over the first 10,000 valid; more are drawn if needed; at most {MAX_EVALUATE:,})."),
    temperature: float = typer.Option(1.0, "--temperature", callback=finite(0, 100), help="Sampling temperature."),
    n_reconstruct: int = typer.Option(1000, "--reconstruct-n", callback=bounded(None, MAX_EVALUATE), help="Test molecules for reconstruction accuracy (0: skip)."),
    n_per_target: int = typer.Option(1000, "--target-n", callback=bounded(None, MAX_EVALUATE), help="Samples under each of three fixed conditions (training quantiles 0.25/0.5/0.75) for conditioning_targets (0: skip)."),
    reference_dir: Optional[Path] = typer.Option(None, "--reference-dir", help="Folder with test/test_scaffolds/train.parquet from `moldesign data moses` (default data/moses); reference statistics are cached there."),
    test: Optional[Path] = typer.Option(None, "--test", help="SMILES file used instead of MOSES test (FCD, SNN, Frag, Scaf, reconstruction)."),
    test_scaffolds: Optional[Path] = typer.Option(None, "--test-scaffolds", help="SMILES file used instead of MOSES test_scaffolds (*_scaf keys)."),
    train_set: Optional[Path] = typer.Option(None, "--train", help="SMILES file used instead of MOSES train (novelty)."),
    fcd: bool = typer.Option(True, "--fcd/--no-fcd", help="Compute FCD (null when the fcd package is absent)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Property distributions of the generated molecules vs the test set (2,000 of each at most) to FILE.png or FILE.svg."),
    unconstrained: bool = UnconstrainedOpt,
    prior: PriorChoice = PriorOpt,
    seed: int = SeedOpt,
    device: Device = DeviceOpt,
    model: Optional[Path] = ModelOpt,
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="JSON file (default: stdout)."),
    quiet: bool = QuietOpt,
) -> None:
    """Sample -n molecules and compute MOSES metrics, reconstruction and conditioning MAE (JSON).

    Keys: valid, unique@1000, unique@10000, novelty, intdiv, fcd, snn, frag, scaf, reconstruction,
    cond_mae_{mw,logp,hbd,hba,tpsa}, then intdiv2, filters, *_scaf (against test_scaffolds),
    n_sampled_unique, conditioning_targets (per target: validity and MAE of each property), n,
    n_valid, n_reconstruct, timings; null where not computed."""
    import time

    from ..data import DEFAULT_DATA_DIR
    from ..screening import metrics

    with cli_errors():
        files = {"--test": test, "--test-scaffolds": test_scaffolds, "--train": train_set}
        _check_evaluate_args(out, n, n_reconstruct, n_per_target, temperature, plot, reference_dir, files)
        check_no_overwrite({**files, "--model": model}, {"--out": out, "--plot": plot})
        log = lambda m: info(m, quiet)  # noqa: E731
        bundle = load_bundle(model, device)
        use_prior(bundle, prior)
        dev = next(bundle.model.parameters()).device.type
        t0 = time.time()
        refs = metrics.load_references(reference_dir or DEFAULT_DATA_DIR, test, test_scaffolds, train_set,
                                       fcd, dev, log)
        samples: list[str] = []
        result = metrics.evaluate(bundle, n, *refs, seed=seed, temperature=temperature,
                                  n_reconstruct=n_reconstruct, with_fcd=fcd, device=dev, n_per_target=n_per_target,
                                  log=log, samples=samples, constrained=not unconstrained)
        if plot is not None and samples:
            _plot_samples(samples, refs[0].smiles, plot, seed, log)
        result.update(model=str(model or DEFAULT_MODEL), seed=seed, temperature=temperature,
                      wall_seconds=round(time.time() - t0, 2))
        _write_json(json.dumps(result, indent=2), out)
        if not result["n_valid"]:
            raise RunFailure(f"none of the {n} sampled molecules is valid")
