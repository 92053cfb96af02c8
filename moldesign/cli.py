"""The `moldesign` command line: thin wrappers that parse options, call the Python API, write files.

Exit codes: 0 ok; 1 nothing valid / runtime failure; 2 usage or bad input (one line, no traceback).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="De novo molecular design with a conditional SMILES VAE trained on MOSES.",
)
data_app = typer.Typer(no_args_is_help=True, help="Download and prepare data sets.")
app.add_typer(data_app, name="data")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path(os.environ.get("MOLDESIGN_MODEL", REPO_ROOT / "models" / "moldesign-moses.pt"))
OUTPUT_SUFFIXES = (".csv", ".parquet", ".sdf", ".smi", ".tsv")


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


# Shared options, so every subcommand spells them the same way.
SeedOpt = typer.Option(0, "--seed", help="Random seed (same seed, same output).")
DeviceOpt = typer.Option(Device.auto, "--device", help="auto, cpu or cuda.")
ModelOpt = typer.Option(None, "--model", help="Checkpoint file (default: the shipped model).")
OutOpt = typer.Option(None, "-o", "--out", help="Output file: .csv .parquet .sdf .smi (default: CSV on stdout).")
QuietOpt = typer.Option(False, "-q", "--quiet", help="No progress or summary on stderr.")


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class RunFailure(Exception):
    """The command ran but produced nothing usable: one line, exit code 1."""


def _bad_input_types() -> tuple[type[BaseException], ...]:
    from .chem import InvalidSmiles
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .known_molecules import UnknownMolecule
    from .tokenizer import TokenizeError, UnknownTokenError

    return (UserError, InvalidSmiles, CheckpointError, ConfigError, DataError, UnknownMolecule,
            TokenizeError, UnknownTokenError)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the package's input errors into one-line messages and exit codes (no traceback)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # the CLI, not the library, mutes RDKit's parser warnings
    try:
        yield
    except typer.Exit:
        raise
    except _bad_input_types() as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    except RunFailure as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130)


def info(msg: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(msg, err=True)


def load_bundle(model: Optional[Path], device: Device):
    from . import checkpoint
    from .sampling import resolve_device

    try:
        dev = resolve_device(device.value)
    except ValueError as e:
        raise UserError(str(e)) from None
    return checkpoint.load(model or DEFAULT_MODEL, dev)


def check_out_path(out: Optional[Path]) -> None:
    """Validate the output suffix before any work is done."""
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"unsupported output type {out.suffix or out.name!r}; use {' '.join(OUTPUT_SUFFIXES)}")


def write_table(df, out: Optional[Path]) -> None:
    """Write a DataFrame by suffix (temp file + rename, so no half file on failure); CSV to stdout
    when out is None. SDF needs a `smiles` column; rows that do not parse are written without a
    structure and keep their fields."""
    if out is None:
        df.to_csv(sys.stdout, index=False)
        return
    from .data import write_atomic_table

    suffix = out.suffix.lower()
    if suffix in (".csv", ".parquet", ".tsv"):
        write_atomic_table(df, out)
        return
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if suffix == ".smi":
            with open(tmp, "w") as f:
                for s in df["smiles"].fillna(""):
                    f.write(f"{s}\n")
        else:  # .sdf
            from rdkit import Chem

            writer = Chem.SDWriter(tmp)
            for row in df.to_dict("records"):
                mol = Chem.MolFromSmiles(row["smiles"]) if isinstance(row.get("smiles"), str) else None
                mol = mol if mol is not None else Chem.Mol()
                for k, v in row.items():
                    mol.SetProp(str(k), "" if v is None else str(v))
                writer.write(mol)
            writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------- data
@data_app.command("moses")
def data_moses(
    data_dir: Path = typer.Option(None, "--data-dir", help="Where the parquet tables go (default data/moses)."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (default: all cores)."),
    quiet: bool = QuietOpt,
) -> None:
    """Download MOSES (train/test/test_scaffolds) from the molsets wheel, canonicalize, compute
    properties, cache as parquet. A second run is a no-op."""
    import time

    from .data import DEFAULT_DATA_DIR, prepare_moses

    with cli_errors():
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        t0 = time.time()
        report = prepare_moses(data_dir or DEFAULT_DATA_DIR, workers=workers or None, progress=not quiet,
                               log=lambda m: info(m, quiet))
        info(f"done in {time.time() - t0:.1f} s", quiet)
        typer.echo(json.dumps(report, indent=2))


# ---------------------------------------------------------------------------------------- train
@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with [model] and [train] sections."),
    data: Optional[str] = typer.Option(None, "--data", help="'moses' or a .smi/.csv/.tsv/.parquet file (overrides config)."),
    out: Path = typer.Option(Path("runs/model.pt"), "--out", "-o", help="Checkpoint to write (.pt)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from this checkpoint (optimizer state included)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Override train.epochs."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop after this many minutes (saved)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override train.seed."),
    device: Device = DeviceOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train the conditional VAE (or resume a run) and write one self-describing checkpoint."""
    import dataclasses

    from .config import ModelConfig, TrainConfig, load_toml
    from .training import train as run_training

    with cli_errors():
        if out.suffix != ".pt":
            raise UserError(f"--out must end in .pt, got {str(out)!r}")
        if resume is not None and not resume.exists():
            raise UserError(f"--resume file not found: {resume}")
        model_cfg, train_cfg = load_toml(config) if config else (ModelConfig(), TrainConfig())
        overrides = {"data": data, "epochs": epochs, "time_limit_minutes": time_limit, "seed": seed,
                     "device": device.value if device != Device.auto else None}
        train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in overrides.items() if v is not None})
        if train_cfg.epochs <= 0:
            raise UserError(f"epochs must be positive, got {train_cfg.epochs}")
        bundle = run_training(model_cfg, train_cfg, out, resume=resume, log=lambda m: info(m, quiet),
                              progress=not quiet)
        keys = ("epochs", "molecules_seen", "wall_seconds", "val_reconstruction", "val_prior_validity", "active_units")
        typer.echo(json.dumps({"out": str(out), **{k: bundle.train_info.get(k) for k in keys}}))


# ------------------------------------------------------------- design: generate / interpolate / optimize


# ------------------------------------------------------------- screen / reconstruct / evaluate
