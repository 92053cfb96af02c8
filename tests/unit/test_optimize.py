"""Latent optimization: objective parsing, gradient ascent, RDKit verification, the random baseline."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem, DataStructs

from moldesign.api import Designer
from moldesign.chem import mol_from_smiles, mol_scores
from moldesign.design.optimize import COLUMNS, Objective, Space, latent_paths, seed_point
from moldesign.errors import DesignInputError, DesignWarning
from moldesign.model.surrogate import TARGETS
from moldesign.training.fitting import fit_surrogate

from ..fake_decoder import fake_point_decoder


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
    (dict(expression="logp *"), "--objective must be a weighted sum"),
    (dict(expression="2 logp 3 sa"), "--objective must be a weighted sum"),
    (dict(expression="qed - potency"), "--objective 'potency' is not a known property"),
    (dict(maximize=["qed"], expression="0.5*qed"), "more than one objective term"),
    (dict(targets=["plogp=1"]), "--target 'plogp' is not a known property"),
])
def test_objective_parse_rejects(kwargs, message):
    with pytest.raises(DesignInputError, match=message):
        Objective.parse(**kwargs)


def test_objective_in_natural_units(designer):
    sur = designer.bundle.surrogate
    obj = Objective.parse(maximize=["QED"], targets=["logp=3", "hbd=1"])
    assert obj.weights == {"qed": 1.0} and obj.targets == {"logp": 3.0, "hbd": 1.0}
    std = {k: float(s) for k, s in zip(TARGETS, sur.std)}
    cols = {k: np.array([0.7, 0.9]) for k in COLUMNS}
    cols["logp"], cols["hbd"] = np.array([3.0, 3.0 + std["logp"]]), np.array([1.0, 1.0])
    # on target: J is QED itself; one std off in logP costs exactly 1
    np.testing.assert_allclose(obj.value(cols, std), [0.7, 0.9 - 1.0])
    w = Objective.parse(expression="1.0*logp - 1.0*sa + .5 similarity").weights
    assert w == {"logp": 1.0, "sa": -1.0, "similarity": 0.5}
    assert Objective.parse(maximize=["plogp"], minimize=["mw"]).describe() == "max plogp, min mw"


def test_surrogate_objective_is_the_standardized_linear_part(designer):
    sur = designer.bundle.surrogate
    pred = torch.tensor(np.random.default_rng(0).normal(size=(4, len(TARGETS))), dtype=torch.float32)
    std = sur.std.numpy().astype(np.float64)
    j_logp, j_sa = TARGETS.index("logp"), TARGETS.index("sa")
    raw = Objective.parse(expression="logp - sa")
    expect = (pred[:, j_logp] - pred[:, j_sa]).numpy() / np.hypot(std[j_logp], std[j_sa])
    np.testing.assert_allclose(raw.score_torch(pred, sur).numpy(), expect, rtol=1e-5)
    # normalized plogp: logp/1.4343 − sa/0.8335 (the ring term is not predicted), same scaling rule
    a = np.zeros(len(TARGETS))
    a[j_logp], a[j_sa] = 1 / 1.434324401111988, -1 / 0.8335207024513095
    np.testing.assert_allclose(Objective.parse(maximize=["plogp"]).score_torch(pred, sur).numpy(),
                               pred.numpy() @ a / np.linalg.norm(a * std), rtol=1e-5)


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
    res = designer.optimize(seed_smiles, method="gradient", maximize=["qed"], steps=6, chains=3, step_size=0.3, top_k=4)
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
    np.testing.assert_allclose(valid["objective"], valid["qed"], rtol=1e-12)  # --maximize qed: J is QED
    seed_qed = mol_scores(designer.molecule(seed_smiles).mol)["qed"]
    np.testing.assert_allclose(valid["improvement"], valid["qed"] - seed_qed, rtol=1e-9, atol=1e-12)
    assert res.summary["seed_objective"] == pytest.approx(seed_qed, abs=1e-4)
    assert res.summary["oracle_calls"] == int(traj["oracle_call"].sum()) == traj.loc[traj["valid"], "smiles"].nunique()
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
    """Replace the optimizer's decoder: the i-th point decoded (counted across calls, as the
    optimizer decodes one step of all chains per call) decodes to cycle[i % len(cycle)] (an
    iterator: its next item). Returns the list of (temperature, rows) of every call."""
    import itertools

    counter = itertools.count()
    calls = []

    def fake(bundle, z, props, temperature=0.0, **kw):
        assert len(z) == len(props)
        calls.append((temperature, len(z)))
        if not isinstance(cycle, (list, tuple)):
            return [next(cycle) for _ in range(len(z))]
        return [cycle[next(counter) % len(cycle)] for _ in range(len(z))]

    fake_point_decoder(monkeypatch, fake)
    return calls


def test_optimize_ranks_new_molecules_by_rdkit_objective(designer, seed_smiles, monkeypatch):
    """Something to find, on any machine: the decoder yields the seed, an invalid string, three
    other molecules (one twice, one written non-canonically) in a fixed order."""
    other = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "OCC"]  # aspirin, benzene, ethanol (as "OCC")
    _fake_decoder(monkeypatch, [seed_smiles, "C1CC", other[0], other[1], other[0], other[2], seed_smiles])
    res = designer.optimize(seed_smiles, method="gradient", maximize=["qed"], steps=6, chains=3, step_size=0.3, top_k=2)
    traj = res.trajectory
    assert traj["valid"].tolist() == [True, False, True, True, True, True, True] * 3
    assert traj.loc[5, "smiles"] == "CCO"  # canonical
    assert traj.index[traj["new"]].tolist() == [2, 3, 5]  # first appearances only, the seed never
    qed = {s: mol_scores(mol_from_smiles(s))["qed"] for s in ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "CCO", seed_smiles]}
    objective = qed  # --maximize qed: the objective is QED itself (natural units)
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
    res = designer.optimize(seed_smiles, method="gradient", maximize=["qed"], steps=3, chains=2)
    s = res.summary
    assert not res.trajectory["new"].any() and res.trajectory["rank"].isna().all() and res.best.empty
    assert (s["decodes"], s["distinct"], s["improved_on_seed"], s["valid"]) == (8, 0, 0, 0.5)
    assert s["best_objective"] is None and s["top3_mean_objective"] is None and s["best_smiles"] is None
    assert np.isfinite(s["seed_objective"])
    assert json.loads(json.dumps(s))["best_objective"] is None  # strict JSON: null, not NaN
    base = designer.baseline(res, seed=1)  # the baseline decodes through the same decoder
    assert base.summary["distinct"] == 0 and base.summary["best_objective"] is None


def test_optimize_is_reproducible(designer, tiny_smiles):
    a = designer.optimize(tiny_smiles[1], method="gradient", targets={"logp": 3.0}, steps=4, chains=3, seed=5)
    b = designer.optimize(tiny_smiles[1], method="gradient", targets={"logp": 3.0}, steps=4, chains=3, seed=5)
    pd.testing.assert_frame_equal(a.trajectory, b.trajectory)
    c = designer.optimize(tiny_smiles[1], method="gradient", targets={"logp": 3.0}, steps=4, chains=3, seed=6)
    assert not np.allclose(a.trajectory["distance"], c.trajectory["distance"])  # chains 1.. start elsewhere


def test_random_baseline_matches_decodes_and_distances(designer, tiny_smiles):
    res = designer.optimize(tiny_smiles[0], method="gradient", maximize=["qed"], steps=5, chains=2, step_size=0.3)
    base = designer.baseline(res, seed=1)
    assert len(base.trajectory) == len(res.trajectory) == base.summary["decodes"]
    np.testing.assert_allclose(base.trajectory["distance"], res.trajectory["distance"], rtol=1e-4, atol=1e-5)
    assert base.summary["seed_objective"] == res.summary["seed_objective"]
    held = designer.baseline(designer.optimize(tiny_smiles[0], method="gradient", maximize=["qed"], steps=3, chains=2,
                                               condition="seed"), seed=1)
    assert (held.trajectory["mw_condition"] == held.trajectory.loc[0, "mw_condition"]).all()  # random moves in z only
    for row in base.trajectory[base.trajectory["valid"]].head(5).to_dict("records"):
        assert row["qed"] == pytest.approx(mol_scores(mol_from_smiles(row["smiles"]))["qed"])


def test_baseline_needs_the_gradient_method_and_says_so_before_any_work(designer, tiny_smiles):
    """The baseline repeats a gradient walk's distances: with CMA-ES a batch refuses before its
    first start (it used to skip the baseline rows silently), and so does baseline() on a result."""
    starts = pd.DataFrame({"start_id": ["a"], "smiles": [tiny_smiles[0]]})
    with pytest.raises(DesignInputError, match="use it with --method gradient"):
        next(designer.optimize_batch(starts, baseline=True, method="cmaes", maximize=["qed"]))
    res = designer.optimize(tiny_smiles[0], method="cmaes", maximize=["qed"], steps=2, chains=2)
    with pytest.raises(DesignInputError, match="use it with --method gradient"):
        designer.baseline(res)


def test_optimize_without_surrogate_says_how_to_fit_one(tiny_bundle, tiny_smiles):
    with pytest.raises(DesignInputError, match="moldesign surrogate fit"):
        Designer(tiny_bundle, "tiny.pt").optimize(tiny_smiles[0], method="gradient", maximize=["qed"])


@pytest.mark.parametrize("kwargs,message", [
    (dict(steps=0), "--steps must be at least 1"), (dict(chains=0), "--chains must be at least 1"),
    (dict(step_size=-0.1), "--step-size must be positive"), (dict(prior_weight=float("nan")), "--prior-weight"),
    (dict(condition="target"), "--condition must be one of optimize, seed, only"),
    (dict(budget=0), "--budget must be a positive number of oracle calls"),
    (dict(min_similarity=1.5), "--min-similarity must be in"), (dict(method="bayes"), "--method must be one of"),
    (dict(sigma=0.0), "--sigma must be positive"),
])
def test_optimize_rejects_bad_settings(designer, tiny_smiles, kwargs, message):
    with pytest.raises(DesignInputError, match=message):
        designer.optimize(tiny_smiles[0], maximize=["qed"], **kwargs)


# ten distinct valid molecules and one invalid string, for a decoder that always has something to find
DISTINCT = ["CCO", "CCN", "CCCC", "CCCl", "c1ccccc1", "CC(=O)O", "CCOC", "CNC(C)=O", "COc1ccccc1", "CCS", "C1CC"]


@pytest.mark.parametrize("method", ["gradient", "cmaes"])
def test_budget_caps_oracle_calls(designer, seed_smiles, method, monkeypatch):
    if method == "cmaes":
        pytest.importorskip("cma")
    _fake_decoder(monkeypatch, DISTINCT)
    kw = dict(maximize=["qed"], steps=5, chains=4, method=method)
    free = designer.optimize(seed_smiles, **kw)
    assert free.summary["oracle_calls"] == 10 and free.summary["decodes"] >= 20  # every distinct molecule once
    res = designer.optimize(seed_smiles, budget=4, **kw)
    traj = res.trajectory
    assert res.summary["oracle_calls"] == 4 == int(traj["oracle_call"].sum())
    assert traj.loc[traj["valid"], "smiles"].nunique() == 4  # no molecule was scored beyond the cap
    assert res.summary["decodes"] < free.summary["decodes"] and res.summary["seconds"] >= 0


@pytest.mark.parametrize("method", ["gradient", "cmaes"])
def test_min_similarity_is_a_constraint(designer, seed_smiles, method, monkeypatch):
    if method == "cmaes":
        pytest.importorskip("cma")
    near = ["C" + seed_smiles, "CC" + seed_smiles, "N" + seed_smiles, "O" + seed_smiles]  # the seed plus an atom or two
    cycle = near + DISTINCT
    _fake_decoder(monkeypatch, cycle)
    from moldesign.chem import tanimoto_to

    sims = tanimoto_to(designer.molecule(seed_smiles).mol, [Chem.MolFromSmiles(m) for m in cycle])
    s = float(np.nanmedian(sims))
    assert np.nanmax(sims) >= s > np.nanmin(sims)  # some proposals pass, some do not
    res = designer.optimize(seed_smiles, maximize=["qed"], steps=5, chains=4, method=method, min_similarity=s)
    traj = res.trajectory
    np.testing.assert_array_equal(traj["feasible"], traj["valid"] & (traj["similarity"] >= s))
    assert traj["feasible"].any() and (traj["valid"] & ~traj["feasible"]).any()
    assert (res.best["similarity"] >= s).all() and len(res.best) == res.summary["feasible"] > 0
    assert res.summary["feasible"] == int((traj["new"] & traj["feasible"]).sum())
    assert res.summary["best_similarity"] >= round(s, 4) - 1e-4  # the summary rounds to 4 decimals


def test_cmaes_scores_with_rdkit_and_needs_no_surrogate(tiny_bundle, seed_smiles, monkeypatch):
    pytest.importorskip("cma")
    _fake_decoder(monkeypatch, DISTINCT)
    res = Designer(tiny_bundle).optimize(seed_smiles, objective="1.0*logp - 1.0*sa", method="cmaes",
                                         steps=4, chains=6, sigma=0.5)
    traj = res.trajectory
    assert len(traj) == 4 * 6 and res.summary["method"] == "cmaes"
    valid = traj[traj["valid"]]
    assert len(valid) == 4 * 6 - traj["smiles"].eq("C1CC").sum() > 0
    np.testing.assert_allclose(valid["objective"], valid["logp"] - valid["sa"], rtol=1e-9)
    np.testing.assert_allclose(valid["plogp_raw"], valid["logp"] - valid["sa"], rtol=1e-9)
    assert traj["pred_qed"].isna().all()  # no surrogate in this model: no predictions
    best = max(DISTINCT[:10], key=lambda m: (lambda x: mol_scores(x)["logp"] - mol_scores(x)["sa"])(mol_from_smiles(m)))
    seen = set(traj["smiles"])
    if Chem.CanonSmiles(best) in seen:
        assert res.best["smiles"].iloc[0] == Chem.CanonSmiles(best)  # ranked by the RDKit objective


def test_start_outside_training_range_warns(designer, tiny_smiles):
    bundle = copy.copy(designer.bundle)
    seed = designer.molecule(tiny_smiles[0])
    stats = {k: list(v) if k in ("min", "max") else v for k, v in bundle.property_stats.items()}
    stats["max"][0] = float(seed.props[0]) - 10.0  # the seed's MW is now above the training range
    bundle.property_stats = stats
    with pytest.warns(DesignWarning, match="mw outside the model's training range"):
        res = Designer(bundle).optimize(tiny_smiles[0], method="gradient", maximize=["qed"], steps=2, chains=2)
    assert res.trajectory.loc[0, "mw_condition"] == pytest.approx(stats["max"][0], rel=1e-4)  # clipped, and said so
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DesignWarning)  # inside the range: no warning
        designer.optimize(tiny_smiles[0], method="gradient", maximize=["qed"], steps=2, chains=2)


def test_batch_of_three_starts_keeps_every_start(designer, tiny_smiles, monkeypatch):
    _fake_decoder(monkeypatch, DISTINCT)
    starts = pd.DataFrame({"start_id": ["a", "b", "c"], "smiles": [tiny_smiles[0], "C1CC", tiny_smiles[2]]})
    out = list(designer.optimize_batch(starts, maximize=["qed"], steps=4, chains=4, step_size=0.6, budget=10, top_k=3))
    assert [sid for sid, _, _ in out] == ["a", "b", "c"]
    rows = pd.concat([r for _, r, _ in out], ignore_index=True)
    assert list(rows.columns[:3]) == ["start_id", "start_input", "start_smiles"] and "improvement" in rows
    assert rows.loc[rows["start_id"] != "b", "valid"].all()  # the fake decoder always has something to find
    bad = rows[rows["start_id"] == "b"]
    assert len(bad) == 1 and not bad["valid"].iloc[0] and "invalid SMILES: 'C1CC'" in bad["error"].iloc[0]
    for sid, smi in (("a", tiny_smiles[0]), ("c", tiny_smiles[2])):
        r = rows[rows["start_id"] == sid]
        assert 1 <= len(r) <= 3 and (r["start_smiles"] == designer.molecule(smi).smiles).all()
        assert (r["oracle_calls"] <= 10).all() and (r["decodes"] > 0).all()
        ok = r[r["valid"]]
        np.testing.assert_allclose(ok["improvement"], ok["objective"] - ok["seed_objective"], atol=1e-4)
        for row in ok.to_dict("records"):
            m = mol_from_smiles(row["smiles"])
            assert row["qed"] == pytest.approx(mol_scores(m)["qed"])
            from moldesign.chem import tanimoto_to
            assert row["similarity"] == pytest.approx(tanimoto_to(designer.molecule(smi).mol, [m])[0])
    done = list(designer.optimize_batch(starts, done={"a", "b"}, maximize=["qed"], steps=2, chains=2))
    assert [sid for sid, _, _ in done] == ["c"]  # resume skips finished ids


def test_condition_only_holds_z_at_the_seed(designer, tiny_smiles):
    res = designer.optimize(tiny_smiles[0], method="gradient", maximize=["logp"], steps=5, chains=3, condition="only", step_size=0.5)
    u0 = seed_point(designer.bundle, designer.molecule(tiny_smiles[0]))
    cond = res.trajectory[[f"{k}_condition" for k in ("mw", "logp", "hbd", "hba", "tpsa")]].to_numpy(float)
    assert np.abs(cond - designer.molecule(tiny_smiles[0]).props).max() > 0.01  # the condition moved
    # ... and z did not: every point's distance from u₀ is its distance in the condition alone
    c = designer.bundle.scaler.transform(cond)
    np.testing.assert_allclose(res.trajectory["distance"], np.linalg.norm(c - u0[None, 16:], axis=1), rtol=1e-4,
                               atol=1e-5)


def test_maximize_similarity(designer, tiny_smiles, monkeypatch):
    obj = Objective.parse(maximize=["similarity"], minimize=["sa"])
    assert obj.gradient_ready()
    sur = designer.bundle.surrogate
    pred = torch.zeros(2, len(TARGETS))
    u0 = torch.zeros(1, 21)
    u = torch.zeros(2, 21)
    u[1, 0] = 2.0  # two units away from the start
    j = obj.score_torch(pred, sur, u, u0)
    assert float(j[0] - j[1]) == pytest.approx(2.0, abs=1e-5)  # the similarity proxy: −‖u − u0‖
    _fake_decoder(monkeypatch, ["C" + tiny_smiles[0]] + DISTINCT)
    res = designer.optimize(tiny_smiles[0], method="gradient", maximize=["similarity"], minimize=["sa"], steps=3, chains=3, step_size=0.4)
    valid = res.trajectory[res.trajectory["valid"]]
    assert len(valid) >= 10
    np.testing.assert_allclose(valid["objective"], valid["similarity"] - valid["sa"], rtol=1e-9)
    assert res.summary["seed_similarity"] == pytest.approx(1.0)  # summary: each weighted column at start and best


def _endless():
    """Distinct valid molecules without end: C, CC, CCC, …"""
    import itertools

    return ("C" * n for n in itertools.count(1))


@pytest.mark.parametrize("method", ["gradient", "cmaes"])
def test_samples_decode_each_point_greedily_and_at_temperature(designer, seed_smiles, method, monkeypatch):
    if method == "cmaes":
        pytest.importorskip("cma")
    calls = _fake_decoder(monkeypatch, DISTINCT)
    res = designer.optimize(seed_smiles, maximize=["qed"], steps=3, chains=4, method=method, samples=3,
                            temperature=0.7)
    traj = res.trajectory
    gens = 4 if method == "gradient" else 3  # gradient: steps + 1 evaluations
    assert len(traj) == gens * 4 * 3 and res.summary["samples"] == 3
    assert (traj.groupby(["step", "point"]).size() == 3).all()  # three rows per point, point-major
    assert traj["sample"].tolist() == [0, 1, 2] * (gens * 4)
    assert (traj["chain"] == traj["point"]).all()
    # per generation one greedy call for the 4 points and one sampled call for their 8 other decodes
    assert calls == [(0.0, 4), (0.7, 8)] * gens
    # one point's decodes share its latent: same condition, same distance from the start
    assert (traj.groupby(["step", "point"])["distance"].nunique() == 1).all()
    assert res.summary["oracle_calls"] == 10  # every distinct molecule scored once, however many decodes


def test_point_fitness_is_the_best_decode_hard_or_penalized():
    from moldesign.design.optimize import point_fitness

    df = pd.DataFrame({"point": [0, 0, 1, 1, 2], "valid": [True, True, True, False, False],
                       "feasible": [False, True, False, False, False], "objective": [5.0, 1.0, 3.0, np.nan, np.nan],
                       "similarity": [0.3, 0.5, 0.35, np.nan, np.nan]})
    hard = point_fitness(df, 4, 0.4)
    assert hard[0] == -1.0  # its feasible decode, not the better infeasible one
    assert hard[1] == pytest.approx(1e6 * (1 + 0.4 - 0.35)) and hard[1] > hard[0]  # below every feasible point
    assert hard[2] == hard[3] == 4e6 and hard[2] > hard[1]  # invalid only / no decode: last
    soft = point_fitness(df, 4, 0.4, similarity_penalty=10.0)
    assert soft[0] == pytest.approx(-5.0 + 10.0 * 0.1)  # J 5 just outside the constraint beats the feasible J 1
    assert soft[1] == pytest.approx(-3.0 + 10.0 * 0.05)


def test_sigma_units_posterior_scales_z_by_the_start_posterior(designer, tiny_smiles):
    from moldesign.design.optimize import posterior_sd, step_scale

    seed = designer.molecule(tiny_smiles[0])
    space = Space.of(designer.bundle, "optimize")
    sd = posterior_sd(designer.bundle, seed)
    assert sd.shape == (space.Z,) and (sd > 0).all() and np.ptp(sd) > 0
    scale = step_scale(designer.bundle, seed, space, "posterior")
    np.testing.assert_allclose(scale[: space.Z], sd)
    assert (scale[space.Z:] == 1).all()  # the condition keeps standardized units
    assert (step_scale(designer.bundle, seed, space, "prior") == 1).all()
    with pytest.raises(DesignInputError, match="--sigma-units must be one of prior, posterior, got 'nats'"):
        step_scale(designer.bundle, seed, space, "nats")


@pytest.mark.parametrize("method", ["gradient", "cmaes"])
def test_fill_budget_runs_until_the_budget_is_spent(designer, seed_smiles, method, monkeypatch):
    if method == "cmaes":
        pytest.importorskip("cma")
    kw = dict(maximize=["qed"], steps=2, chains=4, method=method, budget=30)
    _fake_decoder(monkeypatch, _endless())
    once = designer.optimize(seed_smiles, **kw)
    assert once.summary["oracle_calls"] < 30 and once.summary["runs"] == 1  # one run stops at --steps
    _fake_decoder(monkeypatch, _endless())
    full = designer.optimize(seed_smiles, fill_budget=True, **kw)
    traj = full.trajectory
    assert full.summary["oracle_calls"] == 30 == int(traj["oracle_call"].sum()) and full.summary["runs"] > 1
    assert traj["run"].nunique() == full.summary["runs"] and traj["step"].is_monotonic_increasing
    # a search that only re-finds the same 10 molecules stops by itself, budget unspent
    _fake_decoder(monkeypatch, DISTINCT)
    stuck = designer.optimize(seed_smiles, fill_budget=True, **{**kw, "budget": 50})
    assert stuck.summary["oracle_calls"] == 10 and stuck.summary["decodes"] < 20 * 50


def test_stop_at_ends_a_start_at_the_first_step_that_reaches_it(designer, tiny_smiles):
    """The real tiny decoder: with stop_at = the best objective of the first step of a full search
    that finds a feasible new molecule, the search ends at that step, and its rows are exactly the full
    search's rows up to that step (same draws); a value never reached changes nothing."""
    pytest.importorskip("cma")
    kw = dict(method="cmaes", min_similarity=0.2, budget=60, fill_budget=True, steps=3, chains=4, sigma=0.5)
    full = designer.optimize(tiny_smiles[1], maximize=["qed"], **kw)
    t = full.trajectory
    hits = t[t["feasible"] & t["new"]]
    assert len(hits), "the tiny model found no feasible molecule: pick another start"
    first = int(hits["step"].min())  # the first step with a feasible new molecule: its best is the goal
    goal = float(hits.loc[hits["step"] == first, "objective"].max())
    assert first < t["step"].max(), "the full search ended at its first feasible step: nothing to cut"
    stopped = designer.optimize(tiny_smiles[1], maximize=["qed"], stop_at=goal, **kw)
    head = t[t["step"] <= first].reset_index(drop=True)
    pd.testing.assert_frame_equal(stopped.trajectory.drop(columns="rank"), head.drop(columns="rank"))  # rank: among all
    assert stopped.summary["stopped"] and not full.summary["stopped"]
    assert stopped.summary["best_objective"] == pytest.approx(goal, abs=1e-4)  # the summary rounds
    assert stopped.summary["oracle_calls"] == int(t.loc[t["step"] <= first, "oracle_call"].sum())
    never = designer.optimize(tiny_smiles[1], maximize=["qed"], stop_at=goal + 1.0, **kw)
    pd.testing.assert_frame_equal(never.trajectory, t)
    assert not never.summary["stopped"]
    # in a batch the start stops at the same step, whatever shares the decoder
    together, _ = _many(designer, tiny_smiles[:3], stop_at=goal, **kw)  # _many maximizes qed
    pd.testing.assert_frame_equal(together[1].trajectory, stopped.trajectory)


def test_guides_are_standardized_and_checked():
    from moldesign.design.optimize import Guides

    g = Guides.of(["OCC", "CCO", "[Na+].[O-]C(=O)c1ccccc1"])  # a duplicate; a salt → its neutral parent
    assert g.smiles == ["CCO", "O=C(O)c1ccccc1"] and g.known == {"CCO", "O=C(O)c1ccccc1"} and len(g.fps) == 2
    with pytest.raises(DesignInputError, match="guide 2: 'C1CC' is not a valid SMILES"):
        Guides.of(["CCO", "C1CC"])
    with pytest.raises(DesignInputError, match="no molecules"):
        Guides.of([])


def test_guides_start_the_search_on_the_lines_towards_the_nearest_guides(designer, tiny_smiles):
    """The first step decodes u₀ + a·(u_g − u₀) for the start's GUIDES_PER_START most similar
    guides (most similar first, the start itself excluded), then CMA-ES runs as usual."""
    pytest.importorskip("cma")
    from moldesign.chem import morgan_fp, mol_from_smiles
    from moldesign.design.optimize import GUIDE_STEPS, GUIDES_PER_START, Guides, Objective, Settings, Space, new_search

    start = designer.molecule(tiny_smiles[3])
    guides = Guides.of(tiny_smiles[:40])
    sims = [DataStructs.TanimotoSimilarity(morgan_fp(mol_from_smiles(start.smiles)), f) for f in guides.fps]
    order = [i for i in np.argsort(-np.asarray(sims), kind="stable") if guides.smiles[i] != start.smiles]
    assert [guides.smiles[i] for i in guides.nearest(start.smiles)[:5]] == [guides.smiles[i] for i in order[:5]]
    s = Settings(method="cmaes", steps=2, chains=4, budget=40)
    search = new_search(designer.bundle, start, Objective.parse(maximize=["qed"]), s, np.random.default_rng(0), guides)
    space = Space.of(designer.bundle, "optimize")
    u0 = seed_point(designer.bundle, start, space)
    ug = seed_point(designer.bundle, designer.molecule(guides.smiles[order[0]]), space)
    pts = search.ask()
    assert pts.shape == (GUIDES_PER_START * len(GUIDE_STEPS), len(u0))
    np.testing.assert_allclose(pts[: len(GUIDE_STEPS)], space.clip(np.stack([u0 + a * (ug - u0) for a in GUIDE_STEPS])),
                               atol=1e-5)
    res = designer.optimize(tiny_smiles[3], maximize=["qed"], method="cmaes", steps=2, chains=4, budget=40,
                            guides=tiny_smiles[:40])
    t = res.trajectory
    assert (t["step"] == 0).sum() == len(pts) and res.summary["guide_points"] == len(pts)
    assert t["step"].max() >= 2  # CMA-ES ran after the guide step
    with pytest.raises(DesignInputError, match="--guide needs --method cmaes"):
        designer.optimize(tiny_smiles[3], maximize=["qed"], method="gradient", guides=tiny_smiles[:40])


def test_each_restart_walks_from_its_best_point_towards_new_guides(designer, tiny_smiles, monkeypatch):
    """With --fill-budget, every run after the first begins with a guide step from the best feasible
    point so far towards the guides nearest to the best molecule that were not walked to before."""
    pytest.importorskip("cma")
    from moldesign.design.optimize import GUIDE_STEPS, GUIDES_PER_START, Guides
    from moldesign.design.optimize.search import StartSearch

    calls = []  # (molecule, origin, guides walked before, guides walked now, best point, best molecule)
    real = Guides.points

    def spy(self, bundle, smiles, origin, space, skip=()):
        pts, used = real(self, bundle, smiles, origin, space, skip)
        calls.append((smiles, origin.copy(), set(skip), used))
        return pts, used

    monkeypatch.setattr(Guides, "points", spy)
    seen = []  # the search's best point and molecule when each guide step was asked
    ask = StartSearch.ask

    def watch(self):
        n = len(calls)
        pts = ask(self)
        if len(calls) > n:
            seen.append((None if self.best_u is None else self.best_u.copy(), self.best_smiles))
        return pts

    monkeypatch.setattr(StartSearch, "ask", watch)
    start = tiny_smiles[3]
    # 60 calls: at most ~8 runs, so the 39 guides (the start is among the 40) do not run out
    res = designer.optimize(start, maximize=["qed"], method="cmaes", steps=2, chains=4, budget=60,
                            fill_budget=True, guides=tiny_smiles[:40])
    assert res.summary["runs"] >= 2 and len(calls) >= 2  # restarts happened, each after a guide step
    walked = [g for *_, used in calls for g in used]
    assert len(walked) == len(set(walked))  # no guide is walked towards twice
    assert res.summary["guide_points"] == len(GUIDE_STEPS) * len(walked)
    assert calls[0][0] == designer.molecule(start).smiles and seen[0] == (None, None)
    for (smiles, origin, skip, used), (best_u, best_smiles), before in zip(calls[1:], seen[1:], calls):
        assert smiles == best_smiles and best_u is not None
        np.testing.assert_array_equal(origin, best_u)
        assert skip >= set(before[3]) and not skip & set(used) and len(used) <= GUIDES_PER_START
    full = int((res.trajectory.groupby("step").size() == GUIDES_PER_START * len(GUIDE_STEPS)).sum())
    assert len(calls) - 1 <= full <= len(calls)  # each guide step is in the trajectory (the last may be cut)


def test_prescreen_decodes_the_candidates_the_surrogate_ranks_best(designer, tiny_smiles, monkeypatch):
    """--prescreen K: CMA-ES samples K × chains candidates a generation, only the chains with the best
    predicted objective are decoded, and CMA-ES is told all K × chains (the rest ranked last)."""
    pytest.importorskip("cma")
    from moldesign.design.optimize.search import CmaesSearch

    sur = designer.bundle.surrogate
    obj = Objective.parse(maximize=["qed"])
    asked, told = [], []
    propose, fitness = CmaesSearch._propose, CmaesSearch._fitness_of_all

    def spy_propose(self):
        u = propose(self)
        cand = np.tile(self.u0, (len(self._xs), 1)).astype(np.float32)
        cand[:, self.space.moves] = np.asarray(self._xs, np.float32)
        asked.append((obj.score_numpy(sur.predict(self.space.clip(cand)), sur), obj.score_numpy(sur.predict(u), sur)))
        return u

    def spy_fitness(self, f):
        full = fitness(self, f)
        if self.prescreen > 1:
            told.append((f.copy(), full.copy(), self._order.copy()))
        return full

    monkeypatch.setattr(CmaesSearch, "_propose", spy_propose)
    monkeypatch.setattr(CmaesSearch, "_fitness_of_all", spy_fitness)
    res = designer.optimize(tiny_smiles[3], maximize=["qed"], method="cmaes", steps=4, chains=4, prescreen=3)
    assert res.summary["prescreen"] == 3 and len(asked) >= 4 and told
    for every, decoded in asked:
        assert len(every) == 12 and len(decoded) == 4
        np.testing.assert_allclose(np.sort(decoded), np.sort(every)[-4:], rtol=1e-6)  # the 4 best predicted
    assert res.trajectory.groupby("step")["point"].max().max() == 3  # 4 points decoded a generation
    for f, full, order in told:
        assert len(full) == 12
        np.testing.assert_array_equal(full[order[:4]], f)  # decoded: their own fitness
        rest = full[order[4:]]
        assert (rest > f.max()).all() and (np.diff(rest) > 0).all()  # the rest last, in predicted order
    n = len(asked)
    plain = designer.optimize(tiny_smiles[3], maximize=["qed"], method="cmaes", steps=4, chains=4)
    assert plain.summary["prescreen"] == 1 and all(len(every) == 4 for every, _ in asked[n:])


@pytest.mark.parametrize("kwargs,message", [
    (dict(prescreen=0), "--prescreen must be in 1..64"),
    (dict(prescreen=2, method="gradient"), "use it with --method cmaes"),
    (dict(prescreen=2, maximize=["similarity"], method="cmaes"), "--prescreen has nothing to rank by"),
])
def test_prescreen_settings_are_checked(designer, tiny_smiles, kwargs, message):
    kw = dict(maximize=["qed"], steps=1, chains=2) | kwargs
    with pytest.raises(DesignInputError, match=message):
        designer.optimize(tiny_smiles[3], **kw)


def test_a_guide_is_never_a_proposal(designer, seed_smiles, monkeypatch):
    """A decode that is one of the guides steers the search but is not new, not ranked, and does
    not end it at --stop-at; other molecules are proposed as usual."""
    pytest.importorskip("cma")
    guide, other = "CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1"  # aspirin (QED 0.55), benzene (QED 0.44)
    _fake_decoder(monkeypatch, [guide, other])
    res = designer.optimize(seed_smiles, maximize=["qed"], method="cmaes", steps=2, chains=4, budget=40,
                            guides=[guide, seed_smiles], stop_at=0.5)
    t = res.trajectory
    assert (t["smiles"] == guide).any() and not t.loc[t["smiles"] == guide, "new"].any()
    assert t.loc[t["smiles"] == guide, "rank"].isna().all()
    assert res.best["smiles"].tolist() == [other] and not res.summary["stopped"]  # the guide reached 0.5: no stop


@pytest.mark.parametrize("kwargs,message", [
    (dict(samples=0), "--samples must be in 1..256, got 0"), (dict(samples=1.5), "--samples must be in"),
    (dict(temperature=0.0), "--temperature must be in \\(0, 10\\], got 0.0"),
    (dict(temperature=float("inf")), "--temperature must be in"),
    (dict(sigma_units="nats"), "--sigma-units must be one of prior, posterior, got 'nats'"),
    (dict(fill_budget=True), "--fill-budget needs --budget N"),
    (dict(similarity_penalty=-1.0), "--similarity-penalty must be >= 0, got -1.0"),
    (dict(stop_at=float("nan")), "--stop-at must be a finite objective value, got nan"),
    (dict(stop_at="high"), "--stop-at must be a finite objective value, got 'high'"),
])
def test_new_search_settings_are_checked(designer, tiny_smiles, kwargs, message):
    with pytest.raises(DesignInputError, match=message):
        designer.optimize(tiny_smiles[0], maximize=["qed"], method="cmaes", **kwargs)


# ------------------------------------------------------------------ batches of starts
def _many(designer, smiles, **kw):
    """optimize_many over `smiles` (keys 0..n-1) → {key: OptimizeResult}, and the BatchStats."""
    from moldesign.design.optimize import BatchStats, Objective, optimize_many

    stats = BatchStats()
    seeds = [(i, designer.molecule(s)) for i, s in enumerate(smiles)]
    out = dict(optimize_many(designer.bundle, seeds, Objective.parse(maximize=["qed"]), stats=stats, **kw))
    return out, stats


@pytest.mark.parametrize("kw", [
    dict(method="cmaes", min_similarity=0.2, budget=25, fill_budget=True, steps=3, chains=4, sigma=0.5),
    dict(method="cmaes", samples=3, temperature=0.8, steps=2, chains=3, sigma=0.5, seed=4),
    dict(method="gradient", steps=3, chains=3, step_size=0.8, sigma=0.5, min_similarity=0.2),
], ids=["cmaes-fill-budget", "cmaes-samples", "gradient"])
def test_a_start_gets_the_same_rows_alone_and_in_a_batch(designer, tiny_smiles, kw):
    """The real tiny decoder: every start's trajectory (every column but nothing timed) is the
    same whether it is searched with three others, alone in a batch, or by optimize()."""
    if kw["method"] == "cmaes":
        pytest.importorskip("cma")
    smiles = tiny_smiles[:4]
    together, _ = _many(designer, smiles, **kw)
    assert sorted(together) == [0, 1, 2, 3]
    seed = kw.pop("seed", 0)
    for i, s in enumerate(smiles):
        alone = designer.optimize(s, maximize=["qed"], seed=seed, **kw)
        pd.testing.assert_frame_equal(together[i].trajectory, alone.trajectory)
        strip = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
        assert strip(together[i].summary) == strip(alone.summary)
    kw["seed"] = seed
    one, _ = _many(designer, smiles[2:3], **kw)
    pd.testing.assert_frame_equal(one[0].trajectory, together[2].trajectory)


def test_scoring_in_rdkit_workers_changes_no_result(designer, tiny_smiles):
    """With a worker pool, RDKit scores some starts' molecules while this process decodes the
    others' rows: every start's trajectory is the one it gets in process."""
    pytest.importorskip("cma")
    kw = dict(method="cmaes", min_similarity=0.2, budget=30, fill_budget=True, steps=3, chains=4, sigma=0.5)
    alone, _ = _many(designer, tiny_smiles[:5], **kw)
    piped, stats = _many(designer, tiny_smiles[:5], workers=2, **kw)
    assert sorted(piped) == [0, 1, 2, 3, 4]
    for i in range(5):
        pd.testing.assert_frame_equal(piped[i].trajectory, alone[i].trajectory)
        assert piped[i].summary["oracle_calls"] == alone[i].summary["oracle_calls"]
    assert stats.decodes == sum(r.summary["decodes"] for r in piped.values())


def test_a_batch_decodes_its_starts_side_by_side(designer, tiny_smiles):
    """Every start's rows share the decoder's steps, and a start pushes its next generation as soon
    as its own rows are decoded: the batch takes as many decoder steps as its slowest start takes
    alone (each start's timeline is the one it has alone), not the sum over starts, and every
    start's population is in the decoder at once."""
    pytest.importorskip("cma")
    kw = dict(method="cmaes", steps=4, chains=4, sigma=0.5)
    res, stats = _many(designer, tiny_smiles[:5], **kw)
    alone = [_many(designer, [s], **kw)[1] for s in tiny_smiles[:5]]
    assert stats.steps == max(a.steps for a in alone) < sum(a.steps for a in alone)
    assert stats.max_rows == 5 * 4 and stats.row_steps == sum(a.row_steps for a in alone)
    assert stats.rounds == sum(r.trajectory["step"].nunique() for r in res.values())
    assert stats.decodes == sum(r.summary["decodes"] for r in res.values())


def test_a_batch_start_that_cannot_be_searched_is_reported_not_raised(designer, tiny_smiles, monkeypatch):
    from moldesign.design.optimize import batch

    real = batch.new_search

    def refuse_second(bundle, seed, *a):
        if seed.smiles == designer.molecule(tiny_smiles[1]).smiles:
            raise DesignInputError("no search for this one")
        return real(bundle, seed, *a)

    monkeypatch.setattr(batch, "new_search", refuse_second)
    res, _ = _many(designer, tiny_smiles[:3], method="cmaes", steps=2, chains=3)
    assert isinstance(res[1], DesignInputError) and res[0].summary["decodes"] > 0 and res[2].summary["decodes"] > 0


def test_huge_weights_and_tiny_steps_are_refused_before_any_work(designer, tiny_smiles):
    with pytest.raises(DesignInputError, match="out of range"):
        Objective.parse(expression="1e308*qed + 1e308*logp")
    with pytest.raises(DesignInputError, match="out of range"):
        Objective.parse(expression="1e999*qed")
    assert Objective.parse(expression="1e6*qed").weights == {"qed": 1e6}
    for kw in (dict(sigma=1e-300), dict(condition_sigma=1e-300)):
        with pytest.raises(DesignInputError, match="must be at least 1e-06"):
            designer.optimize(tiny_smiles[0], maximize=["qed"], **kw)


def test_best_so_far_follows_the_trajectory(designer, tiny_smiles):
    from moldesign.design.optimize import best_so_far

    res = designer.optimize(tiny_smiles[0], maximize=["qed"], steps=4, chains=4, sigma=0.8)
    curve = best_so_far(res.trajectory)
    assert curve["step"].tolist() == sorted(res.trajectory["step"].unique())
    assert curve["oracle_calls"].is_monotonic_increasing and curve["oracle_calls"].iloc[-1] == res.summary["oracle_calls"]
    best = curve["best_objective"].dropna()
    assert best.is_monotonic_increasing
    if len(res.best):
        assert best.iloc[-1] == pytest.approx(res.best["objective"].iloc[0])
        assert curve["best_qed"].iloc[-1] == pytest.approx(res.best["qed"].iloc[0])
