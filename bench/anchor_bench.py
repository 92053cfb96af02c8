"""Latents that decode back to their molecule (issue 27: interpolation ends that are the inputs);
prints JSON on stdout.

    python bench/anchor_bench.py [--model M] [--n 200] [--draws 1,8,32,128]

For each molecule (the first --n of ZINC250k test after a fixed shuffle, and the drug panel of
bench/model_bench.py) and each number of posterior draws N, `design.encoding.anchor_latents`
keeps the one of μ and N − 1 draws of q(z | x) whose greedy decode (the default mask and
backjumping, as `interpolate` decodes) is most similar to the molecule. Reported per N: the
fraction whose chosen latent decodes to the molecule itself, the mean Tanimoto of that decode to
it (2048-bit Morgan, radius 2), and the seconds taken. N = 1 is μ, what interpolation used before.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_bench import drug_panel  # noqa: E402

from moldesign.api import DEFAULT_MODEL, load  # noqa: E402
from moldesign.chem import canonical_mols, tanimoto_to  # noqa: E402
from moldesign.decoding.sampling import decode  # noqa: E402
from moldesign.design.encoding import anchor_latents  # noqa: E402
from moldesign.errors import DesignInputError, DesignWarning  # noqa: E402


def seeds_of(d, smiles, limit: int | None = None):
    """The molecules of `smiles` the model can encode, as Seeds, in order (the first `limit`)."""
    out = []
    for s in smiles:
        if limit is not None and len(out) == limit:
            break
        try:
            out.append(d.molecule(s))
        except DesignInputError:
            continue
    return out


def decoded_similarity(d, seeds, z: np.ndarray) -> np.ndarray:
    """Greedy decode of z (k, Z) under each molecule's properties → Tanimoto to it (k,), 0 if invalid."""
    props = np.stack([s.props for s in seeds])
    _, mols = canonical_mols(decode(d.bundle, z, props, temperature=0.0))
    return np.array([tanimoto_to(s.mol, [m])[0] if m is not None else 0.0 for s, m in zip(seeds, mols)])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--zinc", default=os.path.join(os.environ.get("MOLDESIGN_ZINC", "data/zinc250k"), "test.parquet"))
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--draws", default="1,8,32,128")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", DesignWarning)
    d = load(args.model, device="cpu")
    zinc = pd.read_parquet(args.zinc, columns=["smiles"]).sample(frac=1.0, random_state=0)["smiles"].head(args.n)
    sets = {"zinc_test": seeds_of(d, zinc), "drugs": seeds_of(d, drug_panel().values())}
    out = {"model": args.model, "threads": args.threads, "sets": {}}
    for name, seeds in sets.items():
        rows = {}
        for n in [int(x) for x in args.draws.split(",")]:
            t0 = time.time()
            z, _ = anchor_latents(d.bundle, seeds, n, np.random.default_rng(0))
            seconds = time.time() - t0
            sim = decoded_similarity(d, seeds, z)  # decoded again: the chosen latent, as interpolate decodes it
            rows[str(n)] = {"exact": round(float(np.mean(sim >= 1.0)), 3),
                            "mean_tanimoto": round(float(np.mean(sim)), 3),
                            "seconds": round(seconds, 1)}
            print(name, n, rows[str(n)], file=sys.stderr, flush=True)
        out["sets"][name] = {"molecules": len(seeds), "draws": rows}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
