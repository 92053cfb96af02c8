"""Latent surrogate: fitting, R², checkpoint round trip (weights_only)."""
import copy

import numpy as np
import pytest
import torch

from moldesign.model import checkpoint
from moldesign.chem import mol_scores, mol_from_smiles
from moldesign.model.surrogate import TARGETS, Surrogate
from moldesign.training.fitting import fit_surrogate, r2_scores, training_targets


@pytest.fixture(scope="module")
def fitted(tiny_bundle, tiny_smiles):
    return fit_surrogate(tiny_bundle, tiny_smiles, hidden=(64, 64), epochs=300, batch_size=32, noise=0.0, seed=0)


def test_r2_scores():
    y = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    r2 = r2_scores(y, y, ["a", "b"])
    assert r2["a"] == 1.0 and np.isnan(r2["b"])  # constant column: R² undefined
    assert r2_scores(y, np.full_like(y, 2.0), ["a", "b"])["a"] == 0.0  # predicting the mean


def test_targets_come_from_rdkit(tiny_bundle, tiny_smiles):
    smiles, y = training_targets(tiny_bundle, tiny_smiles[:5] + ["C1CC", "C" * 80])
    assert smiles == tiny_smiles[:5]  # invalid and too-long molecules are left out (and reported)
    for s, row in zip(smiles, y):
        truth = mol_scores(mol_from_smiles(s))
        np.testing.assert_allclose(row, [truth[k] for k in TARGETS])


def test_fit_reports_held_out_r2_and_learns(fitted, tiny_smiles):
    sur, report = fitted
    assert set(report["r2"]) == set(TARGETS) == set(report["mae"]) == set(report["r2_fit"])
    assert report["n_train"] + report["n_test"] == len(tiny_smiles) and report["n_test"] >= 2
    assert sur.metrics["r2"] == report["r2"]
    # the MLP must at least fit the molecules it was trained on (noise=0: inputs are μ)
    assert min(report["r2_fit"].values()) > 0.8, report["r2_fit"]
    # the five conditioned properties are inputs too ([z, c]), so they are predicted on unseen molecules
    assert min(report["r2"][k] for k in ("mw", "logp", "tpsa")) > 0.8, report["r2"]
    # decoded check: the tiny model reconstructs its own molecules, so most held-out decodes are valid
    assert report["decoded_valid"] > 0.5 and set(report["r2_decoded"]) == set(TARGETS)
    assert sur.metrics["r2_decoded"] == report["r2_decoded"]


def test_joint_input_round_trip(tiny_bundle):
    from moldesign.model.surrogate import joint_input, split_input

    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    cond = np.array([[300.0, 2.0, 1.0, 4.0, 60.0]] * 3)
    u = joint_input(tiny_bundle, z, cond)
    assert u.shape == (3, 21) and u.dtype == np.float32
    np.testing.assert_allclose(u[:, 16:], tiny_bundle.scaler.transform(cond))
    z2, c2 = split_input(tiny_bundle, u)
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_allclose(c2, cond, rtol=1e-5)


def test_surrogate_is_differentiable_in_z_and_c(fitted):
    sur, _ = fitted
    u = torch.zeros(2, sur.input_dim, requires_grad=True)  # [z (16), c (5)]
    sur(u)[:, TARGETS.index("qed")].sum().backward()
    assert u.grad is not None and u.grad[:, :16].abs().sum() > 0 and u.grad[:, 16:].abs().sum() > 0


def saved_with(sur, tiny_bundle, path):
    """The tiny model with `sur` attached, saved to `path`; returns the raw weights_only dict."""
    bundle = copy.copy(tiny_bundle)  # the session bundle stays without a surrogate
    bundle.surrogate = sur
    checkpoint.save(bundle, path)
    return torch.load(path, weights_only=True)


def test_checkpoint_round_trip_with_weights_only(fitted, tiny_bundle, tmp_path):
    sur, _ = fitted
    path = tmp_path / "with_surrogate.pt"
    raw = saved_with(sur, tiny_bundle, path)  # plain dicts and tensors only
    cfg = raw["surrogate_config"]
    assert cfg["targets"] == list(TARGETS) and isinstance(cfg["mean"][0], float)
    assert all(torch.is_tensor(v) for v in raw["surrogate_state_dict"].values())
    loaded = checkpoint.load(path)
    assert isinstance(loaded.surrogate, Surrogate) and not loaded.surrogate.training
    u = np.random.default_rng(0).standard_normal((5, sur.input_dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.surrogate.predict(u), sur.predict(u))
    assert loaded.surrogate.metrics == sur.metrics


def test_from_state_rejects_other_versions(fitted):
    sur, _ = fitted
    cfg = {**sur.config_dict(), "version": 99}
    with pytest.raises(ValueError, match="surrogate format 99"):
        Surrogate.from_state(cfg, sur.state_dict())


def test_checkpoint_with_an_outdated_surrogate_loads_without_it(fitted, tiny_bundle, tmp_path):
    sur, _ = fitted
    path = tmp_path / "old.pt"
    raw = saved_with(sur, tiny_bundle, path)
    raw["surrogate_config"]["version"] = 1  # a z-only surrogate from an earlier moldesign
    torch.save(raw, path)
    with pytest.warns(UserWarning, match="surrogate format 1 is outdated"):
        loaded = checkpoint.load(path)
    assert loaded.surrogate is None and loaded.model is not None  # the VAE still works
