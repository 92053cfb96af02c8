"""`moldesign screen`: score every row of a SMILES file (properties, QED, SA, alerts, rules,
filters), chunked and resumable, on local processes or a Dask cluster."""
from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from .common import (MAX_WORKERS, Device, DeviceOpt, ModelOpt, OutOpt, QuietOpt, SeedOpt, app, bounded,
                     check_no_overwrite, check_out_path, cli_errors, info, nothing_valid)


class Engine(str, Enum):
    local = "local"
    dask = "dask"


def _check_sizes_and_engine(workers: int, chunk_size: int, max_atoms: int, engine: Engine,
                            scheduler: Optional[str], partitions: int, dedupe: bool) -> None:
    if workers < 0 or chunk_size < 1 or max_atoms < 1:
        bad = ("--workers", workers) if workers < 0 else ("--chunk-size", chunk_size) if chunk_size < 1 else ("--max-atoms", max_atoms)
        raise UserError(f"{bad[0]} must be {'>= 0' if bad[0] == '--workers' else '>= 1'}, got {bad[1]}")
    if engine != Engine.dask and (scheduler is not None or partitions):
        raise UserError(f"{'--scheduler' if scheduler is not None else '--partitions'} needs --engine dask")
    if partitions < 0:
        raise UserError(f"--partitions must be >= 0, got {partitions}")
    if engine == Engine.dask and dedupe:
        raise UserError("--dedupe needs --engine local (a duplicate is found only by reading every earlier row in order)")


def _parse_filters(filters: Optional[list[str]], reference: Optional[Path]) -> list:
    from ..screening.screen import FilterError, parse_filter

    try:
        parsed = [parse_filter(f) for f in filters or []]
    except FilterError as e:
        raise UserError(str(e)) from None
    if reference is None and any(f.key == "novel" for f in parsed):
        raise UserError("filter on 'novel' needs --reference")
    if reference is not None and not reference.exists():
        raise UserError(f"--reference file not found: {reference}")
    return parsed


@app.command()
def screen(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="SMILES file: .smi .csv .tsv .parquet .sdf (or .gz of them)."),
    smiles_col: Optional[str] = typer.Option(None, "--smiles-col", help="Column (SD tag for .sdf) with the SMILES; default: smiles, canonical_smiles, smi, mol or molecule, any case."),
    filters: Optional[list[str]] = typer.Option(None, "--filter", help="PROPERTY OP NUMBER, repeatable: --filter 'logp<3' --filter 'qed>=0.5'. OP: < <= > >= == !=. PROPERTY: mw logp hbd hba tpsa qed sa rotb; pains brenk (alert counts); lipinski veber novel (1 pass / 0 fail); similarity (the input's own column, e.g. from generate --like)."),
    drop: bool = typer.Option(False, "--drop", help="Write only passing rows (valid, every filter true, not a duplicate) instead of marking rows in `passes` and `failed_filters`."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Mark later copies of a molecule (same canonical SMILES after standardization; stereoisomers differ) with `duplicate_of`; they do not pass."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference set for the `novel` column, e.g. data/moses/train.parquet (compared as non-isomeric canonical SMILES)."),
    reference_cache: bool = typer.Option(True, "--reference-cache/--no-reference-cache", help="Cache the --reference keys on disk ($MOLDESIGN_CACHE or ~/.cache/moldesign), keyed by the file's SHA-256, so later runs skip re-standardizing it."),
    standardize: bool = typer.Option(True, "--standardize/--as-is", help="Score the largest organic fragment, neutralized where possible (default), or the input exactly as given."),
    max_atoms: int = typer.Option(1000, "--max-atoms", help="Rows with more heavy atoms are flagged and not scored."),
    workers: int = typer.Option(0, "--workers", callback=bounded(None, MAX_WORKERS), help="Worker processes (default 0: all cores)."),
    chunk_size: int = typer.Option(1000, "--chunk-size", callback=bounded(None, 1_000_000), help="Rows per chunk; memory stays about workers x 2 chunks whatever the input size (at most 1,000,000)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted screen into the same -o from its last finished chunk (same input and options)."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local (process pool on this machine) or dask (a Dask cluster; pip install 'moldesign[dask]'). Same output either way; with dask a .parquet output is a partitioned dataset folder."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="With --engine dask: address of a running dask-scheduler (tcp://host:8786); default: start a LocalCluster of --workers processes."),
    partitions: int = typer.Option(0, "--partitions", callback=bounded(0, 1_000_000), help="With --engine dask: number of input partitions (default 0: 4 per worker, or one per 16 MB if more)."),
    seed: int = SeedOpt,
    device: Device = DeviceOpt,
    model: Optional[Path] = ModelOpt,
    out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Score every row of a SMILES file (properties, QED, SA, alerts, rules, filters).

    Output columns: row, input, your other columns, valid, error, smiles (the scored parent),
    standardization, pains, brenk, lipinski(_violations), veber(_violations), mw, logp, hbd, hba,
    tpsa, qed, sa, rotb; novel with --reference; duplicate_of with --dedupe; passes and
    failed_filters with --filter/--dedupe. Rows that cannot be scored are kept with valid=False
    and an error; when no row is valid the table is still written and the exit code is 1. Loads
    no model (--seed, --device, --model are accepted and unused)."""
    from ..screening.screen import ScreenOptions, format_summary, load_reference, screen_file

    with cli_errors():
        check_out_path(out)
        _check_sizes_and_engine(workers, chunk_size, max_atoms, engine, scheduler, partitions, dedupe)
        check_no_overwrite({"INPUT": input_path, "--reference": reference, "--model": model}, {"--out": out})
        parsed = _parse_filters(filters, reference)
        n_workers = workers or os.cpu_count() or 1
        ref = None
        if reference is not None:
            ref = load_reference(reference, standardize=standardize, workers=n_workers, log=lambda m: info(m, quiet),
                                 cache=reference_cache, progress=not quiet)
        opts = ScreenOptions(filters=parsed, drop=drop, dedupe=dedupe, reference=ref, standardize=standardize,
                             max_atoms=max_atoms)
        if resume and out is None:
            raise UserError("--resume needs -o FILE (a screen to stdout cannot be resumed)")
        if engine == Engine.dask:
            if resume:
                raise UserError("--resume is for --engine local (a Dask run writes its partitions in one go)")
            from ..screening.dask_engine import screen_file_dask

            summary = screen_file_dask(input_path, out, opts, smiles_col=smiles_col, scheduler=scheduler,
                                       workers=n_workers, partitions=partitions, progress=not quiet,
                                       log=lambda m: info(m, quiet))
        else:
            summary = screen_file(input_path, out, opts, smiles_col=smiles_col, workers=n_workers,
                                  chunk_size=chunk_size, progress=not quiet, resume=resume, log=lambda m: info(m, quiet))
        info(format_summary(summary) + (f" -> {out}" if out else ""), quiet)
        if summary["rows"] and not summary["valid"]:
            written = summary.get("written", summary["rows"])
            raise nothing_valid(f"molecule among the {summary['rows']} rows of {input_path}", written, out)
