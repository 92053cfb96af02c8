"""`moldesign optimize`: optimize molecules from one start (trajectory, best, grid) or from a file
of starts (a resumable batch), every decode checked with RDKit."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import RunFailure, UserError
from .common import (MAX_CHAINS, MAX_OPT_DECODES, MAX_OPT_STEPS, MAX_WORKERS, Device, DeviceOpt, ModelOpt, OutOpt,
                     QuietOpt, SeedOpt, UnconstrainedOpt, app, bounded, check_grid, check_out_path, check_plot,
                     cli_errors, design_errors, designer, finite, info, write_table)

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
    prescreen: int = typer.Option(1, "--prescreen", help="cmaes: sample K x --chains candidates per generation and decode only the --chains the latent surrogate predicts best (1: decode every candidate)."),
    stop_at: Optional[float] = typer.Option(None, "--stop-at", callback=finite(), help="End a start's search at the first step with a feasible new molecule whose objective reaches this value (e.g. 0.9 with --maximize qed); its rows up to there are those of the full search."),
    guide: Optional[Path] = typer.Option(None, "--guide", help="File of molecules that already have what you want (.smi/.csv/...; cmaes): each start's search first walks towards its 3 most similar ones, and each restart towards the 3 nearest its best molecule; a guide itself is never proposed."),
    top: int = typer.Option(10, "--top", callback=bounded(None, 10_000), help="How many best distinct molecules to list/draw (batch: rows per start)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also run the random baseline (same decodes, same distances): single start, both summaries as JSON on stderr; batch, extra rows with method=random."),
    best: Optional[Path] = typer.Option(None, "--best", help="Single start: also write the best distinct molecules to this file."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Single start: draw the seed and best molecules to FILE.png or FILE.svg."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Plot to FILE.png or FILE.svg: one start, the objective per step and best so far with the best molecule's properties; a batch, each start's best-so-far improvement against oracle calls with the median and quartiles."),
    workers: int = typer.Option(1, "--workers", callback=bounded(1, MAX_WORKERS), help="Batch: processes computing RDKit's scores (default 1: in this process). With 2 or more, the workers score finished starts' molecules while the model decodes the others' (same results). With --engine dask, the LocalCluster's processes."),
    engine: str = typer.Option("local", "--engine", help="Batch: local (this process) or dask (chunks of starts on a Dask cluster; the same rows)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="With --engine dask: address of a running dask-scheduler (tcp://host:8786); default: a LocalCluster of --workers processes."),
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
    proposal) is one row with valid=False and error. The starts of a file are searched together
    (their points share one decoder stream), with a progress line (starts
    done / total, ETA) on stderr; each start's rows are the ones it gets alone. With -o, finished
    starts are kept in OUT.partial.csv (and its manifest OUT.partial.json) until the end: after an
    interruption, the same command with --resume runs only the starts not finished. The gradient
    method needs a surrogate in the checkpoint (`moldesign surrogate fit`).
    When no decode of a single start is a new molecule (all the seed or invalid), the files are
    still written and the exit code is 1.
    """
    with cli_errors(), design_errors():
        check_out_path(out)
        check_out_path(best, "--best")
        check_grid(grid)
        check_plot(plot)
        if top < 1:
            raise UserError(f"--top must be at least 1, got {top}")
        if steps * chains > MAX_OPT_DECODES:
            raise UserError(f"--steps x --chains = {steps * chains:,} decodes; at most {MAX_OPT_DECODES:,} per run")
        settings = dict(steps=steps, chains=chains, step_size=step_size, prior_weight=prior_weight, top_k=top,
                        condition=condition, method=method, budget=budget, min_similarity=min_similarity,
                        sigma=sigma, condition_sigma=condition_sigma, constrained=not unconstrained,
                        samples=samples, temperature=temperature, sigma_units=sigma_units, fill_budget=fill_budget,
                        similarity_penalty=similarity_penalty, stop_at=stop_at, prescreen=prescreen)
        from ..design.optimize import check_settings

        check_settings(**settings, baseline=baseline, guided=guide is not None)  # every setting, before the model loads
        terms = dict(maximize=maximize or (), minimize=minimize or (), targets=target or (), objective=objective,
                     guides=_guides(guide))
        if engine not in ("local", "dask") or (scheduler is not None and engine != "dask"):
            raise UserError(f"--engine must be local or dask, got {engine!r}" if engine not in ("local", "dask")
                            else "--scheduler needs --engine dask")
        if _is_start_file(start):
            if best is not None or grid is not None:
                raise UserError("--best and --grid are for a single start; a batch writes the best rows to --out")
            run = dict(baseline=baseline, id_column=id_column, resume=resume, seed=seed, plot=plot, workers=workers,
                       engine=engine, scheduler=scheduler)
            _optimize_batch(Path(start), out, settings, terms, run, model, device, quiet)
            return
        if resume or id_column is not None or workers != 1 or engine != "local":
            raise UserError("--resume, --id-column, --workers and --engine need --start FILE (a batch of starts)")
        _optimize_single(start, out, best, grid, plot, settings, terms, baseline, seed, model, device, quiet)


def _optimize_single(start: str, out: Optional[Path], best: Optional[Path], grid: Optional[Path],
                     plot: Optional[Path], settings: dict, terms: dict, baseline: bool, seed: int,
                     model: Optional[Path], device: Device, quiet: bool) -> None:
    """One start: a summary and the five best on stderr, the trajectory to OUT (--best, --grid);
    no new molecule at all → the files are written, then exit 1."""
    d = designer(model, device)
    res = d.optimize(start, terms["maximize"], terms["minimize"], terms["targets"], seed=seed,
                     objective=terms["objective"], guides=terms["guides"], **settings)
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
    if plot is not None:
        from ..design.optimize import best_so_far
        from ..drawing import optimize_plot

        optimize_plot(best_so_far(res.trajectory), plot, s["seed_objective"],
                      f"{s['objective']} from {res.start.label}")
        info(f"plot -> {plot}", quiet)
    if best is not None:
        write_table(res.best, best)
    write_table(res.trajectory, out)
    if s["distinct"] == 0:  # the trajectory is written (as `screen` keeps all-invalid rows), then exit 1
        raise RunFailure(f"no new molecule in {s['decodes']} decodes (validity {s['valid']:.3f}; every valid "
                         "decode was the seed): try a larger --step-size or more --steps / --chains")


def _optimize_batch(path: Path, out: Optional[Path], settings: dict, terms: dict, run: dict,
                    model: Optional[Path], device: Device, quiet: bool) -> None:
    """One model load, every start searched together. Finished starts are appended to
    OUT.partial.csv as they finish, vouched for by OUT.partial.json (design.optimize.partial), so an
    interrupted batch resumes with --resume; the final table is written atomically to OUT, then
    both partial files are removed. A JSON summary goes to stderr."""
    from ..api import read_starts
    from ..design.leads import batch_table

    if run["resume"] and out is None:
        raise UserError("--resume needs -o/--out (the partial results live beside it)")
    starts = read_starts(path, run["id_column"])
    d = designer(model, device)
    store, done = _partial_store(path, out, settings, terms, run, model, device, len(starts), quiet)
    resumed = len(store.entries) if store is not None else 0
    parts, curves = [], store.curves() if store is not None else {}
    try:
        for sid, rows, summary in _results(d, model, device, starts, store.done_ids() if store else set(), terms,
                                           settings, run, quiet):
            curve = _curve(summary)
            parts.append(rows)
            curves[sid] = curve
            if store is not None:  # one start's rows at a time, fsynced, then vouched for: the resume point
                store.append(sid, rows, curve)
    except KeyboardInterrupt as e:
        if store is None:
            raise
        raise type(e)(f"optimize stopped with {len(store.entries)} of {len(starts)} starts finished (kept in "
                      f"{store.csv}); run the same command with --resume to continue") from None
    except Exception:
        if store is not None and not store.entries:  # nothing finished to keep: no partial file to trip over
            store.remove()
        raise
    table = batch_table(done + parts, starts["start_id"].tolist())
    write_table(table, out)
    if run["plot"] is not None:
        from ..drawing import optimize_batch_plot

        optimize_batch_plot({k: v for k, v in curves.items() if v}, run["plot"],
                            f"{len(starts)} starts, {settings['method']}, {_describe(terms)}")
        info(f"plot -> {run['plot']}", quiet)
    if store is not None:
        store.remove()
    typer.echo(json.dumps({"optimize_batch": _batch_report(table, len(starts), resumed, settings)}), err=True)


def _results(d, model: Optional[Path], device: Device, starts, done: set, terms: dict, settings: dict, run: dict,
             quiet: bool):
    """(start_id, rows, summary) of every start not done, as each finishes: this process, or Dask."""
    if run["engine"] == "local":
        return d.optimize_batch(starts, done, ordered=False, baseline=run["baseline"], progress=not quiet,
                                seed=run["seed"], workers=run["workers"], **terms, **settings)
    from ..design.optimize import Objective, Settings
    from ..design.optimize.dask_engine import optimize_batch_dask
    from ..resources import DEFAULT_MODEL

    path = str(Path(model or DEFAULT_MODEL).resolve())
    obj = Objective.parse(terms["maximize"], terms["minimize"], terms["targets"], terms["objective"])
    Settings(**settings).check(d.bundle, obj, path)  # here, before any task: one line, not a worker's traceback
    return optimize_batch_dask(path, device.value, starts, done, terms, settings, run["seed"], run["baseline"],
                               run["scheduler"], run["workers"], progress=not quiet)


def _partial_store(path: Path, out: Optional[Path], settings: dict, terms: dict, run: dict, model: Optional[Path],
                   device: Device, n_starts: int, quiet: bool):
    """(the partial-results store of OUT, or None on stdout; the rows of starts already done)."""
    from ..design.leads import BATCH_COLUMNS
    from ..design.optimize.partial import PartialResults

    if out is None:
        return None, []
    store = PartialResults(out, _fingerprint(path, settings, terms, run, model, device), BATCH_COLUMNS)
    if store.exists() and not run["resume"]:
        raise UserError(f"{store.csv} exists from an interrupted run: pass --resume to continue it, or delete it "
                        f"and {store.manifest.name}")
    if not store.exists():
        store.begin()
        if run["resume"]:
            info(f"resuming: nothing to resume beside {out}; 0 of {n_starts} starts already done", quiet)
        return store, []
    table, dropped = store.load()
    info(f"resuming: {len(store.entries)} of {n_starts} starts already done"
         + (f" ({dropped} more were cut short in {store.csv.name} and run again)" if dropped else ""), quiet)
    return store, [] if table is None else [table]


def _fingerprint(path: Path, settings: dict, terms: dict, run: dict, model: Optional[Path], device: Device) -> dict:
    """What decides a batch's rows, compared on --resume: the starts file's content, the model file,
    the parsed objective, every setting, the seed, the baseline and the device."""
    import hashlib

    from ..design.optimize import Objective
    from ..resources import DEFAULT_MODEL

    obj = Objective.parse(terms["maximize"], terms["minimize"], terms["targets"], terms["objective"])
    m = Path(model or DEFAULT_MODEL)
    st = m.stat()
    return {"starts_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "id_column": run["id_column"],
            "model": str(m.resolve()), "model_size": st.st_size, "model_mtime_ns": st.st_mtime_ns,
            "objective": {"weights": obj.weights, "targets": obj.targets}, **settings, "seed": run["seed"],
            "guides_sha256": None if terms["guides"] is None else hashlib.sha256("\n".join(terms["guides"]).encode()).hexdigest(),
            "baseline": run["baseline"], "device": device.value}


def _guides(path: Optional[Path]) -> list[str] | None:
    """--guide FILE → its SMILES (checked when the search is set up: a bad one exits 2 naming it)."""
    if path is None:
        return None
    from ..data import read_smiles_file

    return [str(s) for s in read_smiles_file(path)["smiles"]]


def _curve(summary: dict | None) -> dict | None:
    """A start's best-so-far curve for the batch plot: oracle calls and improvement over the start."""
    c = (summary or {}).pop("curve", None)
    if not c or summary.get("seed_objective") is None:
        return None
    j0 = summary["seed_objective"]
    return {"oracle_calls": c["oracle_calls"],
            "improvement": [None if v is None else round(v - j0, 4) for v in c["best_objective"]]}


def _describe(terms: dict) -> str:
    from ..design.optimize import Objective

    return Objective.parse(terms["maximize"], terms["minimize"], terms["targets"], terms["objective"]).describe()


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
