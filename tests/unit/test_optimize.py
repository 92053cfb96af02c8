"""Latent optimization: objective parsing, gradient ascent, RDKit verification, the random baseline."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from moldesign.api import Designer
from moldesign.chem import mol_from_smiles, mol_scores
from moldesign.optimize import Objective, Space, latent_paths, seed_point
from moldesign.sampling import DesignInputError
from moldesign.surrogate import TARGETS, fit_surrogate


@pytest.fixture(scope="module")
def designer(tiny_bundle, tiny_smiles):
    bundle = copy.copy(tiny_bundle)  # the session bundle stays without a surrogate
    bundle.surrogate, _ = fit_surrogate(bundle, tiny_smiles, hidden=(64, 64), epochs=200, batch_size=32, seed=0)
    return Designer(bundle)


@pytest.mark.parametrize("kwargs,message", [
    (dict(maximize=["potency"]), "--maximize 'potency' is not a known property"),
    (dict(minimize=["QED "], maximize=["qed"]), "more than one objective term"),
    (dict(targets=["logp"]), "PROP=VALUE"),
    (dict(targets=["logp=nan"]), "--target logp must be a finite number"),
    (dict(targets=["mw=-100"]), "--target mw must be > 0"),
    (dict(targets=["hbd=1.5"]), "--target hbd must be a non-negative integer"),
    (dict(targets={"weight": 3}), "--target 'weight' is not a known property"),
    (dict(), "nothing to optimize"),
])
def test_objective_parse_rejects(kwargs, message):
    with pytest.raises(DesignInputError, match=message):
        Objective.parse(**kwargs)


def test_objective_scores_in_std_units(designer):
    sur = designer.bundle.surrogate
    obj = Objective.parse(maximize=["QED"], targets=["logp=3", "hbd=1"])
    assert obj.maximize == ("qed",) and obj.targets == {"logp": 3.0, "hbd": 1.0}
    values = np.array([sur.mean.numpy().astype(np.float64)])
    j = [TARGETS.index(k) for k in ("logp", "hbd")]
    values[0, j] = [3.0, 1.0]  # on target, QED at its mean → objective 0
    assert obj.score_numpy(values, sur)[0] == pytest.approx(0.0, abs=1e-6)
    values[0, TARGETS.index("logp")] = 3.0 + float(sur.std[TARGETS.index("logp")])  # one std off → -1
    assert obj.score_numpy(values, sur)[0] == pytest.approx(-1.0, abs=1e-5)
    torch_score = obj.score_torch(torch.tensor(values, dtype=torch.float32), sur)
    assert float(torch_score[0]) == pytest.approx(-1.0, abs=1e-4)


def _starts(designer, smiles):
    return np.stack([seed_point(designer.bundle, designer.molecule(s)) for s in smiles])  # (n, 16 + 5)


def test_gradient_ascent_climbs_the_surrogate_objective(designer, tiny_smiles):
    bundle, sur = designer.bundle, designer.bundle.surrogate
    obj = Objective.parse(maximize=["qed"])
    starts = _starts(designer, tiny_smiles[:3])
    space = Space.of(bundle, "optimize")
    space.c_lo[:], space.c_hi[:] = -np.inf, np.inf  # no clipping here, so every step has its full length
    paths = latent_paths(bundle, starts, obj, steps=20, step_size=0.05, prior_weight=0.1, space=space)
    assert paths.shape == (3, 21, 21)  # chains, steps + 1, Z + 5
    np.testing.assert_allclose(np.linalg.norm(np.diff(paths, axis=1), axis=2), 0.05, rtol=1e-4)  # fixed step length
    assert np.abs(paths[:, -1, 16:] - paths[:, 0, 16:]).max() > 0.01  # the condition moves too
    flat = paths.reshape(-1, 21)
    J = obj.score_numpy(sur.predict(flat), sur) - 0.1 * 0.5 * (flat.astype(np.float64) ** 2).sum(1)
    J = J.reshape(3, 21)
    assert (J[:, -1] > J[:, 0]).all()
    assert (np.diff(J, axis=1) > -1e-4).mean() > 0.9  # small normalized steps: (nearly) monotone ascent


def test_condition_seed_moves_z_only_and_c_stays_in_range(designer, tiny_smiles):
    bundle = designer.bundle
    starts = _starts(designer, tiny_smiles[:2])
    obj = Objective.parse(targets={"mw": 5000.0})  # far outside the data: pushes c_mw to the training maximum
    held = latent_paths(bundle, starts, obj, steps=10, step_size=0.2, prior_weight=0.0,
                        space=Space.of(bundle, "seed"))
    np.testing.assert_array_equal(held[:, :, 16:], np.repeat(starts[:, None, 16:], 11, axis=1))
    moved = latent_paths(bundle, starts, obj, steps=200, step_size=0.2, prior_weight=0.0,
                         space=Space.of(bundle, "optimize"))
    mw = bundle.scaler.inverse(moved[:, -1, 16:])[:, 0]
    np.testing.assert_allclose(mw, bundle.property_stats["max"][0], rtol=1e-5)  # clipped at the training range


def test_optimize_scores_every_decode_with_rdkit(designer, seed_smiles):
    """The real optimizer on the tiny model. What it decodes differs between machines (see
    conftest.tiny_model_path), so the checks hold for any outcome, "nothing new" included."""
    res = designer.optimize(seed_smiles, maximize=["qed"], steps=6, chains=3, step_size=0.3, top_k=4)
    traj = res.trajectory
    assert len(traj) == 3 * 7 and list(traj["chain"].unique()) == [0, 1, 2]
    assert traj.loc[0, "distance"] == 0.0  # chain 0 starts at the seed's point [μ, c]
    seed_props = designer.molecule(seed_smiles).props
    np.testing.assert_allclose(traj.loc[0, [f"{k}_condition" for k in ("mw", "logp", "hbd", "hba", "tpsa")]]
                               .to_numpy(float), seed_props, rtol=1e-4, atol=1e-4)  # and decodes under its own properties
    for row in traj[traj["valid"]].to_dict("records"):
        truth = mol_scores(mol_from_smiles(row["smiles"]))
        for k in TARGETS:
            assert row[k] == pytest.approx(truth[k]), k  # RDKit values, not the surrogate's
    valid = traj[traj["valid"]]
    np.testing.assert_allclose(valid["objective"], (valid["qed"] - float(designer.bundle.surrogate.mean[5]))
                               / float(designer.bundle.surrogate.std[5]), rtol=1e-5)
    assert (traj["pred_qed"] != traj["qed"]).any()  # predictions are a separate column
    # `new` = first appearance of each valid molecule other than the seed; ranks order them by objective
    new = traj[traj["new"]]
    assert new["smiles"].is_unique and seed_smiles not in set(new["smiles"])
    assert set(new["smiles"]) == set(valid["smiles"]) - {seed_smiles}
    assert sorted(new["rank"]) == list(range(1, len(new) + 1)) and traj.loc[~traj["new"], "rank"].isna().all()
    assert res.best["objective"].is_monotonic_decreasing and len(res.best) == min(4, len(new))
    s = res.summary
    assert s["decodes"] == 21 and s["distinct"] == len(new)
    if len(new):
        assert s["best_objective"] == pytest.approx(new["objective"].max(), abs=1e-4)
        assert s["best_smiles"] == res.best["smiles"].iloc[0]
    else:  # both outcomes are legitimate for a tiny model; the empty one is spelled out in the test below
        assert s["best_objective"] is None and s["best_smiles"] is None and res.best.empty


def _fake_decoder(monkeypatch, cycle):
    """Replace the optimizer's greedy decoder: point i decodes to cycle[i % len(cycle)]."""
    import moldesign.optimize

    def fake(bundle, z, props, temperature=0.0, **kw):
        assert temperature == 0.0 and len(z) == len(props)
        return [cycle[i % len(cycle)] for i in range(len(z))]

    monkeypatch.setattr(moldesign.optimize, "decode", fake)


def test_optimize_ranks_new_molecules_by_rdkit_objective(designer, seed_smiles, monkeypatch):
    """Something to find, on any machine: the decoder yields the seed, an invalid string, three
    other molecules (one twice, one written non-canonically) in a fixed order."""
    other = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "OCC"]  # aspirin, benzene, ethanol (as "OCC")
    _fake_decoder(monkeypatch, [seed_smiles, "C1CC", other[0], other[1], other[0], other[2], seed_smiles])
    res = designer.optimize(seed_smiles, maximize=["qed"], steps=6, chains=3, step_size=0.3, top_k=2)
    traj, sur = res.trajectory, designer.bundle.surrogate
    assert traj["valid"].tolist() == [True, False, True, True, True, True, True] * 3
    assert traj.loc[5, "smiles"] == "CCO"  # canonical
    assert traj.index[traj["new"]].tolist() == [2, 3, 5]  # first appearances only, the seed never
    qed = {s: mol_scores(mol_from_smiles(s))["qed"] for s in ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "CCO", seed_smiles]}
    objective = {s: (q - float(sur.mean[5])) / float(sur.std[5]) for s, q in qed.items()}
    order = sorted(["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "CCO"], key=lambda s: -objective[s])
    assert res.best["smiles"].tolist() == order[:2] and res.best["rank"].tolist() == [1, 2]
    s = res.summary
    assert (s["decodes"], s["distinct"], s["best_smiles"]) == (21, 3, order[0])
    assert s["valid"] == pytest.approx(round(18 / 21, 4))
    assert s["best_objective"] == pytest.approx(objective[order[0]], abs=1e-4)
    assert s["top3_mean_objective"] == pytest.approx(np.mean([objective[m] for m in order]), abs=1e-4)
    assert s["seed_objective"] == pytest.approx(objective[seed_smiles], abs=1e-4)
    assert s["improved_on_seed"] == sum(objective[m] > objective[seed_smiles] for m in order)


def test_optimize_that_finds_nothing_new_says_so_everywhere(designer, seed_smiles, monkeypatch):
    """Every decode is the seed or invalid: no best molecule, and None (JSON null) for every
    best-* summary value, never NaN."""
    import json

    _fake_decoder(monkeypatch, [seed_smiles, "C1CC"])
    res = designer.optimize(seed_smiles, maximize=["qed"], steps=3, chains=2)
    s = res.summary
    assert not res.trajectory["new"].any() and res.trajectory["rank"].isna().all() and res.best.empty
    assert (s["decodes"], s["distinct"], s["improved_on_seed"], s["valid"]) == (8, 0, 0, 0.5)
    assert s["best_objective"] is None and s["top3_mean_objective"] is None and s["best_smiles"] is None
    assert np.isfinite(s["seed_objective"])
    assert json.loads(json.dumps(s))["best_objective"] is None  # strict JSON: null, not NaN
    base = designer.baseline(res, seed=1)  # the baseline decodes through the same decoder
    assert base.summary["distinct"] == 0 and base.summary["best_objective"] is None


def test_optimize_is_reproducible(designer, tiny_smiles):
    a = designer.optimize(tiny_smiles[1], targets={"logp": 3.0}, steps=4, chains=3, seed=5)
    b = designer.optimize(tiny_smiles[1], targets={"logp": 3.0}, steps=4, chains=3, seed=5)
    pd.testing.assert_frame_equal(a.trajectory, b.trajectory)
    c = designer.optimize(tiny_smiles[1], targets={"logp": 3.0}, steps=4, chains=3, seed=6)
    assert not np.allclose(a.trajectory["distance"], c.trajectory["distance"])  # chains 1.. start elsewhere


def test_random_baseline_matches_decodes_and_distances(designer, tiny_smiles):
    res = designer.optimize(tiny_smiles[0], maximize=["qed"], steps=5, chains=2, step_size=0.3)
    base = designer.baseline(res, seed=1)
    assert len(base.trajectory) == len(res.trajectory) == base.summary["decodes"]
    np.testing.assert_allclose(base.trajectory["distance"], res.trajectory["distance"], rtol=1e-4, atol=1e-5)
    assert base.summary["seed_objective"] == res.summary["seed_objective"]
    held = designer.baseline(designer.optimize(tiny_smiles[0], maximize=["qed"], steps=3, chains=2,
                                               condition="seed"), seed=1)
    assert (held.trajectory["mw_condition"] == held.trajectory.loc[0, "mw_condition"]).all()  # random moves in z only
    for row in base.trajectory[base.trajectory["valid"]].head(5).to_dict("records"):
        assert row["qed"] == pytest.approx(mol_scores(mol_from_smiles(row["smiles"]))["qed"])


def test_optimize_without_surrogate_says_how_to_fit_one(tiny_bundle, tiny_smiles):
    with pytest.raises(DesignInputError, match="moldesign surrogate fit"):
        Designer(tiny_bundle, "tiny.pt").optimize(tiny_smiles[0], maximize=["qed"])


@pytest.mark.parametrize("kwargs,message", [
    (dict(steps=0), "--steps must be at least 1"), (dict(chains=0), "--chains must be at least 1"),
    (dict(step_size=-0.1), "--step-size must be positive"), (dict(prior_weight=float("nan")), "--prior-weight"),
    (dict(condition="target"), "--condition must be one of optimize, seed"),
])
def test_optimize_rejects_bad_settings(designer, tiny_smiles, kwargs, message):
    with pytest.raises(DesignInputError, match=message):
        designer.optimize(tiny_smiles[0], maximize=["qed"], **kwargs)
