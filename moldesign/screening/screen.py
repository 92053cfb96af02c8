"""Batch screening of SMILES files: properties, QED, SA, structural alerts, rules, novelty, filters.

`screen_file`: read the input in chunks (.smi .csv .tsv .parquet .sdf, optionally gzipped) →
score chunks in worker processes (a few in flight, collected in submission order: output order =
input order, memory flat for any input size) → main process: novelty, de-duplication, filters →
append to a temporary file, renamed to the output path only once every row is written.
Every input row gives one output row unless the user asks for `drop`; a row that cannot be scored
keeps its place with `valid=False` and an `error` saying why.

Chemistry decisions (what a medicinal chemist expects from a screening table):
* Salts and mixtures: the largest organic fragment (RDKit LargestFragmentChooser,
  preferOrganic) is scored, because counter-ions and solvents are not part of the drug; the
  `standardization` column says e.g. "largest of 2 fragments".
* Charges: the parent is neutralized where a neutral form exists (RDKit Uncharger: carboxylate →
  acid, ammonium → amine), since MW, LogP, TPSA of the neutral parent are what rules such as
  Lipinski refer to. Permanent charges (quaternary N) stay and are noted ("net charge +1").
  Zwitterionic drawings of neutral groups (nitro) are left alone. `standardize=False` scores the
  input exactly as given.
* Very large molecules (peptides, macrocycles) are scored like any other; beyond `max_atoms`
  heavy atoms (default 1000) a row is flagged not scored, so a polymer cannot stall a worker.
* Stereo: the `smiles` column keeps stereochemistry; novelty compares non-isomeric SMILES
  (the MOSES training set has none), de-duplication compares isomeric SMILES (stereoisomers are
  different compounds). Both compare the standardized parent, so a salt form duplicates its
  free base.
"""
from __future__ import annotations

import gzip
import itertools
import math
import operator
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem import rdMolDescriptors

from .. import chem
from ..workers import process_pool
from ..data import ChunkWriter, DataError, check_input_file, find_smiles_column

SCORES = ("mw", "logp", "hbd", "hba", "tpsa", "qed", "sa", "rotb")
"""Numeric output columns: chem.PROPERTIES, QED, SA and rotatable bonds (Veber's count)."""
TEXT_COLUMNS = ("error", "smiles", "standardization", "pains", "brenk", "lipinski_violations",
                "veber_violations")
FILTER_KEYS = SCORES + ("pains", "brenk", "lipinski", "veber", "novel", "similarity")
"""What a filter may test: the scores; pains/brenk as alert counts; lipinski/veber/novel as 1/0;
similarity: the input's own `similarity` column (e.g. a `generate` table) in `screen`, the
Tanimoto to the seed in the design commands."""
DEFAULT_MAX_ATOMS = 1000
INPUT_SUFFIXES = (".smi", ".txt", ".csv", ".tsv", ".parquet", ".sdf")
UNREADABLE_SD = "<unreadable SD record>"


class FilterError(ValueError):
    """A --filter expression that does not parse or names an unknown property (one line)."""


# ------------------------------------------------------------------ filters
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "=": operator.eq, "!=": operator.ne}
_FILTER_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>|=)\s*"
                        r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class RangeFilter:
    """`key op value`, e.g. logp<3. A row whose value is missing (invalid molecule) fails."""

    key: str
    op: str
    value: float
    text: str

    def apply(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return _OPS[self.op](values, self.value) & ~np.isnan(values)


def parse_filter(text: str) -> RangeFilter:
    """Parse 'PROPERTY OP NUMBER' (OP one of < <= > >= == = !=); raise FilterError naming the text."""
    m = _FILTER_RE.match(text or "")
    if m is None:
        raise FilterError(f"bad filter {text!r}: expected PROPERTY OP NUMBER such as 'logp<3' or "
                          f"'qed>=0.5' (OP: < <= > >= == !=)")
    key, op, value = m.group(1).lower(), m.group(2), float(m.group(3))
    if not math.isfinite(value):  # '1e309' parses as infinity: a bound that bounds nothing
        raise FilterError(f"bad filter {text!r}: the bound must be a finite number, got {m.group(3)}")
    if key not in FILTER_KEYS:
        raise FilterError(f"unknown property {m.group(1)!r} in filter {text!r}; "
                          f"choose from {', '.join(FILTER_KEYS)}")
    return RangeFilter(key, op, value, text.strip().replace(" ", ""))


# ------------------------------------------------------------------ per-molecule scoring (workers)
def parent_molecule(mol: Chem.Mol) -> tuple[Chem.Mol, str]:
    """The molecule to score and a note of what changed: largest organic fragment, neutralized
    where possible (see module docstring). Single neutral fragments are returned untouched."""
    from rdkit.Chem.MolStandardize import rdMolStandardize

    notes = []
    n_frags = len(Chem.GetMolFrags(mol))
    if n_frags > 1:
        mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
        notes.append(f"largest of {n_frags} fragments")
    if any(a.GetFormalCharge() for a in mol.GetAtoms()):
        before = sum(abs(a.GetFormalCharge()) for a in mol.GetAtoms())
        mol = rdMolStandardize.Uncharger().uncharge(mol)
        if sum(abs(a.GetFormalCharge()) for a in mol.GetAtoms()) < before:
            notes.append("neutralized")
        net = Chem.GetFormalCharge(mol)
        if net:
            notes.append(f"net charge {net:+d}")
    return mol, "; ".join(notes)


def explain_invalid(smiles) -> str:
    """Why RDKit rejects a SMILES, in one line (syntax error or the sanitization message)."""
    if not isinstance(smiles, str) or not smiles.strip():
        return "empty SMILES"
    if smiles == UNREADABLE_SD:
        return "unreadable SD record"
    if reason := chem.too_long(smiles):
        return reason
    mol = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
    if mol is None:
        return "invalid SMILES: syntax error"
    try:
        Chem.SanitizeMol(mol)
    except Exception as e:  # AtomValenceException, KekulizeException, ... all carry the reason
        return f"invalid SMILES: {str(e).strip().splitlines()[0]}"
    return "invalid SMILES"


_WORKER_COLUMNS = ("valid",) + TEXT_COLUMNS + SCORES + ("lipinski", "veber", "_key", "_n_pains", "_n_brenk")
RECOMPUTED = frozenset(c for c in _WORKER_COLUMNS if not c.startswith("_")) | {"novel", "duplicate_of", "passes",
                                                                              "failed_filters"}
"""Input columns screen computes itself: written once, with screen's value (no `input_mw` beside
`mw`). Other input columns are kept as given (a clash with `row`/`input` gets an `input_` prefix)."""


def _score_one(smiles, standardize: bool, max_atoms: int) -> tuple:
    failed = lambda err: (False, err) + (None,) * (len(TEXT_COLUMNS) - 1) + (np.nan,) * len(SCORES) \
        + (None, None, None, np.nan, np.nan)  # noqa: E731
    mol = chem.try_mol(smiles)
    if mol is None:
        return failed(explain_invalid(smiles))
    if mol.GetNumHeavyAtoms() > max_atoms:
        return failed(f"not scored: {mol.GetNumHeavyAtoms()} heavy atoms > max_atoms {max_atoms}")
    try:
        mol, note = parent_molecule(mol) if standardize else (mol, "")
        scores = chem.mol_scores(mol)
        scores["rotb"] = float(rdMolDescriptors.CalcNumRotatableBonds(mol))
        pains, brenk = chem.structural_alerts(mol, "pains"), chem.structural_alerts(mol, "brenk")
        lip, veb = chem.lipinski_violations(mol), chem.veber_violations(mol)
        return ((True, "", Chem.MolToSmiles(mol), note, "; ".join(pains), "; ".join(brenk),
                 "; ".join(lip), "; ".join(veb)) + tuple(scores[k] for k in SCORES)
                + (chem.lipinski_pass(lip), not veb, Chem.MolToSmiles(mol, isomericSmiles=False),
                   float(len(pains)), float(len(brenk))))
    except Exception as e:  # one odd molecule must not take the worker (and the run) down
        return failed(f"scoring failed: {type(e).__name__}: {str(e).strip()[:200]}")


def score_smiles(args: tuple[Sequence, bool, int]) -> dict[str, list]:
    """Worker entry: score a chunk of SMILES → columns (dict of lists, cheap to pickle)."""
    smiles, standardize, max_atoms = args
    with rdBase.BlockLogs():
        rows = [_score_one(s, standardize, max_atoms) for s in smiles]
    return {k: [r[i] for r in rows] for i, k in enumerate(_WORKER_COLUMNS)}


def reference_keys(args: tuple[Sequence, bool]) -> list[str | None]:
    """Worker entry: non-isomeric canonical SMILES of the (standardized) parent, None if invalid."""
    smiles, standardize = args
    out = []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = chem.try_mol(s)
            if mol is not None and standardize:
                mol = parent_molecule(mol)[0]
            out.append(None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=False))
    return out


def ordered_map(fn: Callable, items: Iterable, workers: int, ahead: int = 2) -> Iterator:
    """map(fn, items) in a process pool, results in input order, at most workers*ahead items in
    flight (so a fast reader cannot queue the whole input in memory). workers<=1: in process."""
    items = iter(items)
    head = list(itertools.islice(items, 2))
    if workers <= 1 or len(head) < 2:  # a one-chunk input does not pay for starting a pool
        yield from map(fn, itertools.chain(head, items))
        return
    items = itertools.chain(head, items)
    pending: deque = deque()
    # workers.process_pool: on error, interrupt or early close the workers are stopped, not waited for
    with process_pool(workers) as pool:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers * ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ------------------------------------------------------------------ reading
def _suffix(path: Path) -> str:
    return (path.suffixes[-2] if path.suffix.lower() == ".gz" and len(path.suffixes) > 1 else path.suffix).lower()


def _smi_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    # Every line is a record (a blank line is an empty SMILES, kept and flagged) except a first
    # line whose first field is literally 'smiles' (a header).
    smiles, names = [], []
    with gzip.open(path, "rt") if path.suffix.lower() == ".gz" else open(path) as f:
        for i, line in enumerate(f):
            parts = line.strip().split(None, 1)
            if i == 0 and parts and parts[0].lower() == "smiles":
                continue
            smiles.append(parts[0] if parts else "")
            names.append(parts[1] if len(parts) > 1 else "")
            if len(smiles) == chunk_size:
                yield pd.DataFrame({"input": smiles, "name": names}, dtype="string")
                smiles, names = [], []
    yield pd.DataFrame({"input": smiles, "name": names}, dtype="string")


def _csv_chunks(path: Path, sep: str, smiles_col: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    # The header is checked now, before any work, so a wrong --smiles-col fails at once.
    try:
        columns = list(pd.read_csv(path, sep=sep, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
    col = find_smiles_column(columns, smiles_col)

    def chunks():
        with pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_size) as reader:
            empty = True
            for df in reader:
                empty = False
                yield df.rename(columns={col: "input"})
        if empty:
            yield pd.DataFrame({c if c != col else "input": pd.Series(dtype="string") for c in columns})

    return chunks()


def _parquet_chunks(path: Path, smiles_col: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise DataError(f"cannot read {path} as parquet: {str(e).splitlines()[0]}") from None
    col = find_smiles_column(pf.schema_arrow.names, smiles_col)

    def chunks():
        # ArrowDtype keeps each column's type identical in every chunk (an int column with a
        # null in one batch would otherwise turn float there), so the output schema is stable.
        yielded = False
        for batch in pf.iter_batches(batch_size=chunk_size):
            yielded = True
            yield batch.to_pandas(types_mapper=pd.ArrowDtype).rename(columns={col: "input"})
        if not yielded:
            yield pf.schema_arrow.empty_table().to_pandas(types_mapper=pd.ArrowDtype).rename(columns={col: "input"})

    return chunks()


def _sdf_chunks(path: Path, smiles_col: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    # The structure is written out as SMILES and scored like any other input; the title line
    # becomes `name` and the SD tags of the FIRST record become columns (same tags assumed
    # for all records; a missing tag is empty). smiles_col names a tag to read SMILES from.
    handle = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    tags: list[str] | None = None
    rows: list[dict] = []
    with handle, rdBase.BlockLogs():
        for mol in Chem.ForwardSDMolSupplier(handle, sanitize=False, removeHs=False):
            props = mol.GetPropsAsDict(includePrivate=False) if mol is not None else {}
            if tags is None and mol is not None:
                tags = list(props)
                if smiles_col is not None and smiles_col not in tags:
                    raise DataError(f"SD tag {smiles_col!r} not found in {path}; tags are {tags}")
            row = {"name": mol.GetProp("_Name") if mol is not None and mol.HasProp("_Name") else ""}
            row.update({t: str(props.get(t, "")) for t in (tags or []) if t != smiles_col})
            try:  # an unreadable record (mol None) or one RDKit cannot write becomes an invalid row
                row["input"] = str(props.get(smiles_col, "")) if smiles_col and mol else Chem.MolToSmiles(mol)
            except Exception:
                row["input"] = UNREADABLE_SD
            rows.append(row)
            if len(rows) == chunk_size:
                yield pd.DataFrame(rows, dtype="string")
                rows = []
    yield pd.DataFrame(rows, columns=["name", "input"] if not rows else None, dtype="string")


def iter_input_chunks(path: str | Path, smiles_col: str | None = None, chunk_size: int = 1000
                      ) -> Iterator[pd.DataFrame]:
    """Yield the input as DataFrames of <= chunk_size rows (at least one, possibly empty): the
    SMILES as given in column `input`, the user's other columns kept (a .smi name → `name`)."""
    path = check_input_file(path)
    suffix = _suffix(path)
    if suffix not in INPUT_SUFFIXES:
        raise DataError(f"unsupported input type {suffix or path.name!r}; use {' '.join(INPUT_SUFFIXES)} (or .gz)")
    if suffix in (".smi", ".txt"):
        if smiles_col is not None:
            raise DataError(f"--smiles-col does not apply to {suffix} files (the SMILES is the first field)")
        chunks = _smi_chunks(path, chunk_size)
    elif suffix in (".csv", ".tsv"):
        chunks = _csv_chunks(path, "\t" if suffix == ".tsv" else ",", smiles_col, chunk_size)
    elif suffix == ".parquet":
        chunks = _parquet_chunks(path, smiles_col, chunk_size)
    else:
        chunks = _sdf_chunks(path, smiles_col, chunk_size)
    return _read_errors_as_data_errors(path, chunks)


def _read_errors_as_data_errors(path: Path, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    # A file can turn out bad anywhere (ragged CSV line 10,000, truncated .gz, bad UTF-8): the
    # user gets one line naming the file, and screen_file removes its temporary output.
    import pyarrow as pa

    try:
        yield from chunks
    except DataError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, pa.ArrowException, SystemError) as e:
        # SystemError: how RDKit's SD reader surfaces the EOFError of a truncated .gz stream
        raise DataError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None


def reference_cache_dir() -> Path:
    """Where `--reference` keys are cached: $MOLDESIGN_CACHE/reference, else
    ~/.cache/moldesign/reference (read at call time, so tests can point it elsewhere)."""
    from ..data import cache_dir

    return cache_dir("reference")


def load_reference(path: str | Path, smiles_col: str | None = None, standardize: bool = True,
                   workers: int = 1, chunk_size: int = 5000, log: Callable = lambda m: None,
                   cache: bool = True, progress: bool = False) -> set[str]:
    """Non-isomeric canonical SMILES of every valid molecule in a reference file (e.g. MOSES
    train.parquet), standardized like the screened molecules. Invalid rows are counted in the log.

    Standardizing 1.6M molecules takes minutes, so the keys are cached (one-column parquet in
    reference_cache_dir()) under the SHA-256 of the file's bytes, the SMILES column and the
    standardize flag: a changed file is a new key, never a stale answer. A cache that cannot be
    written (read-only home) only costs the next run its speed."""
    from tqdm import tqdm

    from ..data import _write_parquet, file_sha256

    path = Path(path)
    if not path.exists():
        raise DataError(f"--reference file not found: {path}")
    cached = None
    if cache:
        key = f"{file_sha256(path)[:24]}-{smiles_col or 'auto'}-{'std' if standardize else 'asis'}"
        cached = reference_cache_dir() / f"{key}.parquet"
        if cached.exists():
            try:
                keys = set(pd.read_parquet(cached)["key"].tolist())
                log(f"reference {path}: {len(keys)} unique molecules (cached in {cached})")
                return keys
            except Exception:  # a damaged cache file is rebuilt, not trusted
                cached.unlink(missing_ok=True)
    chunks = ((c["input"].tolist(), standardize) for c in iter_input_chunks(path, smiles_col, chunk_size))
    keys: set[str] = set()
    n = n_bad = 0
    bar = tqdm(desc="reference", unit="mol", disable=not progress, mininterval=1.0, file=sys.stderr)
    try:
        for out in ordered_map(reference_keys, chunks, workers):
            n += len(out)
            n_bad += sum(k is None for k in out)
            keys.update(k for k in out if k is not None)
            bar.update(len(out))
    finally:
        bar.close()
    log(f"reference {path}: {len(keys)} unique molecules from {n} rows ({n_bad} invalid rows ignored)")
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _write_parquet(pd.DataFrame({"key": sorted(keys)}), cached, {"source": str(path), "rows": str(n)})
            log(f"reference keys cached in {cached}")
        except OSError as e:
            log(f"could not cache reference keys in {cached}: {e}")
    return keys


# ------------------------------------------------------------------ screening
@dataclass
class ScreenOptions:
    filters: Sequence[RangeFilter] = ()
    drop: bool = False  # write only passing rows (valid, all filters true, not a duplicate)
    dedupe: bool = False
    reference: set[str] | None = None
    standardize: bool = True
    max_atoms: int = DEFAULT_MAX_ATOMS

    def __post_init__(self):
        self.filters = [parse_filter(f) if isinstance(f, str) else f for f in self.filters]
        if self.reference is None and any(f.key == "novel" for f in self.filters):
            raise FilterError("a 'novel' filter needs a reference set (--reference)")
        if self.max_atoms < 1:
            raise FilterError(f"max_atoms must be >= 1, got {self.max_atoms}")


COUNT_KEYS = ("rows", "valid", "invalid", "standardized", "written", "passing", "dropped", "duplicates", "novel")


def empty_counts(opts: ScreenOptions) -> dict[str, int]:
    """The summary counters a run with these options reports (optional ones only when they apply)."""
    counts = dict(rows=0, valid=0, invalid=0, standardized=0, written=0)
    optional = {"passing": opts.filters or opts.dedupe, "dropped": opts.drop, "duplicates": opts.dedupe,
                "novel": opts.reference is not None}
    counts.update({k: 0 for k, on in optional.items() if on})
    return counts


def finish_chunk(chunk: pd.DataFrame, scored: dict[str, list], opts: ScreenOptions, first_row: int,
                 duplicate_of: Sequence | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join worker scores to the input rows of one chunk: novelty, filters, drop. Pure: the output
    depends only on the arguments, so any engine that knows a chunk's first row number (1-based)
    gets the same rows. `duplicate_of` (first row of an earlier copy, or None, per row) comes from
    the caller because de-duplication spans chunks. Returns (output rows, this chunk's counts)."""
    o, n = opts, len(chunk)
    counts = empty_counts(o)
    s = pd.DataFrame(scored, index=chunk.index)
    valid = s["valid"].to_numpy(dtype=bool)
    out = pd.DataFrame({"row": np.arange(first_row, first_row + n, dtype=np.int64)}, index=chunk.index)
    out["input"] = chunk["input"]
    produced = set(_WORKER_COLUMNS) | {"row", "input", "novel", "duplicate_of", "passes", "failed_filters"}
    for c in chunk.columns.drop("input"):
        if c.lower() in RECOMPUTED:  # e.g. a `generate` table's mw: screen's own value replaces it
            continue
        name = c
        while name in produced or name in out.columns:  # never overwrite a user's column
            name = f"input_{name}"
        out[name] = chunk[c]
    out["valid"] = valid
    for c in TEXT_COLUMNS:
        out[c] = s[c].astype("string")
    for c in SCORES:
        out[c] = s[c].astype(np.float64)
    for c in ("lipinski", "veber"):
        out[c] = s[c].astype("boolean")
    if o.reference is not None:
        out["novel"] = pd.array([k not in o.reference if v else None for k, v in zip(s["_key"], valid)],
                                dtype="boolean")
        counts["novel"] += int(out["novel"].sum())
    # what filters test, as floats with NaN for "not computed" (which fails every filter)
    values = {k: out[k].astype("Float64").to_numpy(np.float64, na_value=np.nan)
              for k in SCORES + ("lipinski", "veber") + (("novel",) if o.reference is not None else ())}
    values.update(pains=s["_n_pains"].to_numpy(np.float64), brenk=s["_n_brenk"].to_numpy(np.float64))
    if any(f.key == "similarity" for f in o.filters):
        if "similarity" not in out.columns:
            raise DataError("filter on 'similarity' needs a `similarity` column in the input "
                            "(e.g. a `generate --like` table)")
        values["similarity"] = pd.to_numeric(out["similarity"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    passes = valid.copy()
    failed = [[] for _ in range(n)]
    if o.dedupe:
        dup = list(duplicate_of) if duplicate_of is not None else [None] * n
        for i, d in enumerate(dup):
            if d is not None:
                failed[i].append("duplicate")
        out["duplicate_of"] = pd.array(dup, dtype="Int64")
        passes &= out["duplicate_of"].isna().to_numpy()
        counts["duplicates"] += int(out["duplicate_of"].notna().sum())
    for f in o.filters:
        ok = f.apply(values[f.key])
        passes &= ok
        for i in np.flatnonzero(~ok & valid):
            failed[i].append(f.text)
    counts["rows"] += n
    counts["valid"] += int(valid.sum())
    counts["invalid"] += int((~valid).sum())
    counts["standardized"] += int((out["standardization"].fillna("") != "").sum())
    if o.filters or o.dedupe:
        out["passes"] = passes
        out["failed_filters"] = pd.array(["; ".join(f) for f in failed], dtype="string")
        counts["passing"] += int(passes.sum())
    if o.drop:  # with nothing to filter on, passes == valid
        counts["dropped"] += int((~passes).sum())
        out = out[passes]
    counts["written"] += len(out)
    return out.reset_index(drop=True), counts


def score_partition(chunk: pd.DataFrame, opts: ScreenOptions, first_row: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Score one partition end to end (worker scores + finish_chunk): what a Dask task runs. The
    local engine runs the same two steps, split between its worker pool and the main process."""
    scored = score_smiles((chunk["input"].tolist(), opts.standardize, opts.max_atoms))
    return finish_chunk(chunk, scored, opts, first_row)


def add_counts(total: dict[str, int], part: dict[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


class _Screener:
    """Main-process side of the local engine: numbers rows across chunks, de-duplicates (state:
    the SMILES seen so far), calls finish_chunk, and sums the counts for the summary."""

    def __init__(self, opts: ScreenOptions):
        self.opts = opts
        self.seen: dict[str, int] = {}
        self.new_seen: list[tuple[str, int]] = []  # (smiles, row) first seen in the last chunk
        self.row = 0
        self.counts = empty_counts(opts)

    def finish(self, chunk: pd.DataFrame, scored: dict[str, list]) -> pd.DataFrame:
        first = self.row + 1
        dup = None
        self.new_seen = []  # (smiles, row) first seen in this chunk: what screen --resume must restore
        if self.opts.dedupe:
            dup = []
            for i, (smi, ok) in enumerate(zip(scored["smiles"], scored["valid"])):
                row = first + i
                if ok and smi not in self.seen:
                    self.new_seen.append((smi, row))
                seen = self.seen.setdefault(smi, row) if ok else None
                dup.append(seen if seen is not None and seen != row else None)
        self.row += len(chunk)
        out, counts = finish_chunk(chunk, scored, self.opts, first, dup)
        add_counts(self.counts, counts)
        return out


def screen_chunks(chunks: Iterable[pd.DataFrame], opts: ScreenOptions, workers: int = 1
                  ) -> tuple[_Screener, Iterator[pd.DataFrame]]:
    """(screener, iterator of output chunks in input order); the screener's `counts` are final
    once the iterator is exhausted."""
    screener = _Screener(opts)
    buffered: deque = deque()

    def jobs():
        for c in chunks:
            buffered.append(c)  # the input rows wait here (a few chunks) for their scores
            yield (c["input"].tolist(), opts.standardize, opts.max_atoms)

    def results():
        for scored in ordered_map(score_smiles, jobs(), workers):
            yield screener.finish(buffered.popleft(), scored)

    return screener, results()


def screen_smiles(smiles: Sequence[str], opts: ScreenOptions | None = None, workers: int = 1,
                  chunk_size: int = 1000) -> pd.DataFrame:
    """Screen an in-memory list (notebooks, tests): one row per input unless opts.drop."""
    smiles = list(smiles)
    chunks = [pd.DataFrame({"input": pd.Series(smiles[i : i + chunk_size], dtype=object)})
              for i in range(0, max(len(smiles), 1), chunk_size)]
    _, results = screen_chunks(chunks, opts or ScreenOptions(), workers)
    return pd.concat(list(results), ignore_index=True)


class ResumeError(DataError):
    """`screen --resume` onto parts that belong to another input or other options (exit 2)."""


MANIFEST_VERSION = 1


def parts_dir(out: Path) -> Path:
    """Where a screen into `out` keeps its finished chunks until the end: `.<name>.parts/` beside it."""
    return out.parent / f".{out.name}.parts"


def _fingerprint(path: Path, opts: ScreenOptions, smiles_col: str | None, chunk_size: int, out: Path) -> dict:
    """What must not change between an interrupted screen and its --resume: the input file (size,
    mtime), every option that changes rows, the chunk size (chunk boundaries) and the output type."""
    import hashlib

    st = path.stat()
    ref = None
    if opts.reference is not None:
        ref = hashlib.sha256("\n".join(sorted(opts.reference)).encode()).hexdigest()[:16]
    return {"input": str(path.resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns,
            "smiles_col": smiles_col, "chunk_size": chunk_size, "output_type": out.suffix.lower(),
            "filters": [f.text for f in opts.filters], "drop": opts.drop, "dedupe": opts.dedupe,
            "standardize": opts.standardize, "max_atoms": opts.max_atoms, "reference": ref}


def _write_json(path: Path, obj) -> None:
    import json

    from ..data import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj))


def _assemble(parts: list[Path], out: Path) -> None:
    """Concatenate finished parts into `out` atomically (text formats: bytes; parquet: row groups
    under the first part's schema), verifying what reached the disk before the rename."""
    import shutil

    from ..data import OutputError, atomic_path, fsync_file

    with atomic_path(out, min_size=0) as tmp:
        if out.suffix.lower() == ".parquet" and parts:
            import pyarrow.parquet as pq

            first = pq.read_table(parts[0])
            with pq.ParquetWriter(tmp, first.schema) as w:
                rows = 0
                for p in parts:
                    t = first if p == parts[0] else pq.read_table(p).cast(first.schema)
                    w.write_table(t)
                    rows += t.num_rows
            if pq.ParquetFile(tmp).metadata.num_rows != rows:
                raise OutputError(f"could not write {out}: not every row reached the disk")
        else:
            with open(tmp, "wb") as f:
                for p in parts:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, f)
            expected = sum(p.stat().st_size for p in parts)
            if fsync_file(tmp) != expected:
                raise OutputError(f"could not write {out}: {fsync_file(tmp)} of {expected} bytes reached the disk")


def screen_file(path: str | Path, out: str | Path | None = None, opts: ScreenOptions | None = None,
                smiles_col: str | None = None, workers: int = 1, chunk_size: int = 1000,
                progress: bool = False, resume: bool = False, log: Callable = lambda m: None) -> dict:
    """Screen a file chunk by chunk into `out` (.csv .tsv .parquet .sdf .smi; CSV on stdout when
    None). Returns the summary counts (rows, valid, invalid, ...).

    With a file `out`, each finished chunk is written as a part in `.<out>.parts/` with a small
    manifest (input fingerprint, screener state); at the end the parts are joined into `out` (temp
    file + rename) and the folder removed. An interrupted or killed run leaves no `out`, only the
    parts: `resume=True` continues after the last finished part and yields exactly the rows an
    uninterrupted run would. Without `resume`, parts of an earlier run are discarded."""
    import json
    import shutil

    from tqdm import tqdm

    t0 = time.time()
    opts = opts or ScreenOptions()
    path = Path(path)
    chunks = iter_input_chunks(path, smiles_col, chunk_size)  # checks the input before parts are touched
    if out is None:
        if resume:
            raise DataError("--resume needs an output file (-o): stdout cannot be resumed")
        screener, results = screen_chunks(chunks, opts, workers)
        bar = tqdm(desc="screen", unit="mol", disable=not progress, mininterval=1.0, file=sys.stderr)
        try:
            with ChunkWriter(None) as writer:
                for chunk in results:
                    writer.write(chunk)
                    bar.update(screener.counts["rows"] - bar.n)
        finally:
            bar.close()  # ends the progress line, so an error message starts on its own line
        return _summary(screener, t0)

    out = Path(out)
    pdir = parts_dir(out)
    manifest_path = pdir / "manifest.json"
    fp = _fingerprint(path, opts, smiles_col, chunk_size, out)
    done, state = 0, None
    if resume and manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("version") != MANIFEST_VERSION or manifest.get("fingerprint") != fp:
            old = manifest.get("fingerprint") or {}
            diff = sorted(k for k in fp if old.get(k) != fp[k]) or ["manifest"]
            raise ResumeError(f"cannot resume into {out}: {', '.join(diff)} differ(s) from the interrupted run; "
                              f"run without --resume to start over")
        done, state = int(manifest["done"]), manifest["state"]
        if state is None:  # killed before its first chunk was finished: nothing to keep
            done = 0
            log(f"nothing of {out} was finished before the interruption; starting from the first row")
        else:
            log(f"resuming {out}: {done} chunks ({state['row']} rows) already screened")
    else:
        if pdir.exists():  # an earlier run's parts: without --resume the user asked for a fresh run
            log(f"discarding the parts of an earlier interrupted run in {pdir} (--resume continues it)")
            shutil.rmtree(pdir)
        if resume:
            log(f"nothing to resume for {out}; starting from the first row")
    pdir.mkdir(exist_ok=True)
    if state is None:
        _write_json(manifest_path, {"version": MANIFEST_VERSION, "fingerprint": fp, "done": 0, "state": None})
    screener, results = screen_chunks(itertools.islice(chunks, done, None), opts, workers)
    if state is not None:  # the screener continues where the finished parts end
        screener.row, screener.counts = state["row"], state["counts"]
        for i in range(done):
            seen_file = pdir / f"part-{i:06d}.seen.json"
            if seen_file.exists():
                screener.seen.update((k, r) for k, r in json.loads(seen_file.read_text()))
    part = lambda i: pdir / f"part-{i:06d}{out.suffix.lower()}"  # noqa: E731
    bar = tqdm(desc="screen", unit="mol", disable=not progress, mininterval=1.0, file=sys.stderr,
               initial=screener.counts["rows"])
    i = done
    try:
        for chunk in results:
            with ChunkWriter(part(i)) as writer:
                writer.first = i == 0  # CSV header in the first part only: parts concatenate to one file
                writer.write(chunk)
            if opts.dedupe:
                _write_json(pdir / f"part-{i:06d}.seen.json", screener.new_seen)
            i += 1
            _write_json(manifest_path, {"version": MANIFEST_VERSION, "fingerprint": fp, "done": i,
                                        "state": {"row": screener.row, "counts": screener.counts}})
            bar.update(screener.counts["rows"] - bar.n)
    except KeyboardInterrupt as e:  # Ctrl-C / SIGTERM: the parts stay for --resume
        bar.close()
        raise type(e)(f"screen of {path} stopped after {screener.counts['rows']} rows ({i} chunks saved in "
                      f"{pdir}); run the same command with --resume to continue") from None
    except Exception:  # an error (bad row deep in the input, full disk): fail clean, nothing left behind
        shutil.rmtree(pdir, ignore_errors=True)
        raise
    finally:
        bar.close()
    try:
        _assemble([part(k) for k in range(i)], out)
    finally:  # joined or failed to join (full disk): the parts go either way
        shutil.rmtree(pdir, ignore_errors=True)
    return _summary(screener, t0)


def _summary(screener: _Screener, t0: float) -> dict:
    seconds = time.time() - t0
    return {**screener.counts, "seconds": round(seconds, 3),
            "rows_per_s": round(screener.counts["rows"] / seconds, 1) if seconds > 0 else None}


def format_summary(counts: dict) -> str:
    """One line for stderr."""
    parts = [f"{counts['rows']} rows: {counts['valid']} valid, {counts['invalid']} invalid"]
    for key, label in (("standardized", "salts/charges standardized"), ("duplicates", "duplicates"),
                       ("novel", "novel"), ("passing", "pass filters"), ("dropped", "dropped")):
        if key in counts:
            parts.append(f"{counts[key]} {label}")
    return "; ".join(parts) + f"; {counts['written']} written in {counts['seconds']:.1f} s"
