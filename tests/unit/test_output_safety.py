"""Output safety: destination checks, verified writes (full disk = error, no file), stale temps."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest

from moldesign import data
from moldesign.data import (ChunkWriter, DataError, OutputError, atomic_path, check_output_path, remove_stale_temps, write_atomic_table)

SUFFIXES = (".csv", ".tsv", ".parquet", ".sdf", ".smi")


def _table(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"smiles": ["CC(=O)Oc1ccccc1C(=O)O"] * n, "mw": [180.159] * n, "name": [f"m{i}" for i in range(n)]})


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_format_round_trips_and_leaves_no_temp(tmp_path, suffix):
    out = tmp_path / f"t{suffix}"
    write_atomic_table(_table(7), out)
    assert _leftovers(tmp_path) == [out.name] and out.stat().st_size > 0
    if suffix == ".parquet":
        assert len(pd.read_parquet(out)) == 7
    elif suffix == ".sdf":
        assert out.read_text().count("$$$$") == 7
    elif suffix == ".smi":
        assert len(out.read_text().splitlines()) == 7
    else:
        assert len(pd.read_csv(out, sep="\t" if suffix == ".tsv" else ",")) == 7


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_bytes_lost_on_the_way_to_disk_is_an_error_and_no_file(tmp_path, monkeypatch, suffix):
    """A writer whose bytes do not all reach the disk (what a full disk does to RDKit's SDWriter)
    must fail before the rename: OutputError, no output, no temp."""
    real = data.fsync_file

    def lossy(path):
        size = real(path)
        if suffix == ".parquet":  # truncate for real: the row count check has to notice
            with open(path, "r+b") as f:
                f.truncate(size // 2)
        return size - 1 if suffix != ".parquet" else size // 2

    monkeypatch.setattr(data, "fsync_file", lossy)
    out = tmp_path / f"t{suffix}"
    with pytest.raises(OutputError, match="could not write"):
        write_atomic_table(_table(), out)
    assert _leftovers(tmp_path) == []


def test_atomic_path_rejects_an_empty_result(tmp_path):
    out = tmp_path / "x.json"
    with pytest.raises(OutputError, match="0 bytes"):
        with atomic_path(out):
            pass  # the writer wrote nothing (e.g. swallowed ENOSPC)
    assert _leftovers(tmp_path) == []


def test_stale_temp_of_a_killed_run_is_removed_and_a_live_ones_kept(tmp_path):
    out = tmp_path / "out.csv"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that has exited (reuse within this test is vanishingly unlikely)
    stale = tmp_path / f".out.csv.{dead.pid}.abc123_x.tmp"
    live = tmp_path / f".out.csv.{os.getppid()}.zzz999.tmp"  # our parent is alive
    other = tmp_path / f".other.csv.{dead.pid}.abc123.tmp"  # another output's temp: not ours to touch
    for p in (stale, live, other):
        p.write_text("partial")
    write_atomic_table(_table(3), out)
    assert _leftovers(tmp_path) == sorted([out.name, live.name, other.name])
    assert remove_stale_temps(tmp_path / "other.csv") == [other]


@pytest.mark.parametrize("make,needle", [
    (lambda d: d / "missing" / "x.csv", "does not exist"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "f").write_text("") or d / "f" / "x.csv", "is not a folder"),
    (lambda d: Path("/proc/moldesign-x.csv"), "cannot write"),
])
def test_destination_checked_before_work(tmp_path, make, needle):
    with pytest.raises(DataError, match=needle):
        check_output_path(make(tmp_path), "--out")
    assert check_output_path(tmp_path / "new" / "x.pt", create_parent=True) == tmp_path / "new" / "x.pt"


@pytest.fixture
def full_disk():
    """A 64 KiB tmpfs: writing more than that fails with ENOSPC. Needs root (mount)."""
    mnt = Path(f"/tmp/moldesign-full-{uuid.uuid4().hex[:8]}")
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()[:80]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_full_disk_is_an_error_with_no_file(full_disk, suffix):
    out = full_disk / f"big{suffix}"
    with pytest.raises(OSError):
        write_atomic_table(_table(20_000), out)  # ~1 MB in every format: far over 64 KiB
    assert _leftovers(full_disk) == []
    write_atomic_table(_table(2), out)  # space is back: a small table still works
    assert _leftovers(full_disk) == [out.name]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".sdf"])
def test_cli_to_full_disk_exits_1_with_no_file(full_disk, tmp_path, suffix):
    from typer.testing import CliRunner

    from moldesign.cli import app

    src = tmp_path / "in.smi"
    # names of random hex: > 64 KiB in any format, compressed parquet included
    src.write_text("".join(f"CC(=O)Oc1ccccc1C(=O)O {os.urandom(150).hex()}\n" for _ in range(600)))
    out = full_disk / f"out{suffix}"
    r = CliRunner().invoke(app, ["screen", str(src), "-o", str(out), "--workers", "1", "-q"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.stderr.strip().startswith("error: ")
    assert _leftovers(full_disk) == []


def test_chunk_writer_to_stdout_is_unchanged(capsys):
    with ChunkWriter(None) as w:
        w.write(_table(2))
    assert capsys.readouterr().out.splitlines()[0] == "smiles,mw,name"
