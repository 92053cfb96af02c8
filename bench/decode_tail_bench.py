"""Why the optimizer's decoding does not get faster with threads (issue 28); prints JSON on stdout.

    python bench/decode_tail_bench.py [--model M] [--starts 24] [--per-start 8] [--sigma 0.1] [--threads 1,2]

Rows as one round of the batch optimizer: `--starts` ZINC250k test molecules (a fixed shuffle),
each encoded (μ under its own properties) and `--per-start` points μ + σ·ε around it (CMA-ES's
first population at the default σ). One greedy decode call of all rows, three ways:
backjumping (the optimizer's default: design/optimize/points.GREEDY_BACKTRACK = None, no beam
rescue), the grammar mask alone (backtrack 0), unconstrained. Per way and thread count: best of
--repeats seconds; GRU steps of the call, steps with ≤ 8 rows alive (the serial tail), row-steps;
validity. For backjumping also the rows by number of jumps and how many of them end valid.
Keep the machine otherwise quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from moldesign.api import DEFAULT_MODEL, load
from moldesign.chem import canonical_mols
from moldesign.decoding.sampling import encode, grammar_for, scale
from moldesign.decoding.search import sample
from moldesign.errors import DesignWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchor_bench import seeds_of  # noqa: E402  (the molecules the model can encode)

WAYS = {"backjumping": dict(constrained=True, backtrack=None), "mask": dict(constrained=True, backtrack=0),
        "unconstrained": dict(constrained=False, backtrack=0)}
JUMP_BINS = [(0, 0), (1, 3), (4, 7), (8, 15), (16, 10**6)]


def rows_of(d, path: str, starts: int, per_start: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(z (n, Z), raw conditions (n, 5)): per_start points around each of `starts` encodable molecules."""
    shuffled = pd.read_parquet(path, columns=["smiles"]).sample(frac=1.0, random_state=0)["smiles"]
    seeds = seeds_of(d, shuffled, limit=starts)
    props = np.stack([s.props for s in seeds])
    mu, _ = encode(d.bundle, [s.smiles for s in seeds], props)
    rng = np.random.default_rng(0)
    z = np.repeat(mu, per_start, 0) + sigma * rng.standard_normal((len(mu) * per_start, mu.shape[1])).astype(np.float32)
    return z, np.repeat(props, per_start, 0)


def decode_counted(bundle, z: np.ndarray, cond: np.ndarray, constrained: bool, backtrack: int | None):
    """One greedy `sample` call over all rows, as sampling.decode makes it for the optimizer, with
    the decoder's steps counted → (Decoded, rows alive at each step)."""
    dec, L = bundle.model.decoder, bundle.config.max_len
    sizes: list[int] = []
    real = dec.step

    def step(token, h, zc):
        sizes.append(len(token))
        return real(token, h, zc)

    dec.step = step  # an instance attribute: counts this call only
    try:
        out = sample(dec, torch.as_tensor(z), scale(bundle, cond), L, 0.0, 0,
                     grammar_for(bundle) if constrained else None, None,
                     backtrack=L if backtrack is None else backtrack, first_token_floor=0.0, batch_size=1000)
    finally:
        del dec.step
    return out, np.array(sizes)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--zinc", default=os.path.join(os.environ.get("MOLDESIGN_ZINC", "data/zinc250k"), "test.parquet"))
    p.add_argument("--starts", type=int, default=24)
    p.add_argument("--per-start", type=int, default=8)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", DesignWarning)
    d = load(args.model, device="cpu")
    d.bundle.model.eval()
    z, cond = rows_of(d, args.zinc, args.starts, args.per_start, args.sigma)
    out = {"model": args.model, "rows": len(z), "starts": args.starts, "sigma": args.sigma,
           "load_avg_before": [round(x, 2) for x in os.getloadavg()], "ways": {}}
    with torch.no_grad():
        for name, kw in WAYS.items():
            res, sizes = decode_counted(d.bundle, z, cond, **kw)  # also the warm-up
            canon, _ = canonical_mols([d.bundle.vocab.decode(r) for r in res.ids])
            valid = np.array([c is not None for c in canon])
            row = {"valid": round(float(valid.mean()), 3), "gru_steps": int(len(sizes)),
                   "steps_with_8_rows_or_fewer": int((sizes <= 8).sum()), "row_steps": int(sizes.sum()), "seconds": {}}
            if name == "backjumping":
                jumps = np.array(res.backtracks)
                row["rows_by_jumps"] = {f"{lo}-{hi}" if hi < 10**6 else f"{lo}+":
                                        {"rows": int(((jumps >= lo) & (jumps <= hi)).sum()),
                                         "valid": int(valid[(jumps >= lo) & (jumps <= hi)].sum())} for lo, hi in JUMP_BINS}
            for t in [int(x) for x in args.threads.split(",")]:
                torch.set_num_threads(t)
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    decode_counted(d.bundle, z, cond, **kw)
                    times.append(time.perf_counter() - t0)
                row["seconds"][str(t)] = round(min(times), 3)
            out["ways"][name] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
