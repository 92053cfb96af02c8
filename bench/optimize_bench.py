"""Lead optimization on the field's two public tasks (JT-VAE, Jin et al. 2018); prints JSON on stdout.

    python bench/optimize_bench.py --plogp-starts ../shared/data/benchmarks/plogp_valid200.smi \
        [--zinc /work/main/data/zinc250k/train.parquet] [--n-plogp 200] [--n-qed 100] [--budget 2000] \
        [--model models/moldesign-zinc.pt] [--methods gradient,cmaes,random] [--fill-budget] \
        [--samples K --temperature T] [--sigma S --sigma-units prior|posterior] [--similarity-penalty W] \
        [--tasks plogp,qed] [--plogp-runs 0.4,0.6]

Search settings are optimize's (moldesign.design.optimize; --grad-sigma is the gradient chains' --sigma).
Penalized logP task (starts: `SMILES value` lines, value = logP − SA, JT-VAE's selection). Every
method runs once per --plogp-runs value per start (default twice: --min-similarity 0.4 and 0.6);
each δ is scored on the proposals of the tightest run whose constraint δ covers (δ 0 and 0.2 on
the 0.4 run's: they satisfy the looser constraints too; δ 0.6 on its own run), or, with no such
run, on the loosest run's proposals filtered at δ. Scored
against the start AS GIVEN in the file (the benchmark's convention); the model sees the
standardized start (largest fragment, uncharged, no stereo: the MOSES model has no charged
tokens), so `*_vs_standardized` repeats the JT-VAE bits score against that form, and
`standardization_alone` says how much the uncharging itself moves logP − SA.
- jtvae_count / jtvae_bits: JT-VAE's units and averaging: improvement in logP − SA of the best
  proposal with similarity ≥ δ (unhashed Morgan r=2 counts / 2048-bit Morgan r=2), a start
  without an improving proposal counts 0; mean ± sd over all starts and success rate.
- normalized: normalized penalized logP (chem.penalized_logp), 2048 bits, the method's best ≤ 20
  feasible proposals (its `best` table at top 20), best improvement clipped at 0.
QED task (starts: ZINC250k train molecules with 0.7 ≤ QED < 0.8, drawn with --seed): success =
a proposal with QED ≥ 0.9 and similarity ≥ 0.4 (2048 bits) to its start; runs with
--min-similarity 0.4 --maximize qed.
Methods: gradient (surrogate ascent), cmaes, random (the gradient run's distances in random
directions); the one-atom-edit floor (chem.one_atom_edits: O→S, N→C, n→c, C→Cl, no model) beside
them, scored by the same rules. Oracle calls, decodes and wall seconds are means per start per run.
Compute: 1 thread (torch and BLAS); keep --n-* small on a shared CPU and say so when reporting.
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
from rdkit import Chem, DataStructs

from moldesign.api import DEFAULT_MODEL, load
from moldesign.chem import (morgan_count_fp, morgan_fp, mol_from_smiles, one_atom_edits, penalized_logp, plogp_raw, qed, quiet_rdkit, standardize)
from moldesign.design.optimize import (DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, random_baseline)
from moldesign.errors import DesignInputError, DesignWarning

DELTAS = (0.0, 0.2, 0.4, 0.6)
RUNS = (0.4, 0.6)  # the constrained runs per start (--plogp-runs)


def run_for(delta: float, runs) -> float:
    """Which constrained run scores δ: the tightest run whose constraint δ still covers (its
    proposals satisfy δ's looser constraint too), else the loosest run (δ 0.6 from a 0.4-only run:
    its proposals filtered at 0.6)."""
    below = [r for r in runs if r <= delta]
    return max(below) if below else min(runs)


def mean_sd(x) -> str:
    x = np.asarray(x, np.float64)
    return f"{x.mean():.2f} ± {x.std():.2f}" if len(x) else "n/a"


def plogp_scores(start: Chem.Mol, proposals: list[str], normalized_pool: list[str]) -> dict:
    """Per δ: JT-VAE improvements (count and bits similarity) and the normalized one, for one start."""
    s_raw, s_norm = plogp_raw(start), penalized_logp(start)
    fc, fb = morgan_count_fp(start), morgan_fp(start)
    out = {}
    mols = [m for m in (Chem.MolFromSmiles(p) for p in proposals) if m is not None]
    raw = np.array([plogp_raw(m) for m in mols]) - s_raw
    sim_c = np.array([DataStructs.TanimotoSimilarity(fc, morgan_count_fp(m)) for m in mols])
    sim_b = np.array([DataStructs.TanimotoSimilarity(fb, morgan_fp(m)) for m in mols])
    pool = [m for m in (Chem.MolFromSmiles(p) for p in normalized_pool) if m is not None]
    norm = np.array([penalized_logp(m) for m in pool]) - s_norm
    sim_p = np.array([DataStructs.TanimotoSimilarity(fb, morgan_fp(m)) for m in pool])
    for d in DELTAS:
        def best(values, sims):
            ok = sims >= d
            return float(max(0.0, values[ok].max())) if ok.any() else 0.0
        out[d] = {"count": best(raw, sim_c), "bits": best(raw, sim_b), "normalized": best(norm, sim_p)}
    return out


def summarize_plogp(per_start: list[dict]) -> dict:
    res = {}
    for d in DELTAS:
        row = {}
        for conv in ("count", "bits", "normalized"):
            x = np.array([p[d][conv] for p in per_start])
            row[conv] = {"mean_sd": mean_sd(x), "mean": round(float(x.mean()), 3) if len(x) else None,
                         "success": round(float((x > 0).mean()), 3) if len(x) else None}
        res[f"delta_{d}"] = row
    return res


def run_method(d, method: str, smiles: str, maximize: str, delta: float, args, grad_cache: dict):
    """(result, seconds) of one method on one standardized start at min-similarity δ."""
    t0 = time.time()
    kw = dict(maximize=[maximize], min_similarity=delta, budget=args.budget, steps=args.steps, chains=args.chains,
              seed=args.seed, condition=args.condition, top_k=20, samples=args.samples,
              temperature=args.temperature, sigma_units=args.sigma_units, fill_budget=args.fill_budget)
    if method == "gradient":
        res = d.optimize(smiles, method="gradient", step_size=args.step_size, sigma=args.grad_sigma, **kw)
        grad_cache[(smiles, maximize, delta)] = res
    elif method == "cmaes":
        res = d.optimize(smiles, method="cmaes", sigma=args.sigma, condition_sigma=args.condition_sigma,
                         similarity_penalty=args.similarity_penalty, **kw)
    else:  # random directions at the gradient run's distances
        g = grad_cache.get((smiles, maximize, delta)) or d.optimize(smiles, method="gradient",
                                                                    step_size=args.step_size, sigma=args.grad_sigma,
                                                                    **kw)
        res = random_baseline(d.bundle, g.start, g.objective, g.trajectory["distance"].to_numpy(),
                              np.random.default_rng(args.seed + 1), 20, args.condition, args.budget, delta)
    return res, time.time() - t0


def spent(results: list) -> dict:
    if not results:
        return {}
    return {"decodes": round(float(np.mean([r.summary["decodes"] for r in results])), 1),
            "oracle_calls": round(float(np.mean([r.summary["oracle_calls"] for r in results])), 1),
            "seconds": round(float(np.mean([r.summary["seconds"] for r in results])), 2)}


def plogp_task(d, args) -> dict:
    lines = [l.split() for l in Path(args.plogp_starts).read_text().splitlines() if l.strip()]
    lines = lines[: args.n_plogp]
    scores = {m: [] for m in args.methods}
    scores["one_atom_edit"] = []
    scores_std = {m: [] for m in args.methods}
    runs = {m: [] for m in args.methods}
    unencodable, stand_alone, file_check = 0, [], []
    t0 = time.time()
    for i, parts in enumerate(lines):
        given = mol_from_smiles(parts[0])
        if len(parts) > 1:
            file_check.append(abs(plogp_raw(given) - float(parts[1])))
        edits = one_atom_edits(given)
        scores["one_atom_edit"].append(plogp_scores(given, edits, edits))
        std_smiles = standardize(parts[0])
        std_mol = mol_from_smiles(std_smiles)
        stand_alone.append(plogp_raw(std_mol) - plogp_raw(given))
        try:
            d.molecule(std_smiles)
        except DesignInputError:
            unencodable += 1
            for m in args.methods:  # no proposal: 0 in every convention
                scores[m].append(plogp_scores(given, [], []))
                scores_std[m].append(plogp_scores(std_mol, [], []))
            continue
        grad_cache: dict = {}
        for m in args.methods:
            props, pools = {}, {}
            for run_d in args.plogp_runs:
                res, _ = run_method(d, m, std_smiles, "plogp", run_d, args, grad_cache)
                runs[m].append(res)
                tr = res.trajectory
                props[run_d] = tr.loc[tr["valid"] & tr["new"], "smiles"].tolist()
                pools[run_d] = res.best["smiles"].tolist()  # ≤ 20 best feasible by the optimized objective
            rd = {dd: run_for(dd, args.plogp_runs) for dd in DELTAS}
            per = {dd: plogp_scores(given, props[rd[dd]], pools[rd[dd]])[dd] for dd in DELTAS}
            scores[m].append(per)
            scores_std[m].append({dd: plogp_scores(std_mol, props[rd[dd]], pools[rd[dd]])[dd]
                                  for dd in DELTAS})
        print(f"plogp {i + 1}/{len(lines)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    out = {"starts": len(lines), "unencodable_after_standardization": unencodable,
           "file_value_max_abs_diff": round(float(max(file_check)), 4) if file_check else None,
           "standardization_alone": mean_sd(stand_alone),
           "one_atom_edit": summarize_plogp(scores["one_atom_edit"])}
    for m in args.methods:
        out[m] = {**summarize_plogp(scores[m]), "per_run": spent(runs[m]),
                  "jtvae_bits_vs_standardized": {f"delta_{dd}": mean_sd([p[dd]["bits"] for p in scores_std[m]])
                                                 for dd in DELTAS}}
    return out


def qed_starts(path: str, n: int, seed: int) -> list[str]:
    df = pd.read_parquet(path, columns=["smiles"]).sample(frac=1.0, random_state=seed)
    out = []
    with quiet_rdkit():
        for s in df["smiles"]:
            m = Chem.MolFromSmiles(s)
            if m is not None and 0.7 <= qed(m) < 0.8:
                out.append(s)
                if len(out) == n:
                    break
    return out


def qed_task(d, args) -> dict:
    starts = qed_starts(args.zinc, args.n_qed, args.seed)
    succ = {m: [] for m in args.methods}
    succ["one_atom_edit"] = []
    runs = {m: [] for m in args.methods}
    unencodable = 0
    t0 = time.time()
    for i, s in enumerate(starts):
        mol = mol_from_smiles(s)
        fb = morgan_fp(mol)

        def success(smiles: list[str]) -> bool:
            for p in smiles:
                m = Chem.MolFromSmiles(p)
                if m is not None and qed(m) >= 0.9 and DataStructs.TanimotoSimilarity(fb, morgan_fp(m)) >= 0.4:
                    return True
            return False

        succ["one_atom_edit"].append(success(one_atom_edits(mol)))
        try:
            d.molecule(s)
        except DesignInputError:
            unencodable += 1
            for m in args.methods:
                succ[m].append(False)
            continue
        grad_cache: dict = {}
        for m in args.methods:
            res, _ = run_method(d, m, s, "qed", 0.4, args, grad_cache)
            runs[m].append(res)
            tr = res.trajectory
            succ[m].append(success(tr.loc[tr["valid"] & tr["new"], "smiles"].tolist()))
        print(f"qed {i + 1}/{len(starts)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    out = {"starts": len(starts), "unencodable": unencodable,
           "one_atom_edit": {"success": round(float(np.mean(succ["one_atom_edit"])), 3)}}
    for m in args.methods:
        out[m] = {"success": round(float(np.mean(succ[m])), 3) if succ[m] else None, "per_run": spent(runs[m])}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--plogp-starts", default=None, help="JT-VAE plogP starts file (`SMILES value` lines)")
    p.add_argument("--zinc", default=os.path.join(os.environ.get("MOLDESIGN_ZINC", "data/zinc250k"), "train.parquet"),
                   help="ZINC250k train parquet for the QED starts")
    p.add_argument("--n-plogp", type=int, default=200)
    p.add_argument("--n-qed", type=int, default=100)
    p.add_argument("--methods", default="gradient,cmaes,random")
    p.add_argument("--budget", type=int, default=2000, help="oracle calls per start and run")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--chains", type=int, default=DEFAULT_CHAINS)
    p.add_argument("--step-size", type=float, default=DEFAULT_STEP_SIZE)
    p.add_argument("--sigma", type=float, default=DEFAULT_SIGMA)
    p.add_argument("--grad-sigma", type=float, default=DEFAULT_SIGMA, help="gradient chains' starting noise")
    p.add_argument("--condition-sigma", type=float, default=DEFAULT_CONDITION_SIGMA)
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="decodes per latent point")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    p.add_argument("--sigma-units", default=DEFAULT_SIGMA_UNITS)
    p.add_argument("--fill-budget", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--similarity-penalty", type=float, default=0.0)
    p.add_argument("--condition", default="optimize")
    p.add_argument("--tasks", default="plogp,qed")
    p.add_argument("--plogp-runs", default="0.4,0.6", help="min-similarity of the constrained runs per start")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    args.plogp_runs = sorted(float(x) for x in args.plogp_runs.split(",") if x)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", DesignWarning)  # MW clipping of starts below the MOSES range: expected here
    d = load(args.model, device="cpu")
    t0 = time.time()
    report = {"model": args.model, "budget": args.budget, "steps": args.steps, "chains": args.chains,
              "step_size": args.step_size, "sigma": args.sigma, "grad_sigma": args.grad_sigma,
              "condition_sigma": args.condition_sigma, "samples": args.samples, "temperature": args.temperature,
              "sigma_units": args.sigma_units, "fill_budget": args.fill_budget,
              "similarity_penalty": args.similarity_penalty, "condition": args.condition, "seed": args.seed,
              "threads": args.threads, "plogp_runs": args.plogp_runs, "n_plogp": args.n_plogp, "n_qed": args.n_qed}
    tasks = args.tasks.split(",")
    if "plogp" in tasks:
        if not args.plogp_starts:
            p.error("--plogp-starts FILE is required for the plogp task")
        report["plogp"] = plogp_task(d, args)
    if "qed" in tasks:
        report["qed"] = qed_task(d, args)
    report["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
