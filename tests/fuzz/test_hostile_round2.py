"""Issue 29's hostile inputs, each reproduced before its fix: damaged checkpoints refused at load,
pipes and folders refused before any read, absurd sizes refused before any work, SMILES long
enough to crash RDKit's writer refused by length, infinite bounds refused; then (round 2b) no
output written over an input or another output, one rule for batches with nothing valid, seeds
with no organic part refused, the API's sizes bounded as the CLI's, --data folders and
500-character SMILES arguments.

Cases that once crashed the process (segfault) run in a subprocess, so a regression fails one
test instead of killing the suite."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ..cli.common import runner

REPO = Path(__file__).resolve().parents[2]
CHAIN = "C" * 20_000  # RDKit's MolToSmiles segfaults on chains of 14k-20k atoms


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_path, tiny_smiles) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile2")
    f = {"d": d, "model": tiny_model_path}
    (d / "adir.npz").mkdir()
    for name in ("fifo.pt", "fifo.smi", "fifo.csv"):
        os.mkfifo(d / name)
        f[name.replace(".", "_")] = d / name
    f["chain"] = d / "chain.smi"
    f["chain"].write_text("\n".join(tiny_smiles[:3] + [CHAIN] + tiny_smiles[3:5]) + "\n")
    f["garbage_parquet"] = d / "garbage.parquet"
    f["garbage_parquet"].write_bytes(b"PAR1" + bytes(range(256)) * 10)
    f["bad_rows"] = d / "bad_rows.smi"
    f["bad_rows"].write_text("\n".join(tiny_smiles[:60] + ["not_a_smiles", "C1CC", ""]) + "\n")
    ckpt = torch.load(tiny_model_path, weights_only=True)

    def damaged(name, change):
        c = {**ckpt, "state_dict": dict(ckpt["state_dict"])}
        change(c)
        f[name] = d / f"{name}.pt"
        torch.save(c, f[name])

    first = "decoder.out.weight"
    damaged("nan_weights", lambda c: c["state_dict"].__setitem__(first, c["state_dict"][first].clone().fill_(float("nan"))))
    damaged("huge_weights", lambda c: c["state_dict"].__setitem__(first, c["state_dict"][first].clone().fill_(1e30)))
    Z = ckpt["model_config"]["latent_dim"]
    nan_prior = {"type": "gmm", "weights": torch.ones(2, dtype=torch.float64) / 2,
                 "means": torch.full((2, Z), float("nan"), dtype=torch.float64),
                 "covariances": torch.eye(Z, dtype=torch.float64).repeat(2, 1, 1), "n_fit": 10, "seed": 0}
    damaged("nan_prior", lambda c: c.update(prior=nan_prior))
    return f


def _argv(template: str, files: dict) -> list[str]:
    import shlex

    return [a.format(**{k: str(v) for k, v in files.items()}) for a in shlex.split(template)]


# (id, argv, allowed exit codes, message fragment the one error line must contain)
CASES = [
    ("ckpt-nan-weights", "generate --model {nan_weights} -n 2", {2}, "NaN"),
    ("ckpt-huge-weights", "reconstruct CCO --model {huge_weights}", {2}, "1e+30"),
    ("model-fifo", "generate --model {fifo_pt} -n 2", {2}, "not a regular file"),
    ("like-fifo", "generate --model {model} --like {fifo_smi} -n 2", {2}, "not a regular file"),
    ("screen-fifo", "screen {fifo_csv}", {2}, "not a regular file"),
    ("optimize-start-fifo", "optimize --model {model} --start {fifo_smi} --maximize qed", {2}, "not a regular file"),
    ("screen-directory", "screen {d}", {2}, ""),
    ("train-pack-directory", "train --data {d}/adir.npz --out {d}/t.pt", {2}, "directory"),
    ("train-pack-missing", "train --data {d}/missing.npz --out {d}/t.pt", {2}, "not found"),
    ("like-garbage-parquet", "generate --model {model} --like {garbage_parquet} -n 2", {2}, "parquet"),
    ("screen-infinite-bound", "screen {chain} --filter mw<1e309", {2}, "finite"),
    ("generate-beam-huge", "generate --model {model} --like CCO --radius 0 --beam 1000000 -n 1", {2}, "beam"),
    ("reconstruct-beam-huge", "reconstruct CCO --model {model} --beam 100000", {2}, "beam"),
    ("interpolate-beam-huge", "interpolate CCO CCN --model {model} --beam 100000", {2}, "beam"),
    # round 2b: a seed with no organic part (a salt leaves a chloride, a single atom)
    ("like-salt-no-carbon", "generate --model {model} --like '[Na+].[Cl-]' -n 2", {2}, "no organic part"),
    ("like-single-atom-raw", "generate --model {model} --like C -n 2 --raw", {2}, "single atom C"),
    ("like-no-carbon", "generate --model {model} --like N#N -n 2", {2}, "has no carbon"),
    ("interpolate-salt", "interpolate CCO '[Na+].[Cl-]' --model {model}", {2}, "no organic part"),
    # round 2b: --data a folder or a missing file, refused before the model loads
    ("train-data-directory", "train --data {d} --out {d}/t.pt", {2}, "is a directory"),
    ("train-data-missing", "train --data {d}/missing.csv --out {d}/t.pt", {2}, "not found"),
    ("surrogate-data-directory", "surrogate fit --model {model} --data {d} -o {d}/s.pt", {2}, "is a directory"),
    ("surrogate-data-missing", "surrogate fit --model {model} --data {d}/no.smi -o {d}/s.pt", {2}, "not found"),
    ("prior-data-directory", "prior fit --model {model} --data {d} -o {d}/p.pt", {2}, "is a directory"),
    ("prior-data-missing", "prior fit --model {model} --data {d}/no.csv -o {d}/p.pt", {2}, "not found"),
    # round 2b: two outputs on one file
    ("generate-grid-is-plot", "generate --model {model} -n 2 --grid {d}/g.png --plot {d}/./g.png", {2}, "same file"),
    ("interpolate-grid-is-plot", "interpolate CCO CCN --model {model} --grid {d}/p.svg --plot {d}/p.svg", {2},
     "same file"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_in_one_line_before_any_work(case, files):
    from moldesign.cli import app

    name, template, codes, fragment = case
    t0 = time.time()
    r = runner.invoke(app, _argv(template, files))
    assert r.exit_code in codes, f"{name}: exit {r.exit_code}\n{r.output}"
    assert time.time() - t0 < 30, f"{name} took {time.time() - t0:.0f} s"
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def test_a_damaged_prior_is_dropped_with_a_warning_naming_the_damage(files):
    from moldesign.model import checkpoint

    with pytest.warns(UserWarning, match="prior is damaged.*NaN"):
        b = checkpoint.load(files["nan_prior"])
    assert b.prior is None


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("argv", [
    ["generate", "--like", CHAIN, "-n", "2"],
    ["interpolate", CHAIN, "CCO"],
    ["optimize", "--start", CHAIN, "--maximize", "qed"],
    ["generate", "--like", "C" * 100_000, "-n", "2"],
], ids=["like-chain", "interpolate-chain", "optimize-chain", "like-100k"])
def test_a_molecule_too_long_to_handle_is_refused_not_a_crash(files, argv):
    t0 = time.time()
    r = _cli(*argv, "--model", str(files["model"]))
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().startswith("error: ") and "longer than" in r.stderr and len(r.stderr) < 400
    assert time.time() - t0 < 60


def test_a_chain_row_in_a_batch_is_flagged_and_the_rest_is_screened(files, tmp_path):
    out = tmp_path / "s.csv"
    r = _cli("screen", str(files["chain"]), "--max-atoms", "100000", "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(out)
    assert len(df) == 6 and df["valid"].sum() == 5
    bad = df[~df["valid"]].iloc[0]
    assert "longer than" in bad["error"]


def test_reconstruct_keeps_a_chain_row_flagged(files, tmp_path):
    out = tmp_path / "r.csv"
    r = _cli("reconstruct", str(files["chain"]), "--model", str(files["model"]), "-o", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(out)
    assert len(df) == 6


def test_prior_fit_leaves_out_bad_rows(files, tmp_path):
    from moldesign.cli import app

    out = tmp_path / "p.pt"
    r = runner.invoke(app, ["prior", "fit", "--model", str(files["model"]), "--data", str(files["bad_rows"]),
                            "--components", "2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists()


def test_decode_refuses_what_it_cannot_decode(tiny_bundle):
    from moldesign.decoding.sampling import decode
    from moldesign.errors import DesignInputError

    Z = tiny_bundle.config.latent_dim
    props = np.tile(np.array([[300.0, 2.0, 1, 3, 60.0]]), (2, 1))
    assert decode(tiny_bundle, np.zeros((0, Z)), props[:0]) == []
    for z, t, beam, what in [(np.full((2, Z), np.nan), 0.0, 0, "finite"), (np.full((2, Z), 1e30), 0.0, 0, "finite"),
                             (np.zeros((2, Z)), -1.0, 0, "temperature"), (np.zeros((2, Z)), float("nan"), 0, "temperature"),
                             (np.zeros((2, Z)), 0.0, 10**6, "beam"), (np.zeros((2, Z + 1)), 0.0, 0, "shape")]:
        with pytest.raises(DesignInputError, match=what):
            decode(tiny_bundle, z, props, temperature=t, beam=beam)
    with pytest.raises(DesignInputError, match="conditions"):
        decode(tiny_bundle, np.zeros((2, Z)), np.full((2, 5), np.nan))


# ------------------------------------------------------------------ round 2b: never write over an input
@pytest.fixture
def x_files(tmp_path, tiny_smiles) -> dict[str, Path]:
    """x.csv (a SMILES table and seed file), a symlink and a hard link to it, per test (a run that
    overwrote it must not spoil the next case)."""
    x = tmp_path / "x.csv"
    pd.DataFrame({"smiles": tiny_smiles[:3]}).to_csv(x, index=False)
    (tmp_path / "link.csv").symlink_to(x)
    os.link(x, tmp_path / "hard.csv")
    (tmp_path / "good.smi").write_text("\n".join(tiny_smiles[:3]) + "\n")
    (tmp_path / "test.png").write_text("\n".join(tiny_smiles[:3]) + "\n")  # a test set with an odd name
    return {"d": tmp_path, "x": x, "link": tmp_path / "link.csv", "hard": tmp_path / "hard.csv",
            "good": tmp_path / "good.smi", "png": tmp_path / "test.png"}


# (id, argv, the two options the one line names)
OVERWRITES = [
    ("reconstruct-out-is-input", "reconstruct {x} --model {model} -o {x}", ("--out", "INPUT")),
    ("reconstruct-out-is-input-spelled-otherwise", "reconstruct {x} --model {model} -o {d}/./x.csv", ("--out", "INPUT")),
    ("generate-out-is-seed-file", "generate --model {model} --like {x} -n 2 -o {x}", ("--out", "--like")),
    ("generate-out-is-seed-file-via-symlink", "generate --model {model} --like {link} -n 2 -o {x}", ("--out", "--like")),
    ("screen-out-is-input-hard-link", "screen {x} -o {hard}", ("--out", "INPUT")),
    ("screen-out-is-reference", "screen {good} --reference {x} -o {x}", ("--out", "--reference")),
    ("evaluate-plot-is-test", "evaluate --model {model} -n 5 --test {png} --plot {png}", ("--plot", "--test")),
    ("generate-grid-is-plot", "generate --model {model} -n 2 --grid {d}/g.png --plot {d}/g.png", ("--grid", "--plot")),
]


@pytest.mark.parametrize("case", OVERWRITES, ids=[c[0] for c in OVERWRITES])
def test_no_output_is_written_over_an_input_or_another_output(case, x_files, tiny_model_path):
    from moldesign.cli import app

    name, template, options = case
    before = {p.name: p.read_bytes() for p in x_files["d"].iterdir() if p.is_file()}
    r = runner.invoke(app, _argv(template, {**x_files, "model": tiny_model_path}))
    assert r.exit_code == 2, f"{name}: exit {r.exit_code}\n{r.output}"
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert all(f"{opt} " in lines[0] for opt in options), lines[0]
    after = {p.name: p.read_bytes() for p in x_files["d"].iterdir() if p.is_file()}
    assert after == before  # the input intact, no output started


def test_check_no_overwrite_is_the_one_check_every_command_can_call(tmp_path):
    """For `optimize` too: --best / -o / --grid against each other and --start FILE."""
    from moldesign.cli.common import check_no_overwrite
    from moldesign.errors import UserError

    start = tmp_path / "starts.csv"
    start.write_text("smiles\nCCO\n")
    with pytest.raises(UserError, match="--out .* and --best .* are the same file"):
        check_no_overwrite({"--start": start}, {"--out": tmp_path / "t.csv", "--best": tmp_path / "t.csv"})
    with pytest.raises(UserError, match="--best .* would overwrite the input file --start"):
        check_no_overwrite({"--start": str(start)}, {"--out": None, "--best": start})
    check_no_overwrite({"--start": "C" * 500, "--model": None}, {"--out": tmp_path / "o.csv", "--grid": None})


# ------------------------------------------------------------------ round 2b: batches with nothing valid
NOTHING_VALID = [  # (id, argv, what the line says there is none of)
    ("screen", "screen {bad} --workers 1", "molecule among the 3 rows of {bad}"),
    ("generate-seed-file", "generate --model {model} --like {bad} -n 2", "molecule from any of the 3 seeds of {bad}"),
    ("reconstruct-file", "reconstruct {bad} --model {model}", "reconstruction among the 3 rows of {bad}"),
]


@pytest.mark.parametrize("to_file", [True, False], ids=["file", "stdout"])
@pytest.mark.parametrize("case", NOTHING_VALID, ids=[c[0] for c in NOTHING_VALID])
def test_a_batch_with_nothing_valid_writes_every_row_flagged_and_exits_1(case, to_file, tmp_path, tiny_model_path):
    import io

    from moldesign.cli import app

    name, template, what = case
    bad = tmp_path / "bad.smi"
    bad.write_text("not_a_smiles\nC1CC\nc1cccc1\n")
    out = tmp_path / "out.csv"
    argv = _argv(template, {"bad": bad, "model": tiny_model_path}) + (["-o", str(out)] if to_file else [])
    r = runner.invoke(app, argv)
    assert r.exit_code == 1, f"{name}: exit {r.exit_code}\n{r.output}"
    lines = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: no valid {what.format(bad=bad)} (3 rows written to {out if to_file else 'stdout'}, "
                     "each with its error)"], r.stderr
    df = pd.read_csv(out if to_file else io.StringIO(r.stdout), keep_default_na=False)
    assert len(df) == 3 and (df["error"] != "").all()
    assert "valid" not in df or not df["valid"].any()


def test_an_interpolation_with_no_valid_step_writes_the_path_and_exits_1(tmp_path, tiny_model_path, monkeypatch):
    import moldesign.design.interpolate
    from moldesign.cli import app

    monkeypatch.setattr(moldesign.design.interpolate, "decode", lambda bundle, z, cond, **kw: ["C1CC"] * len(z))
    out = tmp_path / "path.csv"
    r = runner.invoke(app, ["interpolate", "CCO", "CCCN", "--model", str(tiny_model_path), "--steps", "4",
                            "-o", str(out), "-q"])
    assert r.exit_code == 1, r.output
    errors = [line for line in r.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == [f"error: no valid step on the path from CCO to CCCN (4 rows written to {out}, each with its error)"]
    df = pd.read_csv(out)
    assert len(df) == 4 and not df["valid"].any() and df["error"].str.startswith("invalid decode").all()


def test_a_seed_file_flags_a_salt_row_and_goes_on(tmp_path, tiny_model_path, reconstructed_smiles):
    from moldesign.cli import app

    seeds = tmp_path / "seeds.csv"
    pd.DataFrame({"id": ["salt", "good"], "smiles": ["[Na+].[Cl-]", reconstructed_smiles[0]]}).to_csv(seeds, index=False)
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["generate", "--model", str(tiny_model_path), "--like", str(seeds), "-n", "2",
                            "--radius", "1.5", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, keep_default_na=False)
    salt = df[df["seed_id"] == "salt"]
    assert len(salt) == 1 and salt["valid"].tolist() == [False] and "no organic part" in salt["error"].iat[0]
    assert df.loc[df["seed_id"] == "good", "valid"].all()


# ------------------------------------------------------------------ round 2b: the API's own bounds
@pytest.mark.parametrize("call,message", [
    (lambda d: d.generate(n=10**9), "-n must be at most 100,000, got 1,000,000,000"),
    (lambda d: d.generate("CCO", n=10**9, raw=True), "-n must be at most 100,000"),
    (lambda d: d.generate_raw_chunks(n=10**9), "-n must be at most 100,000"),
    (lambda d: d.generate(n=5, max_attempts=10**9), "--max-attempts must be at most 2,000,000"),
    (lambda d: d.generate("CCO", n=5, radius=1e6), "--radius must be <= 100, got 1e+06"),
    (lambda d: d.generate(n=5, temperature=1e6), "--temperature must be <= 100"),
    (lambda d: d.generate(n=5, seed=-3), "--seed must be >= 0, got -3"),
    (lambda d: d.generate(n=5, seed=2**40), "--seed must be at most 4,294,967,295"),
    (lambda d: d.interpolate("CCO", "CCN", steps=10**6), "--steps must be at most 1,000, got 1,000,000"),
    (lambda d: d.interpolate("CCO", "CCN", beam=10**6), "--beam must be at most 100"),
    (lambda d: d.molecule("[Na+].[Cl-]"), "no organic part to design from"),
], ids=["n", "n-raw", "n-raw-chunks", "max-attempts", "radius", "temperature", "seed-negative", "seed-huge",
        "interpolate-steps", "interpolate-beam", "salt-seed"])
def test_the_api_refuses_what_the_cli_refuses_before_any_work(call, message, tiny_bundle):
    from moldesign.api import Designer
    from moldesign.errors import DesignInputError

    t0 = time.time()
    with pytest.raises(DesignInputError, match=re.escape(message)):
        call(Designer(tiny_bundle))
    assert time.time() - t0 < 5


def test_the_cli_and_the_api_share_one_set_of_limits():
    from moldesign.cli import common
    from moldesign.design import rules

    for name in ("SEED_MAX", "MAX_GENERATE", "MAX_DECODES", "MAX_PATH_STEPS", "MAX_OPT_STEPS", "MAX_CHAINS",
                 "MAX_OPT_DECODES"):
        assert getattr(common, name) == getattr(rules, name), name


# ------------------------------------------------------------------ round 2b: a long SMILES argument
def test_reconstruct_reads_a_500_character_argument_as_a_smiles(tmp_path, tiny_model_path):
    """Path(arg).is_file() raised "File name too long" (exit 1, an OS error): the argument is a
    SMILES too long for the model, so its one row is written with the error, exit 1 as for any
    SMILES the model cannot encode."""
    from moldesign.cli import app

    out = tmp_path / "r.csv"
    r = runner.invoke(app, ["reconstruct", "C" * 500, "--model", str(tiny_model_path), "-o", str(out), "-q"])
    assert r.exit_code == 1, r.output
    line = r.stderr.strip()
    assert line.startswith("error: no valid reconstruction of CCCC") and "not encodable" in line, line
    assert "File name too long" not in line and len(line.splitlines()) == 1
    df = pd.read_csv(out)
    assert df["input"].tolist() == ["C" * 500] and df["error"].iat[0].startswith("not encodable")
