"""generate --raw: every decoded string, in order, unfiltered (for measuring validity), as one
table, as a stream of chunks with flat memory, or written to a file in resumable parts.

Chunk k draws from its own generators, seeded by (seed, k) (chunk 0 by seed itself), so chunks
can be skipped or produced anywhere without changing the others.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..config import DEFAULT_RADIUS
from ..decoding.sampling import decode, encode
from ..errors import DesignInputError
from ..model.checkpoint import Bundle
from ..model.prior import draw_latents
from ..model.surrogate import TARGETS
from .common import (check_beam_seed, check_count, check_sampling, checked_conditions, condition_rows,
                     default_temperature, generators, molecule, molecule_filter, result_table)
from .filters import Sanity
from .latent import sample_around
from .rules import check_seed
from .seeds import Seed

RAW_COLUMNS = ["smiles", "valid", "canonical", *TARGETS, "similarity"]
RAW_CHUNK = 10_000  # decodes per streamed chunk (and per resumable part file) of `generate --raw`


class RawSetup(NamedTuple):
    """The checked arguments of a raw stream."""
    seed: Seed | None
    mu: np.ndarray | None  # (1, Z): the seed's μ, encoded under its own properties
    given: dict[str, float]  # requested conditions
    radius: float
    temperature: float


def raw_setup(bundle: Bundle, like: str | None, n: int, conditions: dict, radius: float | None,
              temperature: float | None, chunk_size: int, beam: int, seed: int) -> RawSetup:
    """Check a raw stream's arguments (DesignInputError) and encode its seed."""
    temperature = default_temperature(temperature, like)
    check_count(n)
    check_seed(seed)
    check_beam_seed(beam, like, radius)
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DesignInputError(f"chunk size must be a positive integer, got {chunk_size!r}")
    check_sampling(temperature, radius, like)
    given = checked_conditions(bundle, conditions)
    radius = DEFAULT_RADIUS if radius is None else float(radius)
    sd = molecule(bundle, like) if like is not None else None
    mu = encode(bundle, [sd.smiles], sd.props[None, :])[0] if sd is not None else None
    return RawSetup(sd, mu, given, radius, temperature)


def raw_chunks(bundle: Bundle, setup: RawSetup, n: int, seed: int, chunk_size: int, start_chunk: int,
               constrained: bool, beam: int) -> Iterator[pd.DataFrame]:
    """Chunks start_chunk.. of `n` decodes (columns RAW_COLUMNS), decoded as the caller iterates."""
    sd = setup.seed
    for k in range(start_chunk, -(-n // chunk_size)):
        m_chunk = min(chunk_size, n - k * chunk_size)
        rng, gen = generators(bundle, seed if k == 0 else
                              int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
        strings: list[str] = []
        while len(strings) < m_chunk:
            m = min(1000, m_chunk - len(strings))  # decoder batch: (m, Z) latents
            if sd is not None:
                z = sample_around(setup.mu[0], m, setup.radius, rng)
                cond = condition_rows(bundle, m, setup.given, rng, sd.props)
            else:
                cond = condition_rows(bundle, m, setup.given, rng)
                z = draw_latents(bundle, m, rng)  # the checkpoint's GMM prior when it has one
            strings += decode(bundle, z, cond, setup.temperature, generator=gen, constrained=constrained, beam=beam)
        df = result_table(strings, sd)
        df["canonical"] = df["smiles"].where(df["valid"])
        df = df.drop(columns=["smiles"]).rename(columns={"decoded": "smiles"})
        yield df[RAW_COLUMNS]


def raw_table(bundle: Bundle, like: str | None, n: int, conditions: dict, radius: float | None,
              temperature: float | None, seed: int, min_similarity: float | None, keep: str | None,
              filters: Sequence[str] | None, sanity: bool | Sanity, constrained: bool, beam: int) -> pd.DataFrame:
    """generate(raw=True): exactly `n` decodes in one table, with attrs summary, requested and seed."""
    if min_similarity is not None:
        raise DesignInputError("--min-similarity does not apply to --raw (every decode is written, unfiltered)")
    molecule_filter(keep, filters, sanity)  # unused by --raw, but a bad value is still an error
    setup = raw_setup(bundle, like, n, conditions, radius, temperature, RAW_CHUNK, beam, seed)
    df = pd.concat(list(raw_chunks(bundle, setup, n, seed, RAW_CHUNK, 0, constrained, beam)), ignore_index=True)
    df.attrs["summary"] = {"attempts": n, "valid": float(df["valid"].mean()),
                           "unique_valid": int(df["canonical"].nunique())}
    df.attrs.update(requested=setup.given, seed=setup.seed)
    return df


def generate_raw_chunks(bundle: Bundle, like: str | None = None, n: int = 50, *, mw=None, logp=None, hbd=None,
                        hba=None, tpsa=None, radius: float | None = None, temperature: float | None = None,
                        seed: int = 0, chunk_size: int = RAW_CHUNK, start_chunk: int = 0, constrained: bool = True,
                        beam: int = 0) -> Iterator[pd.DataFrame]:
    """Designer.generate_raw_chunks: the arguments are checked now, the decoding happens as the
    caller iterates."""
    setup = raw_setup(bundle, like, n, dict(mw=mw, logp=logp, hbd=hbd, hba=hba, tpsa=tpsa), radius, temperature,
                      chunk_size, beam, seed)
    return raw_chunks(bundle, setup, n, seed, chunk_size, start_chunk, constrained, beam)


def generate_raw_to(bundle: Bundle, path: str | Path | None, out: str | Path | None, like: str | None = None,
                    n: int = 50, *, seed: int = 0, chunk_size: int = RAW_CHUNK, float_format: str | None = None,
                    progress: bool = False, log: Callable[[str], None] = lambda m: None, **kwargs) -> dict:
    """Designer.generate_raw_to (`path`: the model's checkpoint, whose hash the parts' manifest
    holds): to stdout as CSV when `out` is None, else through resumable parts into `out`."""
    from tqdm import tqdm

    chunks = generate_raw_chunks(bundle, like, n, seed=seed, chunk_size=chunk_size, **kwargs)  # checks the arguments
    bar = tqdm(total=n, desc="generate", unit="mol", disable=not progress, mininterval=1.0)
    try:
        if out is None:
            return _to_stdout(chunks, n, float_format, bar)
        return _through_parts(bundle, path, Path(out), like, n, seed, chunk_size, float_format, log, bar, kwargs)
    finally:
        bar.close()


def _to_stdout(chunks: Iterator[pd.DataFrame], n: int, float_format: str | None, bar) -> dict:
    from ..data import ChunkWriter

    n_valid = 0
    with ChunkWriter(None, float_format) as writer:
        for df in chunks:
            writer.write(df)
            n_valid += int(df["valid"].sum())
            bar.update(len(df))
    return {"attempts": n, "valid": n_valid / n, "parts": 0, "reused": 0}


def _through_parts(bundle: Bundle, path: str | Path | None, out: Path, like: str | None, n: int, seed: int,
                   chunk_size: int, float_format: str | None, log: Callable[[str], None], bar, kwargs: dict) -> dict:
    """Write the missing parts of `<out>.parts/`, then join all of them into `out`."""
    from ..data import atomic_path, file_sha256

    n_chunks = -(-n // chunk_size)
    parts = out.with_name(out.name + ".parts")
    manifest = {"format": 1, "n": int(n), "seed": int(seed), "chunk_size": int(chunk_size), "like": like,
                **{k: (None if v is None else str(v)) for k, v in sorted(kwargs.items())},
                "model_sha256": file_sha256(path) if path is not None else None}
    _claim_parts(parts, manifest)
    done = 0  # parts are written in order: the first missing one is where to resume
    while done < n_chunks and _part(parts, done).exists():
        done += 1
    if done:
        log(f"resuming: {done} of {n_chunks} parts already in {parts}")
        bar.update(min(n, done * chunk_size))
    for k, df in enumerate(generate_raw_chunks(bundle, like, n, seed=seed, chunk_size=chunk_size,
                                               start_chunk=done, **kwargs), start=done):
        with atomic_path(_part(parts, k)) as tmp:
            df.to_parquet(tmp, index=False)
        bar.update(len(df))
    n_valid = _join_parts(parts, n_chunks, out, float_format)
    shutil.rmtree(parts)
    return {"attempts": n, "valid": n_valid / n, "parts": n_chunks - done, "reused": done}


def _part(parts: Path, k: int) -> Path:
    return parts / f"part-{k:06d}.parquet"


def _claim_parts(parts: Path, manifest: dict) -> None:
    """Create the parts folder with its manifest, or check that the one there is this run's."""
    from ..data import DataError, atomic_path

    if (parts / "manifest.json").exists():
        previous = json.loads((parts / "manifest.json").read_text())
        if previous != manifest:
            differ = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
            raise DataError(f"{parts} holds the parts of another run (different {', '.join(differ)}); "
                            f"delete it or choose another -o")
    else:
        parts.mkdir(parents=True, exist_ok=True)
        with atomic_path(parts / "manifest.json") as tmp:
            Path(tmp).write_text(json.dumps(manifest, indent=1))


def _join_parts(parts: Path, n_chunks: int, out: Path, float_format: str | None) -> int:
    """Copy the parts, one at a time (flat memory), into `out`; the number of valid rows."""
    import pyarrow.parquet as pq

    from ..data import ChunkWriter

    n_valid = 0
    with ChunkWriter(out, float_format) as writer:
        for k in range(n_chunks):
            df = pq.read_table(_part(parts, k)).to_pandas()
            n_valid += int(df["valid"].sum())
            writer.write(df)
    return n_valid
