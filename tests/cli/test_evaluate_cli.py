"""`moldesign evaluate` and `moldesign reconstruct` on the tiny model with small reference files
(no MOSES download needed)."""
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from moldesign.screening import metrics
from moldesign.cli import app
from moldesign.decoding.sampling import sample_prior

runner = CliRunner()
REQUIRED = ["valid", "unique@1000", "unique@10000", "novelty", "intdiv", "fcd", "snn", "frag", "scaf",
            "reconstruction", "cond_mae_mw", "cond_mae_logp", "cond_mae_hbd", "cond_mae_hba", "cond_mae_tpsa"]


@pytest.fixture(scope="module")
def refs(tmp_path_factory, sample, tiny_smiles):
    d = tmp_path_factory.mktemp("refs")
    test = sample[sample["split"] == "test"]["smiles"]
    pd.DataFrame({"smiles": test.iloc[:150]}).to_csv(d / "test.csv", index=False)
    pd.DataFrame({"smiles": test.iloc[150:300]}).to_csv(d / "scaf.csv", index=False)
    pd.DataFrame({"smiles": tiny_smiles}).to_csv(d / "train.csv", index=False)
    pd.DataFrame({"smiles": tiny_smiles[:30]}).to_csv(d / "recon.csv", index=False)
    return d


def test_help():
    for cmd in ("evaluate", "reconstruct"):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0
        for opt in ("--seed", "--device", "--model", "--out", "--quiet"):
            assert opt in result.output


def test_evaluate_json_has_the_contract_keys_and_right_values(tiny_model_path, tiny_bundle, tiny_smiles, refs, tmp_path):
    out = tmp_path / "eval.json"
    args = ["evaluate", "-n", "40", "--reconstruct-n", "25", "--target-n", "20", "--model", str(tiny_model_path),
            "--seed", "3",
            "--test", str(refs / "recon.csv"), "--test-scaffolds", str(refs / "scaf.csv"),
            "--train", str(refs / "train.csv"), "-o", str(out), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert list(data)[: len(REQUIRED)] == REQUIRED
    # recompute from the same seed through the API, independently of evaluate's plumbing
    strings, conditions = sample_prior(tiny_bundle, 40, seed=3, temperature=1.0)
    assert data["valid"] == metrics.fraction_valid(strings) and data["n"] == 40
    # validity both ways: the same latents decoded with the grammar mask on (default) and off
    loose, _ = sample_prior(tiny_bundle, 40, seed=3, temperature=1.0, constrained=False)
    assert data["constrained"] is True and data["valid_constrained"] == data["valid"]
    assert data["valid_unconstrained"] == metrics.fraction_valid(loose)
    assert data["unique@1000"] is None and data["unique@10000"] is None  # fewer than k valid
    assert data["n_sampled_unique"] == 160  # it tried up to 4·n samples for 10,000 valid, then gave up
    targets = data["conditioning_targets"]
    assert [t["quantile"] for t in targets] == [0.25, 0.5, 0.75] and all(t["n"] == 20 for t in targets)
    assert targets[0]["target"]["mw"] < targets[1]["target"]["mw"] < targets[2]["target"]["mw"]
    strings_t, cond_t = sample_prior(tiny_bundle, 20, seed=4, temperature=1.0,
                                     props=list(targets[0]["target"].values()))  # seed + 1 for the first target
    assert targets[0]["valid"] == metrics.fraction_valid(strings_t)
    assert targets[0]["mae"]["logp"] == pytest.approx(metrics.conditioning_mae(strings_t, cond_t)["cond_mae_logp"])
    assert data["novelty"] == pytest.approx(metrics.novelty(strings, set(tiny_smiles)))
    assert data["intdiv"] == pytest.approx(metrics.internal_diversity(strings))
    assert data["cond_mae_mw"] == pytest.approx(metrics.conditioning_mae(strings, conditions)["cond_mae_mw"])
    assert data["snn"] == pytest.approx(metrics.snn(strings, metrics.fingerprints(tiny_smiles[:30])))
    # reconstruction on training molecules of an overfit model: nearly all exact
    assert data["n_reconstruct"] == 25 and data["reconstruction"] >= 0.8
    scaf_ref = pd.read_csv(refs / "scaf.csv")["smiles"]
    assert data["frag_scaf"] == pytest.approx(
        metrics.cosine_similarity(metrics.fragment_counts(strings), metrics.fragment_counts(scaf_ref)))
    if metrics.fcd_available():
        assert isinstance(data["fcd"], float) and data["fcd"] > 0
    assert set(data["timings"]) >= {"sample", "snn", "reconstruction"}


def test_evaluate_reference_dir_caches_statistics(tiny_model_path, refs, tmp_path):
    d = tmp_path / "moses"
    d.mkdir()
    for split, name in (("test", "test.csv"), ("train", "train.csv")):
        pd.read_csv(refs / name).to_parquet(d / f"{split}.parquet")
    args = ["evaluate", "-n", "20", "--reconstruct-n", "5", "--model", str(tiny_model_path), "--no-fcd",
            "--reference-dir", str(d), "-q"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (d / "test_ref_stats.npz").exists()
    a = json.loads(first.stdout)
    assert a["fcd"] is None and a["snn_scaf"] is None  # --no-fcd; no test_scaffolds table
    assert a["novelty"] is not None
    b = json.loads(runner.invoke(app, args).stdout)  # second run reads the cache: same numbers
    assert {k: a[k] for k in REQUIRED} == {k: b[k] for k in REQUIRED}


@pytest.mark.parametrize("args,message", [
    (["-o", "x.csv"], "--out must end in .json"),
    (["-n", "0"], "need -n >= 1"),
    (["--test", "missing.csv"], "--test file not found"),
    (["--reference-dir", "nodir"], "--reference-dir is not a folder"),
    (["--reference-dir", "."], "run `moldesign data moses` first"),
    (["--model", "nomodel.pt"], "model file not found"),
])
def test_evaluate_bad_input(args, message, tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["evaluate", "-q"] + ([] if "--model" in args else ["--model", str(tiny_model_path)])
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_reconstruct_file_keeps_every_row(tiny_model_path, tiny_smiles, reconstructed_smiles, tmp_path):
    good = reconstructed_smiles[:2] + [s for s in tiny_smiles if s not in reconstructed_smiles][:6]
    src = tmp_path / "in.smi"
    src.write_text("\n".join(good + ["C1CC", "c1cc[se]c1"]) + "\n")
    out = tmp_path / "rec.csv"
    result = runner.invoke(app, ["reconstruct", str(src), "--model", str(tiny_model_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns[:4]) == ["input", "canonical", "output", "exact"]
    assert df["input"].tolist() == good + ["C1CC", "c1cc[se]c1"]
    assert df["exact"].iloc[:2].all()  # molecules this model reconstructs (conftest); the other 6 vary by machine
    assert df["exact"].iloc[:8].tolist() == (df["output"].iloc[:8] == df["canonical"].iloc[:8]).tolist()
    assert df["error"].iloc[8] == "invalid SMILES" and df["error"].iloc[9].startswith("not encodable")
    assert "not encodable" in result.output and "2 not encodable" in result.output


def test_reconstruct_one_molecule_or_name(tiny_model_path, tiny_smiles):
    result = runner.invoke(app, ["reconstruct", tiny_smiles[0], "--model", str(tiny_model_path), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("input,canonical,output,exact") and len(lines) == 2
    result = runner.invoke(app, ["reconstruct", "aspirin", "--model", str(tiny_model_path), "-q"])
    assert result.exit_code in (0, 1)  # the tiny vocabulary may lack a token; either way one row
    assert "CC(=O)Oc1ccccc1C(=O)O" in result.output


@pytest.mark.parametrize("arg,message,code", [
    ("missing.csv", "file not found", 2),
    ("notamolecule", "neither a known molecule name nor a valid SMILES", 2),
    ("[Se]", "error: no valid reconstruction of [Se]: not encodable", 1),  # its row is written too
])
def test_reconstruct_bad_input(arg, message, code, tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["reconstruct", arg, "--model", str(tiny_model_path), "-q"])
    assert result.exit_code == code, result.output
    assert message in result.output
