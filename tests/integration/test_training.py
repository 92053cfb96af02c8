"""Training mechanics on a few dozen molecules: resume is exact, metrics and config are written."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from moldesign.model import checkpoint
from moldesign.config import load_toml
from moldesign.training.loop import beta_at, lr_at, train

from ..conftest import TINY_MODEL, TINY_TRAIN


@pytest.fixture
def small_run(tmp_path, tiny_smiles):
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": tiny_smiles[:41]}).to_csv(data, index=False)
    cfg = dataclasses.replace(TINY_TRAIN, data=str(data), epochs=3, batch_size=8, word_dropout=0.1, kl_max=0.5,
                              free_bits=0.05)
    return tmp_path, cfg


def test_resume_continues_the_same_run(small_run):
    tmp, cfg = small_run
    full = train(TINY_MODEL, cfg, tmp / "full" / "m.pt", log=lambda m: None, progress=False)
    torch.manual_seed(123)  # resume must not depend on the caller's RNG state
    train(TINY_MODEL, dataclasses.replace(cfg, stop_after_steps=7), tmp / "part" / "m.pt", log=lambda m: None,
          progress=False)
    half = checkpoint.load(tmp / "part" / "m.pt")
    assert half.train_state["step"] == 7 and half.optimizer_state is not None
    resumed = train(TINY_MODEL, cfg, tmp / "resumed" / "m.pt", resume=tmp / "part" / "m.pt",
                    log=lambda m: None, progress=False)
    assert resumed.train_state["step"] == full.train_state["step"] == 15  # 40 molecules / 8 × 3 epochs
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_run_writes_metrics_and_resolved_config(small_run):
    tmp, cfg = small_run
    out = tmp / "run" / "m.pt"
    bundle = train(TINY_MODEL, cfg, out, log=lambda m: None, progress=False)
    metrics = pd.read_csv(tmp / "run" / "metrics.csv")
    assert {"loss", "recon", "kl", "active_units", "val_reconstruction", "val_prior_validity"} <= set(metrics.columns)
    assert metrics["step"].iloc[-1] == 15
    model_cfg, train_cfg = load_toml(str(out) + ".toml")
    assert model_cfg == dataclasses.replace(TINY_MODEL, vocab_size=len(bundle.vocab))
    assert train_cfg == cfg
    info = bundle.train_info
    assert info["steps"] == 15 and info["epochs"] == pytest.approx(3.0)
    assert len(info["kl_per_dim"]) == TINY_MODEL.latent_dim
    assert info["active_units"] == sum(k > 0.01 for k in info["kl_per_dim"])


def test_schedules():
    cfg = dataclasses.replace(TINY_TRAIN, lr=1e-3, lr_final=1e-4, kl_max=0.5, kl_warmup=0.2)
    assert lr_at(cfg, 0, 100) == pytest.approx(1e-3) and lr_at(cfg, 100, 100) == pytest.approx(1e-4)
    assert lr_at(cfg, 50, 100) == pytest.approx(5.5e-4)
    assert beta_at(cfg, 0, 100) == 0 and beta_at(cfg, 10, 100) == pytest.approx(0.25)
    assert beta_at(cfg, 20, 100) == beta_at(cfg, 90, 100) == 0.5


def test_resume_from_a_checkpoint_without_optimizer_state(small_run, monkeypatch):
    """Fresh AdamW moments: the run continues from its step, with the lr ramped up again from
    1/FRESH_MOMENTS_WARMUP of the schedule (a resume *with* moments follows the schedule exactly)."""
    from moldesign.training.loop import FRESH_MOMENTS_WARMUP

    tmp, cfg = small_run
    applied = []  # the decoder group's lr at every optimizer step
    step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        applied.append(self.param_groups[1]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    train(TINY_MODEL, dataclasses.replace(cfg, stop_after_steps=5), tmp / "a.pt", log=lambda m: None, progress=False)
    shipped = checkpoint.load(tmp / "a.pt")
    checkpoint.save(shipped, tmp / "ship.pt", include_optimizer=False)
    messages = []
    applied.clear()
    resumed = train(TINY_MODEL, cfg, tmp / "b.pt", resume=tmp / "ship.pt", log=messages.append, progress=False)
    assert any("AdamW moments start fresh" in m for m in messages)
    assert resumed.train_state["step"] == 15  # continued from step 5, not from 0
    expected = [lr_at(cfg, s, 15) * (s - 4) / FRESH_MOMENTS_WARMUP for s in range(5, 15)]
    np.testing.assert_allclose(applied, expected, rtol=1e-9)
    applied.clear()
    train(TINY_MODEL, cfg, tmp / "c.pt", resume=tmp / "a.pt", log=lambda m: None, progress=False)  # with moments
    np.testing.assert_allclose(applied, [lr_at(cfg, s, 15) for s in range(5, 15)], rtol=1e-9)


def test_batchnorm_statistics_are_recalibrated_on_random_batches(tiny_bundle, tiny_smiles):
    """Eval-mode encodings must not depend on which length bucket training saw last."""
    import copy

    from moldesign.data import encode_table
    from moldesign.training.loop import recalibrate_batchnorm

    table = pd.DataFrame({"smiles": tiny_smiles})
    from moldesign.chem import PROPERTIES, properties_array

    table[list(PROPERTIES)] = properties_array(tiny_smiles)
    data, _ = encode_table(table, tiny_bundle.vocab, tiny_bundle.scaler, tiny_bundle.config.max_len)
    ids = torch.from_numpy(data.ids[:20])
    cond = torch.from_numpy(data.cond[:20])
    runs = []
    for garbage in (0.0, 50.0):
        model = copy.deepcopy(tiny_bundle.model)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.fill_(garbage)
                m.running_var.fill_(1.0 + garbage)
        recalibrate_batchnorm(model, data, n_batches=5, batch_size=32, seed=3)
        model.eval()
        with torch.no_grad():
            runs.append(model.encode(ids, cond)[0])
        assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    torch.testing.assert_close(runs[0], runs[1])  # the previous statistics are forgotten
    other = copy.deepcopy(tiny_bundle.model)
    recalibrate_batchnorm(other, data, n_batches=5, batch_size=32, seed=4)
    other.eval()
    with torch.no_grad():
        mu_other = other.encode(ids, cond)[0]
    assert (mu_other - runs[0]).abs().max() < 0.25 * runs[0].abs().max()  # another random sample: close


@pytest.mark.parametrize("mode", ["input", "both"])
def test_randomized_training_runs_resumes_exactly_and_records_its_settings(small_run, mode, monkeypatch):
    tmp, cfg = small_run
    monkeypatch.setenv("MOLDESIGN_CACHE", str(tmp / "cache"))
    cfg = dataclasses.replace(cfg, randomize=mode, random_variants=3, enc_lr_scale=2.0)
    full = train(TINY_MODEL, cfg, tmp / "full" / "m.pt", log=lambda m: None, progress=False)
    train(TINY_MODEL, dataclasses.replace(cfg, stop_after_steps=7), tmp / "part" / "m.pt", log=lambda m: None,
          progress=False)
    resumed = train(TINY_MODEL, cfg, tmp / "res" / "m.pt", resume=tmp / "part" / "m.pt", log=lambda m: None,
                    progress=False)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    stored = checkpoint.load(tmp / "full" / "m.pt").train_info["train_config"]
    assert stored["randomize"] == mode and stored["random_variants"] == 3 and stored["enc_lr_scale"] == 2.0
    assert len(list((tmp / "cache" / "variants").glob("*.npz"))) == 1  # computed once, reused by the resume
