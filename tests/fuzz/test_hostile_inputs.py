"""Hostile and careless input replayed against every command (issue 13's classes of cases).

Every case asserts the CLI contract: exit code 0, 1 or 2 (and the expected one where the class of
input fixes it), no traceback, one `error:` line on failure, no file at the output path after a
refusal or a failed write (a batch with nothing valid writes its flagged rows: README, exit
codes), no temp file left behind, and every input row present in batch outputs. Runs against the
tiny session model (tests/conftest.py) in about a minute.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import torch

from ..cli.common import runner

BIG = 10**23


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_path, tiny_smiles) -> dict[str, Path]:
    """Hostile input files and damaged checkpoints, made once."""
    d = tmp_path_factory.mktemp("hostile")
    f = {"d": d, "model": tiny_model_path}
    (d / "adir").mkdir()
    (d / "afile").write_text("x")
    f["good"] = d / "good.smi"
    f["good"].write_text("\n".join(tiny_smiles[:12] + ["not_a_smiles", "", "C" * 3 + "(" * 3]) + "\n")
    f["ragged"] = d / "ragged.csv"
    f["ragged"].write_text("smiles,id\nCCO,1\nCCN,2,extra,fields\nCCC\n")
    gz = gzip.compress(("smiles\n" + "CCO\n" * 5000).encode())
    f["trunc_csv_gz"] = d / "trunc.csv.gz"
    f["trunc_csv_gz"].write_bytes(gz[: len(gz) // 2])
    sdf = "".join(f"\n  x\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0    0.0    0.0 C   0  0\nM  END\n$$$$\n"
                  for _ in range(300))
    gz = gzip.compress(sdf.encode())
    f["trunc_sdf_gz"] = d / "trunc.sdf.gz"
    f["trunc_sdf_gz"].write_bytes(gz[: len(gz) // 2])
    f["garbage"] = d / "garbage.csv"
    f["garbage"].write_bytes(bytes(range(256)) * 40)
    f["empty"] = d / "empty.smi"
    f["empty"].write_text("")
    f["invalid"] = d / "invalid.smi"
    f["invalid"].write_text("foo\nbar\nC1CC\n")
    f["three"] = d / "three.smi"
    f["three"].write_text("CCO\nCCN\nCCC\n")
    f["huge"] = d / "huge.smi"
    f["huge"].write_text("C" * 500 + "\n")
    f["bad_toml"] = d / "bad.toml"
    f["bad_toml"].write_text("[train]\nbatch_size = 0\n")
    f["kernel_toml"] = d / "kernel.toml"
    f["kernel_toml"].write_text("[model]\nmax_len = 16\nconv_channels = [4]\nconv_kernels = [99]\n")
    f["new_tokens"] = d / "new_tokens.smi"
    f["new_tokens"].write_text("\n".join(["c1ccc2[se]ccc2c1", "[Se]CC[Te]C", "B(O)(O)c1ccccc1I"] * 4) + "\n")
    # damaged checkpoints: each one block broken
    ckpt = torch.load(tiny_model_path, weights_only=True)

    def damaged(name, change):
        c = {**ckpt}
        change(c)
        f[name] = d / f"{name}.pt"
        torch.save(c, f[name])

    damaged("bad_surrogate", lambda c: c.update(surrogate_config={"version": 2, "latent_dim": 3}, surrogate_state_dict={"w": torch.zeros(2)}))
    damaged("no_surrogate_config", lambda c: c.update(surrogate_state_dict={"w": torch.zeros(2)}))
    damaged("no_sample", lambda c: c.update(property_stats={k: v for k, v in c["property_stats"].items() if k != "sample"}))
    damaged("short_vocab", lambda c: c.update(vocab={**c["vocab"], "tokens": c["vocab"]["tokens"][:-3]}))
    damaged("bad_scaler", lambda c: c.update(scaler={"names": c["scaler"]["names"], "mean": [0.0], "std": "x"}))
    damaged("no_state", lambda c: c.pop("state_dict"))
    damaged("nan_scaler", lambda c: c.update(scaler={**c["scaler"], "std": [float("nan")] * 5}))
    return f


# (id, argv with {placeholders}, allowed exit codes, output path template or None)
CASES = [
    # numbers
    ("seed-negative", "generate --model {model} --seed -1 -n 2", {2}, None),
    ("seed-huge", f"generate --model {{model}} --seed {BIG} -n 2", {2}, None),
    ("seed-float", "generate --model {model} --seed 1e23 -n 2", {2}, None),
    ("evaluate-temp-nan", "evaluate --model {model} --temperature nan -n 5", {2}, None),
    ("evaluate-temp-inf", "evaluate --model {model} --temperature inf -n 5", {2}, None),
    ("evaluate-n-huge", "evaluate --model {model} -n 100000000", {2}, None),
    ("generate-temp-nan", "generate --model {model} --temperature nan -n 2", {2}, None),
    ("generate-radius-inf", "generate --model {model} --like CCO --radius inf -n 2", {2}, None),
    ("logp-1e300", "generate --model {model} --logp 1e300 -n 2", {2}, None),
    ("tpsa-1e9", "generate --model {model} --tpsa 1e9 -n 2", {2}, None),
    ("hba-1e20", "generate --model {model} --hba 1e20 -n 2", {2}, None),
    ("n-1e23", "generate --model {model} -n 1e23", {2}, None),
    ("n-huge-int", f"generate --model {{model}} -n {BIG}", {2}, None),
    ("interp-steps-100000", "interpolate CCO CCN --model {model} --steps 100000", {2}, None),
    ("optimize-steps-1e8", "optimize --start CCO --maximize qed --model {model} --steps 100000000", {2}, None),
    ("optimize-steps-1e12", "optimize --start CCO --maximize qed --model {model} --steps 1000000000000", {2}, None),
    ("optimize-chains-1e8", "optimize --start CCO --maximize qed --model {model} --chains 100000000", {2}, None),
    ("optimize-step-size-nan", "optimize --start CCO --maximize qed --model {model} --step-size nan", {2}, None),
    ("max-attempts-huge", f"generate --model {{model}} --max-attempts {BIG}", {2}, None),
    ("surrogate-workers-neg", "surrogate fit --model {model} --workers -1", {2}, None),
    ("screen-chunk-huge", f"screen {{good}} --chunk-size {BIG}", {2}, None),
    # input text
    ("like-space", "generate --model {model} --like 'CC O' -n 2", {2}, None),
    ("like-tab", "generate --model {model} --like 'CC\tO' -n 2", {2}, None),
    ("like-cxsmiles", "generate --model {model} --like 'CCO |$;;foo$|' -n 2", {2}, None),
    ("reconstruct-space", "reconstruct 'CC O' --model {model}", {2}, None),
    ("reconstruct-500-atoms", "reconstruct {huge} --model {model} -o {d}/rec.csv", {1}, None),  # the row, flagged
    ("reconstruct-500-atoms-arg", "reconstruct " + "C" * 500 + " --model {model}", {1}, None),
    ("screen-ragged", "screen {ragged} -o {d}/s1.csv", {2}, "{d}/s1.csv"),
    ("screen-trunc-csv-gz", "screen {trunc_csv_gz} -o {d}/s2.csv", {2}, "{d}/s2.csv"),
    ("screen-trunc-sdf-gz", "screen {trunc_sdf_gz} -o {d}/s3.csv", {2}, "{d}/s3.csv"),
    ("screen-garbage", "screen {garbage} -o {d}/s4.csv", {1, 2}, "{d}/s4.csv"),
    ("reconstruct-trunc-sdf-gz", "reconstruct {trunc_sdf_gz} --model {model}", {2}, None),
    ("reconstruct-ragged", "reconstruct {ragged} --model {model}", {2}, None),
    # output paths
    ("out-missing-dir", "generate --model {model} -n 2 -o {d}/nodir/x.csv", {2}, "{d}/nodir/x.csv"),
    ("out-is-dir", "generate --model {model} -n 2 -o {d}/adir", {2}, None),
    ("out-dir-with-suffix", "screen {good} -o {d}/adir.csv", {0}, "{d}/adir.csv"),
    ("out-proc", "generate --model {model} -n 2 -o /proc/moldesign-x.csv", {2}, "/proc/moldesign-x.csv"),
    ("out-parent-file", "screen {good} -o {d}/afile/x.csv", {2}, None),
    ("grid-missing-dir", "generate --model {model} -n 2 --grid {d}/nodir/g.png", {2}, None),
    ("grid-proc", "interpolate CCO CCN --model {model} --grid /proc/g.svg", {2}, None),
    ("best-parent-file", "optimize --start CCO --maximize qed --model {model} --best {d}/afile/b.csv", {2}, None),
    ("evaluate-out-dir", "evaluate --model {model} -n 5 -o {d}/nodir/e.json", {2}, None),
    ("train-out-parent-file", "train --data {three} --out {d}/afile/m.pt", {2}, None),
    ("surrogate-out-proc", "surrogate fit --model {model} -o /proc/s.pt", {2}, None),
    # checkpoints
    ("ckpt-bad-surrogate", "generate --model {bad_surrogate} -n 2", {0, 1}, None),
    ("ckpt-no-surrogate-config", "generate --model {no_surrogate_config} -n 2", {0, 1}, None),
    ("ckpt-no-sample", "generate --model {no_sample} -n 2", {2}, None),
    ("ckpt-short-vocab", "generate --model {short_vocab} -n 2", {2}, None),
    ("ckpt-bad-scaler", "generate --model {bad_scaler} -n 2", {2}, None),
    ("ckpt-nan-scaler", "reconstruct CCO --model {nan_scaler}", {2}, None),
    ("ckpt-no-state", "reconstruct CCO --model {no_state}", {2}, None),
    ("ckpt-not-a-checkpoint", "reconstruct CCO --model {ragged}", {2}, None),
    ("ckpt-directory", "reconstruct CCO --model {d}/adir", {2}, None),
    ("reconstruct-mismatched-vocab", "reconstruct {new_tokens} --model {model}", {1}, None),
    # train
    ("train-epochs-nan", "train --data {three} --out {d}/t.pt --epochs nan", {2}, "{d}/t.pt"),
    ("train-epochs-inf", "train --data {three} --out {d}/t.pt --epochs inf", {2}, "{d}/t.pt"),
    ("train-batch-0", "train --config {bad_toml} --data {good} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-kernel", "train --config {kernel_toml} --data {good} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-device-tpu", "train --data {three} --out {d}/t.pt --device tpu", {2}, "{d}/t.pt"),
    ("train-empty", "train --data {empty} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-all-invalid", "train --data {invalid} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-three", "train --data {three} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-garbage", "train --data {garbage} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-config-dir", "train --config {d}/adir --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-resume-new-tokens", "train --resume {model} --data {new_tokens} --out {d}/t.pt", {2}, "{d}/t.pt"),
    ("train-seed-neg", "train --data {three} --out {d}/t.pt --seed -5", {2}, "{d}/t.pt"),
    # data / surrogate
    ("moses-data-dir-file", "data moses --data-dir {afile}", {1, 2}, None),
    ("moses-data-dir-proc", "data moses --data-dir /proc/moldesign", {1, 2}, None),
    ("zinc-from-garbage", "data zinc250k --from {garbage} --data-dir {d}/z", {1, 2}, None),
    ("surrogate-garbage", "surrogate fit --model {model} --data {garbage} -n 20 -o {d}/s.pt", {1, 2}, "{d}/s.pt"),
    # resume misuse
    ("screen-resume-stdout", "screen {good} --resume", {2}, None),
]


def _argv(template: str, files: dict) -> list[str]:
    import shlex

    fmt = {k: str(v) for k, v in files.items()}
    fmt["afile"] = str(files["d"] / "afile")
    return [a.format(**fmt) for a in shlex.split(template.replace("\t", "\\t").replace("\\t", "\t"))]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_follows_the_contract(case, files):
    from moldesign.cli import app

    name, template, codes, out = case
    before = {p.name for p in files["d"].iterdir()}
    argv = _argv(template, files)
    r = runner.invoke(app, argv)
    assert r.exit_code in codes, f"{name}: exit {r.exit_code}, expected {codes}\n{r.output}"
    assert "Traceback" not in r.output and "Aborted!" not in r.output, r.output
    if r.exit_code:
        lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
        assert lines and lines[-1].startswith("error: "), r.stderr
        assert len([line for line in lines if line.startswith("error: ")]) == 1, r.stderr
        if out is not None:
            assert not Path(out.format(d=files["d"])).exists(), f"{name}: output left after a failure"
    after = {p.name for p in files["d"].iterdir()}
    assert not [p for p in after - before if p.endswith(".tmp") or p.endswith(".parts")], after - before
    for p in after - before:  # keep the shared folder as it was for the next case
        q = files["d"] / p
        if q.is_file():
            q.unlink()


def test_damaged_surrogate_loads_the_model_with_a_warning(files):
    from moldesign.model import checkpoint

    with pytest.warns(UserWarning, match="surrogate block is damaged"):
        b = checkpoint.load(files["bad_surrogate"])
    assert b.surrogate is None and b.model is not None


def test_screen_keeps_every_row_of_a_hostile_batch(files):
    from moldesign.cli import app

    out = files["d"] / "rows.csv"
    r = runner.invoke(app, ["screen", str(files["good"]), "-o", str(out), "-q", "--workers", "1"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, keep_default_na=False)
    n_rows = len(files["good"].read_text().splitlines())
    assert df["row"].tolist() == list(range(1, n_rows + 1))
    assert (df["valid"] == False).sum() >= 2 and (df.loc[df["valid"] == False, "error"] != "").all()  # noqa: E712
    out.unlink()


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(files, monkeypatch):
    from moldesign.cli import app, common
    from moldesign.cli import evaluate as evaluate_cli  # reconstruct looks load_bundle up there

    def boom(*a, **k):
        raise ZeroDivisionError("something nobody expected")

    monkeypatch.setattr(evaluate_cli, "load_bundle", boom)
    r = runner.invoke(app, ["reconstruct", "CCO", "--model", str(files["model"])])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip() == ("error: unexpected ZeroDivisionError: something nobody expected "
                                "(run with --debug for the traceback)")
    r = runner.invoke(app, ["--debug", "reconstruct", "CCO", "--model", str(files["model"])])
    assert r.exit_code == 1 and isinstance(r.exception, ZeroDivisionError)
    monkeypatch.setattr(common, "DEBUG", False)  # --debug set it; undo for the tests after


def test_stdout_to_dev_full_is_exit_1_without_traceback(files):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, str(repo / "cli.py"), "screen", str(files["good"]), "-q", "--workers", "1"],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
