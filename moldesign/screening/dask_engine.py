"""`screen --engine dask`: the same screening, scaled out on a Dask cluster.

The input is read in partitions (dask.dataframe for .csv/.tsv/.parquet, newline-aligned byte
blocks for .smi via dask.bytes), each partition is scored by `screening.score_partition` — the
function the local engine runs, split between its pool and main process — and the results go to
* `.parquet`: a partitioned parquet dataset (a folder `out.parquet/` of `part.NNNNNN.parquet`,
  in input order; `pandas.read_parquet(folder)` reads it back as one table), each part written by
  the worker that scored it (with a multi-node cluster the output folder must be on a filesystem
  every worker sees, as for any Dask `to_parquet`);
* anything else (.csv .tsv .sdf .smi, stdout): one file in input order, written by the client,
  which holds at most a few partitions at a time.
Without a scheduler address a `LocalCluster` of `workers` single-threaded processes is started
(RDKit scoring is Python-bound: processes, not threads); with one, the client connects to a
running `dask-scheduler`. Rows are numbered from the partition lengths (one cheap reading pass
first), so the `row` column and everything else equals `--engine local` on the same input.

Not available with Dask: `--dedupe` (marking a later copy needs every earlier row: inherently
sequential) and .sdf input (an SD file cannot be split at arbitrary byte offsets).
"""
from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..data import ChunkWriter, DataError, export_frame, find_smiles_column
from .screen import (INPUT_SUFFIXES, ScreenOptions, _suffix, add_counts, empty_counts, finish_chunk, score_partition, score_smiles)

AUTO_PARTITION_BYTES = 16 * 2**20  # ~300,000 SMILES rows of ~55 bytes: seconds of work, tens of MB in memory
DASK_INPUTS = (".smi", ".txt", ".csv", ".tsv", ".parquet")


def _import_dask():
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise DataError("--engine dask needs dask and distributed: pip install 'moldesign[dask]'") from None


# ------------------------------------------------------------------ partitioned readers
def _n_partitions(size_bytes: int, requested: int, n_workers: int) -> int:
    """requested > 0 wins; auto: 4 per worker (load balance) or one per 16 MB, whichever is more."""
    if requested > 0:
        return requested
    return max(4 * max(1, n_workers), math.ceil(size_bytes / AUTO_PARTITION_BYTES))


def _parse_smi_block(data: bytes, first_block: bool) -> pd.DataFrame:
    # Same rules as screening._smi_chunks: every line is a record (blank → empty SMILES), except
    # a first line of the file whose first field is literally 'smiles'. StringIO(newline=None)
    # splits lines exactly as a text-mode file does (\n, \r\n, \r).
    smiles, names = [], []
    for i, line in enumerate(io.StringIO(data.decode("utf-8"), newline=None)):
        parts = line.strip().split(None, 1)
        if first_block and i == 0 and parts and parts[0].lower() == "smiles":
            continue
        smiles.append(parts[0] if parts else "")
        names.append(parts[1] if len(parts) > 1 else "")
    return pd.DataFrame({"input": smiles, "name": names}, dtype="string")


def _rename_input(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df.rename(columns={col: "input"})


def read_partitions(path: Path, smiles_col: str | None, partitions: int, n_workers: int) -> list:
    """The input as a list of dask Delayed objects, each a DataFrame with the SMILES in `input`
    (the user's other columns kept), in input order."""
    from dask import delayed

    suffix = _suffix(path)
    if suffix not in INPUT_SUFFIXES:
        raise DataError(f"unsupported input type {suffix or path.name!r}; use {' '.join(INPUT_SUFFIXES)} (or .gz)")
    if suffix not in DASK_INPUTS:
        raise DataError(f"--engine dask reads {' '.join(DASK_INPUTS)} (or .gz); for {suffix} use --engine local")
    gz = path.suffix.lower() == ".gz"
    n_parts = _n_partitions(path.stat().st_size, partitions, n_workers)
    # a gzip stream cannot be entered in the middle: one partition (use plain text to scale out)
    blocksize = None if gz else max(1, path.stat().st_size // n_parts)  # floor: at least n_parts blocks
    if suffix in (".smi", ".txt"):
        from dask.bytes import read_bytes

        if smiles_col is not None:
            raise DataError(f"--smiles-col does not apply to {suffix} files (the SMILES is the first field)")
        _, blocks = read_bytes(str(path), delimiter=b"\n", blocksize=blocksize, sample=False,
                               compression="gzip" if gz else None)
        return [delayed(_parse_smi_block)(b, i == 0) for i, b in enumerate(blocks[0])]
    if suffix in (".csv", ".tsv"):
        import dask.dataframe as dd

        sep = "\t" if suffix == ".tsv" else ","
        try:  # the header is checked now, before any work, so a wrong --smiles-col fails at once
            columns = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
        col = find_smiles_column(columns, smiles_col)
        # dtype=str, no NA parsing: the same strings the local reader gives (quoted newlines inside
        # a field would break byte-range partitions: dask's documented limit for CSV)
        ddf = dd.read_csv(str(path), sep=sep, dtype=str, keep_default_na=False, blocksize=blocksize,
                          compression="gzip" if gz else None)
        return [delayed(_rename_input)(p, col) for p in ddf.to_delayed()]
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
    except Exception as e:
        raise DataError(f"cannot read {path} as parquet: {str(e).splitlines()[0]}") from None
    col = find_smiles_column(schema.names, smiles_col)
    # the file's own Arrow types as ArrowDtype, exactly what the local reader gives, so both
    # engines write the same column types (dask would map large_string to string)
    dtypes = schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype).dtypes.to_dict()
    ddf = dd.read_parquet(str(path), dtype_backend="pyarrow", split_row_groups=True)
    if ddf.npartitions < n_parts:
        ddf = ddf.repartition(npartitions=n_parts)
    return [delayed(_parquet_part)(p, col, dtypes) for p in ddf.to_delayed()]


def _parquet_part(df: pd.DataFrame, col: str, dtypes: dict) -> pd.DataFrame:
    return df.astype(dtypes).rename(columns={col: "input"})


# ------------------------------------------------------------------ tasks (run on workers)
def _empty_output(opts: ScreenOptions, example: pd.DataFrame):
    """Arrow schema of the output: from a zero-row partition with the input's columns and dtypes."""
    import pyarrow as pa

    empty = example.iloc[:0]
    out, _ = finish_chunk(empty, score_smiles(([], opts.standardize, opts.max_atoms)), opts, 1,
                          [] if opts.dedupe else None)
    return pa.Schema.from_pandas(export_frame(out), preserve_index=False)


def _score_to_parquet(chunk: pd.DataFrame, opts: ScreenOptions, first_row: int, path: str, schema) -> dict:
    """Score a partition and write it as one part of the dataset; returns only its counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out, counts = score_partition(chunk, opts, first_row)
    out = export_frame(out)  # as ChunkWriter writes a table: counts as integers, properties rounded
    table = pa.Table.from_pandas(out, preserve_index=False, schema=schema) if schema is not None else \
        pa.Table.from_pandas(out, preserve_index=False)
    pq.write_table(table, path)
    return counts


# ------------------------------------------------------------------ client
@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator:
    """A distributed.Client: connected to `scheduler`, or to a LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise DataError(f"cannot connect to the dask scheduler {scheduler!r}: {str(e).splitlines()[0]}") from None
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary folder beside `path`, renamed to `path` when the block succeeds (an existing
    file or folder there is replaced), deleted when it raises."""
    tmp = Path(tempfile.mkdtemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = None
        if path.exists() or path.is_symlink():  # a folder cannot be renamed over a file or a non-empty folder
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def screen_file_dask(path: str | Path, out: str | Path | None = None, opts: ScreenOptions | None = None,
                     smiles_col: str | None = None, scheduler: str | None = None, workers: int = 2,
                     partitions: int = 0, progress: bool = False, log: Callable = lambda m: None) -> dict:
    """Screen a file on Dask (see the module docstring). Output equals screening.screen_file on the
    same input and options. Returns the summary counts plus engine, partitions and workers."""
    from tqdm import tqdm

    _import_dask()
    import dask

    t0 = time.time()
    path = Path(path)
    opts = opts or ScreenOptions()
    out = Path(out) if out is not None else None
    if opts.dedupe:
        raise DataError("--dedupe is not available with --engine dask (a duplicate is found only by reading "
                        "every earlier row in order); use --engine local")
    if not path.exists():
        raise DataError(f"file not found: {path}")
    from distributed import as_completed

    with dask_client(scheduler, workers) as client:
        n_workers = len(client.scheduler_info().get("workers", {})) or workers
        # dask turns text columns into string[pyarrow] by default; the local reader keeps pandas'
        # own types (str from CSV, ArrowDtype from parquet): same types, same output files
        with dask.config.set({"dataframe.convert-string": False}):
            parts = read_partitions(path, smiles_col, partitions, n_workers)
        log(f"dask: {len(parts)} partitions on {n_workers} workers ({client.scheduler.address})")
        # pass 1: partition lengths → the first row number of each (reading is cheap next to RDKit)
        lengths = client.gather(client.compute([_delayed_len(p) for p in parts]))
        firsts = np.concatenate([[1], 1 + np.cumsum(lengths)[:-1]]).astype(int).tolist()
        # the options (with a reference set of up to millions of SMILES) go to each worker once
        opts_f = client.scatter(opts, broadcast=True) if opts.reference is not None else opts
        counts = empty_counts(opts)
        bar = tqdm(total=int(sum(lengths)), desc="screen", unit="mol", disable=not progress, mininterval=1.0,
                   file=sys.stderr)
        try:
            if out is not None and out.suffix.lower() == ".parquet":
                from dask import delayed

                schema = client.compute(delayed(_empty_output)(opts_f, parts[0])).result() if parts else None
                with _atomic_dir(out) as tmp:
                    futures = client.compute([delayed(_score_to_parquet)(p, opts_f, first, str(tmp / f"part.{i:06d}.parquet"),
                                                                         schema)
                                              for i, (p, first) in enumerate(zip(parts, firsts))])
                    for fut in as_completed(futures):
                        c = fut.result()
                        add_counts(counts, c)
                        bar.update(c["rows"])
            else:
                _in_order(client, parts, firsts, opts_f, out, counts, bar, window=2 * max(1, n_workers))
        finally:
            bar.close()
    seconds = time.time() - t0
    return {**counts, "seconds": round(seconds, 3),
            "rows_per_s": round(counts["rows"] / seconds, 1) if seconds > 0 else None,
            "engine": "dask", "partitions": len(parts), "workers": n_workers}


def _delayed_len(part):
    from dask import delayed

    return delayed(len)(part)


def _in_order(client, parts: list, firsts: list[int], opts, out: Path | None, counts: dict, bar, window: int) -> None:
    """Score partitions on the cluster, `window` in flight, and write them here in input order."""
    from dask import delayed

    pending: deque = deque()
    tasks = (delayed(score_partition, nout=2)(p, opts, first) for p, first in zip(parts, firsts))
    with ChunkWriter(out) as writer:  # as screen_file: same bytes
        for task in itertools.islice(tasks, window):
            pending.append(client.compute(task))
        while pending:
            df, c = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(client.compute(nxt))
            writer.write(df)
            add_counts(counts, c)
            bar.update(c["rows"])
