"""Resumable batch results: finished starts' rows appended to OUT.partial.csv, and beside it
OUT.partial.json, the manifest: the settings fingerprint of the run and, per finished start, the
byte offset where its block of rows ends and the block's SHA-256 (plus its best-so-far curve, for
plots). The manifest is replaced atomically after each block is appended and fsynced, so on
--resume only blocks it vouches for are trusted: a file cut mid-line, cut short by a few bytes or
with rows of a start the manifest never recorded (a kill between the two writes) loses those
starts, which are run again; a run with another fingerprint is refused. Floats are written with
17 significant digits and read back exactly, so a resumed table equals an uninterrupted one."""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd

from ...errors import DesignInputError

VERSION = 1
FLOAT_FORMAT = "%.17g"  # round-trips every float64 (read back with float_precision="round_trip")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PartialResults:
    """OUT.partial.csv and its manifest OUT.partial.json for a batch into OUT with `fingerprint`
    (a JSON-able dict of everything that decides the rows) and `columns` (the CSV's columns)."""

    def __init__(self, out: Path, fingerprint: dict, columns: list[str]):
        self.csv = out.with_name(out.name + ".partial.csv")
        self.manifest = out.with_name(out.name + ".partial.json")
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back from the manifest
        self.columns = list(columns)
        self.header = pd.DataFrame(columns=self.columns).to_csv(index=False, lineterminator="\n").encode()
        self.entries: list[dict] = []

    def exists(self) -> bool:
        return self.csv.exists() or self.manifest.exists()

    def begin(self) -> None:
        """A fresh run: the manifest first (a CSV without one is never trusted), then the header."""
        self.entries = []
        self._write_manifest()
        with open(self.csv, "wb") as f:
            f.write(self.header)
            f.flush()
            os.fsync(f.fileno())

    def load(self) -> tuple[pd.DataFrame | None, int]:
        """Verify an interrupted run's files → (the rows of the starts they vouch for, or None; how
        many recorded starts were dropped as damaged). Truncates the CSV after the last good block.
        DesignInputError (one line) for another run's settings or a CSV without its manifest."""
        manifest = self._read_manifest()
        old = manifest.get("fingerprint") or {}
        if manifest.get("version") != VERSION or old != self.fingerprint:
            diff = sorted(k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k))
            raise DesignInputError(f"cannot resume {self.csv}: {', '.join(diff) or 'its version'} differ(s) from the "
                                   f"interrupted run's ({self.manifest}); use the same settings, or delete both "
                                   "files to start over")
        data = self.csv.read_bytes() if self.csv.exists() else b""
        good, pos = [], len(self.header)
        if data[:pos] == self.header:
            for e in manifest.get("starts", []):
                end = int(e["end"])
                if end > len(data) or end < pos or _sha(data[pos:end]) != e["sha256"]:
                    break  # this block (and every later one) is not what was written: redo those starts
                good.append(e)
                pos = end
        dropped = len(manifest.get("starts", [])) - len(good)
        self.entries = good
        with open(self.csv, "r+b" if self.csv.exists() else "wb") as f:  # keep the vouched bytes only
            if not good:  # a damaged or missing header: a fresh one
                f.seek(0)
                f.write(self.header)
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())
        self._write_manifest()
        if not good:
            return None, dropped
        table = pd.read_csv(io.BytesIO(data[:pos]), dtype={"start_id": str, "start_input": str},
                            keep_default_na=False, na_values=[""], float_precision="round_trip")
        return table, dropped

    def append(self, start_id: str, rows: pd.DataFrame, curve: dict | None = None) -> None:
        """One finished start: its rows appended and fsynced, then the manifest vouches for them."""
        block = rows.reindex(columns=self.columns).to_csv(index=False, header=False, float_format=FLOAT_FORMAT,
                                                          lineterminator="\n").encode()
        with open(self.csv, "ab") as f:
            start = f.tell()
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
        self.entries.append({"id": str(start_id), "end": start + len(block), "sha256": _sha(block), "curve": curve})
        self._write_manifest()

    def done_ids(self) -> set[str]:
        return {e["id"] for e in self.entries}

    def curves(self) -> dict:
        return {e["id"]: e.get("curve") for e in self.entries}

    def remove(self) -> None:
        self.csv.unlink(missing_ok=True)
        self.manifest.unlink(missing_ok=True)

    def _read_manifest(self) -> dict:
        if not self.manifest.exists():
            raise DesignInputError(f"{self.csv} has no manifest ({self.manifest.name}: the settings and finished "
                                   "starts of the run that wrote it), so it cannot be trusted; delete it to start over")
        try:
            manifest = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            manifest = None
        if not isinstance(manifest, dict):
            raise DesignInputError(f"cannot resume {self.csv}: its manifest {self.manifest} is damaged; delete both "
                                   "files to start over")
        return manifest

    def _write_manifest(self) -> None:
        from ...data import atomic_path

        with atomic_path(self.manifest) as tmp:
            Path(tmp).write_text(json.dumps({"version": VERSION, "fingerprint": self.fingerprint,
                                             "starts": self.entries}))
