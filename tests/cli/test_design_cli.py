"""generate / interpolate / optimize / surrogate fit through typer's CliRunner on the tiny model."""
import io
import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from moldesign.chem import mol_from_smiles, mol_scores, tanimoto_to
from moldesign.config import DEFAULT_RADIUS
from moldesign.errors import DesignInputError

from ..fake_decoder import fake_point_decoder
from .common import ok, one_line_error, run, table

SCORE_COLUMNS = ["mw", "logp", "hbd", "hba", "tpsa", "qed", "sa"]


def assert_rdkit_values(df: pd.DataFrame, seed: str | None = None):
    """Every property in the output is RDKit's, recomputed here from the output SMILES."""
    seed_mol = mol_from_smiles(seed) if seed else None
    for row in df.to_dict("records"):
        mol = mol_from_smiles(row["smiles"])
        assert Chem.MolToSmiles(mol, isomericSmiles=False) == row["smiles"]  # canonical
        truth = mol_scores(mol)
        for k in SCORE_COLUMNS:
            assert row[k] == pytest.approx(truth[k], abs=5e-5), (row["smiles"], k)  # exported to 4 decimals
        if seed_mol is not None:
            assert row["similarity"] == pytest.approx(tanimoto_to(seed_mol, [mol])[0], abs=5e-5)


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return str(tiny_model_path)


@pytest.fixture(scope="module")
def surrogate_model(tmp_path_factory, model, tiny_smiles):
    """`moldesign surrogate fit` on the tiny model's own molecules → a checkpoint with a surrogate."""
    d = tmp_path_factory.mktemp("sur")
    data = d / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles}).to_csv(data, index=False)
    out = d / "tiny_sur.pt"
    res = ok(run("surrogate", "fit", "--model", model, "--data", data, "-n", 200, "--epochs", 100,
                 "--hidden", "64,64", "--workers", 1, "-o", out, "-q"))
    report = json.loads(res.stdout)
    assert set(report["r2"]) == set(SCORE_COLUMNS) and report["n_train"] + report["n_test"] == len(tiny_smiles)
    return str(out)


# ------------------------------------------------------------------ generate
def test_generate_around_a_seed(model, seed_smiles):
    df = table(run("generate", "--model", model, "--like", seed_smiles, "-n", 8, "--radius", 1.5, "--logp", 3.0, "-q"))
    assert list(df.columns) == ["smiles", *SCORE_COLUMNS, "similarity"]
    assert len(df) == 8 and df["smiles"].is_unique and seed_smiles not in set(df["smiles"])
    assert_rdkit_values(df, seed_smiles)
    err = (df["logp"] - 3.0).abs()  # a LogP request sorts by closeness to it
    assert err.is_monotonic_increasing


def test_generate_oversample_keeps_the_most_similar_candidates(model, seed_smiles):
    """--oversample K collects K·n candidates and keeps the n closest to the seed: the same decodes
    (same seed, same batch) as asking for K·n with --oversample 1, cut to the n most similar."""
    args = ["generate", "--model", model, "--like", seed_smiles, "--radius", 1.0, "--seed", 2, "-q"]
    first = table(run(*args, "-n", 24, "--oversample", 1))
    best = table(run(*args, "-n", 6, "--oversample", 4))
    assert len(first) == 24 and len(best) == 6
    top = first["similarity"].sort_values(ascending=False).head(6)  # by value: ties may swap molecules
    assert sorted(best["similarity"]) == pytest.approx(sorted(top))
    assert set(best["smiles"]) <= set(first["smiles"])
    assert best["similarity"].min() >= first["similarity"].median()
    assert_rdkit_values(best, seed_smiles)


def test_generate_from_the_prior(model):
    df = table(run("generate", "--model", model, "-n", 10, "--hbd", 1, "-q"))
    assert len(df) == 10 and df["smiles"].is_unique and df["similarity"].isna().all()
    assert_rdkit_values(df)


def test_generate_seed_makes_output_reproducible(model, seed_smiles):
    args = ["generate", "--model", model, "--like", seed_smiles, "-n", 6, "--radius", 1.0, "-q"]
    a, b = ok(run(*args, "--seed", 3)).stdout, ok(run(*args, "--seed", 3)).stdout
    c = ok(run(*args, "--seed", 4)).stdout
    assert a == b and a != c
    t = ["generate", "--model", model, "-n", 6, "--temperature", 0.8, "-q"]
    assert ok(run(*t, "--seed", 1)).stdout == ok(run(*t, "--seed", 1)).stdout


def test_generate_raw_keeps_every_decoded_string(model, seed_smiles, monkeypatch):
    df = table(run("generate", "--model", model, "--like", seed_smiles, "-n", 40, "--radius", 2.0, "--raw", "-q"))
    assert len(df) == 40 and {"smiles", "valid", "canonical"} <= set(df.columns)
    for s, v in zip(df["smiles"], df["valid"]):  # how many are valid depends on the machine's tiny model
        mol = Chem.MolFromSmiles(s) if isinstance(s, str) else None
        assert v == (mol is not None and mol.GetNumAtoms() > 0)
    # invalid strings are kept in order: a scripted decoder guarantees some on any machine
    from moldesign.design import raw

    script = ["OCC", "C1CC", "c1ccccc1", "C(", "OCC"]
    monkeypatch.setattr(raw, "decode", lambda bundle, z, cond, temperature, generator=None, **kw:
                        [script[i % 5] for i in range(len(z))])
    df = pd.read_csv(io.StringIO(ok(run("generate", "--model", model, "--like", seed_smiles, "-n", 10,
                                        "--raw", "-q")).stdout), keep_default_na=False)
    assert df["smiles"].tolist() == script * 2 and df["valid"].tolist() == [True, False, True, False, True] * 2
    assert df["canonical"].tolist() == ["CCO", "", "c1ccccc1", "", "CCO"] * 2


def test_generate_writes_files_and_grids(model, seed_smiles, tmp_path):
    for grid in ("g.png", "g.svg"):
        out = tmp_path / "gen.parquet"
        ok(run("generate", "--model", model, "--like", seed_smiles, "-n", 4, "--radius", 1.5, "-o", out,
               "--grid", tmp_path / grid, "-q"))
        assert len(pd.read_parquet(out)) == 4
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "g.svg").read_text()


def test_generate_nothing_valid_exits_1_without_output(model, seed_smiles, tmp_path):
    out = tmp_path / "none.csv"
    # radius 0 decodes only the seed itself (one the tiny model reconstructs: conftest), which is never returned
    line = one_line_error(run("generate", "--model", model, "--like", seed_smiles, "--radius", 0, "-n", 3,
                              "--max-attempts", 64, "-o", out, "-q"), code=1)
    assert "no valid new molecule in 64 decodes" in line
    assert not out.exists()


def test_generate_warns_outside_training_range(model):
    res = run("generate", "--model", model, "-n", 2, "--logp", 5, "--max-attempts", 64, "-q")
    assert res.exit_code in (0, 1) and "Traceback" not in res.output  # a warning, not a usage error
    assert res.stderr.startswith("warning: --logp 5 is outside the training range [")


def test_generate_help_documents_the_default_radius():
    res = ok(run("generate", "--help"))
    assert f"default {DEFAULT_RADIUS}" in " ".join(res.stdout.split())  # help text is wrapped


# ------------------------------------------------------------------ interpolate
def test_interpolate_walks_between_two_molecules(model, reconstructed_smiles, tmp_path):
    a, b = reconstructed_smiles[0], reconstructed_smiles[1]
    df = table(run("interpolate", a, b, "--model", model, "--steps", 6, "--grid", tmp_path / "path.svg", "-q"))
    assert list(df["step"]) == list(range(6))
    np.testing.assert_allclose(df["alpha"], np.linspace(0, 1, 6))
    assert df["smiles"].iloc[0] == a and df["smiles"].iloc[-1] == b  # the tiny model reconstructs both ends
    assert df["similarity_a"].iloc[0] == 1.0 and df["similarity_b"].iloc[-1] == 1.0
    valid = df[df["valid"]]
    assert_rdkit_values(valid.assign(similarity=valid["similarity_a"]), a)
    dup = [i > 0 and df["valid"][i] and df["smiles"][i] == df["smiles"][i - 1] for i in range(6)]
    assert list(df["duplicate"]) == dup
    assert (tmp_path / "path.svg").exists()
    lin = table(run("interpolate", a, b, "--model", model, "--steps", 3, "--method", "linear", "-q"))
    assert len(lin) == 3


def test_interpolate_ends_at_latents_that_decode_to_the_inputs(tiny_bundle, sample):
    """--anchor N (default 32): each end's latent is the posterior draw whose decode is nearest the
    molecule, so an end is never further from its input than μ's decode, and on short MOSES test
    molecules (which the tiny model mostly does not write back from μ) it is nearer for some."""
    from moldesign.api import Designer

    d = Designer(tiny_bundle)
    test = sample[sample["split"] == "test"].sort_values("smiles", key=lambda c: c.str.len())["smiles"].tolist()
    pairs = [(test[i], test[i + 1]) for i in range(0, 12, 2)]
    nearer = 0
    for a, b in pairs:
        try:
            mu = d.interpolate(a, b, 3, anchor=0)
        except DesignInputError:  # a token the tiny vocabulary lacks
            continue
        anchored = d.interpolate(a, b, 3)
        for df in (mu, anchored):
            assert list(df["step"]) == [0, 1, 2]
        ends_mu = (mu["similarity_a"].fillna(0).iloc[0], mu["similarity_b"].fillna(0).iloc[-1])
        ends = (anchored["similarity_a"].fillna(0).iloc[0], anchored["similarity_b"].fillna(0).iloc[-1])
        assert ends[0] >= ends_mu[0] and ends[1] >= ends_mu[1]
        nearer += (ends[0] > ends_mu[0]) + (ends[1] > ends_mu[1])
    assert nearer >= 2
    with pytest.raises(DesignInputError, match="--anchor must be >= 0, got -1"):
        d.interpolate(pairs[0][0], pairs[0][1], 3, anchor=-1)


# ------------------------------------------------------------------ optimize / surrogate
def test_optimize_writes_trajectory_and_best(surrogate_model, seed_smiles, tmp_path):
    """The real optimizer: whether this machine's tiny model finds a new molecule varies, so both
    outcomes are checked (exit 0 with a best list, or exit 1 saying nothing new was found)."""
    best = tmp_path / "best.csv"
    res = run("optimize", "--model", surrogate_model, "--start", seed_smiles, "--maximize", "qed", "--method", "gradient",
              "--target", "logp=3.0", "--steps", 5, "--chains", 2, "--step-size", 0.3, "--best", best, "--baseline")
    assert "Traceback" not in res.output
    traj = pd.read_csv(io.StringIO(res.stdout))  # written in both outcomes
    assert len(traj) == 2 * 6
    assert {"chain", "step", "objective", "pred_objective", "pred_qed", "rank", "new"} <= set(traj.columns)
    valid = traj[traj["valid"]]
    assert_rdkit_values(valid.assign(similarity=valid["similarity"]), seed_smiles)
    top = pd.read_csv(best)
    assert list(top["rank"]) == list(range(1, len(top) + 1)) and top["objective"].is_monotonic_decreasing
    summary = json.loads([l for l in res.stderr.splitlines() if l.startswith("{")][0])
    assert summary["optimize"]["decodes"] == summary["baseline"]["decodes"] == 12
    assert summary["optimize"]["distinct"] == traj["new"].sum() and len(top) == min(10, traj["new"].sum())
    assert res.exit_code == (0 if traj["new"].any() else 1), res.output


def test_optimize_that_finds_nothing_new_exits_1_and_writes_the_trajectory(surrogate_model, seed_smiles, tmp_path,
                                                                             monkeypatch):
    """A decoder that only gives back the seed (or junk): the summary line says "none", the one
    error line says why, exit 1, and the trajectory and an empty best table are still written."""
    fake_point_decoder(monkeypatch, lambda bundle, z, props, temperature=0.0, **kw:
                        [(seed_smiles, "C1CC")[i % 2] for i in range(len(z))])
    out, best = tmp_path / "traj.csv", tmp_path / "best.csv"
    args = ["optimize", "--model", surrogate_model, "--start", seed_smiles, "--maximize", "qed", "--method", "gradient", "--steps", 3,
            "--chains", 2, "-o", out, "--best", best]
    line = one_line_error(run(*args, "-q"), code=1)
    assert line == ("error: no new molecule in 8 decodes (validity 0.500; every valid decode was the seed): "
                    "try a larger --step-size or more --steps / --chains")
    traj = pd.read_csv(out)
    assert len(traj) == 8 and not traj["new"].any() and traj["rank"].isna().all()
    assert traj["valid"].tolist() == [True, False] * 4 and (traj.loc[traj["valid"], "smiles"] == seed_smiles).all()
    assert pd.read_csv(best).empty
    res = run(*args, "--baseline")  # not quiet: the summary line and the JSON agree (none / null)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "0 feasible distinct; start" in res.stderr and "best none (no new molecule)" in res.stderr
    summary = json.loads([l for l in res.stderr.splitlines() if l.startswith("{")][0])
    assert summary["optimize"]["best_objective"] is None and summary["optimize"]["distinct"] == 0
    assert "NaN" not in res.stderr and "None" not in res.stderr


def test_optimize_batch_of_three_starts_resumes(surrogate_model, tiny_smiles, tmp_path, monkeypatch):
    import itertools

    found = itertools.cycle(["CCO", "CCN", "CCCC", "c1ccccc1", "CC(=O)O", "C1CC"])  # always something to find
    fake_point_decoder(monkeypatch, lambda bundle, z, props, **kw: [next(found) for _ in z])
    starts = tmp_path / "starts.csv"
    pd.DataFrame({"id": ["s1", "bad", "s3"], "smiles": [tiny_smiles[0], "not_a_smiles", tiny_smiles[3]]}).to_csv(
        starts, index=False)
    out = tmp_path / "opt.csv"
    args = ("optimize", "--model", surrogate_model, "--start", starts, "--maximize", "plogp", "--steps", 4,
            "--chains", 4, "--step-size", 0.6, "--budget", 8, "--top", 3, "-o", out)
    res = ok(run(*args))
    full = pd.read_csv(out)
    assert list(full["start_id"].unique()) == ["s1", "bad", "s3"]  # every start, in input order
    bad = full[full["start_id"] == "bad"]
    assert len(bad) == 1 and not bad["valid"].iloc[0] and "not_a_smiles" in bad["error"].iloc[0]
    good = full[full["start_id"] != "bad"]
    assert (good["oracle_calls"] == 5).all() and good["start_smiles"].notna().all() and good["valid"].all()
    valid = good[good["valid"]]
    np.testing.assert_allclose(valid["objective"], valid["plogp"], atol=1e-4)  # --maximize plogp, natural units (4 decimals)
    np.testing.assert_allclose(valid["improvement"], valid["plogp"] - valid["seed_objective"], atol=1e-3)
    summary = json.loads([l for l in res.stderr.splitlines() if l.startswith("{")][-1])["optimize_batch"]
    assert summary["starts"] == 3 and summary["bad_starts"] == 1 and summary["mean_oracle_calls"] <= 8
    # an interrupted run leaves OUT.partial.csv (and its manifest) with the starts it finished
    partial, manifest = tmp_path / "opt.csv.partial.csv", tmp_path / "opt.csv.partial.json"
    interrupt_after(monkeypatch, 1)
    line = run(*args).stderr.strip().splitlines()[-1]
    assert line.startswith("interrupted (SIGINT): optimize stopped with 1 of 3 starts finished") and "--resume" in line
    assert partial.exists() and manifest.exists()
    monkeypatch.undo()
    fake_point_decoder(monkeypatch, lambda bundle, z, props, **kw: [next(found) for _ in z])
    line = one_line_error(run(*args))  # without --resume: refused, the partial file kept
    assert "--resume" in line and partial.exists()
    res = ok(run(*args, "--resume"))
    assert "resuming: 1 of 3 starts already done" in res.stderr
    again = pd.read_csv(out)
    assert list(again["start_id"].unique()) == ["s1", "bad", "s3"] and not partial.exists() and not manifest.exists()
    pd.testing.assert_frame_equal(again[again["start_id"] == "bad"].reset_index(drop=True),
                                  full[full["start_id"] == "bad"].reset_index(drop=True))


def interrupt_after(monkeypatch, n: int) -> None:
    """Ctrl-C right after the n-th finished start is saved to the partial file (a kill there)."""
    from moldesign.design.optimize.partial import PartialResults

    append = PartialResults.append

    def append_then_stop(self, *a, **kw):
        append(self, *a, **kw)
        if len(self.entries) >= n:
            raise KeyboardInterrupt

    monkeypatch.setattr(PartialResults, "append", append_then_stop)


@pytest.fixture(scope="module")
def starts_file(tmp_path_factory, tiny_smiles):
    path = tmp_path_factory.mktemp("starts") / "starts.smi"
    path.write_text("".join(f"{s} m{i}\n" for i, s in enumerate(tiny_smiles[:4])))
    return path


BATCH_ARGS = ("--maximize", "qed", "--min-similarity", "0.2", "--steps", 3, "--chains", 4, "--sigma", 0.5,
              "--budget", 12, "--fill-budget", "--top", 3)


@pytest.mark.parametrize("cut", [37, "mid-line"])
def test_optimize_resume_after_a_cut_partial_file_equals_an_uninterrupted_run(model, starts_file, tmp_path,
                                                                              monkeypatch, cut):
    """The real decoder: a batch stopped after 3 of 4 starts, its partial file then cut (by 37
    bytes, or in the middle of the second start's rows), resumes to the uninterrupted table: the
    damaged starts are not trusted but run again (every column but the timing)."""
    full_out, out = tmp_path / "full.csv", tmp_path / "cut.csv"
    ok(run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "-o", full_out, "-q"))
    interrupt_after(monkeypatch, 3)
    assert run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "-o", out, "-q").exit_code == 130
    monkeypatch.undo()
    partial = tmp_path / "cut.csv.partial.csv"
    data = partial.read_bytes()
    lines = data.splitlines(keepends=True)
    keep = len(data) - 37 if cut == 37 else len(lines[0]) + len(lines[1]) + len(lines[2]) // 2
    partial.write_bytes(data[:keep])
    res = ok(run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "-o", out, "--resume"))
    assert "run again" in res.stderr
    a, b = pd.read_csv(full_out), pd.read_csv(out)
    assert list(a["start_id"].unique()) == ["m0", "m1", "m2", "m3"]
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_optimize_resume_with_other_settings_is_refused(model, starts_file, tmp_path, monkeypatch):
    out = tmp_path / "o.csv"
    interrupt_after(monkeypatch, 1)
    assert run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "-o", out, "-q").exit_code == 130
    monkeypatch.undo()
    logp = ["logp" if a == "qed" else a for a in BATCH_ARGS]  # --maximize logp instead of qed
    line = one_line_error(run("optimize", "--model", model, "--start", starts_file, *logp, "-o", out, "--resume"))
    assert "cannot resume" in line and "objective" in line
    line = one_line_error(run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "--budget", 13,
                              "-o", out, "--resume"))
    assert "budget" in line and "objective" not in line
    (tmp_path / "o.csv.partial.json").unlink()  # a partial file without its manifest is never trusted
    assert "no manifest" in one_line_error(run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS,
                                               "-o", out, "--resume"))


def test_optimize_plots(model, starts_file, seed_smiles, tmp_path):
    png, svg = tmp_path / "batch.png", tmp_path / "one.svg"
    ok(run("optimize", "--model", model, "--start", starts_file, *BATCH_ARGS, "--plot", png, "-q"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    ok(run("optimize", "--model", model, "--start", seed_smiles, *BATCH_ARGS, "--plot", svg, "-o", tmp_path / "t.csv"))
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "best so far" in text


def test_optimize_defaults_to_cmaes_which_needs_no_surrogate(model, seed_smiles, tmp_path):
    """The default method is CMA-ES: it runs on a checkpoint without a surrogate, keeps the
    similarity constraint on every proposal it lists, and stays within the oracle budget."""
    best = tmp_path / "best.csv"
    res = ok(run("optimize", "--model", model, "--start", seed_smiles, "--maximize", "qed", "--min-similarity", "0.3",
                 "--budget", "40", "--steps", "4", "--chains", "6", "--sigma", "1.0", "--best", best, "-o", tmp_path / "traj.csv"))
    summary = [l for l in res.stderr.splitlines() if l.startswith("max qed (")][0]
    assert summary.startswith("max qed (cmaes): ")
    assert int(summary.split(" oracle calls")[0].split(", ")[-1]) <= 40
    rows = pd.read_csv(best)
    assert (rows["similarity"] >= 0.3).all()
    seed_mol = mol_from_smiles(seed_smiles)
    for r in rows.to_dict("records"):
        assert r["similarity"] == pytest.approx(tanimoto_to(seed_mol, [mol_from_smiles(r["smiles"])])[0], abs=1e-4)


def test_optimize_without_surrogate_tells_how_to_fit_one(model, seed_smiles):
    line = one_line_error(run("optimize", "--model", model, "--start", seed_smiles, "--maximize", "qed", "--method", "gradient"))
    assert "moldesign surrogate fit" in line


# ------------------------------------------------------------------ bad input: one line, exit 2
@pytest.mark.parametrize("args,needle", [
    (["generate", "--like", "C1CC"], "'C1CC' is neither a known molecule name nor a valid SMILES"),
    (["generate", "--like", "tamiflux"], "did you mean tamiflu"),
    (["generate", "--like", "celecoxib"], "celecoxib"),
    (["generate", "--mw", "-100"], "--mw must be > 0, got '-100'"),
    (["generate", "--logp", "nan"], "--logp must be a finite number, got 'nan'"),
    (["generate", "--hbd", "1.5"], "--hbd must be a non-negative integer, got '1.5'"),
    (["generate", "-n", "0"], "-n must be a positive integer"),
    (["generate", "--radius", "1.0"], "--radius needs --like"),
    (["generate", "-o", "out.xyz"], "unsupported output type '.xyz'"),
    (["generate", "--like", "CCO", "--oversample", "0"], "--oversample must be an integer from 1 to 100, got 0"),
    (["generate", "--oversample", "3"], "--oversample needs --like"),
    (["generate", "--grid", "out.gif"], "--grid must end in .png or .svg"),
    (["interpolate", "CCO", "CCN", "--steps", "1"], "--steps must be at least 2"),
    (["interpolate", "CCO", "not_a_molecule"], "'not_a_molecule' is neither"),
    (["optimize", "--start", "CCO", "--maximize", "potency"], "--maximize 'potency' is not a known property"),
    (["optimize", "--start", "CCO", "--target", "logp=nan"], "--target logp must be a finite number"),
    (["optimize", "--start", "CCO", "--target", "tpsa=-5"], "--target tpsa must be > 0"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--condition", "follow"],
     "--condition must be one of optimize, seed, only, got 'follow'"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--budget", "0"], "--budget must be a positive number"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--min-similarity", "1.5"], "--min-similarity must be in [0, 1]"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--method", "bayes"], "--method must be one of cmaes, gradient"),
    (["optimize", "--start", "CCO", "--objective", "logp *"], "--objective must be a weighted sum"),
    (["optimize", "--start", "missing_starts.csv", "--maximize", "qed"], "file not found: missing_starts.csv"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--samples", "0"], "--samples must be in 1..256, got 0"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--temperature", "0"], "--temperature must be in (0, 10], got 0"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--temperature", "nan"], "--temperature must be a finite number"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--sigma-units", "nats"],
     "--sigma-units must be one of prior, posterior, got 'nats'"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--fill-budget"], "--fill-budget needs --budget N"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--baseline"], "use it with --method gradient"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--similarity-penalty", "-1"],
     "--similarity-penalty must be >= 0, got -1"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--stop-at", "inf"], "--stop-at must be a finite number, got inf"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--sigma", "1e-300", "--condition-sigma", "1e-300"],
     "--sigma must be at least 1e-06"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--condition-sigma", "1e-9"], "--condition-sigma must be at least"),
    (["optimize", "--start", "CCO", "--objective", "1e308*qed + 1e308*logp"], "--objective weight 1e308 of qed is out of range"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--plot", "p.gif"], "--plot must end in .png or .svg"),
    (["optimize", "--start", "CCO", "--maximize", "qed", "--workers", "2"], "need --start FILE (a batch of starts)"),
])
def test_bad_input_is_one_line_exit_2(surrogate_model, args, needle):
    line = one_line_error(run(*args, "--model", surrogate_model))
    assert needle in line


def test_optimize_guide_file_is_checked_and_used(surrogate_model, seed_smiles, tmp_path):
    """--guide: a SMILES RDKit cannot read is one line naming it (exit 2); a good file runs, its
    first step walks towards the guides, and no guide is proposed."""
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO\nC1CC\n")
    line = one_line_error(run("optimize", "--start", seed_smiles, "--maximize", "qed", "--guide", bad,
                              "--model", surrogate_model))
    assert "guide 2: 'C1CC' is not a valid SMILES" in line
    good = tmp_path / "good.smi"
    good.write_text("\n".join(["CCOC(=O)C", "CC(C)O", seed_smiles]) + "\n")
    out = tmp_path / "t.csv"
    ok(run("optimize", "--start", seed_smiles, "--maximize", "qed", "--guide", good, "--steps", 2, "--chains", 4,
           "--model", surrogate_model, "-o", out, "-q"))
    t = pd.read_csv(out)
    assert not t.loc[t["smiles"].isin(["CCOC(C)=O", "CC(C)O"]), "new"].any()
    assert (t["step"] == 0).sum() in (0, 4, 8)  # 4 points per encodable guide (the start is never its own guide)


def test_missing_model_file_is_one_line(tmp_path):
    assert "model file not found" in one_line_error(run("generate", "--model", tmp_path / "nope.pt"))


def test_optimize_cli_defaults_match_the_api():
    """The CLI spells its defaults out (importing torch for --help would be slow); keep them in step."""
    import inspect

    from moldesign.design import optimize as opt
    from moldesign.cli.optimize import optimize as optimize_command

    defaults = {name: p.default.default for name, p in inspect.signature(optimize_command).parameters.items()}
    assert (defaults["steps"], defaults["chains"], defaults["step_size"], defaults["prior_weight"]) == (
        opt.DEFAULT_STEPS, opt.DEFAULT_CHAINS, opt.DEFAULT_STEP_SIZE, opt.DEFAULT_PRIOR_WEIGHT)
    assert defaults["condition"] == opt.CONDITIONS[0]
    assert (defaults["method"], defaults["sigma"], defaults["condition_sigma"]) == (
        opt.METHODS[0], opt.DEFAULT_SIGMA, opt.DEFAULT_CONDITION_SIGMA)
    assert (defaults["samples"], defaults["temperature"], defaults["sigma_units"]) == (
        opt.DEFAULT_SAMPLES, opt.DEFAULT_TEMPERATURE, opt.DEFAULT_SIGMA_UNITS)


def test_generate_raw_streams_to_a_file_and_cleans_up(model, seed_smiles, tmp_path):
    out = tmp_path / "raw.parquet"
    result = ok(run("generate", "--model", model, "--like", seed_smiles, "-n", 25, "--radius", 2.0, "--raw",
                    "-o", out))
    df = pd.read_parquet(out)
    assert len(df) == 25 and not (tmp_path / "raw.parquet.parts").exists()
    assert f"validity {df['valid'].mean():.3f}" in result.stderr
    (tmp_path / "raw.parquet.parts").mkdir()  # parts of another run: refused in one line
    (tmp_path / "raw.parquet.parts" / "manifest.json").write_text('{"n": 7}')
    assert "holds the parts of another run" in one_line_error(run("generate", "--model", model, "-n", 25, "--raw",
                                                                   "-o", out, "-q"))
