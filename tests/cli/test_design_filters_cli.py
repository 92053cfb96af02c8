"""Issue 11 on the tiny model: generate --min-similarity / --keep / --filter / sanity, --like FILE,
--plot on generate / interpolate / evaluate, SDF export, invalid decodes carrying an error."""
import io

import pandas as pd
import pytest
from PIL import Image
from rdkit import Chem

from moldesign.chem import mol_from_smiles, tanimoto_to
from moldesign.config import MIN_SIMILARITY_RADIUS

from .common import ok, one_line_error, run, table


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return str(tiny_model_path)


def test_min_similarity_keeps_only_close_molecules_or_says_how_many(model, seed_smiles):
    res = run("generate", "--model", model, "--like", seed_smiles, "-n", 5, "--min-similarity", 0.3,
              "--max-attempts", 600)
    assert res.exit_code in (0, 1) and "Traceback" not in res.output
    if res.exit_code == 1:  # nothing close enough: one line that says what the filters removed
        assert "no valid new molecule" in res.stderr and "similarity < 0.3" in res.stderr
        return
    df = pd.read_csv(io.StringIO(res.stdout))
    seed = mol_from_smiles(seed_smiles)
    truth = tanimoto_to(seed, [mol_from_smiles(s) for s in df["smiles"]])
    assert (truth >= 0.3).all() and df["similarity"].to_numpy() == pytest.approx(truth, abs=1e-4)
    assert f"radius {MIN_SIMILARITY_RADIUS:.3g} -> " in res.stderr  # the adapted radius is reported
    assert len(df) == 5 or f"only {len(df)} of 5 molecules found" in res.stderr  # never a silent short list


def test_keep_and_filter_hold_on_every_row(model, seed_smiles):
    mol = mol_from_smiles(seed_smiles)
    ring = Chem.MolFragmentToSmiles(mol, atomsToUse=list(mol.GetRingInfo().AtomRings()[0]))  # a ring of the seed
    keep = Chem.MolToSmarts(Chem.MolFromSmiles(ring) or Chem.MolFromSmarts(ring))
    res = run("generate", "--model", model, "--like", seed_smiles, "-n", 6, "--radius", 1.0, "--keep", keep,
              "--filter", "qed>=0.3", "--filter", "similarity>0.05", "--max-attempts", 400)
    assert res.exit_code in (0, 1) and "Traceback" not in res.output
    if res.exit_code == 0:
        df = pd.read_csv(io.StringIO(res.stdout))
        q = Chem.MolFromSmarts(keep)
        assert all(mol_from_smiles(s).HasSubstructMatch(q) for s in df["smiles"])
        assert (df["qed"] >= 0.3).all() and (df["similarity"] > 0.05).all()
    else:
        assert "removed by filters" in res.stderr


def test_sanity_filter_counts_what_it_removed_and_can_be_turned_off(tiny_bundle, monkeypatch):
    # The decoder is replaced by a fixed stream, so the counts are exact on any machine.
    from moldesign import api
    from moldesign.design import generate

    stream = ["CC1OC1=O", "CCN(C)C(F)(F)F", "O=C1CCCCCCCCCN1", "CCO", "CCCO", "CCCCO", "not valid"]
    monkeypatch.setattr(generate, "decode", lambda bundle, z, cond, temperature, generator=None, **kw:
                        [stream[i % len(stream)] for i in range(len(z))])
    d = api.Designer(tiny_bundle)
    with pytest.warns(api.DesignWarning, match="only 3 of 5"):
        on = d.generate(n=5, max_attempts=64)
    assert on["smiles"].tolist() == ["CCO", "CCCO", "CCCCO"]  # only 3 pass: a short list ...
    s = on.attrs["summary"]
    assert s["removed"] == {"3-ring with heteroatom and sp2 atom": 1, "N-CF3": 1, "ring size 11 > 8": 1}
    assert s["removed_total"] == 3 and s["kept"] == 3 and s["requested"] == 5
    off = d.generate(n=5, max_attempts=64, sanity=False)
    assert len(off) == 5 and off.attrs["summary"]["removed"] == {}
    with pytest.warns(api.DesignWarning, match=r"only 3 of 5 molecules found in 64 decodes \(3 removed by filters"):
        d.generate(n=5, max_attempts=64, seed=1)  # ... that says so


def test_sanity_count_is_reported_by_the_cli(model):
    on = run("generate", "--model", model, "-n", 5, "--seed", 2)
    off = run("generate", "--model", model, "-n", 5, "--seed", 2, "--no-sanity")
    ok(on), ok(off)
    assert "filters removed" in on.stderr and "filters removed" not in off.stderr


def test_like_file_runs_every_seed_with_seed_id(model, tiny_smiles, tmp_path):
    seeds = tmp_path / "seeds.csv"
    pd.DataFrame({"id": ["a", "b", "bad"], "smiles": [tiny_smiles[0], tiny_smiles[1], "C1CC"]}).to_csv(seeds, index=False)
    res = run("generate", "--model", model, "--like", seeds, "-n", 3, "--radius", 1.0)
    df = table(res)
    assert list(df.columns)[:1] == ["seed_id"] and list(df.columns)[-2:] == ["valid", "error"]
    assert set(df["seed_id"]) == {"a", "b", "bad"}
    bad = df[df["seed_id"] == "bad"]
    assert len(bad) == 1 and not bad["valid"].iat[0] and "C1CC" in bad["error"].iat[0]
    good = df[df["valid"]]
    assert set(good["seed_id"]) <= {"a", "b"} and good["error"].isna().all()
    for sid, smi in (("a", tiny_smiles[0]), ("b", tiny_smiles[1])):  # similarity is to each row's own seed
        rows = good[good["seed_id"] == sid]
        truth = tanimoto_to(mol_from_smiles(smi), [mol_from_smiles(s) for s in rows["smiles"]])
        assert rows["similarity"].to_numpy() == pytest.approx(truth, abs=1e-4)
    assert "seed 3/3 bad: failed" in res.stderr


def test_generate_sdf_has_titles_and_integer_counts(model, seed_smiles, tmp_path):
    out = tmp_path / "g.sdf"
    ok(run("generate", "--model", model, "--like", seed_smiles, "-n", 4, "--radius", 1.0, "-o", out, "-q"))
    mols = list(Chem.SDMolSupplier(str(out)))
    assert len(mols) == 4
    for m in mols:
        assert m.GetProp("_Name") == m.GetProp("smiles")  # no id column: the SMILES is the title
        assert m.GetProp("hbd").isdigit() and m.GetProp("hba").isdigit()
        assert len(m.GetProp("mw").split(".")[-1]) <= 4


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_on_generate_and_interpolate(model, tiny_smiles, tmp_path, suffix):
    g, p = tmp_path / f"g.{suffix}", tmp_path / f"p.{suffix}"
    ok(run("generate", "--model", model, "--like", tiny_smiles[0], "-n", 6, "--radius", 1.0, "--plot", g, "-q"))
    ok(run("interpolate", tiny_smiles[0], tiny_smiles[5], "--steps", 5, "--model", model, "--plot", p, "-q"))
    for f in (g, p):
        if suffix == "png":
            assert Image.open(f).format == "PNG" and min(Image.open(f).size) > 100
        else:
            assert "<svg" in f.read_text()


def test_interpolate_rows_carry_error_and_filter_marks(model, tiny_smiles):
    df = table(run("interpolate", tiny_smiles[0], tiny_smiles[9], "--steps", 12, "--method", "linear",
                   "--model", model, "--filter", "qed>=0.5", "-q"))
    assert {"error", "passes", "failed_filters"} <= set(df.columns)
    err = df["error"].astype("string").fillna("")  # all-valid paths read back as an all-NaN float column
    for r, e in zip(df.to_dict("records"), err):  # invalid ⇔ an error saying why; both outcomes checked
        assert (e == "") == bool(r["valid"])
        assert r["valid"] or e.startswith("invalid decode: ")
    ff = df["failed_filters"].astype("string").fillna("")
    assert ((df["qed"] >= 0.5) | ~df["valid"] | (ff != "")).all()
    assert (df["passes"] == (ff == "")).all()


@pytest.mark.parametrize("args,needle", [
    (["generate", "--min-similarity", "0.5"], "--min-similarity needs --like"),
    (["generate", "--like", "CCO", "--min-similarity", "1.5"], "--min-similarity must be in (0, 1], got 1.5"),
    (["generate", "--like", "CCO", "--min-similarity", "0"], "--min-similarity must be in (0, 1]"),
    (["generate", "--keep", "c1ccc"], "--keep 'c1ccc' is not a valid SMARTS pattern"),
    (["generate", "--filter", "novel==1"], "'novel' is not a column of designed molecules"),
    (["generate", "--filter", "qed>>1"], "bad filter 'qed>>1'"),
    (["generate", "--filter", "similarity>0.3"], "a filter on similarity needs --like"),
    (["generate", "--plot", "p.gif"], "--plot must end in .png or .svg"),
    (["generate", "--like", "nope.csv"], "file not found: nope.csv"),
    (["generate", "--like", "seeds.csv", "--raw"], "--raw takes one --like molecule"),
    (["interpolate", "CCO", "CCN", "--filter", "potency>1"], "unknown property 'potency'"),
    (["interpolate", "CCO", "CCN", "--plot", "p.pdf"], "--plot must end in .png or .svg"),
    (["evaluate", "--plot", "p.jpg"], "--plot must end in .png or .svg"),
])
def test_bad_values_are_one_line_exit_2(model, args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"smiles": ["CCO"]}).to_csv(tmp_path / "seeds.csv", index=False)
    assert needle in one_line_error(run(*args, "--model", model))


def test_reconstruct_invalid_decode_carries_an_error(tiny_bundle, monkeypatch):
    from moldesign.screening import metrics
    from moldesign.decoding import sampling

    monkeypatch.setattr(sampling, "reconstruct", lambda bundle, smiles, batch_size=512, **kw: ["C1CC", smiles[1]])
    t = metrics.reconstruction_table(tiny_bundle, ["CCO", "CCN", "not_a_smiles"])
    assert t["error"][0].startswith("invalid decode: ") and "C1CC" not in t["error"][0]
    assert t["error"][1] == "" and bool(t["exact"][1]) and not t["exact"][0]
    assert t["error"][2] == "invalid SMILES"


def test_evaluate_plot_writes_distributions(model, sample, tiny_smiles, tmp_path):
    test = tmp_path / "test.csv"
    pd.DataFrame({"smiles": tiny_smiles[:40]}).to_csv(test, index=False)
    out = tmp_path / "e.png"
    ok(run("evaluate", "-n", 30, "--reconstruct-n", 0, "--target-n", 0, "--no-fcd", "--model", model, "--test", test,
           "--plot", out, "-o", tmp_path / "e.json", "-q"))
    assert Image.open(out).format == "PNG"
