"""The `moldesign` command line: thin wrappers that parse options, call the Python API, write files.

Exit codes: 0 ok; 1 nothing valid / runtime failure; 2 usage or bad input (one line, no traceback).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
from typer.core import TyperGroup

# This typer vendors its own click: take the exception classes from typer's, not `import click`.
_click_exceptions = sys.modules[typer.BadParameter.__module__]


class _OneLineUsageErrors(TyperGroup):
    """Click prints a usage error as three lines (usage, hint, error); the CLI contract is one
    `error: …` line naming the bad value, exit 2. Everything else is click's standalone mode."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click_exceptions.NoArgsIsHelpError as e:
            e.show()
            sys.exit(e.exit_code)
        except _click_exceptions.UsageError as e:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            got = ""
            with contextlib.suppress(Exception):  # typer's coercion keeps the rejected text in the cause
                got = f", got {e.__cause__.errors()[0]['input']!r}"
            typer.echo(f"error: {e.format_message()}{got}{where}", err=True)
            sys.exit(e.exit_code)
        except _click_exceptions.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click output: usage errors are one "Error: ..." line, not a box
    help="De novo molecular design with a conditional SMILES VAE trained on ZINC250k.",
)
data_app = typer.Typer(no_args_is_help=True, help="Download and prepare data sets.")
app.add_typer(data_app, name="data")

REPO_ROOT = Path(__file__).resolve().parent.parent
from .errors import RunFailure, UserError  # noqa: E402  (light: plain exception classes)
from .resources import DEFAULT_MODEL  # noqa: E402  (the shipped model; $MOLDESIGN_MODEL overrides)
from .config import DEFAULT_OVERSAMPLE, DEFAULT_RADIUS, LIKE_TEMPERATURE, MIN_SIMILARITY_RADIUS  # noqa: E402  (light: no torch)


class Engine(str, Enum):
    local = "local"
    dask = "dask"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


SEED_MAX = 2**32 - 1  # numpy's seed range
# Upper bounds on user-given sizes: each keeps one run within about an hour and a few GB on a CPU
# (a decode is ~1 ms per molecule per token batch; memory grows with n x max_len).
MAX_GENERATE = 100_000  # generate -n
MAX_DECODES = 2_000_000  # generate --max-attempts
MAX_PATH_STEPS = 1_000  # interpolate --steps
MAX_OPT_STEPS = 10_000  # optimize --steps
MAX_CHAINS = 1_024  # optimize --chains
MAX_OPT_DECODES = 100_000  # optimize: chains x steps decodes, scored in one pass
MAX_EVALUATE = 1_000_000  # evaluate -n
MAX_WORKERS = 1_024


def _reject(param, message: str):
    """A bad option value, found while parsing: one `error:` line naming it, exit 2 (click's own
    usage errors print three lines)."""
    name = max(param.opts, key=len) if param is not None and param.opts else "value"
    typer.echo(f"error: {name} {message}", err=True)
    raise typer.Exit(2)


def finite(lo: Optional[float] = None, hi: Optional[float] = None):
    """Callback for float options: NaN, ±inf and values outside [lo, hi] are rejected before any
    work is done, one line naming the value (exit 2)."""

    def check(param: typer.CallbackParam, value: Optional[float]):
        if value is None:
            return value
        if not math.isfinite(value):
            _reject(param, f"must be a finite number, got {value}")
        if lo is not None and value < lo:
            _reject(param, f"must be >= {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            _reject(param, f"must be <= {hi:g}, got {value:g}")
        return value

    return check


def bounded(lo: Optional[int] = None, hi: Optional[int] = None):
    """Callback for integer options: outside [lo, hi] → one line naming the value (exit 2)."""

    def check(param: typer.CallbackParam, value: Optional[int]):
        if value is None:
            return value
        if lo is not None and value < lo:
            _reject(param, f"must be >= {lo:,}, got {value:,}")
        if hi is not None and value > hi:
            _reject(param, f"must be at most {hi:,}, got {value:,}")
        return value

    return check


# Shared options, so every subcommand spells them the same way.
SeedOpt = typer.Option(0, "--seed", callback=bounded(0, SEED_MAX), help="Random seed, 0 to 2^32-1 (same seed, same output).")
DeviceOpt = typer.Option(Device.auto, "--device", help="auto, cpu or cuda.")
ModelOpt = typer.Option(None, "--model", help="Checkpoint file (default: the shipped model).")
OutOpt = typer.Option(None, "-o", "--out", help="Output file: .csv .parquet .sdf .smi (default: CSV on stdout).")
QuietOpt = typer.Option(False, "-q", "--quiet", help="No progress or summary on stderr.")


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception, so `finally` blocks remove temp files as on Ctrl-C."""


DEBUG = bool(os.environ.get("MOLDESIGN_DEBUG"))


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an unexpected error.")) -> None:
    global DEBUG
    DEBUG = DEBUG or debug


def _user_input_errors():
    from .api import user_input_errors

    return user_input_errors()


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _silence_stdout() -> None:
    """After a failed write to stdout (/dev/full, closed pipe) the interpreter would fail again
    flushing it at exit (a second message, exit 120): point fd 1 at /dev/null."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """The CLI's one error path: the package's typed errors → one `error: …` line and an exit code
    (2 bad input, 1 runtime failure such as I/O or nothing valid); Ctrl-C / SIGTERM → what was
    interrupted, exit 130 / 143 (temp files are removed by the writers' `finally`); anything
    unexpected → one line and a pointer to --debug (which shows the traceback)."""
    import warnings

    from .data import OutputError

    try:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")  # the CLI, not the library, mutes RDKit's parser warnings
    except ImportError:  # `train` from a pack on a machine without RDKit
        pass
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_sigterm(signum, frame):
            raise Terminated()

        previous = signal.signal(signal.SIGTERM, on_sigterm)
    show_before = warnings.showwarning

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        typer.echo(f"warning: {message}", err=True)  # not the two-line file:line form

    warnings.showwarning = one_line_warning
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as e:
        ctx = None
        with contextlib.suppress(Exception):
            import importlib

            ctx = importlib.import_module(_click_exceptions.__name__.rsplit(".", 1)[0] + ".globals") \
                .get_current_context(silent=True)
        what = str(e) or f"{ctx.info_name if ctx else 'moldesign'} stopped before finishing; no output written"
        code = 143 if isinstance(e, Terminated) else 130
        typer.echo(f"interrupted ({'SIGTERM' if code == 143 else 'SIGINT'}): {what}", err=True)
        raise typer.Exit(code)
    except _user_input_errors() as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        raise typer.Exit(2)
    except RunFailure as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        raise typer.Exit(1)
    except OutputError as e:
        _silence_stdout()
        typer.echo(f"error: {_one_line(e)}; nothing was written", err=True)
        raise typer.Exit(1)
    except OSError as e:
        _silence_stdout()
        where = f" ({e.filename})" if e.filename else ""
        typer.echo(f"error: {e.strerror or _one_line(e)}{where}", err=True)
        raise typer.Exit(1)
    except MemoryError:
        typer.echo("error: out of memory; ask for less (-n, --steps, --chains, --chunk-size)", err=True)
        raise typer.Exit(1)
    except Exception as e:
        if DEBUG:
            raise
        typer.echo(f"error: unexpected {type(e).__name__}: {_one_line(e)} (run with --debug for the traceback)",
                   err=True)
        raise typer.Exit(1)
    finally:
        warnings.showwarning = show_before
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def info(msg: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(msg, err=True)


def load_bundle(model: Optional[Path], device: Device):
    from .model import checkpoint
    from .decoding.sampling import resolve_device

    try:
        dev = resolve_device(device.value)
    except ValueError as e:
        raise UserError(str(e)) from None
    return checkpoint.load(model or DEFAULT_MODEL, dev)


def check_out_path(out: Optional[Path], what: str = "--out", suffixes: Optional[tuple[str, ...]] = None,
                   create_parent: bool = False) -> None:
    """Validate an output path before any work is done: its suffix, and that a file can be
    created there (data.check_output_path: not a directory, folder exists and is writable)."""
    from .data import OUTPUT_SUFFIXES, check_output_path

    if out is None:
        return
    suffixes = suffixes or OUTPUT_SUFFIXES
    if out.suffix.lower() not in suffixes:
        raise UserError(f"unsupported {'output' if what == '--out' else what} type {out.suffix or out.name!r}; use {' '.join(suffixes)}")
    check_output_path(out, what, create_parent=create_parent)


def check_data_dir(path: Path) -> Path:
    """--data-dir: a folder that exists or can be made, and where files can be written (exit 2 if not)."""
    from .data import check_output_path

    if path.exists() and not path.is_dir():
        raise UserError(f"--data-dir {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--data-dir {str(path)!r} cannot be created ({e.strerror or e})") from None
    check_output_path(path / "probe.parquet", "--data-dir")
    return path


def write_table(df, out: Optional[Path]) -> None:
    """Write a DataFrame by suffix, CSV on stdout when out is None (data.write_atomic_table: temp
    file + rename, so no half file on failure; SDF rows that do not parse keep their fields)."""
    from .data import CSV_FLOAT_FORMAT, write_atomic_table

    write_atomic_table(df, out, float_format=CSV_FLOAT_FORMAT)


# ---------------------------------------------------------------------------------------- data
@data_app.command("moses")
def data_moses(
    data_dir: Path = typer.Option(None, "--data-dir", help="Where the parquet tables go (default data/moses)."),
    workers: int = typer.Option(0, "--workers", callback=bounded(None, MAX_WORKERS), help="Worker processes (default: all cores)."),
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
    from .config import load_toml
    from .training.loop import prepare_datasets, write_pack

    with cli_errors():
        if out.suffix != ".npz":
            raise UserError(f"--out must end in .npz, got {str(out)!r}")
        check_out_path(out, suffixes=(".npz",))
        model_cfg, cfg = load_toml(config)
        prev = None
        if resume is not None:
            from .model.checkpoint import load

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

    from .data import ZINC_DIR, prepare_zinc250k

    with cli_errors():
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        t0 = time.time()
        report = prepare_zinc250k(source, check_data_dir(data_dir or ZINC_DIR), workers=workers or None, progress=not quiet,
                                  verify=verify, log=lambda m: info(m, quiet))
        info(f"done in {time.time() - t0:.1f} s", quiet)
        typer.echo(json.dumps(report, indent=2))


# ---------------------------------------------------------------------------------------- train
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
    import dataclasses

    import shlex

    from .config import ModelConfig, TrainConfig, load_toml
    from .decoding.sampling import resolve_device
    from .training.loop import TrainingInterrupted, torchrun_env
    from .training.loop import train as run_training

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
        model_cfg, train_cfg = load_toml(config) if config else (ModelConfig(), TrainConfig())
        overrides = {"data": data, "epochs": epochs, "time_limit_minutes": time_limit, "seed": seed,
                     "device": device.value if device != Device.auto else None}
        train_cfg = dataclasses.replace(train_cfg, **{k: v for k, v in overrides.items() if v is not None})
        if train_cfg.epochs <= 0:
            raise UserError(f"epochs must be positive, got {train_cfg.epochs}")
        train_cfg.validate()
        try:
            resolve_device(train_cfg.device)
        except ValueError as e:
            raise UserError(str(e)) from None
        try:
            bundle = run_training(model_cfg, train_cfg, out, resume=resume, log=lambda m: info(m, quiet),
                                  progress=not quiet, distributed=True if distributed else None)
        except TrainingInterrupted as e:  # saved: say so, and how to go on (exit 130 / 143, not 0)
            again = ["moldesign", "train", "--resume", str(e.out), "--out", str(e.out)]
            again += ["--config", str(config)] if config else []
            again += ["--data", data] if data else []
            again += ["--epochs", f"{epochs:g}"] if epochs is not None else []
            msg = f"{e}; resume with: {' '.join(shlex.quote(a) for a in again)}"
            raise (Terminated(msg) if e.signum == signal.SIGTERM else KeyboardInterrupt(msg)) from None
        if env.is_main:
            keys = ("epochs", "molecules_seen", "wall_seconds", "val_reconstruction", "val_prior_validity",
                    "active_units", "world_size")
            typer.echo(json.dumps({"out": str(out), **{k: bundle.train_info.get(k) for k in keys}}))


# ------------------------------------------------------------- design: generate / interpolate / optimize
# Thin wrappers over moldesign.api.Designer: parse, check paths, call, write. The API raises
# sampling.DesignInputError (→ exit 2) and NothingValid (→ exit 1) and warns with DesignWarning.
surrogate_app = typer.Typer(no_args_is_help=True, help="The latent property surrogate used by `optimize`.")
app.add_typer(surrogate_app, name="surrogate")


class InterpMethod(str, Enum):
    slerp = "slerp"
    linear = "linear"


@contextlib.contextmanager
def _design_errors() -> Iterator[None]:
    """Design API errors → UserError / RunFailure; DesignWarning printed as `warning: …` on stderr."""
    import warnings

    from .api import DesignWarning
    from .errors import DesignInputError, NothingValid

    with warnings.catch_warnings():
        warnings.simplefilter("always", DesignWarning)
        default_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DesignWarning):
                typer.echo(f"warning: {message}", err=True)
            else:
                default_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        except DesignInputError as e:
            raise UserError(str(e)) from None
        except NothingValid as e:
            raise RunFailure(str(e)) from None


class PriorChoice(str, Enum):
    auto = "auto"
    gmm = "gmm"
    normal = "normal"


PriorOpt = typer.Option(PriorChoice.auto, "--prior", help="Latent prior for samples drawn without a seed: auto (the checkpoint's GMM when it has one, else N(0, I)), gmm, or normal.")


def _use_prior(bundle, prior: "PriorChoice") -> None:
    """--prior: `normal` sets the fitted GMM aside for this run; `gmm` requires one."""
    if prior == PriorChoice.gmm and bundle.prior is None:
        raise UserError("--prior gmm: this model has no fitted GMM prior (run `moldesign prior fit`)")
    if prior == PriorChoice.normal:
        bundle.prior = None


def _designer(model: Optional[Path], device: Device):
    from .api import Designer

    return Designer(load_bundle(model, device), model or DEFAULT_MODEL)


def _check_image_path(path: Optional[Path], kind: str = "grid") -> None:
    """--grid / --plot: the suffix and folder are checked before any work (one-line exit 2)."""
    if path is not None:
        from . import drawing

        try:
            (drawing.check_grid_path if kind == "grid" else drawing.check_plot_path)(path)
        except ValueError as e:
            raise UserError(str(e)) from None
        check_out_path(path, f"--{kind}", (".png", ".svg"))


def _check_grid(grid: Optional[Path]) -> None:
    _check_image_path(grid, "grid")


def _check_plot(plot: Optional[Path]) -> None:
    _check_image_path(plot, "plot")


@app.command()
def generate(
    like: Optional[str] = typer.Option(None, "--like", help="Seed molecule (SMILES or name, e.g. tamiflu): sample around it, its properties are the default condition. A .smi/.csv/.tsv/.parquet FILE runs every seed in it (id column: id, seed_id or name, else the row number) and writes seed_id on every row."),
    mw: Optional[str] = typer.Option(None, "--mw", help="Requested molecular weight (g/mol, > 0)."),
    logp: Optional[str] = typer.Option(None, "--logp", help="Requested Crippen LogP."),
    hbd: Optional[str] = typer.Option(None, "--hbd", help="Requested H-bond donors (integer >= 0)."),
    hba: Optional[str] = typer.Option(None, "--hba", help="Requested H-bond acceptors (integer >= 0)."),
    tpsa: Optional[str] = typer.Option(None, "--tpsa", help="Requested TPSA (Å², > 0)."),
    n: int = typer.Option(50, "-n", callback=bounded(None, MAX_GENERATE), help=f"Number of valid, unique molecules (with --raw: number of decodes); at most {MAX_GENERATE:,}."),
    radius: Optional[float] = typer.Option(None, "--radius", callback=finite(0, 100), help=f"With --like: std of the Gaussian noise added to the seed's latent, per dimension in prior units (default {DEFAULT_RADIUS}; {MIN_SIMILARITY_RADIUS} where --min-similarity's search starts)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", callback=finite(0, 100), help=f"Decoding temperature; 0 = greedy (the molecule is set by z alone). Default {LIKE_TEMPERATURE} with --like, 0 without."),
    raw: bool = typer.Option(False, "--raw", help="Write every decoded string in order with a `valid` column (measures validity). Streamed in chunks of 10,000 with flat memory; with -o, parts go to OUT.parts/ first, so an interrupted run resumes when rerun with the same arguments."),
    max_attempts: Optional[int] = typer.Option(None, "--max-attempts", callback=bounded(None, MAX_DECODES), help=f"Decode budget (default max(1000, 20·n·oversample), at most {MAX_DECODES:,})."),
    min_similarity: Optional[float] = typer.Option(None, "--min-similarity", callback=finite(), help="With --like: keep only molecules with Tanimoto >= S to the seed (Morgan r=2); the radius adapts while searching."),
    keep: Optional[str] = typer.Option(None, "--keep", help="SMARTS substructure every output must contain, e.g. 'c1ccccc1S(N)(=O)=O'."),
    filters: Optional[list[str]] = typer.Option(None, "--filter", help="PROPERTY OP NUMBER, repeatable, as in screen: --filter 'qed>=0.5' --filter 'similarity>0.4'. PROPERTY: mw logp hbd hba tpsa qed sa similarity pains brenk."),
    sanity: bool = typer.Option(True, "--sanity/--no-sanity", help="Default sanity filter: drop strained small rings with heteroatoms (α-lactones, aziridinones, dioxetanes), N-CF3, rings > 8 atoms and SA > 6; the count removed is reported."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Also draw the seed and molecules to FILE.png or FILE.svg (20 per image; more pages as FILE-2.png ...)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Histograms of the outputs' properties vs the requested values and the seed, and of similarity, to FILE.png or FILE.svg."),
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default)."),
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
    from .api import is_seed_file, read_seeds
    from .data import CSV_FLOAT_FORMAT

    with cli_errors(), _design_errors():
        check_out_path(out)
        _check_grid(grid)
        _check_plot(plot)
        batch = is_seed_file(like)
        if batch and raw:
            raise UserError("--raw takes one --like molecule, not a seed file")
        seeds = read_seeds(like) if batch else None  # DataError (missing file, no SMILES column) → exit 2
        d = _designer(model, device)
        _use_prior(d.bundle, prior)
        if raw:  # streamed in chunks: flat memory for any -n, resumable parts beside -o
            if min_similarity is not None or keep is not None or filters or oversample is not None:
                raise UserError("--raw writes every decode unfiltered: --min-similarity, --oversample, --keep and "
                                "--filter do not apply")
            conditions = dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa, radius=radius, temperature=temperature,
                              constrained=not unconstrained, beam=beam)
            s = d.generate_raw_to(out, like, n, seed=seed, float_format=CSV_FLOAT_FORMAT, progress=not quiet,
                                  log=lambda m: info(m, quiet), **conditions)
            info(f"{n} rows; {n} decodes, validity {s['valid']:.3f}"
                 + (f"; {s['reused']} of {s['reused'] + s['parts']} parts reused" if s["reused"] else ""), quiet)
            if grid is not None or plot is not None:  # from the first decodes (chunk 0 is seeded by --seed)
                from .api import generate_grid, generate_plot

                df = d.generate(like, min(n, 1000), raw=True, seed=seed, **conditions)
                if grid is not None:
                    drawn = generate_grid(df[df["valid"]].assign(smiles=df["canonical"]), grid,
                                          d.molecule(like) if like else None)
                    info(f"grid of {drawn} molecules -> {grid}", quiet)
                if plot is not None:
                    info(f"plot -> {generate_plot(df, plot)} (first {len(df)} decodes)", quiet)
            return
        options = dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa, radius=radius, temperature=temperature,
                       seed=seed, max_attempts=max_attempts, min_similarity=min_similarity, keep=keep,
                       filters=filters, sanity=sanity, constrained=not unconstrained, beam=beam, oversample=oversample)
        if batch:
            info(f"{len(seeds)} seeds from {like}", quiet)
            df = d.generate_batch(seeds, n, progress=None if quiet else (lambda m: info(m, quiet)), **options)
            n_ok = sum("error" not in v for v in df.attrs["summary"].values())
            info(f"{int(df['valid'].sum())} molecules from {n_ok} of {len(seeds)} seeds", quiet)
            if not df["valid"].any():
                write_table(df, out)
                raise RunFailure(f"no seed of {like} gave a molecule (see the error column)")
        else:
            df = d.generate(like, n, raw=raw, log=None if quiet else (lambda m: info(m, quiet)), **options)
            s = df.attrs.get("summary", {})
            line = f"{len(df)} rows; {s.get('attempts')} decodes, validity {s.get('valid', 0):.3f}"
            if s.get("candidates", 0) > len(df):
                line += f"; best {len(df)} of {s['candidates']} candidates"
            if s.get("removed"):
                line += (f"; filters removed {s['removed_total']} ("
                         + ", ".join(f"{k}: {v}" for k, v in s["removed"].items()) + ")")
            elif sanity and not raw:
                line += "; filters removed 0"
            if min_similarity is not None:
                line += f"; radius {s['radius_start']:.3g} -> {s['radius']:.3g}"
            info(line, quiet)
        if grid is not None:
            from .api import generate_grid

            kept = df[df["valid"]].assign(smiles=df["canonical"]) if raw else df[df["valid"]] if batch else df
            drawn = generate_grid(kept, grid, d.molecule(like) if like and not batch else None)
            info(f"grid of {drawn} molecules -> {grid}", quiet)
        if plot is not None:
            from .api import generate_plot

            info(f"plot -> {generate_plot(df, plot)}", quiet)
        write_table(df, out)


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
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default)."),
    beam: int = typer.Option(0, "--beam", help="Decode each point by beam search of this width (0/1: greedy)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Walk the latent path between two molecules (condition interpolated too), decode greedily.

    Rows: step, alpha, smiles, valid, error (why an invalid decode is invalid), RDKit properties,
    qed, sa, similarity_a, similarity_b, duplicate (same molecule as the step before), passes,
    failed_filters. Greedy decoding: --seed changes nothing.
    """
    with cli_errors(), _design_errors():
        check_out_path(out)
        _check_grid(grid)
        _check_plot(plot)
        if steps < 2:
            raise UserError(f"--steps must be at least 2 (both ends), got {steps}")
        d = _designer(model, device)
        df = d.interpolate(mol_a, mol_b, steps, method.value, keep=keep, filters=filters, sanity=sanity,
                           constrained=not unconstrained, beam=beam)
        info(f"{steps} steps: {int(df['valid'].sum())} valid, "
             f"{df.loc[df['valid'], 'smiles'].nunique()} distinct molecules, {int(df['passes'].sum())} pass the filters",
             quiet)
        if grid is not None:
            from .api import interpolate_grid

            info(f"grid of {interpolate_grid(df, grid)} steps -> {grid}", quiet)
        if plot is not None:
            from .api import interpolate_plot

            info(f"plot -> {interpolate_plot(df, plot)}", quiet)
        write_table(df, out)


START_FILE_SUFFIXES = (".smi", ".csv", ".tsv", ".parquet", ".txt")


def _is_start_file(start: str) -> bool:
    """--start names a batch file when it has a table suffix (a SMILES never ends in .csv)."""
    p = Path(start)
    suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
    return suffix.lower().removesuffix(".gz") in START_FILE_SUFFIXES


@app.command()
def optimize(
    start: str = typer.Option(..., "--start", help="Seed molecule (SMILES or name), or a .smi/.csv/.tsv/.parquet file of starts (batch: one id per row)."),
    maximize: Optional[list[str]] = typer.Option(None, "--maximize", help="Column to maximize (mw logp hbd hba tpsa qed sa plogp plogp_raw similarity); repeatable. plogp: normalized penalized logP; plogp_raw: logP - SA."),
    minimize: Optional[list[str]] = typer.Option(None, "--minimize", help="Column to minimize; repeatable."),
    objective: Optional[str] = typer.Option(None, "--objective", help="Weighted sum of columns in natural units, e.g. '1.0*logp - 1.0*sa' or 'qed + 0.5*similarity'."),
    target: Optional[list[str]] = typer.Option(None, "--target", help="PROP=VALUE to approach, e.g. logp=3.0; repeatable."),
    method: str = typer.Option("cmaes", "--method", help="cmaes (CMA-ES in [z, c] with RDKit scoring; the default) or gradient (ascent on the latent surrogate; --baseline compares it with random directions)."),
    min_similarity: float = typer.Option(0.0, "--min-similarity", callback=finite(), help="Constraint: proposals keep Tanimoto similarity (Morgan r=2, 2048 bits) >= S to their start."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Cap on RDKit oracle calls per start (one per distinct valid decoded molecule)."),
    steps: int = typer.Option(30, "--steps", callback=bounded(1, MAX_OPT_STEPS), help=f"Gradient steps per chain (cmaes: generations; at most {MAX_OPT_STEPS:,}; steps x chains at most {MAX_OPT_DECODES:,})."),
    chains: int = typer.Option(8, "--chains", callback=bounded(1, MAX_CHAINS), help="Chains: one from the seed's own point, the rest from its neighbourhood (cmaes: population size)."),
    step_size: float = typer.Option(0.2, "--step-size", callback=finite(0, 100), help="Distance moved per step in [z, scaled condition] (normalized gradient)."),
    sigma: float = typer.Option(0.1, "--sigma", callback=finite(0, 100), help="Spread of z around the start (prior std units): cmaes's initial step per z coordinate, the gradient chains' starting noise."),
    condition_sigma: float = typer.Option(0.6, "--condition-sigma", callback=finite(0, 100), help="cmaes: initial step per condition coordinate (standardized units)."),
    prior_weight: float = typer.Option(0.1, "--prior-weight", callback=finite(0, 1e6), help="λ of the λ·log N(u;0,I) term that keeps z in high prior density and the condition near the training mean."),
    condition: str = typer.Option("optimize", "--condition", help="Decoder condition: optimize (moves with z), seed (held at the seed's properties; z moves alone) or only (z held at the seed's μ; the condition moves alone)."),
    samples: int = typer.Option(1, "--samples", help="Decodes per latent point: the greedy one plus SAMPLES-1 at --temperature (1..256); keeps proposals in the start's neighbourhood when μ decodes to another molecule."),
    temperature: float = typer.Option(1.0, "--temperature", callback=finite(), help="Temperature of the sampled decodes (0, 10]."),
    sigma_units: str = typer.Option("prior", "--sigma-units", help="Unit of --sigma and --step-size for z: prior (1 per coordinate) or posterior (the start's posterior σ per coordinate)."),
    fill_budget: bool = typer.Option(False, "--fill-budget", help="Restart from the best feasible point until --budget oracle calls are spent (stops early when a run finds nothing new)."),
    similarity_penalty: float = typer.Option(0.0, "--similarity-penalty", callback=finite(), help="cmaes: 0 ranks every molecule below --min-similarity under every feasible one (hard constraint); W > 0 scores it objective - W*(S - similarity) (a penalty)."),
    top: int = typer.Option(10, "--top", callback=bounded(None, 10_000), help="How many best distinct molecules to list/draw (batch: rows per start)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also run the random baseline (same decodes, same distances): single start, both summaries as JSON on stderr; batch, extra rows with method=random."),
    best: Optional[Path] = typer.Option(None, "--best", help="Single start: also write the best distinct molecules to this file."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Single start: draw the seed and best molecules to FILE.png or FILE.svg."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Batch: column with the start ids (default: start_id, id or name, else the row number)."),
    resume: bool = typer.Option(False, "--resume", help="Batch: continue an interrupted run from OUT.partial.csv, skipping starts already done."),
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Optimize molecules from a start (or a file of starts), every decode checked with RDKit.

    Objective values are in natural units (QED for --maximize qed). One start: writes the
    trajectory (chain, step, smiles, valid, RDKit values, plogp, plogp_raw, similarity, objective,
    improvement, feasible, oracle_call, pred_* from the surrogate, conditions, new, rank). A file:
    writes per start its best feasible proposals with start_id, start_smiles, similarity,
    objective, improvement, decodes, oracle_calls, seconds; a bad start (or one with no feasible
    proposal) is one row with valid=False and error. The gradient method needs a surrogate in the
    checkpoint (`moldesign surrogate fit`).
    When no decode of a single start is a new molecule (all the seed or invalid), the files are
    still written and the exit code is 1.
    """
    with cli_errors(), _design_errors():
        check_out_path(out)
        check_out_path(best, "--best")
        _check_grid(grid)
        if top < 1:
            raise UserError(f"--top must be at least 1, got {top}")
        if steps * chains > MAX_OPT_DECODES:
            raise UserError(f"--steps x --chains = {steps * chains:,} decodes; at most {MAX_OPT_DECODES:,} per run")
        settings = dict(steps=steps, chains=chains, step_size=step_size, prior_weight=prior_weight, top_k=top,
                        condition=condition, method=method, budget=budget, min_similarity=min_similarity,
                        sigma=sigma, condition_sigma=condition_sigma, constrained=not unconstrained,
                        samples=samples, temperature=temperature, sigma_units=sigma_units, fill_budget=fill_budget,
                        similarity_penalty=similarity_penalty)
        terms = dict(maximize=maximize or (), minimize=minimize or (), targets=target or (), objective=objective)
        from .design.optimize import check_settings

        check_settings(**settings, baseline=baseline)  # every setting, before the model loads
        if _is_start_file(start):
            if best is not None or grid is not None:
                raise UserError("--best and --grid are for a single start; a batch writes the best rows to --out")
            _optimize_batch(Path(start), out, settings, terms, baseline, id_column, resume, seed, model, device, quiet)
            return
        if resume or id_column is not None:
            raise UserError("--resume and --id-column need --start FILE (a batch of starts)")
        d = _designer(model, device)
        res = d.optimize(start, terms["maximize"], terms["minimize"], terms["targets"], seed=seed,
                         objective=objective, **settings)
        s = res.summary
        best_text = (f"{s['best_objective']} (improvement {s['improvement']})" if s["best_objective"] is not None
                     else "none (no new molecule)" if s["distinct"] == 0 else "none (no feasible molecule)")
        info(f"{s['objective']} ({s['method']}): {s['decodes']} decodes, {s['oracle_calls']} oracle calls, "
             f"{s['seconds']} s, validity {s['valid']:.3f}, {s['feasible']} feasible distinct; "
             f"start {s['seed_objective']}, best {best_text}", quiet)
        for r in res.best.head(5).to_dict("records"):
            pred = r.get("pred_objective")
            info(f"  #{r['rank']} {r['smiles']}  objective {r['objective']:.3f} similarity {r['similarity']:.2f}"
                 + (f" (surrogate {pred:.3f})" if pred is not None and pred == pred else ""), quiet)  # NaN: no surrogate
        if baseline:
            base = d.baseline(res, seed=seed)
            typer.echo(json.dumps({"optimize": s, "baseline": base.summary}), err=True)
        if grid is not None:
            from .api import optimize_grid

            info(f"grid of {optimize_grid(res, grid, res.start)} molecules -> {grid}", quiet)
        if best is not None:
            write_table(res.best, best)
        write_table(res.trajectory, out)
        if s["distinct"] == 0:  # the trajectory is written (as `screen` keeps all-invalid rows), then exit 1
            raise RunFailure(f"no new molecule in {s['decodes']} decodes (validity {s['valid']:.3f}; every valid "
                             "decode was the seed): try a larger --step-size or more --steps / --chains")


def _optimize_batch(path: Path, out: Optional[Path], settings: dict, terms: dict, baseline: bool,
                    id_column: Optional[str], resume: bool, seed: int, model: Optional[Path], device: Device,
                    quiet: bool) -> None:
    """One model load, every start in order. Rows of finished starts are appended to
    OUT.partial.csv as they finish (a name that does not look complete), so an interrupted batch
    resumes with --resume; the final table is written atomically to OUT, then the partial file
    is removed. A JSON summary goes to stderr."""
    import pandas as pd

    from .api import read_starts
    from .data import CSV_FLOAT_FORMAT

    if resume and out is None:
        raise UserError("--resume needs -o/--out (the partial results live beside it)")
    starts = read_starts(path, id_column)
    partial = out.with_name(out.name + ".partial.csv") if out is not None else None
    done: list = []
    if partial is not None and partial.exists():
        if not resume:
            raise UserError(f"{partial} exists from an interrupted run: pass --resume to continue it, or delete it")
        done.append(pd.read_csv(partial, dtype={"start_id": str, "start_input": str}, keep_default_na=False,
                                na_values=[""]))
    done_ids = set(done[0]["start_id"].astype(str)) if done else set()
    if resume:
        info(f"resuming: {len(done_ids)} of {len(starts)} starts already done", quiet)
    d = _designer(model, device)
    summaries, parts = [], []
    for sid, rows, summary in d.optimize_batch(starts, done_ids, baseline=baseline, progress=not quiet,
                                               seed=seed, **terms, **settings):
        parts.append(rows)
        if summary is not None:
            summaries.append(summary)
        if partial is not None:  # one start's rows at a time, flushed: the resume point
            rows.to_csv(partial, mode="a", header=not partial.exists(), index=False, float_format=CSV_FLOAT_FORMAT)
    table = pd.concat(done + parts, ignore_index=True) if done + parts else pd.DataFrame()
    order = {k: i for i, k in enumerate(starts["start_id"])}
    table = table.sort_values("start_id", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    write_table(table, out)
    if partial is not None:
        partial.unlink(missing_ok=True)
    firsts = table.drop_duplicates(["start_id", "method"]) if len(table) else table
    main = firsts[firsts["method"] == settings["method"]] if len(firsts) else firsts
    ok = main["start_smiles"].notna() if len(main) else main
    improved = main["improvement"].fillna(0).clip(lower=0) if len(main) and "improvement" in main else None
    report = {"starts": int(len(starts)), "bad_starts": int((~ok).sum()) if len(main) else 0,
              "resumed": len(done_ids), "method": settings["method"],
              "min_similarity": settings["min_similarity"], "budget": settings["budget"],
              "success": round(float((improved > 0).mean()), 4) if improved is not None and len(main) else None,
              "mean_improvement": round(float(improved.mean()), 4) if improved is not None and len(main) else None,
              "mean_decodes": round(float(main["decodes"].mean()), 1) if ok.any() else None,
              "mean_oracle_calls": round(float(main["oracle_calls"].mean()), 1) if ok.any() else None,
              "mean_seconds": round(float(main["seconds"].mean()), 2) if ok.any() else None}
    typer.echo(json.dumps({"optimize_batch": report}), err=True)


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
    with cli_errors(), _design_errors():
        from .api import surrogate_training_smiles

        target_path = _checkpoint_target(out, model)
        try:
            sizes = tuple(int(h) for h in hidden.split(","))
        except ValueError:
            raise UserError(f"--hidden must be comma-separated integers, got {hidden!r}") from None
        if not sizes or min(sizes) < 1 or max(sizes) > 65_536:
            raise UserError(f"--hidden sizes must be in 1..65536, got {hidden!r}")
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs}")
        if workers < 0:
            raise UserError(f"--workers must be >= 0, got {workers}")
        d = _designer(model, device)
        smiles = surrogate_training_smiles(data, n, seed)
        report = d.fit_surrogate(smiles, seed=seed, workers=workers or (os.cpu_count() or 1), progress=not quiet,
                                 log=lambda m: info(m, quiet), hidden=sizes, epochs=epochs)
        d.save(target_path)
        info(f"surrogate saved in {target_path}", quiet)
        typer.echo(json.dumps({"out": str(target_path), "data": data, **report}))


def _checkpoint_target(out: Optional[Path], model: Optional[Path]) -> Path:
    """Where `surrogate fit` / `prior fit` write: --out, else --model in place (the shipped model by
    default); a .pt path that can be written, checked before any work."""
    target = Path(out or model or DEFAULT_MODEL)
    if target.suffix != ".pt":
        raise UserError(f"--out must end in .pt, got {str(target)!r}")
    check_out_path(target, suffixes=(".pt",))
    return target


prior_app = typer.Typer(no_args_is_help=True, help="The latent prior used for unconditioned sampling.")
app.add_typer(prior_app, name="prior")


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
    with cli_errors(), _design_errors():
        from .api import surrogate_training_smiles

        target_path = _checkpoint_target(out, model)
        if not 1 <= components <= 256:
            raise UserError(f"--components must be in 1..256, got {components}")
        d = _designer(model, device)
        report = d.fit_prior(surrogate_training_smiles(data, n, seed), components, seed)
        d.save(target_path)
        info(f"prior saved in {target_path}", quiet)
        typer.echo(json.dumps({"out": str(target_path), "data": data, **report}))


# ---------------------------------------------------------------------------------------- app
def app_command(webapp: Path, port: int, host: str, model: Path, device: str, seed: int) -> list[str]:
    """The `streamlit run` command line for the web app (headless: no browser is opened, no usage
    statistics are sent, no file watcher); what follows `--` is read by webapp.app_args."""
    import sys

    return [sys.executable, "-m", "streamlit", "run", str(webapp), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
            "--", "--model", str(model), "--device", device, "--seed", str(seed)]


def check_port_free(host: str, port: int) -> None:
    import socket

    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"--host {host!r} is not a known host name or address") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind(addr)
        except OSError:
            raise UserError(f"--port {port} is already in use on {host}") from None


@app.command("app")
def run_app(
    port: int = typer.Option(8501, "--port", help="TCP port of the web server."),
    host: str = typer.Option("localhost", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, quiet: bool = QuietOpt,
) -> None:
    """Start the web app (Streamlit): Generate, Interpolate, Optimize, Screen and Model tabs over the
    Python API. Open http://HOST:PORT in a browser; Ctrl-C stops it. Needs the [app] extra."""
    import sys

    with cli_errors():
        try:
            import streamlit  # noqa: F401
        except ImportError:
            raise RunFailure("the web app needs Streamlit: pip install 'moldesign[app]'") from None
        check_port_free(host, port)
        path = (model or DEFAULT_MODEL).resolve()
        load_bundle(path, device)  # a missing or broken model fails here in one line, not in the browser
        env = dict(os.environ)  # streamlit runs webapp.py as a script: make this moldesign importable
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent)]
                                            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        info(f"moldesign app on http://{host}:{port} (model {path}); Ctrl-C stops it", quiet)
        cmd = app_command(Path(__file__).with_name("webapp.py"), port, host, path, device.value, seed)
        if quiet:  # streamlit prints its URL banner on stdout and logs on stderr
            cmd[cmd.index("--"):cmd.index("--")] = ["--logger.level", "error"]
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
        sys.stdout.flush(), sys.stderr.flush()
        # exec, not a child process: `moldesign app` becomes the server, so Ctrl-C, SIGTERM or a
        # test killing this pid stop the server itself and leave no orphan behind
        os.execve(sys.executable, cmd, env)


# ------------------------------------------------------------- screen / reconstruct / evaluate

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
    and an error. Loads no model (--seed, --device, --model are accepted and unused)."""
    from .screening.screen import (FilterError, ScreenOptions, format_summary, load_reference, parse_filter, screen_file)

    with cli_errors():
        check_out_path(out)
        if workers < 0 or chunk_size < 1 or max_atoms < 1:
            bad = ("--workers", workers) if workers < 0 else ("--chunk-size", chunk_size) if chunk_size < 1 else ("--max-atoms", max_atoms)
            raise UserError(f"{bad[0]} must be {'>= 0' if bad[0] == '--workers' else '>= 1'}, got {bad[1]}")
        if engine != Engine.dask and (scheduler is not None or partitions):
            raise UserError(f"{'--scheduler' if scheduler is not None else '--partitions'} needs --engine dask")
        if partitions < 0:
            raise UserError(f"--partitions must be >= 0, got {partitions}")
        if engine == Engine.dask and dedupe:
            raise UserError("--dedupe needs --engine local (a duplicate is found only by reading every earlier row in order)")
        if out is not None and out.exists() and input_path.exists() and out.resolve() == input_path.resolve():
            raise UserError(f"--out {out} would overwrite the input file")
        try:
            parsed = [parse_filter(f) for f in filters or []]
        except FilterError as e:
            raise UserError(str(e)) from None
        if reference is None and any(f.key == "novel" for f in parsed):
            raise UserError("filter on 'novel' needs --reference")
        if reference is not None and not reference.exists():
            raise UserError(f"--reference file not found: {reference}")
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
            from .screening.dask_engine import screen_file_dask

            summary = screen_file_dask(input_path, out, opts, smiles_col=smiles_col, scheduler=scheduler,
                                       workers=n_workers, partitions=partitions, progress=not quiet,
                                       log=lambda m: info(m, quiet))
        else:
            summary = screen_file(input_path, out, opts, smiles_col=smiles_col, workers=n_workers,
                                  chunk_size=chunk_size, progress=not quiet, resume=resume, log=lambda m: info(m, quiet))
        info(format_summary(summary) + (f" -> {out}" if out else ""), quiet)
        if summary["rows"] and not summary["valid"]:
            raise RunFailure(f"no valid molecule among the {summary['rows']} rows of {input_path}")


@app.command()
def reconstruct(
    input_arg: str = typer.Argument(..., metavar="INPUT", help="SMILES file (.smi .csv .tsv .parquet .sdf), or one SMILES or known molecule name."),
    smiles_col: Optional[str] = typer.Option(None, "--smiles-col", help="Column with the SMILES in a table file."),
    beam: int = typer.Option(0, "--beam", help="Beam search of this width instead of greedy decoding of mu (0/1: greedy)."),
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default)."),
    seed: int = SeedOpt,
    device: Device = DeviceOpt,
    model: Optional[Path] = ModelOpt,
    out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Encode molecules to mu and decode (greedy, or --beam K; grammar mask unless --unconstrained); report exact reconstructions.

    Rows `input, canonical, output, exact, error` in input order (exact = same non-isomeric
    canonical SMILES; error says why a molecule could not be encoded)."""
    import pandas as pd
    import torch

    from .known_molecules import resolve_molecule
    from .screening.metrics import reconstruction_table
    from .screening.screen import INPUT_SUFFIXES, iter_input_chunks

    with cli_errors():
        check_out_path(out)
        if beam < 0:
            raise UserError(f"--beam must be >= 0, got {beam}")
        path = Path(input_arg)
        if path.is_file():
            smiles = pd.concat(list(iter_input_chunks(path, smiles_col, 100_000)))["input"].tolist()
        elif path.suffix.lower() in INPUT_SUFFIXES + (".gz",):
            raise UserError(f"file not found: {path}")
        else:
            smiles = [resolve_molecule(input_arg)[1]]
        bundle = load_bundle(model, device)
        torch.manual_seed(seed)  # greedy decoding is deterministic; seeded for uniformity
        table = reconstruction_table(bundle, smiles, constrained=not unconstrained, beam=beam)
        n_ok = int(table["canonical"].notna().sum())
        if not n_ok:  # before writing: a failed run leaves no output file
            why = table["error"].iloc[0] if len(table) == 1 else f"e.g. {table['error'].iloc[0]}"
            raise RunFailure(f"no molecule of {input_arg} could be encoded by this model ({why})")
        write_table(table, out)
        n_bad_decode = int(table["error"].str.startswith("invalid decode").sum())
        info(f"reconstructed {int(table['exact'].sum())} of {len(table)} exactly; "
             f"{len(table) - n_ok} not encodable; {n_bad_decode} invalid decodes" + (f" -> {out}" if out else ""), quiet)


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
    unconstrained: bool = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default)."),
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

    from .screening import metrics
    from .data import DEFAULT_DATA_DIR

    with cli_errors():
        if out is not None and out.suffix.lower() != ".json":
            raise UserError(f"--out must end in .json, got {str(out)!r}")
        check_out_path(out, suffixes=(".json",))
        if n < 1 or n_reconstruct < 0 or n_per_target < 0 or temperature < 0:
            raise UserError(f"need -n >= 1, --reconstruct-n >= 0, --target-n >= 0, --temperature >= 0; "
                            f"got {n}, {n_reconstruct}, {n_per_target}, {temperature}")
        _check_plot(plot)
        if reference_dir is not None and not reference_dir.is_dir():
            raise UserError(f"--reference-dir is not a folder: {reference_dir}")
        for opt, path in (("--test", test), ("--test-scaffolds", test_scaffolds), ("--train", train_set)):
            if path is not None and not path.is_file():
                raise UserError(f"{opt} file not found: {path}")
        log = lambda m: info(m, quiet)  # noqa: E731
        bundle = load_bundle(model, device)
        _use_prior(bundle, prior)
        dev = next(bundle.model.parameters()).device.type
        t0 = time.time()
        refs = metrics.load_references(reference_dir or DEFAULT_DATA_DIR, test, test_scaffolds, train_set,
                                       fcd, dev, log)
        samples: list[str] = []
        result = metrics.evaluate(bundle, n, *refs, seed=seed, temperature=temperature,
                                  n_reconstruct=n_reconstruct, with_fcd=fcd, device=dev, n_per_target=n_per_target,
                                  log=log, samples=samples, constrained=not unconstrained)
        if plot is not None and samples:
            from .drawing import plot_distributions

            plot_distributions(metrics.property_frame(samples, seed=seed), metrics.property_frame(refs[0].smiles, seed=seed),
                               plot, title=f"{len(samples)} valid generated vs {len(refs[0].smiles)} test molecules")
            log(f"plot -> {plot}")
        result.update(model=str(model or DEFAULT_MODEL), seed=seed, temperature=temperature,
                      wall_seconds=round(time.time() - t0, 2))
        text = json.dumps(result, indent=2)
        if out is None:
            typer.echo(text)
        else:
            from .data import atomic_path

            with atomic_path(out) as tmp:
                Path(tmp).write_text(text + "\n")
        if not result["n_valid"]:
            raise RunFailure(f"none of the {n} sampled molecules is valid")


if __name__ == "__main__":  # `python -m moldesign.cli ...` (what torchrun runs: torchrun -m moldesign.cli train ...)
    app()
