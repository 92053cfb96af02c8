"""screen --engine dask equals --engine local: same rows, values, order and flags, on a 2-worker
LocalCluster, for each input reader (.csv .smi .parquet) and both output kinds (one CSV written
in order by the client; a partitioned parquet dataset written by the workers)."""
import filecmp

import pandas as pd
import pytest

pytest.importorskip("distributed")

from moldesign.data import DataError  # noqa: E402
from moldesign.screening.screen import ScreenOptions, screen_file  # noqa: E402
from moldesign.screening.dask_engine import screen_file_dask  # noqa: E402

BAD = {3: "C1CC", 10: "", 57: "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", 58: "c1cccc1", 200: "C[N+](C)(C)C.[Cl-]",
       301: "not a smiles"}


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample):
    """The first 320 rows of the committed MOSES sample with bad rows put in (syntax errors, an
    empty row, a salt, a quaternary ammonium): enough for 3 partitions with bad rows at their edges."""
    d = tmp_path_factory.mktemp("dask_in")
    df = sample.head(320).copy()
    smiles = df["smiles"].tolist()
    for i, s in BAD.items():
        smiles[i] = s
    df["smiles"] = smiles
    df.to_csv(d / "in.csv", index=False)
    df.to_parquet(d / "in.parquet", row_group_size=100)
    (d / "in.smi").write_text("smiles name\n" + "".join(f"{s} mol{i}\n" for i, s in enumerate(smiles)))
    return d


def _both(inputs, tmp_path, name, suffix, opts, scheduler, partitions=3):
    local, dask = tmp_path / f"local{suffix}", tmp_path / f"dask{suffix}"
    a = screen_file(inputs / name, local, opts, workers=1, chunk_size=64)
    b = screen_file_dask(inputs / name, dask, opts, scheduler=scheduler, partitions=partitions)
    assert b["partitions"] >= partitions and b["workers"] == 2
    assert {k: b[k] for k in a if k not in ("seconds", "rows_per_s")} == \
        {k: v for k, v in a.items() if k not in ("seconds", "rows_per_s")}
    return local, dask, a


def test_csv_to_csv_is_byte_identical(inputs, tmp_path, scheduler):
    local, dask, counts = _both(inputs, tmp_path, "in.csv", ".csv", ScreenOptions(filters=["logp<3"]), scheduler)
    assert filecmp.cmp(local, dask, shallow=False)
    df = pd.read_csv(dask)
    assert df["row"].tolist() == list(range(1, 321))
    assert counts["invalid"] == 4 and not df.loc[[3, 10, 58, 301], "valid"].any()
    assert df.loc[200, "standardization"] == "largest of 2 fragments; net charge +1"
    assert df.loc[57, "standardization"] == "largest of 2 fragments; neutralized"
    assert df.loc[57, "smiles"] == "CC(=O)Oc1ccccc1C(=O)O"


def test_smi_to_parquet_dataset(inputs, tmp_path, scheduler):
    (tmp_path / "dask.parquet").write_text("an older output file: replaced by the dataset folder")
    local, dask, _ = _both(inputs, tmp_path, "in.smi", ".parquet", ScreenOptions(), scheduler, partitions=4)
    assert dask.is_dir() and len(list(dask.glob("part.*.parquet"))) >= 4
    a, b = pd.read_parquet(local), pd.read_parquet(dask)
    pd.testing.assert_frame_equal(a, b)
    assert b["name"].tolist()[:2] == ["mol0", "mol1"] and len(b) == 320


def test_parquet_with_reference_filters_and_drop(inputs, tmp_path, scheduler, sample):
    ref = set(sample.head(100)["smiles"])  # MOSES SMILES are canonical and non-isomeric already
    opts = ScreenOptions(filters=["qed>0.6", "novel==1"], drop=True, reference=ref)
    local, dask, counts = _both(inputs, tmp_path, "in.parquet", ".parquet", opts, scheduler)
    a, b = pd.read_parquet(local), pd.read_parquet(dask)
    pd.testing.assert_frame_equal(a, b)
    assert 0 < counts["written"] < 320 and b["novel"].all() and (b["qed"] > 0.6).all()
    assert b["row"].is_monotonic_increasing and b["row"].min() > 100  # rows 1-100 are in the reference


def test_dask_refuses_dedupe_and_sdf(inputs, tmp_path, scheduler):
    with pytest.raises(DataError, match="--dedupe"):
        screen_file_dask(inputs / "in.csv", tmp_path / "o.csv", ScreenOptions(dedupe=True), scheduler=scheduler)
    (tmp_path / "x.sdf").write_text("")
    with pytest.raises(DataError, match="engine local"):
        screen_file_dask(tmp_path / "x.sdf", tmp_path / "o.csv", scheduler=scheduler)
