"""Where unconstrained T = 1 prior validity is bounded: latents of real molecules vs prior draws; prints JSON.

    python bench/prior_bench.py --model models/moldesign-zinc.pt [--n 2000] [--n-fit 20000] [--components 16]

The model-2 bar asks 0.85 RDKit validity for T = 1 samples from the default prior without the
grammar mask. A prior can at best put z where molecules' posteriors are, with conditions c that
belong to them, so this decodes (T = 1, unconstrained, one thread) n held-out ZINC test molecules'
own latents first — the ceiling for any prior — and then prior draws:
- `mu_own_c`: z = μ(x, c(x)), c = the molecule's own RDKit properties;
- `posterior_own_c`: z ~ q(z | x) = μ + σ·ε, own properties (the aggregate posterior, sampled);
- `mu_shuffled_c`, `mu_drawn_c`: the same μ with another test molecule's properties / properties
  drawn from the training distribution (sampling.draw_conditions: what prior sampling does);
- `checkpoint_prior`: the checkpoint's default prior (its GMM when fitted) with drawn conditions,
  i.e. `sample_prior` unconstrained;
- `gmm_latent`: a GMM with --components full-covariance components refitted on μ of --n-fit
  training molecules, drawn conditions; `gmm_joint`: a GMM of the same size on [μ, scaled c]
  (the joint of latent and conditions), z and c drawn together (HBD/HBA rounded, ≥ 0).
Each entry: validity, uniqueness among valid, novelty of valid against the --n-fit training
molecules, seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models/moldesign-zinc.pt"))
    ap.add_argument("--n", type=int, default=2000, help="test molecules / prior draws per entry")
    ap.add_argument("--n-fit", type=int, default=20000, help="training molecules the GMMs are fitted on")
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--zinc-test", default=str(REPO / "data/zinc250k/test.parquet"))
    ap.add_argument("--zinc-train", default=str(REPO / "data/zinc250k/train.parquet"))
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from moldesign.model import checkpoint
    from moldesign.chem import PROPERTIES
    from moldesign.training.fitting import fit_gmm
    from moldesign.chem import canonical_mols
    from moldesign.decoding.sampling import decode, draw_conditions, encode, sample_prior

    bundle = checkpoint.load(args.model, torch.device("cpu"))
    test = pd.read_parquet(args.zinc_test).sample(n=args.n, random_state=args.seed)
    train = pd.read_parquet(args.zinc_train).sample(n=args.n_fit, random_state=args.seed)
    train_smiles = set(train["smiles"])
    rng = np.random.default_rng(args.seed)
    out: dict = {"model": args.model, "n": args.n, "n_fit": args.n_fit, "components": args.components,
                 "temperature": 1.0, "constrained": False, "entries": {}}

    def report(name: str, strings: list, t0: float) -> None:
        canon, _ = canonical_mols(strings)
        valid = {c for c in canon if c is not None}
        n_valid = sum(c is not None for c in canon)
        out["entries"][name] = {"validity": n_valid / len(strings), "unique": len(valid) / max(1, n_valid),
                                "novel": len(valid - train_smiles) / max(1, len(valid)),
                                "seconds": round(time.time() - t0, 1)}
        print(name, out["entries"][name], file=sys.stderr, flush=True)

    def run(name: str, z: np.ndarray, props: np.ndarray) -> None:
        t0 = time.time()
        gen = torch.Generator().manual_seed(args.seed)
        report(name, decode(bundle, z.astype(np.float32), props, temperature=1.0, generator=gen,
                            constrained=False), t0)

    p_test = test[list(PROPERTIES)].to_numpy(np.float64)  # (n, P) own properties
    mu, logvar = encode(bundle, test["smiles"].tolist(), p_test)  # (n, Z) each
    run("mu_own_c", mu, p_test)
    run("posterior_own_c", mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape), p_test)
    run("mu_shuffled_c", mu, p_test[rng.permutation(args.n)])
    run("mu_drawn_c", mu, draw_conditions(bundle, args.n, rng))
    t0 = time.time()
    strings, _ = sample_prior(bundle, args.n, seed=args.seed, temperature=1.0, constrained=False)
    report("checkpoint_prior", strings, t0)

    p_train = train[list(PROPERTIES)].to_numpy(np.float64)
    mu_train, _ = encode(bundle, train["smiles"].tolist(), p_train)  # (n_fit, Z)
    Z = mu_train.shape[1]
    run("gmm_latent", fit_gmm(mu_train, args.components, seed=0).sample(args.n, rng),
        draw_conditions(bundle, args.n, rng))
    joint = fit_gmm(np.hstack([mu_train, bundle.scaler.transform(p_train)]), args.components, seed=0)
    x = joint.sample(args.n, rng)  # (n, Z + P): latent, then scaled conditions
    props = bundle.scaler.inverse(x[:, Z:].astype(np.float64))
    counts = [PROPERTIES.index("hbd"), PROPERTIES.index("hba")]
    props[:, counts] = np.clip(np.round(props[:, counts]), 0, None)
    run("gmm_joint", x[:, :Z], props)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
