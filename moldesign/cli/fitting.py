"""`moldesign surrogate fit` and `moldesign prior fit`: fit the latent property surrogate or the
GMM prior on encoded training molecules and store it in the checkpoint."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from ..resources import DEFAULT_MODEL
from .common import (MAX_WORKERS, Device, DeviceOpt, ModelOpt, QuietOpt, SeedOpt, app, bounded, check_data_file,
                     check_no_overwrite, check_out_path, cli_errors, design_errors, designer, info)

surrogate_app = typer.Typer(no_args_is_help=True, help="The latent property surrogate used by `optimize`.")
app.add_typer(surrogate_app, name="surrogate")
prior_app = typer.Typer(no_args_is_help=True, help="The latent prior used for unconditioned sampling.")
app.add_typer(prior_app, name="prior")


def _checkpoint_target(out: Optional[Path], model: Optional[Path], data: str) -> Path:
    """Where `surrogate fit` / `prior fit` write: --out, else --model in place (the shipped model by
    default); a .pt path that can be written, checked before any work, as is a --data file."""
    target = Path(out or model or DEFAULT_MODEL)
    if target.suffix != ".pt":
        raise UserError(f"--out must end in .pt, got {str(target)!r}")
    check_out_path(target, suffixes=(".pt",))
    check_data_file(data)
    check_no_overwrite({"--data": data}, {"--out": target})  # --model in place is the default, not a mistake
    return target


def _hidden_sizes(hidden: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise UserError(f"--hidden must be comma-separated integers, got {hidden!r}") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 65_536:
        raise UserError(f"--hidden sizes must be in 1..65536, got {hidden!r}")
    return sizes


@surrogate_app.command("fit")
def surrogate_fit(
    data: str = typer.Option("moses", "--data", help="'moses' (prepared train split) or a .smi/.csv/.tsv/.parquet file."),
    n: int = typer.Option(20000, "-n", callback=bounded(None, 2_000_000), help="Molecules to encode and fit on (10% held out for R²; at most 2,000,000)."),
    epochs: int = typer.Option(60, "--epochs", callback=bounded(None, 10_000), help="Passes over the fitting set (at most 10,000)."),
    hidden: str = typer.Option("256,256", "--hidden", help="Hidden layer sizes, comma-separated."),
    workers: int = typer.Option(0, "--workers", callback=bounded(None, MAX_WORKERS), help="Processes for RDKit targets (default: all cores)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Checkpoint to write (.pt; default: overwrite --model in place)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, quiet: bool = QuietOpt,
) -> None:
    """Fit the MLP z → (mw, logp, hbd, hba, tpsa, qed, sa) on encoded molecules, print held-out R²
    per property as JSON and save the checkpoint with the surrogate inside."""
    with cli_errors(), design_errors():
        from ..api import surrogate_training_smiles

        target_path = _checkpoint_target(out, model, data)
        sizes = _hidden_sizes(hidden)
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs}")
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        d = designer(model, device)
        smiles = surrogate_training_smiles(data, n, seed)
        report = d.fit_surrogate(smiles, seed=seed, workers=workers or (os.cpu_count() or 1), progress=not quiet,
                                 log=lambda m: info(m, quiet), hidden=sizes, epochs=epochs)
        d.save(target_path)
        info(f"surrogate saved in {target_path}", quiet)
        typer.echo(json.dumps({"out": str(target_path), "data": data, **report}))


@prior_app.command("fit")
def prior_fit(
    data: str = typer.Option("zinc250k", "--data", help="'zinc250k' / 'moses' (prepared train split) or a .smi/.csv/.tsv/.parquet file."),
    n: int = typer.Option(50000, "-n", callback=bounded(None, 2_000_000), help="Training molecules to encode (at most 2,000,000)."),
    components: int = typer.Option(16, "--components", help="Gaussian mixture components (full covariance)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Checkpoint to write (.pt; default: overwrite --model in place)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, quiet: bool = QuietOpt,
) -> None:
    """Fit a Gaussian mixture to the posterior means μ of training molecules and store it in the
    checkpoint; prior sampling (`generate` without --like, `evaluate`) then draws z from it."""
    with cli_errors(), design_errors():
        from ..api import surrogate_training_smiles

        target_path = _checkpoint_target(out, model, data)
        if not 1 <= components <= 256:
            raise UserError(f"--components must be in 1..256, got {components}")
        d = designer(model, device)
        report = d.fit_prior(surrogate_training_smiles(data, n, seed), components, seed)
        d.save(target_path)
        info(f"prior saved in {target_path}", quiet)
        typer.echo(json.dumps({"out": str(target_path), "data": data, **report}))
