"""Model quality against the model-2 bars, for one or more checkpoints side by side; prints JSON.

    python bench/model_bench.py --model models/moldesign-zinc.pt --model models/moldesign-moses.pt \
        [--n-recon 1000] [--n-prior 10000] [--n-like 30] [--zinc-test data/zinc250k/test.parquet] \
        [--moses-test data/moses/test.parquet] [--n-beam 200]

Per model:
- `recon_zinc`, `recon_moses`: greedy exact reconstruction (decode of μ, canonical string equal)
  of the first n molecules of a fixed shuffle (seed 0) of ZINC250k test (standardized) and MOSES
  test; molecules the model cannot encode (tokens, length) count as failures (`*_encodable`);
- `prior_validity`: RDKit validity of n prior samples at T = 1.0 with the checkpoint's default
  prior (GMM when fitted) and the grammar mask (the defaults), `prior_validity_unconstrained`
  without the mask, `prior_validity_normal` with N(0, I); `prior_unique` among the valid;
- `recon_zinc_beam5` (with --n-beam N): beam-5 reconstruction of the first N ZINC test molecules,
  beside greedy on the same molecules;
- `drugs`: every known drug with MW 150-500: exact reconstruction and Tanimoto(decode, input);
- `like`: `generate --like X -n 30` for aspirin, ibuprofen, celecoxib: mean Tanimoto to the seed,
  with the defaults (the 30 most similar of 5·30 candidates: api.DEFAULT_OVERSAMPLE), and
  `like_first` the same with --oversample 1 (the first 30 distinct decodes: the neighbourhood as
  the model makes it, before any ranking);
- `--skip recon,prior,like` leaves those parts out (`like` also skips `drugs`);
- `active_dims_0.1`: latent dimensions whose mean KL over 2,000 ZINC test molecules exceeds 0.1 nats;
- `drugs_beam5_exact`, `drugs_beam5_mean_tanimoto`: the drug panel decoded by beam search (width 5);
- `nll_test`, `nll_train`, `nll_gap` (with --n-nll N): teacher-forced NLL of the canonical string at μ
  (nats per molecule) on N ZINC test molecules and N training molecules (a fixed shuffle of
  data/zinc250k/train.parquet), and test − train: how much the model overfits;
- `tamiflu`: `generate` at Tamiflu's five properties (Lim et al.'s target: MW 312.2, LogP 1.285, HBD 2,
  HBA 5, TPSA 90.64), n = 100 without a seed: mean |LogP − 1.285| and the fraction with HBA = 5.

Issue 27 (model 3) compares checkpoints with
    python bench/model_bench.py --model models/moldesign-zinc.pt --model runs/m3/<name>/model.pt ... \
        --n-recon 1000 --n-prior 2000 --n-beam 200 --n-nll 1000
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from moldesign.model import checkpoint
from moldesign.api import Designer
from moldesign.chem import mol_from_smiles, mol_properties, morgan_fp, standardize
from moldesign.known_molecules import KNOWN_MOLECULES
from moldesign.chem import canonical_mols
from moldesign.decoding.sampling import encodable, encode, encode_ids, reconstruct, sample_prior

REPO = Path(__file__).resolve().parent.parent
LIKE_SEEDS = ("aspirin", "ibuprofen", "celecoxib")


def drug_panel() -> dict[str, str]:
    """Known drugs with MW 150-500 (the model-2 issue's panel), standardized."""
    out = {}
    for name, smi in KNOWN_MOLECULES.items():
        if 150 <= mol_properties(mol_from_smiles(smi))["mw"] <= 500:
            out[name] = standardize(smi)
    return out


def recon_rate(bundle, smiles: list[str]) -> tuple[float, int]:
    ok = [s for s in smiles if encodable(bundle, s)]
    dec = reconstruct(bundle, ok) if ok else []
    canon, _ = canonical_mols(dec)
    exact = sum(a == b for a, b in zip(ok, canon))
    return exact / max(1, len(smiles)), len(ok)


def tanimoto(a: str, b: str | None) -> float:
    from rdkit import DataStructs

    if b is None:
        return 0.0
    return float(DataStructs.TanimotoSimilarity(morgan_fp(mol_from_smiles(a)), morgan_fp(mol_from_smiles(b))))


TAMIFLU_TARGET = {"mw": 312.2, "logp": 1.285, "hbd": 2, "hba": 5, "tpsa": 90.64}


@torch.no_grad()
def teacher_forced_nll(bundle, smiles: list[str], batch: int = 250) -> float:
    """Mean NLL (nats per molecule) of each canonical string under the decoder at its own μ."""
    from moldesign.chem import properties_array
    from moldesign.training.loop import elbo_terms

    ok = [s for s in smiles if encodable(bundle, s)]
    total = 0.0
    bundle.model.eval()
    for i in range(0, len(ok), batch):
        part = ok[i : i + batch]
        ids, _ = encode_ids(bundle, part)  # (b, L)
        cond = torch.from_numpy(bundle.scaler.transform(properties_array(part))).to(ids.device)
        recon, _, _ = elbo_terms(bundle.model, ids, cond, 0.0)  # eval mode: z = μ
        total += float(recon) * len(part)
    return total / max(1, len(ok))


def tamiflu_conditioning(designer) -> dict:
    df = designer.generate(n=100, seed=0, **TAMIFLU_TARGET)
    return {"n": len(df), "logp_mae": round(float((df["logp"] - TAMIFLU_TARGET["logp"]).abs().mean()), 3),
            "hba_exact": round(float((df["hba"] == TAMIFLU_TARGET["hba"]).mean()), 3),
            "mw_mae": round(float((df["mw"] - TAMIFLU_TARGET["mw"]).abs().mean()), 2)}


def bench_model(path: Path, zinc: list[str], moses: list[str], n_recon: int, n_prior: int, n_like: int,
                n_beam: int = 0, skip: frozenset = frozenset(), train: list[str] | None = None) -> dict:
    t0 = time.time()
    bundle = checkpoint.load(path)
    out: dict = {"model": str(path), "train_info": {k: bundle.train_info.get(k) for k in ("data_source", "epochs", "wall_seconds")},
                 "has_gmm_prior": bundle.prior is not None}
    if "recon" not in skip:
        out["recon_zinc"], out["recon_zinc_encodable"] = recon_rate(bundle, zinc[:n_recon])
        out["recon_moses"], out["recon_moses_encodable"] = recon_rate(bundle, moses)
    prior_runs = (("prior_validity", "auto", True), ("prior_validity_unconstrained", "auto", False),
                  ("prior_validity_normal", "normal", True))
    for key, prior, constrained in () if "prior" in skip else prior_runs:
        strings, _ = sample_prior(bundle, n_prior, seed=0, temperature=1.0, prior=prior, constrained=constrained)
        canon, _ = canonical_mols(strings)
        out[key] = float(np.mean([c is not None for c in canon]))
        if key == "prior_validity":
            valid = [c for c in canon if c is not None]
            out["prior_unique"] = len(set(valid)) / max(1, len(valid))
    if train:
        out["nll_test"] = round(teacher_forced_nll(bundle, zinc[: len(train)]), 3)
        out["nll_train"] = round(teacher_forced_nll(bundle, train), 3)
        out["nll_gap"] = round(out["nll_test"] - out["nll_train"], 3)
    if n_beam and "recon" not in skip:
        ok = [s for s in zinc[:n_beam] if encodable(bundle, s)]
        dec, _ = canonical_mols(reconstruct(bundle, ok, beam=5))
        out["recon_zinc_beam5"] = sum(a == b for a, b in zip(ok, dec)) / max(1, n_beam)
        out["recon_zinc_greedy_same_molecules"] = recon_rate(bundle, zinc[:n_beam])[0]
    if "like" in skip:
        return _latent_stats(out, bundle, zinc, t0)
    drugs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, smi in drug_panel().items():
            if not encodable(bundle, smi):
                drugs[name] = {"exact": False, "tanimoto": 0.0, "decoded": None, "encodable": False}
                continue
            dec = canonical_mols(reconstruct(bundle, [smi]))[0][0]
            beam = canonical_mols(reconstruct(bundle, [smi], beam=5))[0][0]
            drugs[name] = {"exact": dec == smi, "tanimoto": round(tanimoto(smi, dec), 3), "decoded": dec,
                           "beam5_exact": beam == smi, "beam5_tanimoto": round(tanimoto(smi, beam), 3)}
        out["drugs"] = drugs
        out["drugs_exact"] = sum(d["exact"] for d in drugs.values())
        out["drugs_n"] = len(drugs)
        out["drugs_mean_tanimoto"] = round(float(np.mean([d["tanimoto"] for d in drugs.values()])), 3)
        out["drugs_beam5_exact"] = sum(d.get("beam5_exact", False) for d in drugs.values())
        out["drugs_beam5_mean_tanimoto"] = round(float(np.mean([d.get("beam5_tanimoto", 0.0) for d in drugs.values()])), 3)
        designer = Designer(bundle)
        out["tamiflu"] = tamiflu_conditioning(designer)
        for key, oversample in (("like", None), ("like_first", 1)):
            like = {}
            for name in LIKE_SEEDS:
                try:
                    df = designer.generate(like=name, n=n_like, seed=0, oversample=oversample)
                    like[name] = {"mean_similarity": round(float(df["similarity"].mean()), 3), "n": len(df),
                                  "decodes": df.attrs["summary"]["attempts"]}
                except Exception as e:  # a model that cannot encode the seed: reported, not fatal
                    like[name] = {"error": str(e).splitlines()[0]}
            out[key] = like
    return _latent_stats(out, bundle, zinc, t0)


def _latent_stats(out: dict, bundle, zinc: list[str], t0: float) -> dict:
    mu, logvar = encode(bundle, [s for s in zinc[:2000] if encodable(bundle, s)])
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).mean(0)  # (Z,) nats per dimension
    out["active_dims_0.1"] = int((kl > 0.1).sum())
    out["kl_total"] = round(float(kl.sum()), 2)
    out["seconds"] = round(time.time() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True)
    ap.add_argument("--n-recon", type=int, default=1000)
    ap.add_argument("--n-prior", type=int, default=10000)
    ap.add_argument("--n-like", type=int, default=30)
    ap.add_argument("--zinc-test", type=Path, default=REPO / "data" / "zinc250k" / "test.parquet")
    ap.add_argument("--moses-test", type=Path, default=REPO / "data" / "moses" / "test.parquet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-beam", type=int, default=0, help="ZINC test molecules also decoded by beam search (width 5)")
    ap.add_argument("--n-nll", type=int, default=0, help="molecules for held-out and training NLL (0: skip)")
    ap.add_argument("--zinc-train", type=Path, default=REPO / "data" / "zinc250k" / "train.parquet")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: recon, prior, like")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    zinc = pd.read_parquet(args.zinc_test)["smiles"].tolist()
    zinc = [zinc[i] for i in rng.permutation(len(zinc))[: max(args.n_recon, 2000)]]
    moses = pd.read_parquet(args.moses_test)["smiles"].tolist()
    moses = [moses[i] for i in np.random.default_rng(0).permutation(len(moses))[: args.n_recon]]
    moses = [standardize(s) for s in moses]
    skip = frozenset(x for x in args.skip.split(",") if x)
    if skip - {"recon", "prior", "like"}:
        ap.error(f"--skip takes recon, prior and/or like, got {args.skip!r}")
    train = None
    if args.n_nll:
        zinc = pd.read_parquet(args.zinc_test)["smiles"].tolist()
        zinc = [zinc[i] for i in np.random.default_rng(0).permutation(len(zinc))[: max(args.n_recon, 2000, args.n_nll)]]
        train_all = pd.read_parquet(args.zinc_train, columns=["smiles"])["smiles"].tolist()
        train = [train_all[i] for i in np.random.default_rng(1).permutation(len(train_all))[: args.n_nll]]
    results = [bench_model(p, zinc, moses, args.n_recon, args.n_prior, args.n_like, args.n_beam, skip, train)
               for p in args.model]
    print(json.dumps({"n_recon": args.n_recon, "n_prior": args.n_prior, "threads": args.threads, "models": results}, indent=1))


if __name__ == "__main__":
    main()
