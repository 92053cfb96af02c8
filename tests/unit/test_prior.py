"""GMM prior: fitted on μ of training molecules, stored in the checkpoint, used for prior sampling."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from moldesign.model import checkpoint
from moldesign.model.prior import GaussianMixturePrior, PriorError, draw_latents
from moldesign.training.fitting import fit_gmm, fit_prior
from moldesign.decoding.sampling import encode, sample_prior


@pytest.fixture(scope="module")
def gmm_bundle(tiny_model_path, tiny_smiles):
    bundle = checkpoint.load(tiny_model_path)
    bundle.prior, report = fit_prior(bundle, tiny_smiles, n_components=2, seed=0)
    return bundle, report


def test_gmm_recovers_two_separated_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 0.5, (300, 4)), rng.normal(3, 0.5, (100, 4))])
    g = fit_gmm(x, n_components=2, seed=0)
    order = np.argsort(g.means[:, 0])
    assert g.weights[order] == pytest.approx([0.75, 0.25], abs=0.05)
    assert g.means[order][:, 0] == pytest.approx([-3, 3], abs=0.2)
    draws = g.sample(4000, np.random.default_rng(1))
    assert (draws[:, 0] > 0).mean() == pytest.approx(0.25, abs=0.03)
    assert draws.std(0) == pytest.approx(x.std(0), rel=0.1)


def test_prior_samples_lie_where_the_training_latents_are(gmm_bundle, tiny_smiles):
    bundle, report = gmm_bundle
    mu, _ = encode(bundle, tiny_smiles)
    z = draw_latents(bundle, 2000, np.random.default_rng(0), "gmm")
    assert z.shape == (2000, bundle.config.latent_dim) and z.dtype == np.float32
    assert np.abs(z.mean(0) - mu.mean(0)).max() < 0.15 * float(mu.std(0).max()) + 0.05
    assert report["n_fit"] == len(tiny_smiles) and report["components"] == 2
    normal = draw_latents(bundle, 10, np.random.default_rng(0), "normal")
    assert normal == pytest.approx(np.random.default_rng(0).standard_normal((10, bundle.config.latent_dim)).astype(np.float32))


def test_checkpoint_round_trip_gives_identical_samples(gmm_bundle, tmp_path):
    bundle, _ = gmm_bundle
    checkpoint.save(bundle, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["prior"]["type"] == "gmm"
    again = checkpoint.load(tmp_path / "m.pt")
    assert sample_prior(again, 20, seed=3)[0] == sample_prior(bundle, 20, seed=3)[0]
    assert sample_prior(again, 20, seed=3, prior="normal")[0] != sample_prior(again, 20, seed=3, prior="gmm")[0]


def test_asking_for_a_missing_gmm_is_an_error(tiny_bundle):
    assert tiny_bundle.prior is None
    with pytest.raises(PriorError, match="no fitted GMM"):
        draw_latents(tiny_bundle, 5, np.random.default_rng(0), "gmm")
    with pytest.raises(PriorError, match="unknown prior"):
        draw_latents(tiny_bundle, 5, np.random.default_rng(0), "uniform")


def test_a_damaged_prior_block_loads_the_model_with_a_warning(gmm_bundle, tmp_path):
    bundle, _ = gmm_bundle
    checkpoint.save(bundle, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    raw["prior"]["means"] = raw["prior"]["means"][:, :3]
    torch.save(raw, tmp_path / "bad.pt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        loaded = checkpoint.load(tmp_path / "bad.pt")
    assert loaded.prior is None and any("prior is damaged" in str(x.message) for x in w)
    with pytest.raises(PriorError, match="shapes"):
        GaussianMixturePrior.from_dict(raw["prior"])


def test_prior_fit_cli_writes_the_prior(tiny_model_path, tiny_smiles, tmp_path):
    from typer.testing import CliRunner

    from moldesign.cli import app

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(tiny_smiles) + "\n")
    out = tmp_path / "with_prior.pt"
    r = CliRunner().invoke(app, ["prior", "fit", "--data", str(data), "-n", "100", "--components", "2",
                                 "--model", str(tiny_model_path), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_fit"] == 100
    assert checkpoint.load(out).prior.n_components == 2
    bad = CliRunner().invoke(app, ["prior", "fit", "--data", str(data), "--components", "0",
                                   "--model", str(tiny_model_path), "-o", str(out)])
    assert bad.exit_code == 2 and "--components" in bad.stderr


def test_generate_prior_option(tiny_model_path, gmm_bundle, tmp_path):
    from typer.testing import CliRunner

    from moldesign.cli import app

    bundle, _ = gmm_bundle
    with_gmm = tmp_path / "gmm.pt"
    checkpoint.save(bundle, with_gmm)
    runner = CliRunner()
    no_gmm = runner.invoke(app, ["generate", "--model", str(tiny_model_path), "--prior", "gmm", "-n", "3", "--raw", "-q"])
    assert no_gmm.exit_code == 2 and "no fitted GMM prior" in no_gmm.stderr
    runs = {p: runner.invoke(app, ["generate", "--model", str(with_gmm), "--prior", p, "-n", "20", "--raw",
                                   "--seed", "1", "-q"]) for p in ("auto", "gmm", "normal")}
    assert all(r.exit_code == 0 for r in runs.values()), {p: r.output for p, r in runs.items()}
    assert runs["auto"].stdout == runs["gmm"].stdout  # auto = the fitted GMM
    strings, _ = sample_prior(bundle, 20, seed=1)
    assert runs["normal"].stdout != runs["gmm"].stdout or strings == sample_prior(bundle, 20, seed=1, prior="normal")[0]
