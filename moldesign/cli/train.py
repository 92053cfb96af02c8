"""`moldesign train`: train the conditional VAE (or resume a run) into one checkpoint, on one
process or under torchrun."""
from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from .common import (SEED_MAX, Device, DeviceOpt, QuietOpt, Terminated, app, bounded, check_data_file,
                     check_no_overwrite, check_out_path, cli_errors, finite, info)


def _train_config(config: Optional[Path], overrides: dict):
    """[model] and [train] from --config (or the defaults), the command-line overrides applied and
    checked, the device resolvable: (ModelConfig, TrainConfig)."""
    import dataclasses

    from ..config import ModelConfig, TrainConfig, load_toml
    from ..decoding.sampling import resolve_device

    model_cfg, train_cfg = load_toml(config) if config else (ModelConfig(), TrainConfig())
    train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in overrides.items() if v is not None})
    if train_cfg.epochs <= 0:
        raise UserError(f"epochs must be positive, got {train_cfg.epochs}")
    train_cfg.validate()
    try:
        resolve_device(train_cfg.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    return model_cfg, train_cfg


def _interrupted(e, config: Optional[Path], data: Optional[str], epochs: Optional[float]) -> KeyboardInterrupt:
    """A saved, interrupted run: say so, and how to go on (exit 130 / 143, not 0)."""
    import shlex

    again = ["moldesign", "train", "--resume", str(e.out), "--out", str(e.out)]
    again += ["--config", str(config)] if config else []
    again += ["--data", data] if data else []
    again += ["--epochs", f"{epochs:g}"] if epochs is not None else []
    msg = f"{e}; resume with: {' '.join(shlex.quote(a) for a in again)}"
    return Terminated(msg) if e.signum == signal.SIGTERM else KeyboardInterrupt(msg)


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with [model] and [train] sections."),
    data: Optional[str] = typer.Option(None, "--data", help="'moses' or a .smi/.csv/.tsv/.parquet file (overrides config)."),
    out: Path = typer.Option(Path("runs/model.pt"), "--out", "-o", help="Checkpoint to write (.pt)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from this checkpoint (optimizer state included)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", callback=finite(0, 10_000), help="Override train.epochs."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", callback=finite(0), help="Stop after this many minutes (saved)."),
    seed: Optional[int] = typer.Option(None, "--seed", callback=bounded(0, SEED_MAX), help="Override train.seed."),
    distributed: bool = typer.Option(False, "--distributed", help="Require a torchrun launch (DistributedDataParallel; gloo on CPU, nccl on CUDA). Under torchrun with more than one process DDP is used even without this flag."),
    device: Device = DeviceOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train the conditional VAE (or resume a run) and write one self-describing checkpoint.

    Several processes or machines: torchrun --nproc_per_node N [--nnodes M --node_rank R
    --rdzv_backend c10d --rdzv_endpoint HOST:PORT] -m moldesign.cli train ... (batch_size is the
    global batch, split across the processes; rank 0 writes the checkpoint and metrics)."""
    from ..training.loop import TrainingInterrupted, torchrun_env
    from ..training.loop import train as run_training

    with cli_errors():
        try:
            env = torchrun_env(required=distributed)
        except ValueError as e:
            raise UserError(str(e)) from None
        quiet = quiet or not env.is_main  # one rank speaks
        if out.suffix != ".pt":
            raise UserError(f"--out must end in .pt, got {str(out)!r}")
        if resume is not None and not resume.is_file():
            raise UserError(f"--resume file not found: {resume}")
        check_out_path(out, suffixes=(".pt",), create_parent=True)
        check_data_file(data)
        # --resume may be --out (a run continued in place); the training data and config may not
        check_no_overwrite({"--config": config, "--data": data}, {"--out": out})
        model_cfg, train_cfg = _train_config(config, {
            "data": data, "epochs": epochs, "time_limit_minutes": time_limit, "seed": seed,
            "device": device.value if device != Device.auto else None})
        try:
            bundle = run_training(model_cfg, train_cfg, out, resume=resume, log=lambda m: info(m, quiet),
                                  progress=not quiet, distributed=True if distributed else None)
        except TrainingInterrupted as e:
            raise _interrupted(e, config, data, epochs) from None
        if env.is_main:
            keys = ("epochs", "molecules_seen", "wall_seconds", "val_reconstruction", "val_prior_validity",
                    "active_units", "world_size")
            typer.echo(json.dumps({"out": str(out), **{k: bundle.train_info.get(k) for k in keys}}))
