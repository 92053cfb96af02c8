"""optimize --resume after a real SIGKILL (and a partial file then cut by 37 bytes) writes the
table an uninterrupted batch writes (every column but the timing)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from .test_kills import spawn, wait_until

pytest.importorskip("cma")


def _finished(manifest) -> int:
    try:
        return len(json.loads(manifest.read_text())["starts"])
    except (OSError, ValueError, KeyError):
        return 0


def test_optimize_resume_after_sigkill_equals_uninterrupted(tmp_path, tiny_model_path, tiny_smiles):
    starts = tmp_path / "starts.smi"
    starts.write_text("".join(f"{s} t{i}\n" for i, s in enumerate(tiny_smiles[1:7])))
    args = ["optimize", "--model", str(tiny_model_path), "--start", str(starts), "--maximize", "qed",
            "--min-similarity", "0.2", "--steps", "3", "--chains", "6", "--sigma", "0.5", "--budget", "30",
            "--fill-budget", "-q"]
    full, cut = tmp_path / "full.csv", tmp_path / "cut.csv"
    proc = spawn(*args, "-o", str(full))
    assert proc.wait(300) == 0, proc.stderr.read()
    proc = spawn(*args, "-o", str(cut))
    manifest = tmp_path / "cut.csv.partial.json"
    wait_until(lambda: _finished(manifest) >= 2 or proc.poll() is not None, 300, step=0.02)
    if proc.poll() is not None:
        pytest.skip("the batch finished before it could be killed")
    proc.kill()
    proc.wait(10)
    partial = tmp_path / "cut.csv.partial.csv"
    partial.write_bytes(partial.read_bytes()[:-37])  # a kill in the middle of a write
    proc = spawn(*args[:-1], "-o", str(cut), "--resume")
    assert proc.wait(300) == 0, proc.stderr.read()
    assert "resuming: " in proc.stderr.read()
    a, b = pd.read_csv(full), pd.read_csv(cut)
    assert a["start_id"].nunique() == 6 and not partial.exists() and not manifest.exists()
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
