"""Helpers shared by the CLI tests."""
import io

import pandas as pd
from typer.testing import CliRunner

from moldesign.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def table(result) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ok(result).stdout))


def one_line_error(result, code=2):
    """Assert the command failed with `code` and exactly one `error: ...` line on stderr (besides
    one-line `warning: ...` notes about the inputs that were read before the error); return it."""
    assert result.exit_code == code, result.output
    lines = [l for l in result.stderr.strip().splitlines() if l.strip() and not l.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
