"""Kills with real signals (issue 29): no worker outlives its command, even after SIGKILL of the
parent; SIGTERM/SIGINT stop a command within seconds; a resume after SIGKILL equals the
uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from moldesign.cli import EXIT_GRACE_SECONDS

REPO = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc: Linux, like the machines this runs on)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def wait_until(cond, timeout: float, step: float = 0.05) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _sigint_as_in_a_terminal() -> None:
    """In the child before exec: SIGINT back to its default. A test run started in the background
    (`nohup make test &`, a CI runner) inherits SIGINT ignored, and a Python started with SIGINT
    ignored never raises KeyboardInterrupt: Ctrl-C tests would then test nothing (and hang)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "cli.py"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_in_a_terminal, **kw)


@pytest.fixture(scope="module")
def big_input(tmp_path_factory, sample) -> Path:
    """The 5,000 sample molecules twice (10,000 rows): ~10 s of screening with 2 workers."""
    d = tmp_path_factory.mktemp("kills")
    src = d / "big.smi"
    src.write_text("\n".join(sample["smiles"].tolist() * 2) + "\n")
    return src


def _workers_started(proc: subprocess.Popen, n: int = 2, timeout: float = 60) -> list[int]:
    assert wait_until(lambda: len(children(proc.pid)) >= n or proc.poll() is not None, timeout)
    assert proc.poll() is None, "finished before it could be killed; use a larger input"
    time.sleep(0.5)  # workers busy
    return children(proc.pid)


def test_screen_workers_die_with_a_sigkilled_parent_and_resume_equals_uninterrupted(tmp_path, big_input):
    out = tmp_path / "res.csv"
    proc = spawn("screen", str(big_input), "-o", str(out), "--workers", "2", "--chunk-size", "250", "-q")
    workers = _workers_started(proc)
    time.sleep(1.0)  # some chunks written
    proc.kill()
    proc.wait(10)
    assert wait_until(lambda: not any(alive(p) for p in workers), 3.0), "workers outlived the SIGKILLed parent"
    assert not out.exists()
    again = spawn("screen", str(big_input), "-o", str(out), "--workers", "2", "--chunk-size", "250", "-q", "--resume")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    ref = tmp_path / "ref.csv"
    whole = spawn("screen", str(big_input), "-o", str(ref), "--workers", "2", "--chunk-size", "250", "-q")
    _, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(ref))


# Ctrl-C to the whole process group hung once (30 s, "interrupted" printed, no exit) in a fresh-clone CI
# run of session 10 and could not be reproduced in 37 tries since; the exit watchdog (cli.main, tested
# below) bounds any such hang, so the bound here leaves room for its grace
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT-to-group"])
def test_screen_with_workers_stops_within_seconds(tmp_path, big_input, sig):
    out = tmp_path / "res.csv"
    proc = spawn("screen", str(big_input), "-o", str(out), "--workers", "2", "--chunk-size", "250", "-q",
                 start_new_session=True)
    workers = _workers_started(proc)
    t0 = time.time()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.time() - t0 < 2.0 + EXIT_GRACE_SECONDS, f"took {time.time() - t0:.1f} s to stop"
    assert proc.returncode in (130, 143), err
    assert "Traceback" not in err and err.strip().startswith("interrupted"), err
    assert wait_until(lambda: not any(alive(p) for p in workers), 3.0)
    assert not out.exists()


def test_data_preparation_stops_with_its_workers_on_sigterm(tmp_path, big_input):
    src = tmp_path / "zinc"
    src.mkdir()
    (src / "train.smi").write_text(big_input.read_text() * 4)
    (src / "test.smi").write_text("CCO\n")
    proc = spawn("data", "zinc250k", "--from", str(src), "--no-verify", "--workers", "2",
                 "--data-dir", str(tmp_path / "out"),
                 start_new_session=True)
    workers = _workers_started(proc)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # the SIGTERM-then-SIGINT
    _, err = proc.communicate(timeout=30)
    assert time.time() - t0 < 5.0, f"took {time.time() - t0:.1f} s to stop"
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert wait_until(lambda: not any(alive(p) for p in workers), 3.0), "workers went on after the command stopped"
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_an_interrupted_command_exits_even_when_interpreter_shutdown_blocks(tmp_path, big_input):
    # a non-daemon thread that never ends stands in for a pool manager thread stuck in its join:
    # interpreter exit waits for it, and only cli.main's exit watchdog ends the process
    code = ("import sys, threading, time; from moldesign.cli import main; "
            "threading.Thread(target=time.sleep, args=(600,)).start(); "
            f"sys.argv = ['moldesign', 'screen', {str(big_input)!r}, '-o', {str(tmp_path / 'res.csv')!r}, "
            "'--workers', '2', '--chunk-size', '250', '-q']; main()")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)
    _workers_started(proc)
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert EXIT_GRACE_SECONDS - 1 < time.time() - t0 < EXIT_GRACE_SECONDS + 5, time.time() - t0
    assert err.strip().startswith("interrupted") and "Traceback" not in err, err
    assert not (tmp_path / "res.csv").exists()
