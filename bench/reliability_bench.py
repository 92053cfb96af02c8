"""Cost of resumable, verified screen output; prints JSON.

    python bench/reliability_bench.py [--rows 100000] [--chunk-size 1000] [--formats csv,parquet,sdf]

`screen -o FILE` writes each finished chunk as a verified part (temp + fsync + size check + rename)
plus a manifest, then joins the parts into FILE. This times that write path against one streaming
ChunkWriter (the pre-resume path) on the same screened rows (the committed sample screened once,
cycled to --rows), and the scoring itself (`screen_smiles`, one worker) for scale: the write
overhead per row is to be compared with the scoring time per row.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--formats", default="csv,parquet,sdf")
    args = ap.parse_args()

    import pandas as pd

    from moldesign.data import ChunkWriter, load_sample
    from moldesign.screening.screen import _assemble, _write_json, screen_smiles

    smiles = load_sample()["smiles"].tolist()[:2000]
    t0 = time.perf_counter()
    scored = screen_smiles(smiles, workers=1)
    score_s_per_row = (time.perf_counter() - t0) / len(smiles)
    reps = -(-args.rows // len(scored))
    rows = pd.concat([scored] * reps, ignore_index=True).iloc[: args.rows]
    chunks = [rows.iloc[i : i + args.chunk_size].reset_index(drop=True) for i in range(0, len(rows), args.chunk_size)]
    result = {"rows": len(rows), "chunk_size": args.chunk_size,
              "scoring_ms_per_row_1_worker": round(1e3 * score_s_per_row, 4), "formats": {}}
    for fmt in args.formats.split(","):
        d = Path(tempfile.mkdtemp(prefix="relbench-"))
        try:
            t0 = time.perf_counter()
            with ChunkWriter(d / f"stream.{fmt}") as w:
                for c in chunks:
                    w.write(c)
            stream_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            pdir = d / ".parts"
            pdir.mkdir()
            parts = []
            for i, c in enumerate(chunks):
                parts.append(pdir / f"part-{i:06d}.{fmt}")
                with ChunkWriter(parts[-1]) as w:
                    w.first = i == 0
                    w.write(c)
                _write_json(pdir / "manifest.json", {"done": i + 1})
            _assemble(parts, d / f"parts.{fmt}")
            parts_s = time.perf_counter() - t0
            same = (d / f"stream.{fmt}").read_bytes() == (d / f"parts.{fmt}").read_bytes() if fmt != "parquet" else \
                pd.read_parquet(d / f"stream.{fmt}").equals(pd.read_parquet(d / f"parts.{fmt}"))
            result["formats"][fmt] = {
                "stream_s": round(stream_s, 3), "parts_s": round(parts_s, 3),
                "overhead_ms_per_row": round(1e3 * (parts_s - stream_s) / len(rows), 4),
                "overhead_vs_scoring": round((parts_s - stream_s) / len(rows) / score_s_per_row, 4),
                "identical_output": bool(same), "bytes": (d / f"parts.{fmt}").stat().st_size,
            }
        finally:
            shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
