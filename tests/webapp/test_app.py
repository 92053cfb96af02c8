"""The Streamlit app driven tab by tab with Streamlit's AppTest on the tiny test model.

Every assertion recomputes what the page shows from RDKit or from the API, so it holds whatever
the tiny model happens to decode on this machine.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

pytest.importorskip("streamlit", reason="the web app needs the [app] extra (pip install 'moldesign[app]')")
from streamlit.testing.v1 import AppTest  # noqa: E402

from moldesign.api import GENERATE_COLUMNS  # noqa: E402
from moldesign.chem import PROPERTIES, mol_from_smiles, mol_scores, tanimoto_to  # noqa: E402

from ..cli.common import one_line_error, runner  # noqa: E402

SCORES = ["mw", "logp", "hbd", "hba", "tpsa", "qed", "sa"]
TIMEOUT = 180  # seconds per script run: the suite shares 2 CPU cores with other jobs


def _script(model: str) -> None:
    from moldesign.webapp import main

    main(["--model", model])


def start(model) -> AppTest:
    at = AppTest.from_function(_script, args=(str(model),), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


TABS = ("Generate", "Interpolate", "Optimize", "Screen", "Model")


def tab(at: AppTest, name: str):
    t = at.tabs[TABS.index(name)]
    assert t.label == name
    return t


def table_with(at: AppTest, name: str, *columns: str) -> pd.DataFrame:
    """The one dataframe in tab `name` that has all of `columns`."""
    found = [df.value for df in tab(at, name).dataframe if set(columns) <= set(df.value.columns)]
    assert len(found) == 1, [list(df.value.columns) for df in tab(at, name).dataframe]
    return found[0]


def errors(at: AppTest, name: str | None = None) -> list[str]:
    """Error lines in tab `name` (the whole page when None); never a traceback anywhere."""
    assert not at.exception, at.exception
    return [e.value for e in (tab(at, name) if name else at).error]


def assert_rdkit_values(df: pd.DataFrame, seed: str | None = None, similarity: str = "similarity"):
    seed_mol = mol_from_smiles(seed) if seed else None
    for row in df.to_dict("records"):
        mol = mol_from_smiles(row["smiles"])
        truth = mol_scores(mol)
        for k in SCORES:
            assert row[k] == pytest.approx(truth[k], rel=1e-6, abs=1e-9), (row["smiles"], k)
        if seed_mol is not None:
            assert row[similarity] == pytest.approx(tanimoto_to(seed_mol, [mol])[0])


@pytest.fixture(scope="module")
def seed(tiny_smiles):
    return tiny_smiles[0]  # a training molecule of the tiny model: encodable


@pytest.fixture(scope="module")
def surrogate_model(tmp_path_factory, tiny_model_path, tiny_smiles):
    import moldesign

    d = moldesign.load(tiny_model_path, "cpu")
    d.fit_surrogate(tiny_smiles, hidden=(32, 32), epochs=40, workers=1, seed=0)
    path = tmp_path_factory.mktemp("app_sur") / "tiny_sur.pt"
    d.save(path)
    return path


# ------------------------------------------------------------------ Generate
def test_generate_tab_draws_the_seed_and_tables_rdkit_true_molecules(tiny_model_path, tiny_bundle, seed):
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed).run()
    # the seed is drawn beside its RDKit properties, and they prefill the (unticked) targets
    seed_props = table_with(at, "Generate", "MW", "LogP", "QED")
    assert seed_props.iloc[0]["MW"] == pytest.approx(mol_scores(mol_from_smiles(seed))["mw"], abs=1e-3)
    hbd_input = [w for w in at.number_input if w.key.startswith("gen_hbd_")][0]
    assert hbd_input.value == int(mol_scores(mol_from_smiles(seed))["hbd"])
    lo, hi = tiny_bundle.property_stats["min"][2], tiny_bundle.property_stats["max"][2]
    assert f"training range [{lo:.4g}, {hi:.4g}]" in hbd_input.help
    at.number_input(key="gen_n").set_value(4)
    at.number_input(key="gen_radius").set_value(1.5)
    at.checkbox(key="gen_set_logp").check().run()  # ticking enables the input
    [w for w in at.number_input if w.key.startswith("gen_logp_")][0].set_value(3.0)
    at.button(key="gen_go").click().run()
    assert errors(at, "Generate") == []
    df = table_with(at, "Generate", *GENERATE_COLUMNS)
    assert list(df.columns) == GENERATE_COLUMNS and len(df) == 4
    assert df["smiles"].is_unique and seed not in set(df["smiles"])
    assert_rdkit_values(df, seed)
    assert (df["logp"] - 3.0).abs().is_monotonic_increasing  # the LogP request sorts the table
    assert tab(at, "Generate").success[0].value.startswith(f"4 molecules around {seed} from ")


def test_generate_filters_flag_rows_like_screen(tiny_model_path, seed):
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed)
    at.number_input(key="gen_n").set_value(6)
    at.number_input(key="gen_radius").set_value(1.5)
    at.text_input(key="gen_filters").set_value("qed>=0.6, pains==0")
    at.button(key="gen_go").click().run()
    assert errors(at, "Generate") == []
    at.checkbox(key="gen_only_passing").uncheck().run()
    full = table_with(at, "Generate", "passes", "failed_filters", "qed")
    assert len(full) == 6
    assert f"; {int(full['passes'].sum())} pass the filters" in tab(at, "Generate").success[0].value
    assert " decodes (validity " in tab(at, "Generate").success[0].value
    np.testing.assert_array_equal(full["passes"].to_numpy(bool),
                                  ((full["qed"] >= 0.6) & (full["pains"] == "")).to_numpy())
    at.checkbox(key="gen_only_passing").check().run()
    shown = table_with(at, "Generate", "passes", "failed_filters", "qed")
    assert list(shown["smiles"]) == list(full.loc[full["passes"], "smiles"])


def test_generate_min_similarity_and_keep_hold_on_every_row(tiny_model_path, seed):
    """The similarity bar and the kept substructure are constraints: every row meets them, and a
    short list says so in a warning rather than silently."""
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed)
    at.number_input(key="gen_n").set_value(4)
    at.number_input(key="gen_min_sim").set_value(0.3)
    keep = "[#6]~[#6]"  # every tiny-model molecule has a C–C bond; the filter must still run
    at.text_input(key="gen_keep").set_value(keep)
    at.button(key="gen_go").click().run()
    errs = errors(at, "Generate")
    if errs:  # nothing similar enough: the CLI's one line, no table
        assert len(errs) == 1 and errs[0].startswith("error: no valid new molecule"), errs
        return
    df = table_with(at, "Generate", *GENERATE_COLUMNS)
    assert len(df) and (df["similarity"] >= 0.3).all()
    assert_rdkit_values(df, seed)
    pattern = Chem.MolFromSmarts(keep)
    assert all(mol_from_smiles(s).HasSubstructMatch(pattern) for s in df["smiles"])
    if len(df) < 4:
        assert any(f"only {len(df)} of 4" in w.value for w in tab(at, "Generate").warning)


def test_generate_bad_keep_smarts_is_the_cli_line(tiny_model_path, seed):
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed)
    at.text_input(key="gen_keep").set_value("C1((")
    at.button(key="gen_go").click().run()
    assert errors(at, "Generate") == ["error: --keep 'C1((' is not a valid SMARTS pattern"]


@pytest.mark.parametrize("field,value,needle", [
    ("gen_seed", "C1CC", "error: 'C1CC' is neither a known molecule name nor a valid SMILES"),
    ("gen_seed", "tamiflux", "did you mean tamiflu"),
    ("gen_filters", "potency<3", "error: "),
])
def test_generate_bad_input_is_the_cli_line(tiny_model_path, field, value, needle):
    at = start(tiny_model_path)
    at.text_input(key=field).set_value(value).run()
    if field == "gen_filters":
        at.button(key="gen_go").click().run()
    errs = errors(at, "Generate")
    assert len(errs) == 1 and needle in errs[0] and "\n" not in errs[0]
    assert not [df for df in tab(at, "Generate").dataframe if "similarity" in df.value.columns]


def test_nothing_valid_is_one_line_and_clears_the_last_result(tiny_model_path, seed):
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed)
    at.number_input(key="gen_n").set_value(2)
    at.number_input(key="gen_radius").set_value(1.5)
    at.button(key="gen_go").click().run()
    assert len(table_with(at, "Generate", *GENERATE_COLUMNS)) == 2
    at.number_input(key="gen_radius").set_value(0.0)  # radius 0 decodes only the seed, never returned
    at.button(key="gen_go").click().run()
    errs = errors(at, "Generate")
    assert len(errs) == 1 and errs[0].startswith("error: no valid new molecule in")
    assert not [df for df in tab(at, "Generate").dataframe if "similarity" in df.value.columns]


# ------------------------------------------------------------------ Interpolate
def interpolate_in_app(model, a: str, b: str, steps: int, beam: int = 0) -> AppTest:
    """The Interpolate tab after a click on its button, with no error shown."""
    at = start(model)
    at.text_input(key="int_a").set_value(a)
    at.text_input(key="int_b").set_value(b)
    at.number_input(key="int_steps").set_value(steps)
    at.number_input(key="int_beam").set_value(beam)
    at.button(key="int_go").click().run()
    assert errors(at, "Interpolate") == []
    return at


def test_interpolate_tab_labels_each_step(tiny_model_path, tiny_smiles):
    a, b = tiny_smiles[0], tiny_smiles[1]
    at = interpolate_in_app(tiny_model_path, a, b, 5)
    df = table_with(at, "Interpolate", "step", "alpha", "valid", "duplicate")
    assert list(df["step"]) == list(range(5))
    np.testing.assert_allclose(df["alpha"], np.linspace(0, 1, 5))
    for s, v in zip(df["smiles"], df["valid"]):
        m = Chem.MolFromSmiles(s) if isinstance(s, str) else None
        assert v == (m is not None and m.GetNumAtoms() > 0)
    valid = df[df["valid"]]
    assert_rdkit_values(valid, a, similarity="similarity_a")
    captions = [c.value for c in tab(at, "Interpolate").caption]
    for alpha, v in zip(df["alpha"], df["valid"]):  # every step labelled by α, invalid ones marked
        assert any(c.startswith(f"α={alpha:.2f}") and (("invalid" in c) == (not v)) for c in captions), captions


def test_interpolate_beam_width_ranks_candidates_like_the_api(tiny_model_path, tiny_smiles):
    import moldesign

    a, b = tiny_smiles[2], tiny_smiles[3]
    at = interpolate_in_app(tiny_model_path, a, b, 4, beam=3)
    shown = table_with(at, "Interpolate", "step", "alpha", "valid", "duplicate")
    api = moldesign.load(tiny_model_path, "cpu").interpolate(a, b, 4, beam=3)
    assert list(shown["smiles"].fillna("")) == list(api["smiles"].fillna(""))


def test_interpolate_unknown_molecule_is_one_line(tiny_model_path):
    at = start(tiny_model_path)
    at.text_input(key="int_b").set_value("not_a_molecule").run()
    errs = errors(at, "Interpolate")
    assert len(errs) == 1 and "'not_a_molecule' is neither" in errs[0]
    assert at.button(key="int_go").disabled


# ------------------------------------------------------------------ Optimize
def test_optimize_without_surrogate_says_how_to_fit_one(tiny_model_path, seed):
    at = start(tiny_model_path)
    at.text_input(key="opt_start").set_value(seed)
    at.radio(key="opt_method").set_value("gradient")
    at.button(key="opt_go").click().run()
    errs = errors(at, "Optimize")
    assert len(errs) == 1 and "moldesign surrogate fit" in errs[0]


def test_optimize_tab_shows_rdkit_beside_the_surrogate(surrogate_model, seed):
    at = start(surrogate_model)
    at.text_input(key="opt_start").set_value(seed)
    at.radio(key="opt_method").set_value("gradient")
    at.multiselect(key="opt_max").set_value(["qed"])
    at.text_input(key="opt_targets").set_value("logp=3.0")
    at.number_input(key="opt_steps").set_value(4)
    at.number_input(key="opt_chains").set_value(3)
    at.button(key="opt_go").click().run()
    assert errors(at, "Optimize") == []
    traj = table_with(at, "Optimize", "chain", "step", "pred_objective", "new")
    assert len(traj) == 3 * 5
    distinct = traj[traj["valid"] & traj["new"]]
    if len(distinct):  # the best table lists them, RDKit values beside the surrogate's
        best = table_with(at, "Optimize", "rank", "pred_objective", "pred_qed")
        assert len(best) == min(10, len(distinct))
        assert [c for c in best.columns if c in SCORES or c.startswith("pred_")][:4] == ["mw", "pred_mw", "logp", "pred_logp"]
        assert best["objective"].is_monotonic_decreasing and list(best["rank"]) == list(range(1, len(best) + 1))
        assert_rdkit_values(best, seed)
    else:  # every decode was invalid or the start itself: said so, no empty table
        assert any("no valid molecule other than the start" in w.value for w in tab(at, "Optimize").warning)
    assert tab(at, "Optimize").metric[0].value  # the seed's RDKit objective is shown


def test_optimize_cmaes_needs_no_surrogate_and_keeps_the_similarity_bar(tiny_model_path, seed):
    at = start(tiny_model_path)  # no surrogate: CMA-ES scores with RDKit only
    at.text_input(key="opt_start").set_value(seed)
    at.radio(key="opt_method").set_value("cmaes")
    at.multiselect(key="opt_max").set_value(["plogp"])
    at.number_input(key="opt_min_sim").set_value(0.3)
    at.number_input(key="opt_budget").set_value(60)
    at.number_input(key="opt_steps").set_value(5)
    at.number_input(key="opt_chains").set_value(6)
    at.button(key="opt_go").click().run()
    assert errors(at, "Optimize") == []
    caption = [c.value for c in tab(at, "Optimize").caption if c.value.startswith("objective:")][0]
    calls = int(caption.split(" RDKit oracle calls")[0].split("· ")[-1])
    assert 0 < calls <= 60 and "method cmaes" in caption
    top = list(tab(at, "Optimize").children.values())[1]  # under the heading, above the inputs
    assert top.value.startswith("Optimizing (6 chains × 6 decodes) took "), top
    best = [df.value for df in tab(at, "Optimize").dataframe
            if {"rank", "similarity"} <= set(df.value.columns) and "chain" not in df.value.columns]  # not the trajectory
    if best:  # every proposal listed meets the similarity constraint
        assert (best[0]["similarity"] >= 0.3).all()
        assert_rdkit_values(best[0], seed)


def test_optimize_bad_objective_is_the_cli_line(surrogate_model, seed):
    at = start(surrogate_model)
    at.text_input(key="opt_start").set_value(seed)
    at.text_input(key="opt_targets").set_value("tpsa=-5")
    at.button(key="opt_go").click().run()
    errs = errors(at, "Optimize")
    assert errs == ["error: --target tpsa must be > 0, got '-5'"]


# ------------------------------------------------------------------ Screen
def test_screen_tab_keeps_and_flags_every_uploaded_row(tiny_model_path):
    rows = ["CC(=O)Oc1ccccc1C(=O)O", "not_a_smiles", "CC(=O)[O-].[Na+]", "c1ccccc1CCN"]
    csv = pd.DataFrame({"name": list("abcd"), "smiles": rows}).to_csv(index=False).encode()
    at = start(tiny_model_path)
    at.file_uploader(key="scr_file").set_value(("mols.csv", csv, "text/csv"))
    at.text_input(key="scr_filters").set_value("mw<150")
    at.run()
    at.button(key="scr_go").click().run()
    assert errors(at, "Screen") == []
    df = table_with(at, "Screen", "row", "input", "valid", "error", "passes")
    assert list(df["input"]) == rows and list(df["name"]) == list("abcd")
    assert list(df["valid"]) == [True, False, True, True]
    assert df.loc[1, "error"]  # the bad row is kept and says why
    for r in df[df["valid"]].to_dict("records"):
        truth = mol_scores(mol_from_smiles(r["smiles"]))
        assert r["mw"] == pytest.approx(truth["mw"]) and r["qed"] == pytest.approx(truth["qed"])
        assert r["passes"] == (truth["mw"] < 150)
    assert df.loc[2, "smiles"] == "CC(=O)O"  # the salt is scored as its neutral parent
    assert tab(at, "Screen").success[0].value.startswith("4 rows: 3 valid, 1 invalid")
    # structures of the first rows; the error in full (a cell showed only "invalid"), its column wide
    captions = [c.value for c in tab(at, "Screen").caption]
    assert [c.split(" · ")[0] for c in captions if c.startswith("row ")] == ["row 1", "row 2", "row 3", "row 4"]
    assert "row 2 · not scored" in captions and len(tab(at, "Screen").image) == 3
    full = [m.value for e in tab(at, "Screen").expander for m in e.markdown]
    assert any(f"row 2 `not_a_smiles`: {df.loc[1, 'error']}" in m for m in full), full
    config = json.loads([d for d in tab(at, "Screen").dataframe if "passes" in d.value.columns][0].proto.columns)
    assert config["error"]["width"] == "large"


def test_screen_tab_pasted_smiles_and_bad_filter(tiny_model_path):
    at = start(tiny_model_path)
    at.text_area(key="scr_text").set_value("CCO\nC1CC\n").run()  # enables the button
    at.button(key="scr_go").click().run()
    df = table_with(at, "Screen", "row", "input", "valid", "error")
    assert list(df["valid"]) == [True, False]
    at.text_input(key="scr_filters").set_value("logp<<3")
    at.button(key="scr_go").click().run()
    errs = errors(at, "Screen")
    assert len(errs) == 1 and errs[0].startswith("error: ") and "logp<<3" in errs[0]


# ------------------------------------------------------------------ Model
def test_model_tab_shows_training_ranges_and_info(tiny_model_path, tiny_bundle):
    at = start(tiny_model_path)
    ranges = table_with(at, "Model", "min", "mean", "std", "max")
    stats = tiny_bundle.property_stats
    np.testing.assert_allclose(ranges["min"], np.round(stats["min"], 3))
    np.testing.assert_allclose(ranges["max"], np.round(stats["max"], 3))
    assert len(ranges) == len(PROPERTIES)
    info = table_with(at, "Model", "value")
    assert info.loc["training molecules", "value"] == f"{tiny_bundle.train_info['n_train']:,}"


def test_missing_model_is_one_line(tmp_path):
    at = start(tmp_path / "nope.pt")
    errs = errors(at)
    assert len(errs) == 1 and errs[0].startswith("error: model file not found")
    assert not at.tabs


# ------------------------------------------------------------------ downloads and the command
def test_downloads_are_the_cli_file_formats(tmp_path):
    from moldesign.webapp import table_bytes

    df = pd.DataFrame({"smiles": ["CCO", "c1ccccc1"], "mw": [46.069, 78.114]})
    assert pd.read_csv(io.BytesIO(table_bytes(df, ".csv")))["smiles"].tolist() == ["CCO", "c1ccccc1"]
    path = tmp_path / "x.sdf"
    path.write_bytes(table_bytes(df, ".sdf"))
    mols = list(Chem.SDMolSupplier(str(path)))
    assert [Chem.MolToSmiles(m) for m in mols] == ["CCO", "c1ccccc1"] and mols[1].GetProp("mw") == "78.114"


@pytest.mark.parametrize("args,needle", [
    (["--port", "0"], "--port must be between 1 and 65535, got 0"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--host", "no.such.host.invalid"], "--host 'no.such.host.invalid' is not a known host"),
])
def test_app_command_bad_input_is_one_line(args, needle, tiny_model_path):
    from moldesign.cli import app

    res = runner.invoke(app, ["app", "--model", str(tiny_model_path), *args])
    assert needle in one_line_error(res)


def test_app_command_missing_model_and_busy_port(tmp_path, tiny_model_path):
    import socket

    from moldesign.cli import app

    res = runner.invoke(app, ["app", "--model", str(tmp_path / "nope.pt"), "--port", "8599"])
    assert "model file not found" in one_line_error(res)
    with socket.socket() as s:
        s.bind(("localhost", 0))
        s.listen()
        port = s.getsockname()[1]
        res = runner.invoke(app, ["app", "--model", str(tiny_model_path), "--port", str(port)])
    assert f"--port {port} is already in use on localhost" in one_line_error(res)


def test_app_command_serves_the_page_and_health_within_30_s(tiny_model_path, tmp_path):
    from .browser import free_port, get, running_app

    with running_app(tiny_model_path, free_port(), tmp_path / "app.log", startup_s=30) as (url, startup):
        assert startup < 30
        status, page = get(f"{url}/")
        assert status == 200 and "<html" in page.lower()
        assert get(f"{url}/_stcore/health") == (200, "ok")


def test_screen_tab_reads_an_uploaded_sdf(tiny_model_path):
    from rdkit.Chem import SDWriter

    sio = io.StringIO()
    w = SDWriter(sio)
    for smi, name in (("CCO", "ethanol"), ("c1ccccc1O", "phenol")):
        m = Chem.MolFromSmiles(smi)
        m.SetProp("_Name", name)
        w.write(m)
    w.close()
    at = start(tiny_model_path)
    at.file_uploader(key="scr_file").set_value(("two.sdf", sio.getvalue().encode(), "chemical/x-mdl-sdfile")).run()
    at.button(key="scr_go").click().run()
    assert errors(at, "Screen") == []
    df = table_with(at, "Screen", "row", "valid", "smiles", "mw")
    assert list(df["smiles"]) == ["CCO", "Oc1ccccc1"] and df["valid"].all()
    assert df["mw"].tolist() == pytest.approx([mol_scores(Chem.MolFromSmiles(s))["mw"] for s in df["smiles"]])


def test_a_seed_note_is_shown_once_per_tab(tiny_model_path, tiny_bundle, seed):
    """A seed outside the training ranges is warned about beside the seed, not again by the run."""
    from moldesign.design.seeds import prepare_molecule

    big = "C" * 40  # MW 563: above any MOSES molecule, so outside the tiny model's training ranges
    notes = prepare_molecule(tiny_bundle, big).notes
    assert notes and "outside the model's training ranges" in notes[-1]
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(big)
    at.number_input(key="gen_radius").set_value(1.5)
    at.number_input(key="gen_n").set_value(2)
    at.button(key="gen_go").click().run()
    warned = [w.value for w in tab(at, "Generate").warning]
    assert all(warned.count(f"warning: {n}") == 1 for n in notes), warned


# ------------------------------------------------------------------ issue 29: fields checked as on the CLI
def cli_line(model, *args) -> str:
    """What `moldesign generate` says about the same value: its one error line, or its first warning
    (a value it accepts)."""
    from moldesign.cli import app

    r = runner.invoke(app, ["generate", "--model", str(model), "--max-attempts", "64", *map(str, args)])
    lines = [line for line in r.stderr.splitlines() if line.startswith("error: ")] if r.exit_code == 2 else \
        [line for line in r.stderr.splitlines() if line.startswith("warning: --")]
    assert lines, (r.exit_code, r.stderr)
    return lines[0]


# (field key, bad value, the CLI's arguments for that value); a LogP key ends in the seed's SMILES
BAD_FIELDS = [("gen_n", -5, ["-n", -5]), ("gen_n", 100_001, ["-n", 100_001]), ("gen_radius", -1.0, ["--radius", -1]),
              ("gen_temperature", -1.0, ["--temperature", -1]), ("gen_logp_", -10.0, ["--logp", -10]),
              ("gen_min_sim", -0.5, ["--min-similarity", -0.5]), ("gen_rand", -3, ["--seed", -3])]


def test_a_bad_number_is_refused_with_the_cli_line_not_replaced_by_the_old_value(tiny_model_path, seed):
    """A field with min/max kept its previous value when a browser got one outside them (red border)
    and Generate ran on that: now no field has bounds, and each value meets the CLI's own check."""
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed).run()
    assert all(w.min is None and w.max is None for w in at.number_input), \
        [(w.key, w.min, w.max) for w in at.number_input if w.min is not None or w.max is not None]
    at.checkbox(key="gen_set_logp").check().run()
    for key, value, args in BAD_FIELDS:
        field = [w for w in at.number_input if w.key == key or (key.endswith("_") and w.key.startswith(key))][0]
        before = field.value
        field.set_value(value)
        at.button(key="gen_go").click().run()
        expected = cli_line(tiny_model_path, "--like", seed, *args)
        if expected.startswith("error: "):  # refused: the CLI's line, no run, no table
            assert errors(at, "Generate") == [expected], key
            assert not [df for df in tab(at, "Generate").dataframe if "similarity" in df.value.columns], key
        else:  # accepted with a warning (a LogP outside the training range): the same warning
            assert expected in [w.value for w in tab(at, "Generate").warning], key
        [w for w in at.number_input if w.key == field.key][0].set_value(before).run()


@pytest.mark.parametrize("key,value,line", [
    ("opt_rand", -3, "error: --seed must be >= 0, got -3"),
    ("opt_steps", 0, "error: --steps must be >= 1, got 0"),
    ("opt_chains", 5000, "error: --chains must be at most 1,024, got 5,000"),
    ("opt_min_sim", -0.5, "error: --min-similarity must be in [0, 1], got -0.5"),
])
def test_optimize_fields_are_refused_in_one_line_before_the_run(tiny_model_path, seed, key, value, line):
    at = start(tiny_model_path)
    at.text_input(key="opt_start").set_value(seed).run()
    at.number_input(key=key).set_value(value)
    at.button(key="opt_go").click().run()
    assert errors(at, "Optimize") == [line]
    assert not [df for df in tab(at, "Optimize").dataframe if "chain" in df.value.columns]


def test_interpolate_steps_beyond_the_limit_is_the_cli_line(tiny_model_path, tiny_smiles):
    from moldesign.cli import app

    at = start(tiny_model_path)
    at.number_input(key="int_steps").set_value(5000)
    at.button(key="int_go").click().run()
    r = runner.invoke(app, ["interpolate", tiny_smiles[0], tiny_smiles[1], "--model", str(tiny_model_path),
                            "--steps", "5000"])
    assert errors(at, "Interpolate") == [one_line_error(r)] == ["error: --steps must be at most 1,000, got 5,000"]


# ------------------------------------------------------------------ issue 29: progress of long runs
def test_generate_reports_its_progress_at_the_top_of_the_tab(tiny_model_path, tiny_bundle, seed):
    import moldesign.api

    done: list[float] = []
    df = moldesign.api.Designer(tiny_bundle).generate(seed, 3, radius=1.5, on_progress=done.append)
    assert done and all(0 <= x <= 1 for x in done) and done == sorted(done)
    assert done[-1] == 1.0 or len(df) < 3
    at = start(tiny_model_path)
    at.text_input(key="gen_seed").set_value(seed)
    at.number_input(key="gen_n").set_value(3)
    at.number_input(key="gen_radius").set_value(1.5)
    at.button(key="gen_go").click().run()
    assert errors(at, "Generate") == []
    top = list(tab(at, "Generate").children.values())[1]  # under the heading, above the seed
    assert re.fullmatch(r"Generating took \d+\.\d s", top.value), top
    assert any("Stop button" in c.value for c in tab(at, "Generate").caption)


def test_with_clock_runs_the_call_aside_and_keeps_its_errors_and_warnings():
    import warnings

    from moldesign.errors import DesignInputError, DesignWarning
    from moldesign.webapp import with_clock

    class Slot:
        def __init__(self):
            self.lines: list[str] = []

        def info(self, text):
            self.lines.append(text)

        caption = info

    slot = Slot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DesignWarning)
        assert with_clock(slot, "Waiting", lambda: (time.sleep(1.2), warnings.warn("w", DesignWarning))[0] or 7) == 7
    assert [str(w.message) for w in caught] == ["w"]
    assert slot.lines[0].startswith("Waiting… 0 s so far") and slot.lines[-1].startswith("Waiting took 1.")

    def refuse():
        raise DesignInputError("--steps must be >= 1, got 0")

    with pytest.raises(DesignInputError, match="--steps"):
        with_clock(slot, "Waiting", refuse)


# ------------------------------------------------------------------ issue 29: the Model tab
@pytest.fixture(scope="module")
def model_with_card(tmp_path_factory, surrogate_model):
    d = tmp_path_factory.mktemp("card")
    shutil.copy(surrogate_model, d / "model.pt")
    shutil.copy(Path(__file__).resolve().parents[2] / "models" / "MODEL_CARD.md", d / "MODEL_CARD.md")
    return d / "model.pt"


def test_model_tab_is_a_short_rounded_summary_with_details_folded(model_with_card):
    at = start(model_with_card)
    summary = table_with(at, "Model", "value")
    assert "validation reconstruction" in summary.index
    assert not [v for v in summary["value"] if re.search(r"\d\.\d{4,}", v)], summary  # no 0.5855855855855856
    assert not tab(at, "Model").json  # no bare dict
    fit = [d.value for d in tab(at, "Model").dataframe if "r2" in d.value.columns][0]
    assert list(fit.index) == ["mw", "logp", "hbd", "hba", "tpsa", "qed", "sa"]
    assert (fit.round(3) == fit).all().all()
    titles = [e.label for e in tab(at, "Model").expander]
    assert "moldesign-zinc.pt: Training (sessions 3–4)" in titles and "Training details (every recorded number)" in titles
    assert not [e.label for e in tab(at, "Model").expander if e.proto.expanded]  # every section folded


# ------------------------------------------------------------------ issue 29: the sanity filter's words
def test_the_sanity_help_says_what_the_filter_drops(tiny_model_path):
    from moldesign.design.filters import DEFAULT_MAX_RING_SIZE, DEFAULT_MAX_SA, Sanity
    from moldesign.design.rules import SANITY_RULE

    at = start(tiny_model_path)
    assert at.checkbox(key="gen_sanity").help.lower().startswith(SANITY_RULE.lower())
    assert "heteroatom 3/4-rings" not in SANITY_RULE
    assert f"more than {DEFAULT_MAX_RING_SIZE} atoms" in SANITY_RULE and f"SA > {DEFAULT_MAX_SA:g}" in SANITY_RULE
    rings = lambda smi: [p for p in Sanity().problems(Chem.MolFromSmiles(smi)) if "ring with" in p]  # noqa: E731
    dropped = {"oxaziridine": "CC1NO1", "α-lactone": "CC1OC1=O", "aziridinone": "CC1NC1=O",
               "dioxetane": "CC1COO1", "diazetidine": "CC1NCN1"}
    kept = {"epoxide": "CC1CO1", "aziridine": "CC1CN1", "oxetane": "CC1COC1", "β-lactam": "CC1CNC1=O"}
    for name, smi in dropped.items():
        assert name in SANITY_RULE and rings(smi), name
    for name, smi in kept.items():
        assert name in SANITY_RULE and not rings(smi), name
