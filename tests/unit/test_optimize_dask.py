"""optimize --engine dask equals --engine local (every column but the timing), and the RDKit
worker pool of a local batch gives the columns the main process gives."""
import numpy as np
import pandas as pd
import pytest

from moldesign.design.optimize.oracle import column_table, molecule_columns
from moldesign.workers import process_pool


def test_a_worker_pool_scores_like_the_main_process(sample):
    from moldesign.chem import canonical_mols

    canon, mols = canonical_mols(sample["smiles"].head(300).tolist())
    todo = {c: m for c, m in zip(canon, mols) if c is not None}
    here = column_table(todo)
    with process_pool(2) as pool:
        there = column_table(todo, pool)
    assert list(there) == list(here) and len(here) > 2 * 64  # enough for the pool to be used
    np.testing.assert_array_equal(np.stack(list(there.values())), np.stack(list(here.values())))
    np.testing.assert_array_equal(molecule_columns([None])[0], np.full(9, np.nan))


def test_dask_engine_rows_equal_local(tiny_model_path, tiny_smiles, tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("cma")
    from moldesign.cli import app
    from typer.testing import CliRunner

    starts = tmp_path / "s.csv"
    pd.DataFrame({"id": [f"s{i}" for i in range(5)], "smiles": tiny_smiles[:4] + ["not_a_smiles"]}).to_csv(
        starts, index=False)
    args = ["optimize", "--model", str(tiny_model_path), "--start", str(starts), "--maximize", "qed", "--steps", "2",
            "--chains", "4", "--sigma", "0.5", "--budget", "10", "-q"]
    runner = CliRunner()
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local.csv")])
    dask = runner.invoke(app, [*args, "--engine", "dask", "--workers", "2", "-o", str(tmp_path / "dask.csv")])
    assert local.exit_code == 0 and dask.exit_code == 0, dask.output
    a, b = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert list(b["start_id"].unique()) == ["s0", "s1", "s2", "s3", "s4"]
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
