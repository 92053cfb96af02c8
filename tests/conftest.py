"""Shared fixtures: the committed MOSES sample and a tiny CVAE overfit on 100 of its molecules.

The tiny model is trained once per test session (about half a minute on 2 CPU cores) and is the
model every CLI and design test runs against, so the suite needs no download and no shipped model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
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

    # torch's version too: its kernels decide the trained weights (so does the CPU, see tiny_model_path)
    h = hashlib.sha256(repr((TINY_MODEL, TINY_TRAIN, smiles, torch.__version__)).encode())
    pkg = Path(moldesign.__file__).parent
    for name in ("model/checkpoint", "config", "data", "model/networks", "model/tokenizer", "training/loop",
                 "training/randomize", "chem", "decoding/sampling"):
        h.update((pkg / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_model_path(request, tmp_path_factory, tiny_smiles) -> Path:
    """Checkpoint of the tiny CVAE overfit on `tiny_smiles`: trained once per session, and reused
    from pytest's cache while the training code and configs are unchanged (a fresh clone trains;
    so does a run with `-p no:cacheprovider`, which has no cache).

    The weights are the same on every run of one machine, but NOT across machines: float rounding
    in the CPU's kernels (AVX2 vs AVX-512 paths of MKL/oneDNN/ATen) differs, and 300 epochs of
    Adam amplify it into a different model that decodes different molecules. Tests therefore
    assert what any such tiny model does (see `seed_smiles`), never one machine's decodes."""
    import dataclasses
    import shutil

    from moldesign.training.loop import train

    d = tmp_path_factory.mktemp("tiny")
    cache_dir = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = Path(cache_dir.mkdir("tiny_model")) / f"{_tiny_cache_key(tiny_smiles)}.pt" if cache_dir else None
    if cache is not None and cache.exists():
        shutil.copy(cache, d / "tiny.pt")
        return d / "tiny.pt"
    data = d / "tiny.csv"
    pd.DataFrame({"smiles": tiny_smiles}).to_csv(data, index=False)
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY_TRAIN, data=str(data))
    train(TINY_MODEL, cfg, d / "tiny.pt", log=lambda m: None, progress=False)
    if cache is not None:
        shutil.copy(d / "tiny.pt", cache)
    return d / "tiny.pt"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_model_path):
    from moldesign.model import checkpoint

    return checkpoint.load(tiny_model_path)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    """On-disk caches (screen --reference keys) go to a temporary folder, never the user's home."""
    monkeypatch.setenv("MOLDESIGN_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def reconstructed_smiles(tiny_bundle, tiny_smiles) -> list[str]:
    """The training molecules this tiny model decodes back exactly and robustly: the greedy decode
    of the molecule's own μ and properties gives the molecule, alone and in a batch of 64 copies
    (batch size can change float rounding). Which molecules these are differs between machines;
    tests that need "a molecule the model reconstructs" take them from here, not tiny_smiles[0]."""
    from moldesign.chem import properties_array
    from moldesign.decoding.sampling import decode, encode

    props = properties_array(tiny_smiles)  # (101, 5)
    mu, _ = encode(tiny_bundle, tiny_smiles, props)  # (101, Z), one batch
    found = []
    for i, s in enumerate(tiny_smiles):
        mu1, _ = encode(tiny_bundle, [s], props[i : i + 1])  # (1, Z): as the design commands encode a seed
        outs = decode(tiny_bundle, np.repeat(np.vstack([mu1, mu[i : i + 1]]), 32, axis=0),
                      np.repeat(props[i : i + 1], 64, axis=0))  # 64 greedy decodes in one batch
        if all(o == s for o in outs) and decode(tiny_bundle, mu1, props[i : i + 1]) == [s]:
            found.append(s)
        if len(found) == 3:
            break
    assert len(found) >= 2, "the tiny model reconstructs fewer than 2 of its training molecules"
    return found


@pytest.fixture(scope="session")
def seed_smiles(reconstructed_smiles) -> str:
    """A training molecule that the tiny model reconstructs (radius 0 decodes it and nothing else)."""
    return reconstructed_smiles[0]


def pytest_configure(config):
    # Small tensors: one thread is as fast, and it keeps the suite polite beside a training run.
    torch.set_num_threads(1)
