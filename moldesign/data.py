"""Data acquisition and preparation: MOSES splits, user SMILES files, property tables,
the property scaler and length-bucketed batches.

MOSES (Polykovskiy et al. 2020, MIT licence) is ~1.9M ZINC Clean Leads molecules split into
train (1,584,663), test (176,074) and test_scaffolds (176,226). The split files ship inside the
`molsets` wheel on PyPI; the package itself does not install on Python 3.11, so we download the
wheel (a zip) with pip and read `moses/dataset/data/<split>.csv.gz` from it without importing it.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .config import PROPERTIES  # chem (RDKit) is imported where molecules are parsed, not here

MOSES_SPLITS = ("train", "test", "test_scaffolds")
MOSES_WHEEL = "molsets==0.3.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path(os.environ.get("MOLDESIGN_DATA", REPO_ROOT / "data" / "moses"))
SAMPLE_PATH = REPO_ROOT / "data" / "moses_sample.csv"
MOSES_FILTERS_DIR = REPO_ROOT / "data" / "moses_filters"  # MOSES's MCF + PAINS SMARTS (filters metric)


class DataError(ValueError):
    """Bad user data (missing file, no SMILES column, ...): the message is one line."""


# ------------------------------------------------------------------ MOSES
def find_or_download_molsets_wheel(cache_dir: Path) -> Path:
    """Path of the molsets wheel in cache_dir, downloading it with pip when absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache_dir.glob("molsets-*.whl"))
    if wheels:
        return wheels[0]
    cmd = [sys.executable, "-m", "pip", "download", MOSES_WHEEL, "--no-deps", "-q", "-d", str(cache_dir)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(cache_dir.glob("molsets-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(f"could not download {MOSES_WHEEL}: {result.stderr.strip().splitlines()[-1:]}")
    return wheels[0]


def read_wheel_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error) as e:  # truncated / damaged download
        raise DataError(f"{wheel} is damaged ({type(e).__name__}: {str(e).strip()[:80]}); delete it to download "
                        f"it again") from None


def read_moses_split_raw(wheel: Path, split: str) -> list[str]:
    """The SMILES column of one MOSES split, as shipped."""
    raw = read_wheel_member(wheel, f"moses/dataset/data/{split}.csv.gz")
    return pd.read_csv(io.BytesIO(raw), compression="gzip")["SMILES"].tolist()


def moses_table_path(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    return Path(data_dir) / f"{split}.parquet"


def prepare_moses(
    data_dir: Path = DEFAULT_DATA_DIR,
    splits: Sequence[str] = MOSES_SPLITS,
    workers: int | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, dict]:
    """Download, canonicalize and compute properties for each MOSES split; write parquet tables.

    Idempotent: a split whose parquet exists is skipped. Each table is written to a temporary
    file and renamed, so an interrupted run never leaves a table that looks complete.
    Returns {split: {"path", "n", "n_invalid", "skipped"}}.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    report: dict[str, dict] = {}
    wheel = None
    for split in splits:
        if split not in MOSES_SPLITS:
            raise DataError(f"unknown MOSES split {split!r}; choose from {', '.join(MOSES_SPLITS)}")
        out = moses_table_path(split, data_dir)
        if out.exists():
            try:
                n = pd.read_parquet(out, columns=["smiles"]).shape[0]
            except Exception as e:  # a damaged cache must not pass for a prepared split
                raise DataError(f"{out} is not a readable parquet table ({type(e).__name__}); delete it and "
                                f"rerun `moldesign data moses`") from None
            report[split] = {"path": str(out), "n": n, "n_invalid": 0, "skipped": True}
            log(f"{split}: {out} exists ({n} molecules), skipped")
            continue
        wheel = wheel or find_or_download_molsets_wheel(data_dir)
        raw = read_moses_split_raw(wheel, split)
        from .chem import compute_table

        table = compute_table(raw, workers=workers, progress=progress, desc=f"moses {split}")
        n_invalid = int((~table["valid"]).sum())
        table = table[table["valid"]].drop(columns=["valid", "error", "input"])
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
        report[split] = {"path": str(out), "n": len(table), "n_invalid": n_invalid, "skipped": False}
        log(f"{split}: {len(table)} molecules ({n_invalid} invalid dropped) -> {out}")
    return report


def moses_wheel_member(member: str, data_dir: Path = DEFAULT_DATA_DIR) -> bytes:
    """Any file from the molsets wheel (e.g. `moses/metrics/mcf.csv`), downloading if needed."""
    return read_wheel_member(find_or_download_molsets_wheel(Path(data_dir)), member)


def load_moses(split: str, data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """The prepared table of a split (columns smiles + PROPERTIES). Raises DataError if absent."""
    path = moses_table_path(split, data_dir)
    if not path.exists():
        raise DataError(f"{path} not found; run `moldesign data moses` first")
    return pd.read_parquet(path)


def load_sample() -> pd.DataFrame:
    """The committed 5,000-molecule MOSES sample (smiles + PROPERTIES + split)."""
    return pd.read_csv(SAMPLE_PATH)


# ------------------------------------------------------------------ ZINC250k
# ZINC250k as split by DD-VAE (train 220,011 / test 5,000; rows of the chemical VAE paper's
# 250k_rndm_zinc_drugs_clean set). Downloaded from a commit-pinned public URL; verified by the
# SHA-256 of its SMILES column (stripped, newline-joined), so the check holds whatever the file's
# compression or column layout. Here the same files are read from a local copy (--from PATH).
ZINC_DIR = Path(os.environ.get("MOLDESIGN_ZINC", REPO_ROOT / "data" / "zinc250k"))
ZINC_URL = "https://raw.githubusercontent.com/insilicomedicine/DD-VAE/13498d098bae2c8177abec61ab80d8b618d274f3/data/zinc/{split}.csv.gz"
ZINC_SPLITS = {
    "train": (220_011, "119c391e47e8ca9be0f110e72dec4a7e1ab7c92140c038172812059b4820b591"),
    "test": (5_000, "ed3afe0ce304890b443cd04f637c8e2a992675558c6679250947822752c8ec24"),
}


def smiles_checksum(smiles: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(s.strip() for s in smiles).encode()).hexdigest()


def _zinc_source_smiles(source: str | Path | None, split: str) -> list[str]:
    """The raw SMILES of one split from a local folder/file or a URL (default: ZINC_URL)."""
    import urllib.request

    source = str(source) if source is not None else ZINC_URL
    if "://" in source:
        url = source.format(split=split) if "{split}" in source else source.rstrip("/") + f"/{split}.csv.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                raw = r.read()
        except OSError as e:
            raise DataError(f"could not download {url}: {e}") from None
        df = pd.read_csv(io.BytesIO(raw), compression="gzip" if url.endswith(".gz") else None, dtype=str)
        return df[find_smiles_column(list(df.columns))].tolist()
    path = Path(source)
    if path.is_dir():
        found = [p for p in (path / f"{split}{ext}" for ext in (".smi.gz", ".smi", ".csv.gz", ".csv")) if p.exists()]
        if not found:
            raise DataError(f"{path} has no {split}.smi(.gz) or {split}.csv(.gz)")
        path = found[0]
    return read_smiles_file(path)["smiles"].tolist()


def prepare_zinc250k(source: str | Path | None = None, data_dir: Path = ZINC_DIR, workers: int | None = None,
                     progress: bool = True, verify: bool = True, log=print) -> dict[str, dict]:
    """Fetch (or read) ZINC250k, check each split's content checksum, standardize every molecule
    (chem.standardize_mol: the same form user seeds take) and write `<split>.parquet` with
    smiles + PROPERTIES. Idempotent: a split whose parquet records the expected checksum is skipped."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    report: dict[str, dict] = {}
    for split, (n_expected, digest) in ZINC_SPLITS.items():
        out = data_dir / f"{split}.parquet"
        if out.exists() and _parquet_meta(out).get("source_sha256") == digest:
            n = pd.read_parquet(out, columns=["smiles"]).shape[0]
            report[split] = {"path": str(out), "n": n, "skipped": True}
            log(f"zinc250k {split}: {out} exists ({n} molecules), skipped")
            continue
        raw = _zinc_source_smiles(source, split)
        got = smiles_checksum(raw)
        if verify and got != digest:
            raise DataError(f"zinc250k {split}: checksum mismatch ({len(raw)} SMILES, sha256 {got[:12]}…, "
                            f"expected {n_expected} with {digest[:12]}…); pass --no-verify to use it anyway")
        from .chem import compute_table

        table = compute_table(raw, workers=workers, progress=progress, desc=f"zinc250k {split}", standardized=True)
        n_invalid = int((~table["valid"]).sum())
        table = table[table["valid"]].drop(columns=["valid", "error", "input"]).reset_index(drop=True)
        _write_parquet(table, out, {"source_sha256": got, "standardized": "largest fragment, uncharged, no stereo"})
        report[split] = {"path": str(out), "n": len(table), "n_invalid": n_invalid, "skipped": False}
        log(f"zinc250k {split}: {len(table)} molecules ({n_invalid} invalid dropped) -> {out}")
    return report


def load_zinc250k(split: str, data_dir: Path = ZINC_DIR) -> pd.DataFrame:
    path = Path(data_dir) / f"{split}.parquet"
    if not path.exists():
        raise DataError(f"{path} not found; run `moldesign data zinc250k` first")
    return pd.read_parquet(path)


def _parquet_meta(path: Path) -> dict:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"pandas")}


def _write_parquet(df: pd.DataFrame, out: Path, meta: dict[str, str]) -> None:
    """Parquet with our own key/value metadata (e.g. the checksum of the source it came from)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)


def cache_dir(kind: str) -> Path:
    """An on-disk cache folder: $MOLDESIGN_CACHE/<kind>, else ~/.cache/moldesign/<kind> (read at
    call time, so tests can point it elsewhere)."""
    root = os.environ.get("MOLDESIGN_CACHE") or Path.home() / ".cache" / "moldesign"
    return Path(root) / kind


CACHE_MIN_ROWS = 20_000  # smaller training files are quick to recompute and not worth a cache entry


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ user files
SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "mol", "molecule")


def find_smiles_column(columns: Sequence[str], requested: str | None = None) -> str:
    """The SMILES column: `requested` if given, else the first conventional name (any case)."""
    if requested is not None:
        if requested not in columns:
            raise DataError(f"column {requested!r} not found; columns are {list(columns)}")
        return requested
    lower = {c.lower(): c for c in columns}
    for name in SMILES_COLUMN_NAMES:
        if name in lower:
            return lower[name]
    raise DataError(f"no SMILES column among {list(columns)}; name one with --smiles-col")


def check_input_file(path: str | Path) -> Path:
    """An input file that can be read: exists and is a regular file (a directory, FIFO or device is
    refused at once; reading a FIFO nobody writes to would block forever). Raises DataError."""
    path = Path(path)
    try:
        if not path.exists():
            raise DataError(f"file not found: {path}")
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file (a pipe, socket or device)"
            raise DataError(f"{path} is {kind}; give a .smi, .csv, .tsv or .parquet file")
    except OSError as e:  # e.g. a name too long for the filesystem
        raise DataError(f"cannot read {str(path)[:80]!r}: {e.strerror or e}") from None
    return path


def read_smiles_file(path: str | Path, smiles_col: str | None = None) -> pd.DataFrame:
    """Read .smi/.csv/.tsv/.parquet into a DataFrame with the user's rows and a `smiles` column.

    `.smi`: one SMILES per line, optional name after whitespace, no header unless the first line's
    first field is literally `smiles`. Rows are kept as given (no validation here).
    """
    path = check_input_file(path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    suffix = suffix.lower()
    if suffix in (".smi", ".smi.gz", ".txt"):
        opener = gzip.open if suffix.endswith(".gz") else open
        with opener(path, "rt") as f:
            # every line is a row (an empty line is an empty SMILES, reported later, not skipped)
            fields = [line.rstrip("\n").strip().split(maxsplit=1) for line in f]
        rows = [(p[0] if p else "", p[1] if len(p) > 1 else "") for p in fields]
        if rows and rows[0][0].lower() == "smiles":
            rows = rows[1:]
        return pd.DataFrame(rows, columns=["smiles", "name"], dtype=object)
    if suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz"):
        sep = "\t" if suffix.startswith(".tsv") else ","
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    elif suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow's ArrowInvalid and friends: not a parquet file
            raise DataError(f"cannot read {path} as parquet: {str(e).strip().splitlines()[0][:200]}") from None
    else:
        raise DataError(f"unsupported file type {path.suffix!r} for {path}; use .smi, .csv, .tsv or .parquet")
    col = find_smiles_column(list(df.columns), smiles_col)
    if col != "smiles":
        df = df.rename(columns={col: "smiles"}) if "smiles" not in df.columns else df.assign(smiles=df[col])
    return df


def load_training_table(path: str | Path, smiles_col: str | None = None, workers: int = 1,
                        log=print, cache_dir: Path | None = None) -> pd.DataFrame:
    """A user's SMILES file → canonical SMILES + PROPERTIES. Invalid rows are counted and
    reported by line, then left out of the training table (they cannot be trained on).
    cache_dir: keep the table there keyed by the file's SHA-256, so a resumed run does not
    recompute properties for a large file."""
    df = read_smiles_file(path, smiles_col)  # first: a missing or unreadable file is a one-line DataError
    cached = None
    if cache_dir is not None and len(df) >= CACHE_MIN_ROWS:
        cached = Path(cache_dir) / f"{file_sha256(path)[:20]}.parquet"
        if cached.exists():
            return pd.read_parquet(cached)
    from .chem import compute_table

    if not len(df):
        raise DataError(f"{path} has no rows")
    table = compute_table(df["smiles"].tolist(), workers=workers)
    bad = table[~table["valid"]]
    if len(bad):
        shown = ", ".join(f"row {i + 1}: {s!r}" for i, s in zip(bad.index[:5], bad["input"][:5]))
        log(f"{path}: {len(bad)} of {len(table)} rows invalid and skipped ({shown}{' ...' if len(bad) > 5 else ''})")
    table = table[table["valid"]].drop(columns=["valid", "error", "input"]).reset_index(drop=True)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            table.to_parquet(tmp, index=False)
    return table


# ------------------------------------------------------------------ scaling
@dataclass
class PropertyScaler:
    """Standardizes the condition vector: c = (p - mean) / std, fit on the training split only."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, table: pd.DataFrame, names: Sequence[str] = PROPERTIES) -> "PropertyScaler":
        values = table[list(names)].to_numpy(dtype=np.float64)
        std = values.std(axis=0)
        std[std == 0] = 1.0  # constant column: leave unscaled rather than divide by zero
        return cls(tuple(names), values.mean(axis=0), std)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": [float(x) for x in self.mean], "std": [float(x) for x in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "PropertyScaler":
        return cls(tuple(d["names"]), np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


# ------------------------------------------------------------------ tensors and batches
@dataclass
class EncodedSet:
    """Token ids padded to the longest sequence, with lengths and scaled conditions.

    ids: (n, max_len) int64 with <bos> ... <eos> <pad>...; lengths: (n,) incl. bos/eos;
    cond: (n, n_props) float32 scaled conditions.
    """

    ids: np.ndarray
    lengths: np.ndarray
    cond: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


def encode_table(table: pd.DataFrame, vocab, scaler: PropertyScaler, max_len: int) -> tuple[EncodedSet, np.ndarray]:
    """Encode a property table. Returns the set and a boolean mask of rows kept: rows longer than
    max_len or with tokens outside the vocabulary are left out (and counted by the caller)."""
    seqs, keep = [], np.zeros(len(table), dtype=bool)
    for i, s in enumerate(table["smiles"].tolist()):
        try:
            seqs.append(vocab.encode(s, max_len=max_len))
            keep[i] = True
        except (ValueError, KeyError):
            pass
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    ids = np.zeros((len(seqs), int(lengths.max()) if len(seqs) else 1), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    cond = scaler.transform(table.loc[keep, list(scaler.names)].to_numpy())
    return EncodedSet(ids, lengths, cond), keep


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                   bucketed: bool = True) -> list[np.ndarray]:
    """Index batches for one epoch.

    bucketed: shuffle, then sort by length with random tie-breaking, cut into batches of similar
    length, and shuffle the batch order — each batch pads to nearly its own length instead of the
    corpus maximum. Not bucketed: plain random batches (for comparison in bench/train_bench.py).
    """
    n = len(lengths)
    perm = rng.permutation(n)
    if bucketed:
        perm = perm[np.argsort(lengths[perm], kind="stable")]
    batches = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def iter_batches(data: EncodedSet, batch_size: int, rng: np.random.Generator,
                 bucketed: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (ids (b, L_b), lengths (b,), cond (b, p)) with L_b the longest sequence in the batch."""
    for idx in bucket_batches(data.lengths, batch_size, rng, bucketed):
        L = int(data.lengths[idx].max())
        yield data.ids[idx, :L], data.lengths[idx], data.cond[idx]


CSV_FLOAT_FORMAT = "%.8g"  # 308.378, not 308.3780000000001: text output carries 8 significant digits


class OutputError(OSError):
    """An output could not be written completely (full disk, unwritable place): one line, exit 1."""


def check_output_path(path: str | Path, what: str = "--out", create_parent: bool = False) -> Path:
    """Fail early, before any work, when `path` cannot be written: a directory, a missing or
    non-directory parent, or a place where no file can be created (read-only, /proc). Probes by
    creating and deleting a temp file beside it, exactly what atomic_path will do later.
    Raises DataError (bad input: exit 2) naming the path."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a directory, not a file")
    if create_parent and not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{what} {str(path)!r}: cannot create folder {str(parent)!r} ({e.strerror or e})") from None
    if not parent.exists():
        raise DataError(f"{what} {str(path)!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise DataError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataError(f"{what} {str(path)!r}: cannot write in {str(parent)!r} ({e.strerror or e})") from None
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files left beside `path` by a run that was killed (SIGKILL, power loss): names
    `.<name>.<pid>.<random><suffix>` whose pid is no longer running. Returns what was removed."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[A-Za-z0-9_]+\.(tmp|npz)$")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def fsync_file(path: str | Path) -> int:
    """Flush a closed file's data to the device (so a full disk shows up now, not after the rename)
    and return its size in bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp", min_size: int = 1) -> Iterator[str]:
    """Yield a temporary file name beside `path` (same filesystem); rename it to `path` when the
    block succeeds, delete it when the block raises. Every file moldesign writes goes through this,
    so an interrupted run never leaves a half file that looks complete. Before the rename the temp
    is fsynced and must hold at least `min_size` bytes (a writer that swallowed a full-disk error
    leaves less), else OutputError. Temps of killed runs on the same path are removed first.
    `suffix`: for writers that append their own extension to names lacking it (numpy's savez wants
    `.npz`)."""
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.{os.getpid()}.",
                               suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        try:
            size = fsync_file(tmp)
        except OSError as e:
            raise OutputError(f"could not write {path}: {e.strerror or e}") from None
        if size < min_size:
            raise OutputError(f"could not write {path}: only {size} bytes reached the disk (disk full?)")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the user's file gets the usual mode
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # no-op after the rename


OUTPUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".sdf", ".smi")
INTEGER_COLUMNS = frozenset({"hbd", "hba", "rotb", "step", "chain", "rank", "row", "attempts", "duplicate_of",
                             "start_id_row"})
"""Counts: written as integers (2, not 2.0) wherever a table is exported, NaN kept as empty."""
ROUNDED_COLUMNS = frozenset({"mw", "logp", "tpsa", "qed", "sa", "similarity", "similarity_a", "similarity_b",
                             "objective", "pred_objective", "seed_similarity", "plogp", "plogp_raw", "improvement",
                             "seed_objective"}) | {f"pred_{k}" for k in PROPERTIES}
DECIMALS = 4
"""Properties are exported rounded to DECIMALS places (MW 178.187, not 178.18699999999995): more
than RDKit's descriptors or any assay resolve, and the table reads as a chemist writes it."""
TITLE_COLUMNS = ("id", "name", "seed_id")


def export_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The table as it is written out: count columns (INTEGER_COLUMNS) as nullable integers when
    every value is whole, property columns (ROUNDED_COLUMNS) rounded to DECIMALS places."""
    out = None
    for c in df.columns:
        col = df[c]
        if not (pd.api.types.is_float_dtype(col.dtype) and not isinstance(col.dtype, pd.ArrowDtype)):
            continue
        if c in INTEGER_COLUMNS:
            v = col.to_numpy(np.float64, na_value=np.nan)
            ok = ~np.isnan(v)
            if np.all(v[ok] == np.round(v[ok])):
                out = df.copy() if out is None else out
                out[c] = col.astype("Int64")
        elif c in ROUNDED_COLUMNS:
            out = df.copy() if out is None else out
            out[c] = col.round(DECIMALS)
    out = df.copy(deep=False) if out is None else out
    out.attrs = {}  # run summaries (Python objects) are not part of the table, and parquet cannot store them
    return out


def sdf_title(row: dict) -> str:
    """SD title line: the row's id / name / seed_id (first non-empty), else its SMILES."""
    for k in TITLE_COLUMNS:
        v = row.get(k)
        if v is not None and v is not pd.NA and v == v and str(v).strip():
            return str(v).strip()
    smi = row.get("smiles")
    return smi if isinstance(smi, str) else ""


class ChunkWriter:
    """Append DataFrame chunks to a temporary file beside `out`; on a clean exit verify it (fsync,
    byte count for text formats, row count for parquet) and rename it to `out`, on any exception
    (KeyboardInterrupt included) delete it. out=None: CSV on stdout.
    `float_format` applies to CSV/TSV text (e.g. "%.8g")."""

    def __init__(self, out: Path | None, float_format: str | None = None):
        self.out, self.first, self._handle, self._parquet, self._schema = out, True, None, None, None
        self.float_format = float_format
        self.suffix = ".csv" if out is None else out.suffix.lower()
        if self.suffix not in OUTPUT_SUFFIXES:
            raise DataError(f"unsupported output type {self.suffix or str(out)!r}; use {' '.join(OUTPUT_SUFFIXES)}")
        self._atomic = atomic_path(out, min_size=0) if out is not None else None
        self.bytes = 0  # text formats: bytes handed to the file, checked against its size at the end
        self.rows = 0

    def __enter__(self) -> "ChunkWriter":
        if self._atomic is not None:
            self.tmp = self._atomic.__enter__()
        return self

    def _text(self, text: str) -> None:
        if self.out is None:
            sys.stdout.write(text)
            return
        if self._handle is None:  # binary: we encode, so the byte count matches the file exactly
            self._handle = open(self.tmp, "wb")
        data = text.encode("utf-8")
        self._handle.write(data)
        self.bytes += len(data)

    def write(self, df: pd.DataFrame) -> None:
        df = export_frame(df)
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.tmp, self._schema)
            self._parquet.write_table(table.cast(self._schema))
        elif self.suffix == ".sdf":
            from rdkit import Chem

            # RDKit's SDWriter on a file ignores write errors (a full disk gave a truncated file and
            # exit 0): it writes into memory here and Python writes the bytes, so errors raise.
            buf = io.StringIO()
            sdw = Chem.SDWriter(buf)
            for row in df.to_dict("records"):  # rows that do not parse: empty structure, fields kept
                smi = row.get("smiles")
                mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) else None
                mol = mol if mol is not None else Chem.Mol()
                mol.SetProp("_Name", sdf_title(row))
                for k, v in row.items():
                    mol.SetProp(str(k), "" if v is None or v is pd.NA or v != v else str(v))
                sdw.write(mol)
            sdw.close()
            self._text(buf.getvalue())
        elif self.suffix == ".smi":
            self._text("".join(f"{s}\n" for s in df["smiles"].fillna("")))
        else:
            self._text(df.to_csv(None, header=self.first, index=False, sep="\t" if self.suffix == ".tsv" else ",",
                                 float_format=self.float_format, lineterminator="\n"))
        self.rows += len(df)
        self.first = False

    def _verify(self) -> None:
        """After close, before the rename: the temp must hold everything that was written."""
        size = fsync_file(self.tmp)
        if self.suffix == ".parquet":
            import pyarrow.parquet as pq

            if self._parquet is None:  # nothing written: an empty table, not an empty (invalid) file
                return
            try:
                got = pq.ParquetFile(self.tmp).metadata.num_rows
            except Exception as e:  # a truncated file has no footer
                raise OutputError(f"could not write {self.out}: the file on disk is not readable back ({type(e).__name__})") from None
            if got != self.rows:
                raise OutputError(f"could not write {self.out}: {got} of {self.rows} rows reached the disk")
        elif size != self.bytes:
            raise OutputError(f"could not write {self.out}: {size} of {self.bytes} bytes reached the disk (disk full?)")

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.out is None:
            sys.stdout.flush()
            return False
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif self._handle is not None:
                self._handle.close()
            if exc_type is None:
                self._verify()
        except BaseException as e:
            self._atomic.__exit__(type(e), e, e.__traceback__)  # deletes the temp
            if isinstance(e, OSError) and not isinstance(e, OutputError):
                raise OutputError(f"could not write {self.out}: {e.strerror or e}") from None
            raise
        self._atomic.__exit__(exc_type, exc, tb)  # rename on success, delete on failure
        return False


def write_atomic_table(df: pd.DataFrame, path: str | Path | None, float_format: str | None = None) -> None:
    """Write one DataFrame by suffix (.csv .tsv .parquet .sdf .smi) without leaving a half file;
    CSV on stdout when path is None."""
    with ChunkWriter(Path(path) if path is not None else None, float_format) as writer:
        writer.write(df)
