"""The `moldesign` command line: thin wrappers that parse options, call the Python API, write files.

`main` is the console script (`moldesign = "moldesign.cli:main"`); `python -m moldesign.cli` and
`python cli.py` run it too; `app` is the Typer application (tests drive it in-process). What the
commands share is in common.py; each other module holds one command group.
Exit codes: 0 ok; 1 nothing valid / runtime failure; 2 usage or bad input (one line, no traceback).
"""
from .common import app

# Importing a command module registers its commands on `app`; this order is the order of `--help`.
from . import data, train, generate, interpolate, optimize, fitting, webapp, screen, evaluate  # noqa: E402,F401,I001

__all__ = ["app", "main"]

EXIT_GRACE_SECONDS = 2.0  # the bar: SIGINT/SIGTERM stop any command within ~2 s


def main() -> None:
    """Run the CLI as a process. After an interrupt (exit 130 / 143) the process must end within
    seconds even if interpreter shutdown blocks (concurrent.futures, for one, joins its pools'
    manager threads at exit without a timeout). A daemon timer ends the process with the same code
    if shutdown is not done after EXIT_GRACE_SECONDS. (The CI "hang" that prompted it was another
    thing: a test run started in the background inherits SIGINT ignored; tests/fuzz/test_kills.py.)
    Only the process entry point arms it: in-process callers of `app` (tests, notebooks) are never
    exited."""
    try:
        app()
    except SystemExit as e:
        if e.code in (130, 143):
            import os
            import sys
            import threading

            def hard_exit(code: int = e.code) -> None:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError):
                        pass
                os._exit(code)

            timer = threading.Timer(EXIT_GRACE_SECONDS, hard_exit)
            timer.daemon = True
            timer.start()
        raise
