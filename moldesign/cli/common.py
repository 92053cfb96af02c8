"""What the CLI's commands share: the typer app (one-line usage errors, --debug, --version), option
types and validators, size limits, the `cli_errors()` error path, and model / output helpers.

Exit codes: 0 ok; 1 nothing valid / runtime failure; 2 usage or bad input (one line, no traceback).
Heavy packages (torch, RDKit, pandas) are imported inside functions, so `moldesign --help` stays fast.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Iterator, Mapping, Optional, Union

import typer
from typer.core import TyperGroup

from .. import __version__
# light: plain exception classes, and the limits and checks shared with the API (no torch, no RDKit)
from ..design.rules import (MAX_CHAINS, MAX_DECODES, MAX_GENERATE, MAX_OPT_DECODES,  # noqa: F401 (used by commands)
                            MAX_OPT_STEPS, MAX_PATH_ANCHOR, MAX_PATH_STEPS, PATH_ANCHOR, SEED_MAX, check_integer,
                            check_number)
from ..errors import DesignInputError, RunFailure, UserError
from ..resources import DEFAULT_MODEL  # the shipped model; $MOLDESIGN_MODEL overrides

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

DEBUG = bool(os.environ.get("MOLDESIGN_DEBUG"))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"moldesign {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an unexpected error."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    global DEBUG
    DEBUG = DEBUG or debug


# ------------------------------------------------------------------------------ options and limits
class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class PriorChoice(str, Enum):
    auto = "auto"
    gmm = "gmm"
    normal = "normal"


# Sizes: the limits the CLI, the API and the web app share come from design/rules.py (imported
# above); the callbacks below refuse a value while parsing, with the API's own check and message.
MAX_EVALUATE = 1_000_000  # evaluate -n
MAX_WORKERS = 1_024


def _option_name(param) -> str:
    return max(param.opts, key=len) if param is not None and param.opts else "value"


def _shared_check(check, param, value, lo, hi):
    """Run one of design/rules.py's checks as a typer callback: a bad value found while parsing is
    one `error:` line naming it, exit 2 (click's own usage errors print three lines)."""
    if value is None:
        return value
    try:
        return check(_option_name(param), value, lo, hi)
    except DesignInputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def finite(lo: Optional[float] = None, hi: Optional[float] = None):
    """Callback for float options: NaN, ±inf and values outside [lo, hi] are rejected before any
    work is done, one line naming the value (exit 2; rules.check_number, as the API)."""

    def check(param: typer.CallbackParam, value: Optional[float]):  # typer passes arguments by annotation
        return _shared_check(check_number, param, value, lo, hi)

    return check


def bounded(lo: Optional[int] = None, hi: Optional[int] = None):
    """Callback for integer options: outside [lo, hi] → one line naming the value (exit 2;
    rules.check_integer, as the API)."""

    def check(param: typer.CallbackParam, value: Optional[int]):
        return _shared_check(check_integer, param, value, lo, hi)

    return check


# Shared options, so every subcommand spells them the same way.
SeedOpt = typer.Option(0, "--seed", callback=bounded(0, SEED_MAX), help="Random seed, 0 to 2^32-1 (same seed, same output).")
DeviceOpt = typer.Option(Device.auto, "--device", help="auto, cpu or cuda.")
ModelOpt = typer.Option(None, "--model", help="Checkpoint file (default: the shipped model).")
OutOpt = typer.Option(None, "-o", "--out", help="Output file: .csv .parquet .sdf .smi (default: CSV on stdout).")
QuietOpt = typer.Option(False, "-q", "--quiet", help="No progress or summary on stderr.")
PriorOpt = typer.Option(PriorChoice.auto, "--prior", help="Latent prior for samples drawn without a seed: auto (the checkpoint's GMM when it has one, else N(0, I)), gmm, or normal.")
UnconstrainedOpt = typer.Option(False, "--unconstrained", help="Decode without the SMILES grammar/valence mask (on by default).")


# ------------------------------------------------------------------------------------ error path
class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception, so `finally` blocks remove temp files as on Ctrl-C."""


def _user_input_errors():
    from ..frontend import user_input_errors

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


def _mute_rdkit() -> None:
    try:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")  # the CLI, not the library, mutes RDKit's parser warnings
    except ImportError:  # `train` from a pack on a machine without RDKit
        pass


def _raise_on_sigterm():
    """SIGTERM → Terminated (main thread only); returns the handler to put back, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, on_sigterm)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    typer.echo(f"warning: {message}", err=True)  # not the two-line file:line form


def _interrupted(e: KeyboardInterrupt) -> typer.Exit:
    """Ctrl-C / SIGTERM: say what was interrupted; exit 130 / 143."""
    ctx = None
    with contextlib.suppress(Exception):
        import importlib

        ctx = importlib.import_module(_click_exceptions.__name__.rsplit(".", 1)[0] + ".globals") \
            .get_current_context(silent=True)
    what = str(e) or f"{ctx.info_name if ctx else 'moldesign'} stopped before finishing; no output written"
    code = 143 if isinstance(e, Terminated) else 130
    typer.echo(f"interrupted ({'SIGTERM' if code == 143 else 'SIGINT'}): {what}", err=True)
    return typer.Exit(code)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """The CLI's one error path: the package's typed errors → one `error: …` line and an exit code
    (2 bad input, 1 runtime failure such as I/O or nothing valid); Ctrl-C / SIGTERM → what was
    interrupted, exit 130 / 143 (temp files are removed by the writers' `finally`); anything
    unexpected → one line and a pointer to --debug (which shows the traceback)."""
    import warnings

    from ..data import OutputError

    _mute_rdkit()
    previous = _raise_on_sigterm()
    show_before = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as e:
        raise _interrupted(e)
    except _user_input_errors() as e:
        raise _fail(_one_line(e), 2)
    except RunFailure as e:
        raise _fail(_one_line(e), 1)
    except OutputError as e:
        _silence_stdout()
        raise _fail(f"{_one_line(e)}; nothing was written", 1)
    except OSError as e:
        _silence_stdout()
        where = f" ({e.filename})" if e.filename else ""
        raise _fail(f"{e.strerror or _one_line(e)}{where}", 1)
    except MemoryError:
        raise _fail("out of memory; ask for less (-n, --steps, --chains, --chunk-size)", 1)
    except Exception as e:
        if DEBUG:
            raise
        raise _fail(f"unexpected {type(e).__name__}: {_one_line(e)} (run with --debug for the traceback)", 1)
    finally:
        warnings.showwarning = show_before
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def design_errors() -> Iterator[None]:
    """Design API errors → UserError / RunFailure; DesignWarning printed as `warning: …` on stderr."""
    import warnings

    from ..api import DesignWarning
    from ..errors import DesignInputError, NothingValid

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


# --------------------------------------------------------------------------- models and outputs
def info(msg: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(msg, err=True)


def load_bundle(model: Optional[Path], device: Device):
    from ..decoding.sampling import resolve_device
    from ..model import checkpoint

    try:
        dev = resolve_device(device.value)
    except ValueError as e:
        raise UserError(str(e)) from None
    return checkpoint.load(model or DEFAULT_MODEL, dev)


def designer(model: Optional[Path], device: Device):
    from ..api import Designer

    return Designer(load_bundle(model, device), model or DEFAULT_MODEL)


def use_prior(bundle, prior: PriorChoice) -> None:
    """--prior: `normal` sets the fitted GMM aside for this run; `gmm` requires one."""
    if prior == PriorChoice.gmm and bundle.prior is None:
        raise UserError("--prior gmm: this model has no fitted GMM prior (run `moldesign prior fit`)")
    if prior == PriorChoice.normal:
        bundle.prior = None


def check_out_path(out: Optional[Path], what: str = "--out", suffixes: Optional[tuple[str, ...]] = None,
                   create_parent: bool = False) -> None:
    """Validate an output path before any work is done: its suffix, and that a file can be
    created there (data.check_output_path: not a directory, folder exists and is writable)."""
    from ..data import OUTPUT_SUFFIXES, check_output_path

    if out is None:
        return
    suffixes = suffixes or OUTPUT_SUFFIXES
    if out.suffix.lower() not in suffixes:
        raise UserError(f"unsupported {'output' if what == '--out' else what} type {out.suffix or out.name!r}; use {' '.join(suffixes)}")
    check_output_path(out, what, create_parent=create_parent)


def _same_file(a: Path, b: Path) -> bool:
    """The same file under two spellings: equal resolved paths (`./x.csv`, a symlink), or one inode
    where both exist (a hard link). A text that is no usable path (a 500-character SMILES) is not."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, ValueError):
        return False


def check_no_overwrite(inputs: Mapping[str, Union[Path, str, None]], outputs: Mapping[str, Optional[Path]]) -> None:
    """Refuse, before any work, an output that is one of the inputs or another output (UserError:
    exit 2, one line naming both options). `inputs`: option -> path (a value that is not an
    existing file, e.g. a SMILES, is skipped); `outputs`: option -> path or None. Every command
    calls it with all of its files, e.g. {"INPUT": path, "--model": model}, {"--out": out,
    "--grid": grid, "--plot": plot}."""
    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None]
    for i, (opt, out) in enumerate(outs):
        for in_opt, given in inputs.items():
            path = Path(given) if given is not None else None
            if path is not None and is_existing_file(path) and _same_file(out, path):
                raise UserError(f"{opt} {str(out)!r} would overwrite the input file {in_opt} {str(path)!r}; "
                                "write the output elsewhere")
        for other_opt, other in outs[:i]:
            if _same_file(out, other):
                raise UserError(f"{other_opt} {str(other)!r} and {opt} {str(out)!r} are the same file; "
                                "give each output its own path")


def is_existing_file(path: Path) -> bool:
    """path.is_file(), False for a text that cannot be a path (too long for the filesystem)."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the filesystem is no file
        return False


PREPARED_SETS = ("moses", "zinc250k")  # --data names of the prepared training splits


def check_data_file(data: Optional[str]) -> None:
    """--data given as a file (not a prepared set): a regular file that exists, checked before the
    model or config is loaded (DataError: exit 2, one line; a folder is named as one)."""
    if data is not None and data not in PREPARED_SETS:
        from ..data import check_input_file

        check_input_file(data)


def nothing_valid(what: str, written: int, out: Optional[Path]) -> RunFailure:
    """The one rule for a batch in which no row is valid (screen, generate --like FILE,
    reconstruct, interpolate): every row is kept and flagged, so the table is written first, each
    row with valid=False / its error, and then the run fails with exit 1 and this line. A chemist
    scripting a batch gets both: the exit code stops the pipeline, and the file says why each row
    failed (one error line could name only one row's reason)."""
    rows = f"{written} row{'s' if written != 1 else ''} written to {out or 'stdout'}"
    each = "" if not written else ", with its error" if written == 1 else ", each with its error"
    return RunFailure(f"no valid {what} ({rows}{each})")


def check_image_path(path: Optional[Path], kind: str = "grid") -> None:
    """--grid / --plot: the suffix and folder are checked before any work (one-line exit 2)."""
    if path is not None:
        from .. import drawing

        try:
            (drawing.check_grid_path if kind == "grid" else drawing.check_plot_path)(path)
        except ValueError as e:
            raise UserError(str(e)) from None
        check_out_path(path, f"--{kind}", (".png", ".svg"))


def check_grid(grid: Optional[Path]) -> None:
    check_image_path(grid, "grid")


def check_plot(plot: Optional[Path]) -> None:
    check_image_path(plot, "plot")


def write_table(df, out: Optional[Path]) -> None:
    """Write a DataFrame by suffix, CSV on stdout when out is None (data.write_atomic_table: temp
    file + rename, so no half file on failure; SDF rows that do not parse keep their fields)."""
    from ..data import CSV_FLOAT_FORMAT, write_atomic_table

    write_atomic_table(df, out, float_format=CSV_FLOAT_FORMAT)
