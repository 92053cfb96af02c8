"""A batch of starts optimized together vs one start at a time (issue 28); prints JSON on stdout.

    python bench/batch_optimize_bench.py --task qed --n 20 --budget 500 [--modes loop,batch]
    python bench/batch_optimize_bench.py --task plogp --plogp-starts ../shared/data/benchmarks/plogp_valid200.smi \
        --n 20 --budget 500
    python bench/batch_optimize_bench.py --task qed --n 100 --budget 2000 --modes batch

Both modes run CMA-ES with `--fill-budget` (the README's lead-optimization command: population 8,
30 generations per run, restarts at the best feasible point until the budget of oracle calls is
spent) at --min-similarity (default 0.4) from the same starts with the same seed:
- loop: `Designer.optimize` once per start, one after the other (what `optimize --start FILE` did
  before issue 28: 8 rows per decode call). It uses nothing newer than `Designer.optimize`, so
  `PYTHONPATH=<a checkout of the old code> python bench/batch_optimize_bench.py --modes loop` times
  the old code itself on the same starts (compare `trajectory_sha256` between the two runs).
- batch: `design.optimize.optimize_many`, every start searched at once: their points share one
  decoder stream (design/optimize/batch.py), with the time split into decode, oracle (RDKit) and
  search (CMA-ES ask/tell, trajectory rows), decoder steps and rows decoded over them.
Per mode: wall seconds, seconds per start, decodes, decodes/s, oracle calls (and per second), the
task's success, and per start a SHA-256 of its trajectory (`identical_to_loop` when both ran).
Starts: QED task, ZINC250k **test** molecules with 0.7 ≤ QED < 0.8 drawn with --seed
(optimize_bench.qed_starts); success = a proposal with QED ≥ 0.9 and similarity ≥ 0.4. plogP task,
the first --n lines of JT-VAE's validation starts (`SMILES value`), standardized as the CLI does,
objective `--maximize plogp`; reported: mean improvement of logP − SA (JT-VAE's units, 2048-bit
similarity ≥ --min-similarity, against the standardized start; 0 without one) and success (> 0).
Compute: torch with --threads (default 1); keep the machine otherwise quiet and say its load.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # optimize_bench: the QED starts

from moldesign.api import DEFAULT_MODEL, load  # noqa: E402
from moldesign.chem import standardize  # noqa: E402
from moldesign.errors import DesignInputError, DesignWarning  # noqa: E402


def starts_for(args) -> list[str]:
    """The task's starts as the model sees them (standardized), unencodable ones dropped later."""
    if args.task == "qed":
        from optimize_bench import qed_starts

        return qed_starts(args.zinc, args.n, args.seed)
    lines = [l.split()[0] for l in Path(args.plogp_starts).read_text().splitlines() if l.strip()]
    return [standardize(s) for s in lines[: args.n]]


def settings(args) -> dict:
    return dict(maximize=[args.maximize or args.task], min_similarity=args.min_similarity, budget=args.budget, fill_budget=True,
                steps=args.steps, chains=args.chains, method="cmaes", **overrides(args.set))


def overrides(pairs: list[str]) -> dict:
    """--set KEY=VALUE (repeatable): any other optimize setting, VALUE read as JSON where it parses
    (--set constrained=false --set sigma=0.2 --set sigma_units=posterior)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def success(res, task: str, delta: float) -> float:
    """QED: 1 when a new valid molecule has QED ≥ 0.9 and similarity ≥ 0.4; plogP: the best
    improvement of logP − SA over the start among new valid molecules with similarity ≥ δ (0 if none)."""
    t = res.trajectory
    new = t[t["valid"] & t["new"]]
    if task == "qed":
        return float(((new["qed"] >= 0.9) & (new["similarity"] >= 0.4)).any())
    ok = new[new["similarity"] >= delta]
    j0 = float(res.trajectory.attrs.get("start_plogp_raw", np.nan))  # set by main: the start's logP − SA
    return max(0.0, float(ok["plogp_raw"].max() - j0)) if len(ok) else 0.0


def _feasible_new(res, delta: float):
    """The trajectory rows of new valid molecules with similarity ≥ δ."""
    t = res.trajectory
    return t[t["valid"] & t["new"] & (t["similarity"] >= delta)]


def best_feasible_qed(res, delta: float) -> float:
    """The highest QED among new valid molecules with similarity ≥ δ (how near a failed start came)."""
    ok = _feasible_new(res, delta)
    return float(ok["qed"].max()) if len(ok) else 0.0


def best_feasible_smiles(res, delta: float) -> str | None:
    """The new valid molecule with the highest QED at similarity ≥ δ (None when there is none)."""
    ok = _feasible_new(res, delta)
    return str(ok.loc[ok["qed"].idxmax(), "smiles"]) if len(ok) else None


def first_success(res, delta: float) -> list:
    """QED task: [decodes, oracle calls] spent when the first success was decoded, or None (none)."""
    t = res.trajectory
    hit = (t["valid"] & t["new"] & (t["qed"] >= 0.9) & (t["similarity"] >= delta)).to_numpy()
    if not hit.any():
        return None
    i = int(hit.argmax())
    return [i + 1, int(t["oracle_call"].to_numpy()[: i + 1].sum())]


def start_plogp_raw(d, smiles: str) -> float:
    from moldesign.chem import mol_from_smiles, plogp_raw

    return plogp_raw(mol_from_smiles(d.molecule(smiles).smiles))


def digest(res) -> str:
    return hashlib.sha256(res.trajectory.to_csv(index=False, float_format="%.17g").encode()).hexdigest()[:16]


def report(mode: str, results: dict, wall: float, args, extra: dict | None = None) -> dict:
    res = [r for r in results.values() if not isinstance(r, Exception)]
    decodes = sum(r.summary["decodes"] for r in res)
    calls = sum(r.summary["oracle_calls"] for r in res)
    scores = [success(r, args.task, args.min_similarity) for r in res]
    out = {"mode": mode, "starts": len(results), "searched": len(res), "wall_s": round(wall, 1),
           "per_start_s": round(wall / max(1, len(results)), 2), "decodes": decodes,
           "decodes_per_s": round(decodes / wall, 1), "oracle_calls": calls, "calls_per_s": round(calls / wall, 1),
           "mean_decodes_per_start": round(decodes / max(1, len(res)), 1)}
    if args.task == "qed":
        out["success"] = round(float(np.mean(scores)), 3) if scores else None
        out["best_qed_at_delta"] = [round(best_feasible_qed(r, args.min_similarity), 3) for r in res]
        out["first_success"] = [first_success(r, args.min_similarity) for r in res]  # [decodes, calls] or None
        out["best_smiles"] = [best_feasible_smiles(r, args.min_similarity) for r in res]
    else:
        out["plogp_raw_improvement"] = f"{np.mean(scores):.2f} ± {np.std(scores):.2f}" if scores else None
        out["success"] = round(float(np.mean([s > 0 for s in scores])), 3) if scores else None
        out["improvements"] = [round(float(s), 3) for s in scores]  # per start (logP − SA), 0 = none feasible
    out["decodes_calls"] = [[r.summary["decodes"], r.summary["oracle_calls"]] for r in res]  # per start
    out["trajectory_sha256"] = {str(k): digest(r) for k, r in results.items() if not isinstance(r, Exception)}
    return {**out, **(extra or {})}


def run_loop(d, starts: list[str], args) -> tuple[dict, float]:
    results, t0 = {}, time.time()
    for i, s in enumerate(starts):
        try:
            results[i] = d.optimize(s, seed=args.seed, **settings(args))
        except DesignInputError as e:
            results[i] = e
        print(f"loop {i + 1}/{len(starts)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return results, time.time() - t0


def run_batch(d, starts: list[str], args) -> tuple[dict, float, dict]:
    from moldesign.design.optimize import BatchStats, Objective, optimize_many

    kw = settings(args)
    objective = Objective.parse(maximize=kw.pop("maximize"))
    stats, results, t0 = BatchStats(), {}, time.time()
    seeds = []
    for i, s in enumerate(starts):
        try:
            seeds.append((i, d.molecule(s)))
        except DesignInputError as e:
            results[i] = e
    calls: dict = {}  # start → oracle calls so far

    def on_round(told) -> None:  # after decoder steps that told starts; a line a minute
        nonlocal last
        calls.update((k, s.oracle.calls) for k, s in told)
        if time.time() - last > 60:
            last = time.time()
            print(f"batch: {sum(calls.values())} oracle calls, {stats.rounds} generations, decoder batch "
                  f"{stats.row_steps / max(1, stats.steps):.0f} rows on average, {time.time() - t0:.0f}s",
                  file=sys.stderr, flush=True)

    last = time.time()
    guides = None
    if args.guides:
        from moldesign.design.optimize import Guides

        guides = Guides.of(l.split()[0] for l in Path(args.guides).read_text().splitlines() if l.strip())
    for i, res in optimize_many(d.bundle, seeds, objective, seed=args.seed, workers=args.workers, stats=stats,
                                on_round=on_round, guides=guides, **kw):
        results[i] = res
        print(f"batch {len(results)}/{len(starts)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return dict(sorted(results.items())), time.time() - t0, stats.as_dict()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--task", choices=("qed", "plogp"), default="qed")
    p.add_argument("--zinc", default=os.path.join(os.environ.get("MOLDESIGN_ZINC", "data/zinc250k"), "test.parquet"))
    p.add_argument("--plogp-starts", default=None, help="JT-VAE plogP starts (`SMILES value` lines)")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--budget", type=int, default=500)
    p.add_argument("--min-similarity", type=float, default=0.4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--modes", default="loop,batch")
    p.add_argument("--workers", type=int, default=1, help="batch: RDKit scoring processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--guides", default=None, help="batch: a .smi of guide molecules (optimize --guide)")
    p.add_argument("--maximize", default=None,
                   help="the objective searched (default: the task's own, qed or plogp); the task's score is reported")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="another optimize setting (repeatable), e.g. --set constrained=false")
    args = p.parse_args(argv)
    if args.task == "plogp" and not args.plogp_starts:
        p.error("--plogp-starts FILE is required for the plogp task")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", DesignWarning)
    d = load(args.model, device="cpu")
    starts = starts_for(args)
    import cma  # noqa: F401  (warm-up outside the timings: imports, grammar tables, first decode)

    d.optimize(starts[0], maximize=[args.task], steps=1, chains=2)
    import moldesign

    out = {"moldesign": str(Path(moldesign.__file__).parent), "model": args.model, "task": args.task, "n": len(starts), "budget": args.budget,
           "min_similarity": args.min_similarity, "seed": args.seed, "threads": args.threads,
           "settings": {k: v for k, v in settings(args).items() if k != "maximize"}, "guides": args.guides,
           "load_avg_before": [round(x, 2) for x in os.getloadavg()], "modes": []}
    done = {}
    for mode in [m for m in args.modes.split(",") if m]:
        if mode == "loop":
            results, wall = run_loop(d, starts, args)
            extra = None
        else:
            results, wall, extra = run_batch(d, starts, args)
            extra = {"time_split_s": extra}
        if args.task == "plogp":
            for i, r in results.items():
                if not isinstance(r, Exception):
                    r.trajectory.attrs["start_plogp_raw"] = start_plogp_raw(d, starts[i])
        done[mode] = results
        out["modes"].append(report(mode, results, wall, args, extra))
    if "loop" in done and "batch" in done:
        a, b = out["modes"][0]["trajectory_sha256"], out["modes"][1]["trajectory_sha256"]
        out["identical_to_loop"] = f"{sum(a.get(k) == v for k, v in b.items())}/{len(b)} starts"
        walls = {m["mode"]: m["wall_s"] for m in out["modes"]}
        out["speedup"] = round(walls["loop"] / walls["batch"], 2)
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
