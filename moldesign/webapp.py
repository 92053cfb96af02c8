"""The moldesign web app (Streamlit): Generate, Interpolate, Optimize, Screen and Model tabs.

Start it with `moldesign app [--port P] [--host H] [--model PATH]`, or
`streamlit run moldesign/webapp.py -- --model PATH`. The model is `--model`, else the env
MOLDESIGN_MODEL, else the shipped model.

The app holds no design logic: every molecule and number on the page comes from
`moldesign.load()` (one Designer per model file, cached for the server process) and the
screening module; the app lays out inputs, calls them, and draws what they return. Bad input
shows the CLI's one-line `error: …` message (the same exception types the CLI maps to exit 2),
warnings the CLI's `warning: …` line, never a traceback. Results are kept in
`st.session_state`, so sorting a table or switching tabs does not recompute them.

Number fields carry no min_value / max_value: a browser keeps the previous value when the typed one
lies outside them (drawn with a red border, and the next run silently used the old value). Every
value goes to the API's own checks instead (design/rules.py, seeds.check_property_value: the
CLI's limits and words), and a refused run shows their one line and does not start.
"""
from __future__ import annotations

import argparse
import os
import sys
import numbers
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

# absolute imports: Streamlit runs this file as a script, where a relative import has no package
from moldesign.chem import INTEGER_PROPERTIES, PROPERTIES
from moldesign.design.rules import MAX_GENERATE, MAX_PATH_STEPS, SANITY_RULE, check_optimize_sizes, check_seed

LABELS = {"mw": "MW", "logp": "LogP", "hbd": "HBD", "hba": "HBA", "tpsa": "TPSA", "qed": "QED", "sa": "SA"}
GRID_MAX = 50  # molecule images drawn per grid; the table and downloads hold every row
SCREEN_GRID = 20  # structures drawn above a screen's table (its first rows)
PER_ROW = 5
STOP_NOTE = "Streamlit's Stop button (top right, while running) stops a run"
# long text columns get room (Screen's errors were cut to "invalid"); the rest keep Streamlit's widths
WIDE_COLUMNS = {"error": "large", "failed_filters": "large", "input": "medium", "smiles": "medium",
                "standardization": "medium", "decoded": "medium"}


# ------------------------------------------------------------------ model and calls
def app_args(argv: list[str] | None = None) -> argparse.Namespace:
    """What `moldesign app` passes after `streamlit run webapp.py --`: --model (else $MOLDESIGN_MODEL,
    else the shipped model), --device, --seed (the default random seed of the inputs)."""
    from moldesign.api import DEFAULT_MODEL

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    args.model = Path(args.model or os.environ.get("MOLDESIGN_MODEL") or DEFAULT_MODEL)
    return args


@st.cache_resource(show_spinner="Loading the model…")
def designer(path: str, device: str = "auto"):
    """One Designer per (model file, device) for the life of the server (all sessions share it:
    decoding only reads the weights)."""
    import moldesign

    return moldesign.load(path, device)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions the CLI turns into its one-line `error: …` (exit 2 or 1)."""
    from moldesign.frontend import user_input_errors
    from moldesign.errors import DesignInputError, NothingValid, RunFailure
    from moldesign.screening.screen import FilterError

    return user_input_errors() + (DesignInputError, NothingValid, FilterError, RunFailure)


def call(fn: Callable, *args, shown: Sequence = (), **kwargs) -> Any:
    """fn(*args, **kwargs), showing a user error as the CLI's one line (returns None) and each
    DesignWarning as the CLI's `warning: …` line, except those in `shown` (already on the page,
    e.g. a seed's notes, which the API repeats when it prepares the seed again)."""
    from rdkit import RDLogger

    from moldesign.api import DesignWarning

    RDLogger.DisableLog("rdApp.*")  # as in the CLI: parser noise is not for the page
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DesignWarning)
        try:
            result = fn(*args, **kwargs)
        except _user_errors() as e:
            st.error(f"error: {e}")
            result = None
    for w in caught:
        if issubclass(w.category, DesignWarning) and str(w.message) not in shown:
            st.warning(f"warning: {w.message}")
    return result


def table_bytes(df: pd.DataFrame, suffix: str) -> bytes:
    """The table as the CLI would write it (data.write_atomic_table, same float format)."""
    from moldesign.data import CSV_FLOAT_FORMAT, write_atomic_table

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"table{suffix}"
        write_atomic_table(df, path, float_format=CSV_FLOAT_FORMAT)
        return path.read_bytes()


def downloads(df: pd.DataFrame, stem: str, key: str) -> None:
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("Download CSV", table_bytes(df, ".csv"), f"{stem}.csv", "text/csv", key=f"{key}_csv")
    c2.download_button("Download SDF", table_bytes(df, ".sdf"), f"{stem}.sdf", "chemical/x-mdl-sdfile",
                       key=f"{key}_sdf")


def table(df: pd.DataFrame, key: str) -> None:
    """A sortable table (click a header) of a result; attrs (Seed objects, summaries) left out,
    long text columns widened (WIDE_COLUMNS)."""
    shown = df.copy()
    shown.attrs = {}
    config = {c: st.column_config.TextColumn(width=w) for c, w in WIDE_COLUMNS.items() if c in shown.columns}
    st.dataframe(shown, hide_index=True, key=key, column_config=config)


def pyplot(fig) -> None:
    """Show a matplotlib figure and free it (a server draws many over its life)."""
    import matplotlib.pyplot as plt

    st.pyplot(fig)
    plt.close(fig)


class Progress:
    """A run's progress at the top of its tab (an API progress callback: generate's on_progress):
    the fraction done, the elapsed time, an estimate of the rest and the API's progress line; then
    how long the run took."""

    def __init__(self, slot, what: str):
        self.slot, self.what, self.t0, self.line = slot, what, time.time(), ""

    def log(self, line: str) -> None:
        self.line = line

    def __call__(self, done: float) -> None:
        elapsed = time.time() - self.t0
        left = f", about {elapsed * (1 - done) / done:.0f} s left" if done > 0 else ""
        self.slot.progress(min(max(done, 0.0), 1.0),
                           text=f"{self.what}: {done:.0%} in {elapsed:.0f} s{left} · {self.line} · {STOP_NOTE}")

    def finish(self) -> None:
        self.slot.caption(f"{self.what} took {time.time() - self.t0:.1f} s")


def with_clock(slot, what: str, fn: Callable, *args, **kwargs) -> Any:
    """fn(*args, **kwargs) in a worker thread while the top of the tab counts the seconds (for an
    API call without a progress callback: optimize). Streamlit's Stop ends the wait at once (the
    next update raises in this thread); the worker then finishes in the background, its result
    dropped. Exceptions and DesignWarnings reach the caller as if fn ran here."""
    box: dict = {}

    def work():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 (re-raised below, in the script's thread)
            box["error"] = e

    t0 = time.time()
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while worker.is_alive():
        slot.info(f"{what}… {time.time() - t0:.0f} s so far · {STOP_NOTE}")
        worker.join(1.0)
    slot.caption(f"{what} took {time.time() - t0:.1f} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def parse_filters(text: str) -> list:
    """'qed>=0.5, pains==0' → screening RangeFilters (FilterError names a bad one)."""
    from moldesign.screening.screen import parse_filter

    return [parse_filter(t) for t in text.replace(";", ",").split(",") if t.strip()]


# ------------------------------------------------------------------ drawing helpers
def fmt(x, spec: str = ".2f") -> str:
    from moldesign.drawing import fmt as _fmt

    return _fmt(x, spec)


def grid(smiles: list[str | None], captions: list[str], per_row: int = PER_ROW) -> None:
    """Molecule images in rows of `per_row`, each captioned; invalid entries as a marked cell."""
    from moldesign.drawing import mol_image

    for start in range(0, len(smiles), per_row):
        cols = st.columns(per_row)
        for col, s, cap in zip(cols, smiles[start : start + per_row], captions[start : start + per_row]):
            img = mol_image(s)
            if img is None:
                col.markdown(f"**✗ invalid**  \n`{s}`")
                col.caption(cap)
            else:  # the caption as its own element (not the image's), the same for valid and invalid cells
                col.image(img, width="stretch")
                col.caption(cap)


def seed_panel(d, text: str, title: str = "Seed"):
    """Draw a seed beside its RDKit properties; return the api Seed, or None (error shown)."""
    from moldesign.chem import mol_scores
    from moldesign.drawing import mol_image

    seed = call(d.molecule, text)
    if seed is None:
        return None
    scores = mol_scores(seed.mol)
    c1, c2 = st.columns([1, 3])
    c1.image(mol_image(seed.smiles, (220, 170)), caption=f"{title}: {seed.label}")
    c2.markdown(f"**{title}** `{seed.smiles}` (as the model encodes it: no stereo)")
    c2.dataframe(pd.DataFrame([{LABELS[k]: round(v, 3) for k, v in scores.items()}]), hide_index=True)
    return seed


def property_inputs(d, seed, prefix: str) -> dict[str, float]:
    """One input per conditioning property, prefilled from the seed (else the training mean), the
    training range in its help. Only the ticked ones are returned: the rest come from the seed, or
    from training molecules near the ticked values (sampling.draw_conditions). The values are
    checked by the API as the CLI's --mw ... --tpsa (outside the training range: a warning; far
    outside or impossible: the one-line error)."""
    stats = d.bundle.property_stats
    chosen: dict[str, float] = {}
    cols = st.columns(len(PROPERTIES))
    for j, (k, col) in enumerate(zip(PROPERTIES, cols)):
        lo = stats["min"][j] if "min" in stats else None
        hi = stats["max"][j] if "max" in stats else None
        base = float(seed.props[j]) if seed is not None else float(stats.get("mean", [0.0] * 5)[j])
        integer = k in INTEGER_PROPERTIES
        cast = (lambda x: int(round(x))) if integer else (lambda x: round(float(x), 2))
        where = f"training range [{lo:.4g}, {hi:.4g}]" if lo is not None else "no training range in this model"
        with col:
            on = st.checkbox(f"set {LABELS[k]}", key=f"{prefix}_set_{k}",
                             help=f"Unticked: the {'seed' if seed is not None else 'training distribution'}'s value")
            value = st.number_input(
                LABELS[k], value=cast(base),
                step=1 if integer else (1.0 if k in ("mw", "tpsa") else 0.1), disabled=not on, help=where,
                key=f"{prefix}_{k}_{seed.smiles if seed is not None else ''}")  # new seed → new prefill
        if on:
            chosen[k] = value
    return chosen


def notes(*seeds) -> list[str]:
    """The seeds' standardization / domain notes (already shown beside them)."""
    return [n for sd in seeds if sd is not None for n in getattr(sd, "notes", [])]


# ------------------------------------------------------------------ tabs
def generate_tab(d) -> None:
    from moldesign.config import DEFAULT_RADIUS, LIKE_TEMPERATURE

    st.subheader("Generate molecules with requested properties")
    top = st.empty()  # a run's progress, above the fold
    text = st.text_input("Seed molecule: a name (aspirin, tamiflu, …) or a SMILES; empty for none",
                         "aspirin", key="gen_seed")
    seed = seed_panel(d, text) if text.strip() else None
    if text.strip() and seed is None:
        return
    targets = property_inputs(d, seed, "gen")
    c1, c2, c3, c4 = st.columns(4)
    n = c1.number_input("n (valid, unique molecules)", value=20, step=1, key="gen_n", help=f"1 to {MAX_GENERATE:,}")
    radius = c2.number_input("radius (latent noise around the seed)", value=DEFAULT_RADIUS, step=0.1,
                             key="gen_radius", disabled=seed is None, help=">= 0, in prior standard deviations")
    temperature = c3.number_input("temperature (0 = greedy)", value=LIKE_TEMPERATURE if seed is not None else 0.0,
                                  step=0.1, key="gen_temperature", help=">= 0")
    rand = c4.number_input("random seed", value=int(st.session_state.get("default_seed", 0)), step=1, key="gen_rand",
                           help="0 to 2^32 - 1")
    # the same constraints as `generate --min-similarity/--keep/--no-sanity/--unconstrained`
    c1, c2, c3, c4 = st.columns(4)
    min_sim = c1.number_input("min similarity to the seed (0: off)", value=0.0, step=0.05, key="gen_min_sim",
                              disabled=seed is None,
                              help="in (0, 1]: keep only molecules with Tanimoto ≥ this to the seed; the radius adapts")
    keep = c2.text_input("keep substructure (SMARTS)", "", key="gen_keep",
                         help="every result must contain it, e.g. c1ccccc1C(=O)O")
    sanity = c3.checkbox("sanity filter", True, key="gen_sanity", help=SANITY_RULE[0].upper() + SANITY_RULE[1:] + ".")
    constrained = c4.checkbox("grammar mask", True, key="gen_constrained",
                              help="decode only tokens that can still end in a valid SMILES")
    filters = st.text_input("Filters (comma-separated, as `moldesign screen --filter`): e.g. qed>=0.5, pains==0",
                            "", key="gen_filters")
    st.caption(f"A run shows its progress at the top of this tab; {STOP_NOTE}.")
    if st.button("Generate", type="primary", key="gen_go"):
        parsed = call(parse_filters, filters)
        if parsed is not None:
            use_sim = seed is not None and min_sim != 0  # 0 is off; any other value goes to the API's check
            bar = Progress(top, "Generating")
            # temperature None lets the API pick its default for a similarity search
            df = call(d.generate, text.strip() or None, int(n), **targets,
                      radius=float(radius) if seed is not None else None,
                      temperature=None if use_sim and temperature == 0 else float(temperature),
                      seed=int(rand), log=bar.log, on_progress=bar, shown=notes(seed),
                      min_similarity=float(min_sim) if use_sim else None, keep=keep.strip() or None,
                      sanity=bool(sanity), constrained=bool(constrained))
            if df is not None:
                bar.finish()
            else:  # refused or nothing found: the one error line says so
                top.empty()
            if df is not None and parsed:
                df = call(screened, df, parsed)
            # a failed run clears the last result, so the table below never belongs to other inputs
            st.session_state["gen_result"] = None if df is None else dict(
                df=df, targets=targets, seed=seed, filtered=bool(parsed))
    res = st.session_state.get("gen_result")
    if res is not None:
        show_generated(**res)


def screened(df: pd.DataFrame, filters: list) -> pd.DataFrame:
    """Generated molecules with the screening columns (alerts, rules) and `passes` / `failed_filters`."""
    from moldesign.screening.screen import ScreenOptions, screen_smiles

    s = screen_smiles(df["smiles"].tolist(), ScreenOptions(filters=filters))
    extra = ["pains", "brenk", "lipinski", "veber", "passes", "failed_filters"]
    out = pd.concat([df.reset_index(drop=True), s[extra].reset_index(drop=True)], axis=1)
    out.attrs = df.attrs  # the generate summary (decodes, validity)
    return out


def show_generated(df: pd.DataFrame, targets: dict, seed, filtered: bool) -> None:
    from moldesign.chem import mol_scores
    from moldesign.drawing import property_histograms

    summary = df.attrs.get("summary", {})
    removed = summary.get("removed_total", 0)
    st.success(f"{len(df)} molecules {'around ' + seed.label + ' ' if seed is not None else ''}"
               f"from {summary.get('attempts', '?')} decodes "
               f"(validity {summary.get('valid', float('nan')):.2f})"
               + (f"; {removed} removed by the sanity filter, keep or similarity" if removed else "")
               + (f"; {int(df['passes'].sum())} pass the filters" if filtered else ""))
    shown = df
    if filtered and st.checkbox("show only molecules that pass the filters", True, key="gen_only_passing"):
        shown = df[df["passes"]]
    rows = shown.head(GRID_MAX).to_dict("records")
    caps = [(f"sim {fmt(r['similarity'])} · " if seed is not None else "")
            + f"MW {fmt(r['mw'], '.0f')} · LogP {fmt(r['logp'])} · QED {fmt(r['qed'])}" for r in rows]
    grid([r["smiles"] for r in rows], caps)
    if len(shown) > GRID_MAX:
        st.caption(f"first {GRID_MAX} of {len(shown)} drawn; the table has them all")
    table(shown, "gen_table")
    pyplot(property_histograms(shown, targets, mol_scores(seed.mol) if seed is not None else None))
    st.caption("Histograms of the results' RDKit properties; red: requested target, green dashes: the seed.")
    downloads(shown, "generated", "gen")


def interpolate_tab(d) -> None:
    from moldesign.decoding.sampling import MAX_BEAM

    st.subheader("Walk the latent space between two molecules")
    c1, c2 = st.columns(2)
    with c1:
        a = st.text_input("Molecule A", "aspirin", key="int_a")
        sa = seed_panel(d, a, "A") if a.strip() else None
    with c2:
        b = st.text_input("Molecule B", "paracetamol", key="int_b")
        sb = seed_panel(d, b, "B") if b.strip() else None
    c1, c2, c3 = st.columns(3)
    steps = c1.number_input("steps (both ends included)", value=8, step=1, key="int_steps",
                            help=f"2 to {MAX_PATH_STEPS:,}")
    method = c2.radio("method", ["slerp", "linear"], horizontal=True, key="int_method")
    beam = c3.number_input("beam width (0 or 1: greedy)", value=0, step=1, key="int_beam", help=f"0 to {MAX_BEAM}")
    if st.button("Interpolate", type="primary", key="int_go", disabled=sa is None or sb is None):
        with st.spinner("Decoding the path…"):
            df = call(d.interpolate, a, b, int(steps), method, beam=int(beam), shown=notes(sa, sb))
        st.session_state["int_result"] = df
    df = st.session_state.get("int_result")
    if df is not None:
        st.success(f"{len(df)} steps: {int(df['valid'].sum())} valid, "
                   f"{df.loc[df['valid'], 'smiles'].nunique()} distinct molecules")
        rows = df.to_dict("records")
        caps = [f"α={r['alpha']:.2f}" + (" ✗ invalid" if not r["valid"] else " (same as before)" if r["duplicate"] else "")
                for r in rows]
        grid([r["smiles"] for r in rows], caps, per_row=min(len(rows), 10))
        table(df, "int_table")
        downloads(df, "interpolation", "int")


def optimize_tab(d) -> None:
    from moldesign.design.optimize import COLUMNS, DEFAULT_CHAINS, DEFAULT_STEPS, METHODS

    st.subheader("Optimize from a start molecule (every decode checked with RDKit)")
    top = st.empty()  # a run's clock, above the fold
    text = st.text_input("Start molecule", "aspirin", key="opt_start")
    seed = seed_panel(d, text, "Start") if text.strip() else None
    c1, c2, c3 = st.columns(3)
    method = c1.radio("method", list(METHODS), horizontal=True, key="opt_method",
                      help="gradient: ascent on the latent surrogate; cmaes: CMA-ES in the latent, RDKit scores")
    min_sim = c2.number_input("min similarity to the start (0: off)", value=0.0, step=0.05, key="opt_min_sim",
                              help="in [0, 1]")
    budget = c3.number_input("budget: RDKit oracle calls (0: none)", value=0, step=100, key="opt_budget")
    if method == "gradient" and d.bundle.surrogate is None:
        st.info("This model has no latent surrogate, which the gradient method needs: "
                "`moldesign surrogate fit --model PATH` adds one, or choose cmaes.")
    c1, c2, c3 = st.columns(3)
    maximize = c1.multiselect("maximize", list(COLUMNS), ["qed"], key="opt_max")
    minimize = c2.multiselect("minimize", list(COLUMNS), [], key="opt_min")
    targets = c3.text_input("targets (PROP=VALUE, comma-separated)", "", key="opt_targets")
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.number_input("steps per chain", value=DEFAULT_STEPS, step=1, key="opt_steps")
    chains = c2.number_input("chains", value=DEFAULT_CHAINS, step=1, key="opt_chains")
    condition = c3.radio("condition", ["optimize", "seed"], horizontal=True, key="opt_condition",
                         help="optimize: the condition moves with z; seed: held at the start's properties")
    rand = c4.number_input("random seed", value=int(st.session_state.get("default_seed", 0)), step=1, key="opt_rand",
                           help="0 to 2^32 - 1")
    st.caption(f"A run shows its time at the top of this tab; {STOP_NOTE}.")
    if st.button("Optimize", type="primary", key="opt_go", disabled=seed is None):
        target_list = [t.strip() for t in targets.split(",") if t.strip()]
        res = call(run_optimize, d, top, text, maximize, minimize, target_list, steps=int(steps), chains=int(chains),
                   seed=int(rand), condition=condition, method=method, min_similarity=float(min_sim),
                   budget=int(budget) or None, shown=notes(seed))
        st.session_state["opt_result"] = res
    res = st.session_state.get("opt_result")
    if res is not None:
        show_optimized(res)


def run_optimize(d, slot, start: str, maximize, minimize, targets, *, steps: int, chains: int, seed: int, **settings):
    """The shared checks the optimizer's settings check leaves to its callers (the random seed and
    the sizes, design/rules.py, as the CLI's options), then d.optimize with a clock in `slot`."""
    check_seed(seed)
    check_optimize_sizes(steps, chains)
    return with_clock(slot, f"Optimizing ({chains} chains × {steps + 1} decodes)", d.optimize, start, maximize,
                      minimize, targets, steps=steps, chains=chains, seed=seed, **settings)


def show_optimized(res) -> None:
    from moldesign.drawing import trajectory_plot
    from moldesign.model.surrogate import TARGETS

    s = res.summary
    m = st.columns(4)
    m[0].metric("seed objective (RDKit)", fmt(s["seed_objective"], ".3f"))
    m[1].metric("best objective (RDKit)", fmt(s["best_objective"], ".3f"))
    m[2].metric("decodes / validity", f"{s['decodes']} / {s['valid']:.2f}")
    m[3].metric("distinct, better than seed", f"{s['distinct']}, {s['improved_on_seed']}")
    st.caption(f"objective: {s['objective']} · method {s.get('method', '?')} · {s['oracle_calls']} RDKit oracle calls"
               + (f" · {s['feasible']} distinct molecules with similarity ≥ {s['min_similarity']:g}"
                  if s.get("min_similarity") else "")
               + f" · {s['seconds']:.1f} s")
    pyplot(trajectory_plot(res.trajectory, s["seed_objective"]))
    best = res.best
    if len(best):
        rows = best.head(GRID_MAX).to_dict("records")
        grid([r["smiles"] for r in rows],
             [f"#{int(r['rank'])} J={r['objective']:.2f} · sim {fmt(r['similarity'])}" for r in rows])
        # RDKit truth beside the surrogate's prediction, property by property
        cols = ["rank", "smiles", "similarity", "objective", "pred_objective"]
        for k in TARGETS:
            cols += [k, f"pred_{k}"]
        table(best[[c for c in cols if c in best.columns]], "opt_best")
        downloads(best, "optimized_best", "opt_best")
    else:
        st.warning("no valid molecule other than the start was decoded")
    with st.expander("full trajectory"):
        table(res.trajectory, "opt_traj")
        downloads(res.trajectory, "optimize_trajectory", "opt_traj")


def screen_tab() -> None:
    from moldesign.screening.screen import INPUT_SUFFIXES

    st.subheader("Screen a file: properties, QED, SA, alerts, rules, filters")
    up = st.file_uploader("SMILES file", type=[s.lstrip(".") for s in INPUT_SUFFIXES], key="scr_file")
    pasted = st.text_area("…or paste SMILES, one per line", "", key="scr_text", height=120)
    c1, c2, c3 = st.columns([3, 1, 1])
    filters = c1.text_input("Filters (comma-separated): e.g. logp<3, qed>=0.5, pains==0, lipinski==1", "",
                            key="scr_filters")
    dedupe = c2.checkbox("mark duplicates", False, key="scr_dedupe")
    standardize = c3.checkbox("standardize (largest fragment, neutral)", True, key="scr_standardize")
    if st.button("Screen", type="primary", key="scr_go", disabled=up is None and not pasted.strip()):
        parsed = call(parse_filters, filters)
        if parsed is not None:
            st.session_state["scr_result"] = call(run_screen, up, pasted, parsed, dedupe, standardize)
    res = st.session_state.get("scr_result")
    if res is not None:
        df, line = res
        st.success(line)
        screen_structures(df)
        table(df, "scr_table")
        screen_errors(df)
        downloads(df, "screened", "scr")


def screen_structures(df: pd.DataFrame) -> None:
    """The first SCREEN_GRID rows as structures (the scored parent; an invalid row as its input),
    captioned by row number."""
    rows = df.head(SCREEN_GRID).to_dict("records")
    grid([r["smiles"] if r["valid"] else r["input"] for r in rows],
         [f"row {r['row']}" + (f" · MW {fmt(r['mw'], '.0f')} · QED {fmt(r['qed'])}" if r["valid"] else " · not scored")
          for r in rows])
    if len(df) > SCREEN_GRID:
        st.caption(f"first {SCREEN_GRID} of {len(df)} rows drawn; the table has them all")


def screen_errors(df: pd.DataFrame, most: int = 200) -> None:
    """Why each invalid row was not scored, in full (a table cell cuts long text)."""
    bad = df[~df["valid"].astype(bool)]
    if not len(bad):
        return
    with st.expander(f"{len(bad)} row{'s' if len(bad) != 1 else ''} not scored: the errors in full",
                     expanded=len(bad) <= 10):
        st.markdown("\n".join(f"- row {r['row']} `{r['input']}`: {r['error']}" for r in bad.head(most).to_dict("records"))
                    + (f"\n\n… and {len(bad) - most} more (the table and downloads have them all)"
                       if len(bad) > most else ""))


def run_screen(upload, pasted: str, filters: list, dedupe: bool, standardize: bool) -> tuple[pd.DataFrame, str]:
    """Screen the uploaded file (or the pasted lines) chunk by chunk with a progress line; every
    row kept, bad ones with valid=False and an error."""
    from moldesign.screening.screen import ScreenOptions, format_summary, iter_input_chunks, screen_chunks

    opts = ScreenOptions(filters=filters, dedupe=dedupe, standardize=standardize)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if upload is not None:
            path = Path(tmp) / Path(upload.name).name  # the suffix tells the reader the format
            path.write_bytes(upload.getvalue())
        else:
            path = Path(tmp) / "pasted.smi"
            path.write_text(pasted)
        screener, results = screen_chunks(iter_input_chunks(path, None, 1000), opts, workers=1)
        bar, parts = st.progress(0.0, text="screening…"), []
        for chunk in results:
            parts.append(chunk)
            bar.progress(0.5, text=f"screened {screener.counts['rows']} rows")
        bar.empty()
    counts = {**screener.counts, "seconds": time.time() - t0}
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return df, format_summary(counts)


SUMMARY = {  # train_info key -> its label in the Model tab's summary
    "data_source": "training data", "n_train": "training molecules", "epochs": "epochs",
    "molecules_seen": "molecules seen", "wall_seconds": "training time", "device": "device",
    "val_reconstruction": "validation reconstruction", "val_prior_validity": "prior validity (validation)",
    "active_units": "active latent units"}


def short(value) -> str:
    """A recorded value for the page: integers with thousands separators, floats to 3 significant
    digits (0.586, not 0.5855855855855856)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}"


def model_summary(d) -> pd.DataFrame:
    info = d.bundle.train_info
    values = {label: short(info[k]) for k, label in SUMMARY.items() if k in info}
    if "wall_seconds" in info:
        values[SUMMARY["wall_seconds"]] = f"{info['wall_seconds'] / 3600:.1f} h"
    if "active_units" in info:
        values[SUMMARY["active_units"]] += f" of {d.bundle.config.latent_dim}"
    return pd.DataFrame({"value": list(values.values())}, index=list(values))


def model_tab(d) -> None:
    """A short summary (rounded), the training ranges; details, the surrogate's fit and the model
    card folded into expanders (the card alone is thousands of pixels tall)."""
    st.subheader("The model")
    b = d.bundle
    st.markdown(f"`{d.path}`  \n{d!r}")
    st.dataframe(model_summary(d), key="model_info")
    stats = b.property_stats
    if "min" in stats:
        st.markdown("**Training ranges** (conditions outside them make the decoder extrapolate)")
        st.dataframe(pd.DataFrame({k: stats[k] for k in ("min", "mean", "std", "max") if k in stats},
                                  index=[LABELS[k] for k in PROPERTIES]).round(3), key="model_ranges")
    with st.expander("Training details (every recorded number)"):
        st.dataframe(training_details(b.train_info), key="model_details")
    if b.surrogate is not None and getattr(b.surrogate, "metrics", None):
        with st.expander("Surrogate: held-out fit (for Optimize's gradient method)"):
            surrogate_fit(b.surrogate.metrics)
    card = Path(d.path).parent / "MODEL_CARD.md" if d.path else None
    if card is not None and card.is_file():
        st.markdown(f"**Model card** ({card.name}), section by section:")
        for title, body in card_sections(card.read_text()):
            with st.expander(title):
                st.markdown(body)
    else:
        st.caption("No MODEL_CARD.md beside this checkpoint.")


def training_details(info: dict) -> pd.DataFrame:
    """Every number and text of train_info and of its train_config, rounded; arrays (per-dimension
    KL, RNG states) left out."""
    scalar = lambda v: v is None or isinstance(v, (numbers.Real, str))  # noqa: E731
    flat = {k: v for k, v in info.items() if scalar(v)}
    flat.update({f"train_config.{k}": v for k, v in (info.get("train_config") or {}).items() if scalar(v)})
    return pd.DataFrame({"recorded": [short(v) for v in flat.values()]}, index=list(flat))


def surrogate_fit(metrics: dict) -> None:
    """The surrogate's held-out R² and MAE per property (and R² on decoded molecules), rounded."""
    per_property = {k: metrics[k] for k in ("r2", "mae", "r2_decoded") if isinstance(metrics.get(k), dict)}
    if per_property:
        st.dataframe(pd.DataFrame(per_property).round(3), key="model_surrogate")
    rest = {k: short(v) for k, v in metrics.items() if k not in per_property and not isinstance(v, (dict, list))}
    if rest:
        st.caption(" · ".join(f"{k} {v}" for k, v in rest.items()))


def card_sections(text: str) -> list[tuple[str, str]]:
    """A model card cut at its `#` / `##` headings: (title, markdown) per section, a `##` section
    titled with its card (`moldesign-zinc.pt: Training`)."""
    sections: list[tuple[str, list[str]]] = []
    card = ""
    for line in text.splitlines():
        if line.startswith("# ") or line.startswith("## "):
            heading = line.lstrip("#").strip()
            if line.startswith("# "):
                card = heading.replace("Model card: ", "").replace("`", "").split(" (")[0]
            sections.append((heading if line.startswith("# ") else f"{card}: {heading}", []))
        elif sections:
            sections[-1][1].append(line)
        else:
            sections.append(("Model card", [line]))
    return [(title, "\n".join(body).strip()) for title, body in sections if "\n".join(body).strip()]


# ------------------------------------------------------------------ page
def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title="moldesign", page_icon="⚗", layout="wide")
    st.title("moldesign")
    args = app_args(argv)
    path = args.model
    st.session_state.setdefault("default_seed", args.seed)
    d = call(designer, str(path), args.device)
    if d is None:
        st.stop()
    st.caption(f"model: {path.name} · latent {d.bundle.config.latent_dim} · "
               f"surrogate: {'yes' if d.bundle.surrogate is not None else 'no'}")
    gen, inter, opt, scr, mod = st.tabs(["Generate", "Interpolate", "Optimize", "Screen", "Model"])
    with gen:
        generate_tab(d)
    with inter:
        interpolate_tab(d)
    with opt:
        optimize_tab(d)
    with scr:
        screen_tab()
    with mod:
        model_tab(d)


if __name__ == "__main__":
    main()
