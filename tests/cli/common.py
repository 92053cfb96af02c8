"""Helpers shared by the CLI tests."""
from typer.testing import CliRunner

runner = CliRunner()


def one_line_error(result, code=2):
    """Assert the command failed with `code` and exactly one `error: ...` line on stderr (besides
    one-line `warning: ...` notes about the inputs that were read before the error); return it."""
    assert result.exit_code == code, result.output
    lines = [l for l in result.stderr.strip().splitlines() if l.strip() and not l.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
