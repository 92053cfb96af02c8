"""`moldesign data moses | pack | zinc250k`: download, standardize and cache the data sets, and
write training packs for machines without RDKit."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from .common import MAX_WORKERS, QuietOpt, app, bounded, check_no_overwrite, check_out_path, cli_errors, info

data_app = typer.Typer(no_args_is_help=True, help="Download and prepare data sets.")
app.add_typer(data_app, name="data")


def check_data_dir(path: Path) -> Path:
    """--data-dir: a folder that exists or can be made, and where files can be written (exit 2 if not)."""
    from ..data import check_output_path

    if path.exists() and not path.is_dir():
        raise UserError(f"--data-dir {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--data-dir {str(path)!r} cannot be created ({e.strerror or e})") from None
    check_output_path(path / "probe.parquet", "--data-dir")
    return path


@data_app.command("moses")
def data_moses(
    data_dir: Path = typer.Option(None, "--data-dir", help="Where the parquet tables go (default data/moses)."),
    workers: int = typer.Option(0, "--workers", callback=bounded(None, MAX_WORKERS), help="Worker processes (default: all cores)."),
    quiet: bool = QuietOpt,
) -> None:
    """Download MOSES (train/test/test_scaffolds) from the molsets wheel, canonicalize, compute
    properties, cache as parquet. A second run is a no-op."""
    import time

    from ..data import DEFAULT_DATA_DIR, prepare_moses

    with cli_errors():
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        t0 = time.time()
        report = prepare_moses(check_data_dir(data_dir or DEFAULT_DATA_DIR), workers=workers or None, progress=not quiet,
                               log=lambda m: info(m, quiet))
        info(f"done in {time.time() - t0:.1f} s", quiet)
        typer.echo(json.dumps(report, indent=2))


@data_app.command("pack")
def data_pack(
    config: Path = typer.Option(..., "--config", help="TOML with [model] and [train]: what to pack (train.data, max_len, val_size, seed)."),
    out: Path = typer.Option(..., "--out", "-o", help="Training pack to write (.npz)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Use this checkpoint's vocabulary and scaler (to resume it from the pack)."),
    quiet: bool = QuietOpt,
) -> None:
    """Write a training pack: token ids, scaled conditions and validation molecules as arrays, so
    `train --data PACK.npz` runs on a machine without RDKit (e.g. a borrowed GPU; see docs/gpu.md)."""
    from ..config import load_toml
    from ..training.loop import prepare_datasets, write_pack

    with cli_errors():
        if out.suffix != ".npz":
            raise UserError(f"--out must end in .npz, got {str(out)!r}")
        check_out_path(out, suffixes=(".npz",))
        check_no_overwrite({"--config": config, "--resume": resume}, {"--out": out})
        model_cfg, cfg = load_toml(config)
        prev = None
        if resume is not None:
            from ..model.checkpoint import load

            prev = load(resume)
            model_cfg = prev.config
        ds = prepare_datasets(model_cfg, cfg, prev.vocab if prev else None, prev.scaler if prev else None,
                              log=lambda m: info(m, quiet))
        typer.echo(json.dumps(write_pack(ds, model_cfg, out)))


@data_app.command("zinc250k")
def data_zinc250k(
    source: Optional[str] = typer.Option(None, "--from", help="A folder with train/test .smi(.gz)/.csv(.gz), or a URL; default: the commit-pinned public copy."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Where the parquet tables go (default data/zinc250k)."),
    workers: int = typer.Option(0, "--workers", callback=bounded(None, MAX_WORKERS), help="Worker processes (default: all cores)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the SMILES checksum of each split."),
    quiet: bool = QuietOpt,
) -> None:
    """ZINC250k (train 220,011 / test 5,000), checksum-verified, standardized exactly as user seeds
    are (largest fragment, uncharged, no stereo), with properties, cached as parquet. A second run
    is a no-op."""
    import time

    from ..data import ZINC_DIR, prepare_zinc250k

    with cli_errors():
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        t0 = time.time()
        report = prepare_zinc250k(source, check_data_dir(data_dir or ZINC_DIR), workers=workers or None, progress=not quiet,
                                  verify=verify, log=lambda m: info(m, quiet))
        info(f"done in {time.time() - t0:.1f} s", quiet)
        typer.echo(json.dumps(report, indent=2))
