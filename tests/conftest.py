"""Shared fixtures: the committed MOSES sample and a tiny CVAE overfit on 100 of its molecules.

The tiny model is trained once per test session (about half a minute on 2 CPU cores) and is the
model every CLI and design test runs against, so the suite needs no download and no shipped model.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from moldesign.config import ModelConfig, TrainConfig
from moldesign.data import load_sample

TINY_MODEL = ModelConfig(
    max_len=64, embed_dim=32, conv_channels=(32, 32), conv_kernels=(5, 5), enc_hidden=128,
    latent_dim=16, dec_hidden=128, dec_layers=2,
)
TINY_TRAIN = TrainConfig(
    epochs=300, batch_size=32, lr=3e-3, lr_final=3e-4, kl_max=0.01, kl_warmup=0.5, free_bits=0.0,
    word_dropout=0.0, val_size=1, val_every_minutes=60, checkpoint_every_minutes=60, seed=0,
    num_threads=1,  # one thread: the suite also runs beside other jobs, and OpenMP oversubscription is slow
)
N_TINY = 100


@pytest.fixture(scope="session")
def sample() -> pd.DataFrame:
    return load_sample()


@pytest.fixture(scope="session")
def tiny_smiles(sample) -> list[str]:
    """101 short MOSES train molecules: one is held out for validation, 100 are trained on."""
    train = sample[sample["split"] == "train"]
    return train.sort_values("smiles", key=lambda s: s.str.len()).head(N_TINY + 1)["smiles"].tolist()


def _tiny_cache_key(smiles: list[str]) -> str:
    """Hash of everything that determines the tiny model: configs, molecules, training code."""
    import hashlib

    import moldesign

    h = hashlib.sha256(repr((TINY_MODEL, TINY_TRAIN, smiles)).encode())
    pkg = Path(moldesign.__file__).parent
    for name in ("checkpoint", "config", "data", "networks", "tokenizer", "training", "chem", "sampling"):
        h.update((pkg / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_model_path(request, tmp_path_factory, tiny_smiles) -> Path:
    """Checkpoint of the tiny CVAE overfit on `tiny_smiles`: trained once per session, and reused
    from pytest's cache while the training code and configs are unchanged (a fresh clone trains)."""
    import dataclasses
    import shutil

    from moldesign.training import train

    d = tmp_path_factory.mktemp("tiny")
    cache = Path(request.config.cache.mkdir("tiny_model")) / f"{_tiny_cache_key(tiny_smiles)}.pt"
    if cache.exists():
        shutil.copy(cache, d / "tiny.pt")
        return d / "tiny.pt"
    data = d / "tiny.csv"
    pd.DataFrame({"smiles": tiny_smiles}).to_csv(data, index=False)
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY_TRAIN, data=str(data))
    train(TINY_MODEL, cfg, d / "tiny.pt", log=lambda m: None, progress=False)
    shutil.copy(d / "tiny.pt", cache)
    return d / "tiny.pt"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model_path):
    from moldesign import checkpoint

    return checkpoint.load(tiny_model_path)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    """On-disk caches (screen --reference keys) go to a temporary folder, never the user's home."""
    monkeypatch.setenv("MOLDESIGN_CACHE", str(tmp_path_factory.mktemp("cache")))


def pytest_configure(config):
    # Small tensors: one thread is as fast, and it keeps the suite polite beside a training run.
    torch.set_num_threads(1)
