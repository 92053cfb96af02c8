"""Interruptions: screen killed (SIGKILL / SIGTERM) and resumed, train stopped by Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from moldesign.screening import screen as screening
from moldesign.screening.screen import ScreenOptions, parts_dir, screen_file

from .common import one_line_error, runner

REPO = Path(__file__).resolve().parents[2]


def _input(tmp_path: Path, sample: pd.DataFrame, n: int) -> Path:
    """n rows: sample molecules with duplicates and a few bad rows mixed in (dedupe state matters)."""
    smiles = sample["smiles"].tolist()
    rows = [smiles[i % 97] if i % 13 else "not_a_smiles" for i in range(n)]
    src = tmp_path / "in.csv"
    pd.DataFrame({"smiles": rows, "id": range(n)}).to_csv(src, index=False)
    return src


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".sdf"])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, sample, monkeypatch, suffix):
    src = _input(tmp_path, sample, 240)
    opts = dict(opts=ScreenOptions(dedupe=True, filters=["qed>0.5"]), chunk_size=30)
    ref = tmp_path / f"ref{suffix}"
    full = screen_file(src, ref, **opts)
    out = tmp_path / f"out{suffix}"
    real, calls = screening.score_smiles, []

    def dies_at_chunk_5(args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(screening, "score_smiles", dies_at_chunk_5)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        screen_file(src, out, **opts)
    assert not out.exists() and len(list(parts_dir(out).glob(f"part-*{suffix}"))) == 4
    monkeypatch.setattr(screening, "score_smiles", real)
    calls.clear()
    resumed = screen_file(src, out, resume=True, **opts)
    assert {k: v for k, v in resumed.items() if k not in ("seconds", "rows_per_s")} == \
        {k: v for k, v in full.items() if k not in ("seconds", "rows_per_s")}
    assert not parts_dir(out).exists()
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(ref))
    else:
        assert out.read_bytes() == ref.read_bytes()
    assert full["duplicates"] > 0 and full["invalid"] > 0  # the scenario has dedupe state across chunks


def test_resume_refuses_other_options_and_restarts_without_flag(tmp_path, sample, monkeypatch):
    src = _input(tmp_path, sample, 60)
    out = tmp_path / "out.csv"
    real, calls = screening.score_smiles, []

    def dies(args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(screening, "score_smiles", dies)
    with pytest.raises(KeyboardInterrupt):
        screen_file(src, out, chunk_size=20)
    monkeypatch.setattr(screening, "score_smiles", real)
    r = runner.invoke(app_(), ["screen", str(src), "-o", str(out), "--chunk-size", "30", "--resume", "-q"])
    assert "chunk_size" in one_line_error(r, 2) and parts_dir(out).exists() and not out.exists()
    r = runner.invoke(app_(), ["screen", str(src), "-o", str(out), "--chunk-size", "30", "-q", "--workers", "1"])
    assert r.exit_code == 0, r.output  # without --resume: a fresh run, the old parts discarded
    assert len(pd.read_csv(out)) == 60 and not parts_dir(out).exists()


def app_():
    from moldesign.cli import app

    return app


def _spawn_screen(src: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "cli.py"), "screen", str(src), "-o", str(out), "--workers", "1",
                             "--chunk-size", "10", "-q", *extra], env=env, stderr=subprocess.PIPE, text=True)


def _wait_for_parts(out: Path, proc: subprocess.Popen, n: int = 2, timeout: float = 300) -> None:
    t0 = time.time()
    while len(list(parts_dir(out).glob("part-*.csv"))) < n:
        assert proc.poll() is None, "screen finished before it could be killed; use a larger input"
        assert time.time() - t0 < timeout
        time.sleep(0.05)


@pytest.fixture(scope="module")
def killable(tmp_path_factory, sample):
    """An input of 400 rows (40 chunks of 10: a few seconds of work) and its uninterrupted screen."""
    d = tmp_path_factory.mktemp("kill")
    src = _input(d, sample, 400)
    screen_file(src, d / "ref.csv", ScreenOptions(dedupe=True), chunk_size=10)
    return src, (d / "ref.csv").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_screen_killed_then_resumed_equals_uninterrupted(tmp_path, killable, sig):
    src, ref_bytes = killable
    out = tmp_path / "out.csv"
    proc = _spawn_screen(src, out, "--dedupe")
    _wait_for_parts(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "Traceback" not in err
        assert err.strip().startswith("interrupted (SIGTERM)") and "--resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # SIGTERM: no temp; SIGKILL: none at top
    again = _spawn_screen(src, out, "--dedupe", "--resume")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.read_bytes() == ref_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # parts and temps gone


def test_train_ctrl_c_exits_nonzero_with_the_resume_command(tmp_path, tiny_smiles, monkeypatch):
    """SIGINT arrives during step 3: the step finishes, the checkpoint is saved, the exit code is
    130 and the message gives the command that continues the run."""
    from moldesign.training import loop as training

    real, steps = training.elbo_terms, []

    def interrupted_at_step_3(*a, **k):
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(training, "elbo_terms", interrupted_at_step_3)
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles[:40]}).to_csv(data, index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nmax_len = 64\nembed_dim = 8\nconv_channels = [8]\nconv_kernels = [3]\nenc_hidden = 16\n"
                   "latent_dim = 4\ndec_hidden = 16\n[train]\nbatch_size = 4\nval_size = 2\nnum_threads = 1\n")
    out = tmp_path / "run" / "m.pt"
    r = runner.invoke(app_(), ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), "--epochs", "5"])
    assert r.exit_code == 130, r.output
    assert "Traceback" not in r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT): interrupted at step 3 of ") and "resume with: moldesign train --resume" in last
    assert out.exists()
    from moldesign.model import checkpoint

    assert checkpoint.load(out).train_state["step"] == 3
