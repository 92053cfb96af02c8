"""Quality and speed of the design commands on one checkpoint; prints JSON on stdout.

    python bench/design_bench.py [--model models/moldesign-moses.pt] [--surrogate-data moses]

1. conditioning (Lim et al.): `generate --like tamiflu --logp X` for X in --logp-levels: MAE per
   property between RDKit values of the returned molecules and the condition (Tamiflu's five
   properties with LogP replaced); Spearman ρ between requested and achieved LogP over a sweep
   (--sweep, pooled over molecules) and the mean achieved LogP per level.
2. neighbourhood (Gómez-Bombarelli's aspirin figure): for aspirin and tamiflu and each radius,
   --raw-n raw decodes: validity, unique valid fraction, fraction that is the seed itself, mean
   Tanimoto to the seed over valid decodes and over valid decodes other than the seed.
3. optimization vs the random baseline: for each seed × objective, the optimizer's best and
   top-3 RDKit objective next to the baseline's (same decodes, same distances from the seed's
   point [μ, c] in the space the optimizer moves in, random directions; --baseline-repeats draws,
   averaged). A surrogate is fit first when the checkpoint
   has none (--surrogate-data, --surrogate-n), and its held-out R² is reported.
4. wall time of each command through the real CLI (subprocess: imports + model load included).
--parts runs a subset of 1-3 (e.g. --parts optimization --skip-cli).

Small check against a toy model:  --n 10 --raw-n 30 --radii 0,0.5,1 --opt-steps 5 --opt-chains 2
(the numbers of a toy model mean nothing; this only shows the script runs end to end).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from moldesign.api import DEFAULT_MODEL, Designer, load, surrogate_training_smiles
from moldesign.chem import PROPERTIES
from moldesign.design.optimize import DEFAULT_PRIOR_WEIGHT, DEFAULT_STEP_SIZE
from moldesign.config import DEFAULT_RADIUS
from moldesign.errors import NothingValid

REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def conditioning(d: Designer, seed: str, levels: list[float], sweep: list[float], n: int) -> dict:
    """MAE per property at each LogP level and Spearman(requested, achieved LogP) over the sweep."""
    base = d.molecule(seed).props
    out: dict = {"seed": seed, "n_per_level": n, "levels": {}}
    pairs = []
    for x in sorted(set(levels) | set(sweep)):
        t0 = time.time()
        try:
            # oversample 1: the first n molecules found, so the errors measure the conditioning,
            # not generate's selection of the candidates closest to the request
            df = d.generate(like=seed, n=n, logp=x, seed=0, oversample=1)
        except NothingValid:
            df = None
        cond = base.copy()
        cond[PROPERTIES.index("logp")] = x
        if df is not None:
            pairs += [(x, v) for v in df["logp"]]
        if x in levels:
            out["levels"][str(x)] = None if df is None else {
                "molecules": len(df), "validity": round(df.attrs["summary"]["valid"], 4),
                "mae": {k: round(float(np.abs(df[k] - cond[j]).mean()), 3) for j, k in enumerate(PROPERTIES)},
                "mean_achieved_logp": round(float(df["logp"].mean()), 3),
                "mean_similarity": round(float(df["similarity"].mean()), 3), "seconds": round(time.time() - t0, 2)}
    req, ach = np.array(pairs).T if pairs else (np.array([]), np.array([]))
    rho = spearmanr(req, ach).statistic if len(set(req)) > 1 else float("nan")
    out["sweep"] = {"levels": sweep, "molecules": len(pairs), "spearman_logp": round(float(rho), 4),
                    "mean_achieved_logp": {str(x): round(float(ach[req == x].mean()), 3) if (req == x).any() else None
                                           for x in sweep}}
    return out


def radius_curve(d: Designer, seed: str, radii: list[float], n: int) -> list[dict]:
    seed_smiles = d.molecule(seed).smiles
    rows = []
    for r in radii:
        raw = d.generate(like=seed, n=n, radius=r, raw=True, seed=0)
        valid = raw[raw["valid"]]
        other = valid[valid["canonical"] != seed_smiles]
        rows.append({"radius": r, "validity": round(float(raw["valid"].mean()), 4),
                     "unique_valid": round(valid["canonical"].nunique() / n, 4),
                     "seed_itself": round(float((valid["canonical"] == seed_smiles).sum() / n), 4),
                     "mean_similarity": round(float(valid["similarity"].mean()), 4) if len(valid) else None,
                     "mean_similarity_excluding_seed": round(float(other["similarity"].mean()), 4) if len(other) else None})
        log(f"radius {seed} {rows[-1]}")
    return rows


def hits(res, tolerance: float = 0.01) -> int:
    """Distinct new valid molecules with objective >= -tolerance: for one target, those within
    0.1 training std of it (LogP: about 0.1 units). The best single value saturates at 0 for a
    target, so this counts how many usable molecules a run found."""
    t = res.trajectory
    return int((t["new"] & (t["objective"] >= -tolerance)).sum())


def optimization(d: Designer, seeds: list[str], objectives: dict, steps: int, chains: int, repeats: int,
                 step_size: float, prior_weight: float, condition: str) -> dict:
    """Win = higher mean RDKit objective of the 3 best distinct molecules than the baseline's
    (averaged over repeats); the single best and, for targets, the hit counts are reported too."""
    runs = []
    for seed in seeds:
        for name, kw in objectives.items():
            t0 = time.time()
            res = d.optimize(seed, method="gradient", steps=steps, chains=chains, step_size=step_size, prior_weight=prior_weight,
                             seed=0, condition=condition, **kw)
            t_opt = time.time() - t0
            bases = [d.baseline(res, seed=1 + i) for i in range(repeats)]
            base = [b.summary for b in bases]
            b_best = [b["best_objective"] for b in base if b["best_objective"] is not None]
            b_top3 = [b["top3_mean_objective"] for b in base if b["top3_mean_objective"] is not None]
            s = res.summary
            row = {"seed": seed, "objective": name, "decodes": s["decodes"], "seed_objective": s["seed_objective"],
                   "optimizer": {k: s[k] for k in ("valid", "distinct", "best_objective", "top3_mean_objective",
                                                   "improved_on_seed", "best_smiles")},
                   "baseline": {"valid": round(float(np.mean([b["valid"] for b in base])), 4),
                                "distinct": round(float(np.mean([b["distinct"] for b in base])), 1),
                                "best_objective": round(float(np.mean(b_best)), 4) if b_best else None,
                                "top3_mean_objective": round(float(np.mean(b_top3)), 4) if b_top3 else None,
                                "repeats": repeats},
                   "seconds": round(t_opt, 2)}
            if "targets" in kw:
                row["optimizer"]["hits"] = hits(res)
                row["baseline"]["hits"] = round(float(np.mean([hits(b) for b in bases])), 1)
            ob, bb = s["top3_mean_objective"], row["baseline"]["top3_mean_objective"]
            row["optimizer_wins"] = bool(ob is not None and (bb is None or ob > bb))
            runs.append(row)
            log(f"optimize {seed} {name}: top-3 mean objective {ob} vs baseline {bb}")
    wins = sum(r["optimizer_wins"] for r in runs)
    best_wins = sum(bool(r["optimizer"]["best_objective"] is not None and (
        r["baseline"]["best_objective"] is None or r["optimizer"]["best_objective"] > r["baseline"]["best_objective"]))
        for r in runs)
    return {"steps": steps, "chains": chains, "step_size": step_size, "prior_weight": prior_weight,
            "condition": condition, "win_criterion": "top-3 mean RDKit objective", "runs": runs,
            "optimizer_wins": f"{wins}/{len(runs)}", "optimizer_wins_on_best": f"{best_wins}/{len(runs)}"}


def cli_times(model: Path, like: str, other: str, threads: int) -> dict:
    """Wall seconds of each design command run as a user would (fresh process, model load included)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or os.cpu_count() or 1)}
    cmds = {
        "generate": ["generate", "--like", like, "-n", "50", "--logp", "2.0", "-q"],
        "generate_prior": ["generate", "-n", "50", "-q"],
        "interpolate": ["interpolate", like, other, "--steps", "10", "-q"],
        "optimize": ["optimize", "--start", like, "--maximize", "qed", "-q"],
    }
    out = {}
    for name, args in cmds.items():
        t0 = time.time()
        r = subprocess.run([sys.executable, str(REPO / "cli.py"), *args, "--model", str(model)], env=env,
                           capture_output=True, text=True, cwd=REPO)
        out[name] = {"seconds": round(time.time() - t0, 2), "exit": r.returncode}
        if r.returncode:
            out[name]["error"] = r.stderr.strip().splitlines()[-1:]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--n", type=int, default=100, help="molecules per conditioning level")
    p.add_argument("--logp-levels", type=floats, default=[0.5, 1.5, 2.5])
    p.add_argument("--sweep", type=floats, default=[-0.5, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    p.add_argument("--raw-n", type=int, default=500, help="raw decodes per radius")
    p.add_argument("--radii", type=floats, default=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5])
    p.add_argument("--opt-seeds", default="aspirin,tamiflu,paracetamol,ibuprofen")
    p.add_argument("--opt-steps", type=int, default=30)
    p.add_argument("--opt-chains", type=int, default=8)
    p.add_argument("--opt-step-size", type=float, default=DEFAULT_STEP_SIZE)
    p.add_argument("--opt-prior-weight", type=float, default=DEFAULT_PRIOR_WEIGHT)
    p.add_argument("--opt-condition", default="optimize", choices=["optimize", "seed"])
    p.add_argument("--baseline-repeats", type=int, default=3)
    p.add_argument("--surrogate-data", default="moses", help="used only when the checkpoint has no surrogate")
    p.add_argument("--surrogate-n", type=int, default=20000)
    p.add_argument("--skip-cli", action="store_true", help="skip the subprocess timings")
    p.add_argument("--parts", default="conditioning,radius,optimization",
                   help="comma-separated subset of conditioning, radius, optimization to run")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")  # out-of-range / short-result warnings: the numbers say it
    t_all = time.time()
    d = load(a.model, a.device)
    report: dict = {"model": str(a.model), "device": str(next(d.bundle.model.parameters()).device),
                    "torch_threads": torch.get_num_threads(), "default_radius": DEFAULT_RADIUS}

    parts = set(a.parts.split(","))
    if "conditioning" in parts:
        log("conditioning ...")
        report["conditioning"] = conditioning(d, "tamiflu", a.logp_levels, a.sweep, a.n)
    if "radius" in parts:
        report["radius_curve"] = {s: radius_curve(d, s, a.radii, a.raw_n) for s in ("aspirin", "tamiflu")}

    model_for_cli = a.model
    with tempfile.TemporaryDirectory() as tmp:
        if d.bundle.surrogate is None:
            log("fitting a surrogate (the checkpoint has none) ...")
            smiles = surrogate_training_smiles(a.surrogate_data, a.surrogate_n)
            rep = d.fit_surrogate(smiles, workers=os.cpu_count() or 1, log=log)
            report["surrogate"] = {"fitted_here": True, "data": a.surrogate_data, **rep}
            model_for_cli = Path(tmp) / "with_surrogate.pt"
            d.save(model_for_cli)
        else:
            report["surrogate"] = {"fitted_here": False, **d.bundle.surrogate.metrics}
        objectives = {"maximize_qed": {"maximize": ["qed"]}, "target_logp_3": {"targets": {"logp": 3.0}}}
        if "optimization" in parts:
            report["optimization"] = optimization(d, a.opt_seeds.split(","), objectives, a.opt_steps, a.opt_chains,
                                                  a.baseline_repeats, a.opt_step_size, a.opt_prior_weight,
                                                  a.opt_condition)
        if not a.skip_cli:
            log("timing the CLI ...")
            report["cli_seconds"] = cli_times(model_for_cli, "tamiflu", "aspirin", a.threads)
    report["total_seconds"] = round(time.time() - t_all, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
