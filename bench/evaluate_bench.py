"""Timings of `evaluate` (sampling, each metric, reference statistics cold vs cached); prints JSON.

    python bench/evaluate_bench.py [--model models/moldesign-moses.pt] [--n 10000]
        [--reconstruct-n 1000] [--reference-dir data/moses] [--no-fcd]
        [--test FILE --test-scaffolds FILE --train FILE]

With the default reference folder the MOSES statistics are cached in <split>_ref_stats.npz:
`references.cold` is the first load (fingerprints, BRICS fragments, scaffolds of 176k molecules,
ChemNet on 10k), `references.cached` a second load from the cache. Pass --fresh to delete the
cache first so `cold` really is cold. The metric values are printed too, so a run doubles as a
model evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from moldesign.model import checkpoint
from moldesign.screening import metrics
from moldesign.data import DEFAULT_DATA_DIR

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "moldesign-moses.pt")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--reconstruct-n", type=int, default=1000)
    ap.add_argument("--reference-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--test", type=Path)
    ap.add_argument("--test-scaffolds", type=Path)
    ap.add_argument("--train", type=Path)
    ap.add_argument("--no-fcd", action="store_true")
    ap.add_argument("--fresh", action="store_true", help="delete cached reference statistics first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    if args.fresh:
        for split in ("test", "test_scaffolds"):
            (args.reference_dir / f"{split}_ref_stats.npz").unlink(missing_ok=True)
    bundle = checkpoint.load(args.model, args.device)
    fcd = not args.no_fcd
    loads = {}
    for label in ("cold", "cached"):
        t0 = time.perf_counter()
        refs = metrics.load_references(args.reference_dir, args.test, args.test_scaffolds, args.train, fcd, args.device)
        loads[label] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    result = metrics.evaluate(bundle, args.n, *refs, seed=args.seed, n_reconstruct=args.reconstruct_n,
                              with_fcd=fcd, device=args.device)
    total = time.perf_counter() - t0
    timings = result.pop("timings")
    print(json.dumps({
        "model": str(args.model), "n": args.n, "reconstruct_n": args.reconstruct_n, "device": args.device,
        "fcd_available": metrics.fcd_available(), "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "references": "files (not cached)" if args.test else str(args.reference_dir),
        "references_seconds": loads, "evaluate_seconds": round(total, 2),
        "stage_seconds": timings, "metrics": result,
    }, indent=2))


if __name__ == "__main__":
    main()
