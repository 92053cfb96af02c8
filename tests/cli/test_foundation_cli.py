"""`moldesign --help`, `moldesign data moses`, `moldesign train` through typer's CliRunner."""
import json

import pandas as pd
import pytest
import torch

from moldesign.cli import app
from moldesign.data import MOSES_SPLITS

from .common import one_line_error, runner


TINY_TOML = """
[model]
embed_dim = 16
conv_channels = [16]
conv_kernels = [3]
enc_hidden = 32
latent_dim = 8
dec_hidden = 32
dec_layers = 2
[train]
epochs = 2
batch_size = 16
val_size = 2
num_threads = 1
"""


def test_help_lists_every_subcommand():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("data", "train"):
        assert cmd in result.output


def test_version_prints_the_package_version_and_exits_0():
    import subprocess
    import sys

    import moldesign

    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"moldesign {moldesign.__version__}\n")
    assert runner.invoke(app, ["--version", "train", "--out", "x.txt"]).stdout == result.stdout  # eager: no command runs
    proc = subprocess.run([sys.executable, "-m", "moldesign.cli", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, result.stdout, "")


def test_data_moses_is_idempotent(tmp_path):
    for split in MOSES_SPLITS:  # already-prepared tables: the command must not download anything
        pd.DataFrame({"smiles": ["CCO", "CCN"]}).to_parquet(tmp_path / f"{split}.parquet")
    result = runner.invoke(app, ["data", "moses", "--data-dir", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert all(report[s]["skipped"] and report[s]["n"] == 2 for s in MOSES_SPLITS)


def test_data_moses_bad_workers():
    assert "--workers must be >= 0, got -1" in one_line_error(runner.invoke(app, ["data", "moses", "--workers", "-1"]))


@pytest.fixture
def run_files(tmp_path, tiny_smiles):
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(tiny_smiles[:40]) + "\nnot_a_smiles\n")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return tmp_path, data, config


def test_train_then_resume(run_files):
    tmp, data, config = run_files
    out = tmp / "out" / "m.pt"
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["epochs"] == pytest.approx(2.0) and summary["molecules_seen"] == 76  # 38 train × 2
    assert (tmp / "out" / "metrics.csv").exists() and (tmp / "out" / "m.pt.toml").exists()
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(tmp / "r.pt"),
                                 "--resume", str(out), "--epochs", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert torch.load(tmp / "r.pt", weights_only=True)["train_info"]["molecules_seen"] == 114


def test_train_reports_invalid_rows(run_files):
    tmp, data, config = run_files
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(tmp / "m.pt"),
                                 "--epochs", "0.1"])
    assert result.exit_code == 0
    assert "1 of 41 rows invalid and skipped (row 41: 'not_a_smiles')" in result.output


@pytest.mark.parametrize("args, message", [
    (["--config", "missing.toml"], "config file not found"),
    (["--out", "model.ckpt"], "--out must end in .pt"),
    (["--resume", "nope.pt"], "--resume file not found"),
    (["--data", "nope.csv"], "file not found: nope.csv"),
    (["--epochs", "0"], "epochs must be positive"),
])
def test_train_bad_input(run_files, args, message):
    tmp, data, config = run_files
    base = {"--config": str(config), "--data": str(data), "--out": str(tmp / "m.pt")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    result = runner.invoke(app, ["train", *[x for kv in base.items() for x in kv], "-q"])
    assert message in one_line_error(result)


def test_train_bad_config_key(run_files):
    tmp, data, config = run_files
    config.write_text(TINY_TOML + "\nlearning_rate = 3\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(tmp / "m.pt")])
    assert "unknown key(s) in [train]: learning_rate" in one_line_error(result)
