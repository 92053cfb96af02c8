"""`moldesign optimize`: optimize molecules from one start (trajectory, best, grid) or from a file
of starts (a resumable batch), every decode checked with RDKit."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import RunFailure, UserError
from .common import (MAX_CHAINS, MAX_OPT_DECODES, MAX_OPT_STEPS, Device, DeviceOpt, ModelOpt, OutOpt, QuietOpt,
                     SeedOpt, UnconstrainedOpt, app, bounded, check_grid, check_out_path, cli_errors, design_errors,
                     designer, finite, info, write_table)

START_FILE_SUFFIXES = (".smi", ".csv", ".tsv", ".parquet", ".txt")


def _is_start_file(start: str) -> bool:
    """--start names a batch file when it has a table suffix (a SMILES never ends in .csv)."""
    p = Path(start)
    suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
    return suffix.lower().removesuffix(".gz") in START_FILE_SUFFIXES


@app.command()
def optimize(
    start: str = typer.Option(..., "--start", help="Seed molecule (SMILES or name), or a .smi/.csv/.tsv/.parquet file of starts (batch: one id per row)."),
    maximize: Optional[list[str]] = typer.Option(None, "--maximize", help="Column to maximize (mw logp hbd hba tpsa qed sa plogp plogp_raw similarity); repeatable. plogp: normalized penalized logP; plogp_raw: logP - SA."),
    minimize: Optional[list[str]] = typer.Option(None, "--minimize", help="Column to minimize; repeatable."),
    objective: Optional[str] = typer.Option(None, "--objective", help="Weighted sum of columns in natural units, e.g. '1.0*logp - 1.0*sa' or 'qed + 0.5*similarity'."),
    target: Optional[list[str]] = typer.Option(None, "--target", help="PROP=VALUE to approach, e.g. logp=3.0; repeatable."),
    method: str = typer.Option("cmaes", "--method", help="cmaes (CMA-ES in [z, c] with RDKit scoring; the default) or gradient (ascent on the latent surrogate; --baseline compares it with random directions)."),
    min_similarity: float = typer.Option(0.0, "--min-similarity", callback=finite(), help="Constraint: proposals keep Tanimoto similarity (Morgan r=2, 2048 bits) >= S to their start."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Cap on RDKit oracle calls per start (one per distinct valid decoded molecule)."),
    steps: int = typer.Option(30, "--steps", callback=bounded(1, MAX_OPT_STEPS), help=f"Gradient steps per chain (cmaes: generations; at most {MAX_OPT_STEPS:,}; steps x chains at most {MAX_OPT_DECODES:,})."),
    chains: int = typer.Option(8, "--chains", callback=bounded(1, MAX_CHAINS), help="Chains: one from the seed's own point, the rest from its neighbourhood (cmaes: population size)."),
    step_size: float = typer.Option(0.2, "--step-size", callback=finite(0, 100), help="Distance moved per step in [z, scaled condition] (normalized gradient)."),
    sigma: float = typer.Option(0.1, "--sigma", callback=finite(0, 100), help="Spread of z around the start (prior std units): cmaes's initial step per z coordinate, the gradient chains' starting noise."),
    condition_sigma: float = typer.Option(0.6, "--condition-sigma", callback=finite(0, 100), help="cmaes: initial step per condition coordinate (standardized units)."),
    prior_weight: float = typer.Option(0.1, "--prior-weight", callback=finite(0, 1e6), help="λ of the λ·log N(u;0,I) term that keeps z in high prior density and the condition near the training mean."),
    condition: str = typer.Option("optimize", "--condition", help="Decoder condition: optimize (moves with z), seed (held at the seed's properties; z moves alone) or only (z held at the seed's μ; the condition moves alone)."),
    samples: int = typer.Option(1, "--samples", help="Decodes per latent point: the greedy one plus SAMPLES-1 at --temperature (1..256); keeps proposals in the start's neighbourhood when μ decodes to another molecule."),
    temperature: float = typer.Option(1.0, "--temperature", callback=finite(), help="Temperature of the sampled decodes (0, 10]."),
    sigma_units: str = typer.Option("prior", "--sigma-units", help="Unit of --sigma and --step-size for z: prior (1 per coordinate) or posterior (the start's posterior σ per coordinate)."),
    fill_budget: bool = typer.Option(False, "--fill-budget", help="Restart from the best feasible point until --budget oracle calls are spent (stops early when a run finds nothing new)."),
    similarity_penalty: float = typer.Option(0.0, "--similarity-penalty", callback=finite(), help="cmaes: 0 ranks every molecule below --min-similarity under every feasible one (hard constraint); W > 0 scores it objective - W*(S - similarity) (a penalty)."),
    top: int = typer.Option(10, "--top", callback=bounded(None, 10_000), help="How many best distinct molecules to list/draw (batch: rows per start)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also run the random baseline (same decodes, same distances): single start, both summaries as JSON on stderr; batch, extra rows with method=random."),
    best: Optional[Path] = typer.Option(None, "--best", help="Single start: also write the best distinct molecules to this file."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Single start: draw the seed and best molecules to FILE.png or FILE.svg."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Batch: column with the start ids (default: start_id, id or name, else the row number)."),
    resume: bool = typer.Option(False, "--resume", help="Batch: continue an interrupted run from OUT.partial.csv, skipping starts already done."),
    unconstrained: bool = UnconstrainedOpt,
    seed: int = SeedOpt, device: Device = DeviceOpt, model: Optional[Path] = ModelOpt, out: Optional[Path] = OutOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Optimize molecules from a start (or a file of starts), every decode checked with RDKit.

    Objective values are in natural units (QED for --maximize qed). One start: writes the
    trajectory (chain, step, smiles, valid, RDKit values, plogp, plogp_raw, similarity, objective,
    improvement, feasible, oracle_call, pred_* from the surrogate, conditions, new, rank). A file:
    writes per start its best feasible proposals with start_id, start_smiles, similarity,
    objective, improvement, decodes, oracle_calls, seconds; a bad start (or one with no feasible
    proposal) is one row with valid=False and error. The gradient method needs a surrogate in the
    checkpoint (`moldesign surrogate fit`).
    When no decode of a single start is a new molecule (all the seed or invalid), the files are
    still written and the exit code is 1.
    """
    with cli_errors(), design_errors():
        check_out_path(out)
        check_out_path(best, "--best")
        check_grid(grid)
        if top < 1:
            raise UserError(f"--top must be at least 1, got {top}")
        if steps * chains > MAX_OPT_DECODES:
            raise UserError(f"--steps x --chains = {steps * chains:,} decodes; at most {MAX_OPT_DECODES:,} per run")
        settings = dict(steps=steps, chains=chains, step_size=step_size, prior_weight=prior_weight, top_k=top,
                        condition=condition, method=method, budget=budget, min_similarity=min_similarity,
                        sigma=sigma, condition_sigma=condition_sigma, constrained=not unconstrained,
                        samples=samples, temperature=temperature, sigma_units=sigma_units, fill_budget=fill_budget,
                        similarity_penalty=similarity_penalty)
        terms = dict(maximize=maximize or (), minimize=minimize or (), targets=target or (), objective=objective)
        from ..design.optimize import check_settings

        check_settings(**settings, baseline=baseline)  # every setting, before the model loads
        if _is_start_file(start):
            if best is not None or grid is not None:
                raise UserError("--best and --grid are for a single start; a batch writes the best rows to --out")
            _optimize_batch(Path(start), out, settings, terms, baseline, id_column, resume, seed, model, device, quiet)
            return
        if resume or id_column is not None:
            raise UserError("--resume and --id-column need --start FILE (a batch of starts)")
        _optimize_single(start, out, best, grid, settings, terms, baseline, seed, model, device, quiet)


def _optimize_single(start: str, out: Optional[Path], best: Optional[Path], grid: Optional[Path], settings: dict,
                     terms: dict, baseline: bool, seed: int, model: Optional[Path], device: Device,
                     quiet: bool) -> None:
    """One start: a summary and the five best on stderr, the trajectory to OUT (--best, --grid);
    no new molecule at all → the files are written, then exit 1."""
    d = designer(model, device)
    res = d.optimize(start, terms["maximize"], terms["minimize"], terms["targets"], seed=seed,
                     objective=terms["objective"], **settings)
    s = res.summary
    best_text = (f"{s['best_objective']} (improvement {s['improvement']})" if s["best_objective"] is not None
                 else "none (no new molecule)" if s["distinct"] == 0 else "none (no feasible molecule)")
    info(f"{s['objective']} ({s['method']}): {s['decodes']} decodes, {s['oracle_calls']} oracle calls, "
         f"{s['seconds']} s, validity {s['valid']:.3f}, {s['feasible']} feasible distinct; "
         f"start {s['seed_objective']}, best {best_text}", quiet)
    for r in res.best.head(5).to_dict("records"):
        pred = r.get("pred_objective")
        info(f"  #{r['rank']} {r['smiles']}  objective {r['objective']:.3f} similarity {r['similarity']:.2f}"
             + (f" (surrogate {pred:.3f})" if pred is not None and pred == pred else ""), quiet)  # NaN: no surrogate
    if baseline:
        base = d.baseline(res, seed=seed)
        typer.echo(json.dumps({"optimize": s, "baseline": base.summary}), err=True)
    if grid is not None:
        from ..api import optimize_grid

        info(f"grid of {optimize_grid(res, grid, res.start)} molecules -> {grid}", quiet)
    if best is not None:
        write_table(res.best, best)
    write_table(res.trajectory, out)
    if s["distinct"] == 0:  # the trajectory is written (as `screen` keeps all-invalid rows), then exit 1
        raise RunFailure(f"no new molecule in {s['decodes']} decodes (validity {s['valid']:.3f}; every valid "
                         "decode was the seed): try a larger --step-size or more --steps / --chains")


def _optimize_batch(path: Path, out: Optional[Path], settings: dict, terms: dict, baseline: bool,
                    id_column: Optional[str], resume: bool, seed: int, model: Optional[Path], device: Device,
                    quiet: bool) -> None:
    """One model load, every start in order. Rows of finished starts are appended to
    OUT.partial.csv as they finish (a name that does not look complete), so an interrupted batch
    resumes with --resume; the final table is written atomically to OUT, then the partial file
    is removed. A JSON summary goes to stderr."""
    import pandas as pd

    from ..api import read_starts
    from ..data import CSV_FLOAT_FORMAT

    if resume and out is None:
        raise UserError("--resume needs -o/--out (the partial results live beside it)")
    starts = read_starts(path, id_column)
    partial = out.with_name(out.name + ".partial.csv") if out is not None else None
    done: list = []
    if partial is not None and partial.exists():
        if not resume:
            raise UserError(f"{partial} exists from an interrupted run: pass --resume to continue it, or delete it")
        done.append(pd.read_csv(partial, dtype={"start_id": str, "start_input": str}, keep_default_na=False,
                                na_values=[""]))
    done_ids = set(done[0]["start_id"].astype(str)) if done else set()
    if resume:
        info(f"resuming: {len(done_ids)} of {len(starts)} starts already done", quiet)
    d = designer(model, device)
    parts = []
    for _sid, rows, _summary in d.optimize_batch(starts, done_ids, baseline=baseline, progress=not quiet,
                                               seed=seed, **terms, **settings):
        parts.append(rows)
        if partial is not None:  # one start's rows at a time, flushed: the resume point
            rows.to_csv(partial, mode="a", header=not partial.exists(), index=False, float_format=CSV_FLOAT_FORMAT)
    table = pd.concat(done + parts, ignore_index=True) if done + parts else pd.DataFrame()
    order = {k: i for i, k in enumerate(starts["start_id"])}
    table = table.sort_values("start_id", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    write_table(table, out)
    if partial is not None:
        partial.unlink(missing_ok=True)
    typer.echo(json.dumps({"optimize_batch": _batch_report(table, len(starts), len(done_ids), settings)}), err=True)


def _batch_report(table, n_starts: int, n_resumed: int, settings: dict) -> dict:
    """The batch's summary: over the first row of each start for the main method."""
    firsts = table.drop_duplicates(["start_id", "method"]) if len(table) else table
    main = firsts[firsts["method"] == settings["method"]] if len(firsts) else firsts
    ok = main["start_smiles"].notna() if len(main) else main
    improved = main["improvement"].fillna(0).clip(lower=0) if len(main) and "improvement" in main else None
    return {"starts": int(n_starts), "bad_starts": int((~ok).sum()) if len(main) else 0,
            "resumed": n_resumed, "method": settings["method"],
            "min_similarity": settings["min_similarity"], "budget": settings["budget"],
            "success": round(float((improved > 0).mean()), 4) if improved is not None and len(main) else None,
            "mean_improvement": round(float(improved.mean()), 4) if improved is not None and len(main) else None,
            "mean_decodes": round(float(main["decodes"].mean()), 1) if ok.any() else None,
            "mean_oracle_calls": round(float(main["oracle_calls"].mean()), 1) if ok.any() else None,
            "mean_seconds": round(float(main["seconds"].mean()), 2) if ok.any() else None}
