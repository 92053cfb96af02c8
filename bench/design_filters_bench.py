"""What the design filters do on one checkpoint; prints JSON on stdout.

    python bench/design_filters_bench.py [--model models/moldesign-moses.pt] [--seeds tamiflu,celecoxib,aspirin]
        [--n 50] [--min-similarity 0.4,0.5] [--max-attempts 1000]

1. sanity: `generate --like SEED -n N --no-sanity` per seed; the fraction of returned molecules
   the default sanity filter would remove, per reason, and the fraction with a ring of 7+ atoms
   (issue 11: 20-37% of Tamiflu-like outputs against 2.6% of training molecules).
2. min_similarity: `generate --like SEED --min-similarity S -n N` per seed and S; molecules
   found, decodes used, minimum similarity of what was kept (must be >= S), final radius, seconds.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from rdkit import Chem, rdBase

from moldesign import api
from moldesign.design.filters import Sanity
from moldesign.errors import NothingValid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seeds", default="tamiflu,celecoxib,aspirin")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--min-similarity", default="0.4,0.5")
    ap.add_argument("--max-attempts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore", api.DesignWarning)
    d = api.load(args.model, device="cpu")
    seeds = args.seeds.split(",")
    out: dict = {"model": str(d.path), "n": args.n, "sanity": {}, "min_similarity": []}
    with rdBase.BlockLogs():
        for s in seeds:
            df = d.generate(like=s, n=args.n, sanity=False, seed=args.seed)
            mols = [Chem.MolFromSmiles(x) for x in df["smiles"]]
            reasons: dict[str, int] = {}
            n_fail = 0
            for m, sa in zip(mols, df["sa"]):
                why = Sanity().problems(m, sa)
                n_fail += bool(why)
                for w in why:
                    key = "ring size > max" if w.startswith("ring size") else w
                    reasons[key] = reasons.get(key, 0) + 1
            ring7 = np.mean([any(len(r) >= 7 for r in m.GetRingInfo().AtomRings()) for m in mols])
            out["sanity"][s] = {"molecules": len(df), "fail_fraction": round(n_fail / max(1, len(df)), 3),
                                "ring7plus_fraction": round(float(ring7), 3),
                                "reasons": {k: round(v / len(df), 3) for k, v in sorted(reasons.items())}}
        for s in seeds:
            for sim in (float(x) for x in args.min_similarity.split(",")):
                t0 = time.time()
                try:
                    df = d.generate(like=s, n=args.n, min_similarity=sim, max_attempts=args.max_attempts, seed=args.seed)
                    summ = df.attrs["summary"]
                    row = {"found": len(df), "min_kept_similarity": round(float(df["similarity"].min()), 4),
                           "attempts": summ["attempts"], "radius_final": round(summ["radius"], 4)}
                except NothingValid:
                    row = {"found": 0, "min_kept_similarity": None, "attempts": args.max_attempts}
                out["min_similarity"].append({"seed": s, "min_similarity": sim, "requested": args.n, **row,
                                              "seconds": round(time.time() - t0, 1)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
