"""`moldesign app`: check the port and the model, then exec the Streamlit web app (moldesign/webapp.py)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import RunFailure, UserError
from ..resources import DEFAULT_MODEL
from .common import Device, DeviceOpt, ModelOpt, QuietOpt, SeedOpt, app, cli_errors, info, load_bundle

WEBAPP_SCRIPT = Path(__file__).parent.with_name("webapp.py")  # moldesign/webapp.py, run by streamlit


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
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2])]
                                            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        info(f"moldesign app on http://{host}:{port} (model {path}); Ctrl-C stops it", quiet)
        cmd = app_command(WEBAPP_SCRIPT, port, host, path, device.value, seed)
        if quiet:  # streamlit prints its URL banner on stdout and logs on stderr
            cmd[cmd.index("--"):cmd.index("--")] = ["--logger.level", "error"]
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
        sys.stdout.flush(), sys.stderr.flush()
        # exec, not a child process: `moldesign app` becomes the server, so Ctrl-C, SIGTERM or a
        # test killing this pid stop the server itself and leave no orphan behind
        os.execve(sys.executable, cmd, env)
