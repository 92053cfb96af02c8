"""Training pack: `data pack` writes arrays, and `train --data PACK.npz` runs and resumes on a
machine without RDKit (simulated by blocking the import), as on a borrowed GPU box."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from typer.testing import CliRunner

from moldesign.model import checkpoint
from moldesign.cli import app

from ..conftest import TINY_MODEL

NO_RDKIT = "import sys; sys.modules['rdkit'] = None; from moldesign.cli import app; app()"


def _config(tmp: Path, data: Path) -> Path:
    m = TINY_MODEL
    cfg = tmp / "run.toml"
    cfg.write_text(f"""[model]
max_len = {m.max_len}
embed_dim = {m.embed_dim}
conv_channels = {list(m.conv_channels)}
conv_kernels = {list(m.conv_kernels)}
enc_hidden = {m.enc_hidden}
latent_dim = {m.latent_dim}
dec_hidden = {m.dec_hidden}
dec_layers = {m.dec_layers}

[train]
data = "{data}"
epochs = 4.0
batch_size = 8
val_size = 5
num_threads = 1
save_optimizer = false
""")
    return cfg


def _train_without_rdkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_RDKIT, "train", *args, "-q"], capture_output=True, text=True,
                          timeout=600)


def test_pack_trains_and_resumes_without_rdkit(tmp_path, tiny_smiles):
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles[:45]}).to_csv(data, index=False)
    cfg = _config(tmp_path, data)
    pack = tmp_path / "pack.npz"
    r = CliRunner().invoke(app, ["data", "pack", "--config", str(cfg), "--out", str(pack), "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    n_train = report["n_train"]
    assert n_train + report["n_val"] == 45 and report["n_val"] >= 1
    with np.load(pack) as z:
        assert z["ids"].dtype == np.uint8 and z["ids"].shape[0] == n_train and z["cond"].shape == (n_train, 5)
    per_epoch = -(-n_train // 8)

    # the import block really blocks RDKit
    blocked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['rdkit'] = None; import moldesign.chem"],
                             capture_output=True, text=True)
    assert blocked.returncode != 0 and "import of rdkit halted" in blocked.stderr

    first = _train_without_rdkit("--config", str(cfg), "--data", str(pack), "--out", str(tmp_path / "a.pt"),
                                 "--epochs", "2")
    assert first.returncode == 0, first.stderr
    a = checkpoint.load(tmp_path / "a.pt")
    assert a.train_state["step"] == 2 * per_epoch and a.optimizer_state is None  # small file
    assert a.train_info["val_prior_validity"] is None and 0 <= a.train_info["val_token_acc"] <= 1
    resumed = _train_without_rdkit("--config", str(cfg), "--data", str(pack), "--resume", str(tmp_path / "a.pt"),
                                   "--out", str(tmp_path / "b.pt"))
    assert resumed.returncode == 0, resumed.stderr
    b = checkpoint.load(tmp_path / "b.pt")
    assert b.train_state["step"] == 4 * per_epoch and b.vocab.tokens == a.vocab.tokens
    assert any(not torch.equal(b.model.state_dict()[k], v) for k, v in a.model.state_dict().items())


def test_pack_must_match_the_resumed_checkpoint(tmp_path, tiny_smiles, tiny_model_path):
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles[50:100]}).to_csv(data, index=False)
    cfg = _config(tmp_path, data)
    pack = tmp_path / "pack.npz"
    assert CliRunner().invoke(app, ["data", "pack", "--config", str(cfg), "--out", str(pack), "-q"]).exit_code == 0
    r = CliRunner().invoke(app, ["train", "--config", str(cfg), "--data", str(pack), "--resume", str(tiny_model_path),
                                 "--out", str(tmp_path / "x.pt"), "-q"])
    assert r.exit_code == 2 and "differ from the checkpoint" in r.stderr
    bad = CliRunner().invoke(app, ["data", "pack", "--config", str(cfg), "--out", str(tmp_path / "p.csv")])
    assert bad.exit_code == 2 and ".npz" in bad.stderr


def test_a_randomized_pack_carries_its_variants_and_trains_without_rdkit(tmp_path, tiny_smiles, monkeypatch):
    """train.randomize needs RDKit to spell molecules at random: the pack carries the spellings."""
    monkeypatch.setenv("MOLDESIGN_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles[:45]}).to_csv(data, index=False)
    cfg = _config(tmp_path, data)
    cfg.write_text(cfg.read_text() + 'randomize = "input"\nrandom_variants = 3\n')
    pack = tmp_path / "pack.npz"
    r = CliRunner().invoke(app, ["data", "pack", "--config", str(cfg), "--out", str(pack), "-q"])
    assert r.exit_code == 0, r.output
    n_train = json.loads(r.stdout)["n_train"]
    with np.load(pack) as z:
        assert z["variant_ids"].shape[:2] == (3, n_train) and z["variant_ids"].dtype == np.uint8
        w = z["ids"].shape[1]  # ids pad to the longest canonical string, variants to max_len
        assert (z["variant_ids"][:, :, :w] != z["ids"][None]).any()  # other spellings than the canonical
    out = _train_without_rdkit("--config", str(cfg), "--data", str(pack), "--out", str(tmp_path / "r.pt"), "--epochs", "1")
    assert out.returncode == 0, out.stderr
    assert checkpoint.load(tmp_path / "r.pt").train_info["train_config"]["randomize"] == "input"
    # a pack made without randomize cannot feed a randomized run
    plain = tmp_path / "plain.npz"
    (tmp_path / "p").mkdir()
    plain_cfg = _config(tmp_path / "p", data)
    assert CliRunner().invoke(app, ["data", "pack", "--config", str(plain_cfg), "--out", str(plain), "-q"]).exit_code == 0
    refused = _train_without_rdkit("--config", str(cfg), "--data", str(plain), "--out", str(tmp_path / "x.pt"))
    assert refused.returncode == 2 and "no randomized SMILES" in refused.stderr
