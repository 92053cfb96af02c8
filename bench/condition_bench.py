"""Property requests without a seed (`generate --logp L`): how close the decodes come; prints JSON.

    python bench/condition_bench.py [--model models/moldesign-zinc.pt] [--levels 0,2,4,6] [--n 500]

For each requested LogP L, n prior latents (the checkpoint's default prior) are decoded under two
ways of filling the four properties not requested:
- `independent`: a random training row with LogP replaced by L (what `generate` did before
  session 6): a LogP of 6 may come with the MW and TPSA of a polar fragment;
- `nearest`: sampling.draw_conditions(given={"logp": L}), what `generate` does now: the other
  properties from the training rows whose LogP is nearest L.
Both greedy with the grammar mask (generate's defaults without a seed) and at T = 1 without the
mask. Per level and way: RDKit validity, mean achieved LogP and its mean absolute error to L over
the valid decodes; `mean_mae` averages the levels. Same latents and seeds for both ways.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models/moldesign-zinc.pt"))
    ap.add_argument("--levels", default="0,2,4,6", help="requested LogP values, comma-separated")
    ap.add_argument("--n", type=int, default=500, help="decodes per level, way and decoding setting")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from moldesign.model import checkpoint
    from moldesign.chem import PROPERTIES, properties_array
    from moldesign.model.prior import draw_latents
    from moldesign.chem import canonical_mols
    from moldesign.decoding.sampling import decode, draw_conditions

    bundle = checkpoint.load(args.model, torch.device("cpu"))
    j = PROPERTIES.index("logp")
    levels = [float(x) for x in args.levels.split(",")]
    settings = {"greedy_mask": (0.0, True), "T1_unconstrained": (1.0, False)}
    out: dict = {"model": args.model, "n": args.n, "levels": levels, "results": {}}
    t0 = time.time()
    for way in ("independent", "nearest"):
        for name, (temperature, constrained) in settings.items():
            rows = []
            for level in levels:
                rng = np.random.default_rng(args.seed)
                if way == "independent":
                    cond = draw_conditions(bundle, args.n, rng)  # (n, P) random training rows
                    cond[:, j] = level
                else:
                    cond = draw_conditions(bundle, args.n, rng, {"logp": level})
                z = draw_latents(bundle, args.n, rng)  # (n, Z), the same for both ways
                strings = decode(bundle, z, cond, temperature, generator=torch.Generator().manual_seed(args.seed),
                                 constrained=constrained)
                canon = [c for c in canonical_mols(strings)[0] if c is not None]
                logp = properties_array(canon)[:, j] if canon else np.array([np.nan])
                rows.append({"logp": level, "validity": len(canon) / args.n, "achieved_mean": round(float(logp.mean()), 3),
                             "mae": round(float(np.abs(logp - level).mean()), 3)})
            out["results"][f"{way}/{name}"] = {"mean_mae": round(float(np.mean([r["mae"] for r in rows])), 3),
                                               "levels": rows}
            print(way, name, out["results"][f"{way}/{name}"]["mean_mae"], file=sys.stderr, flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
