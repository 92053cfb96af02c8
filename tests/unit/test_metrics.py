"""Metrics against values computed by hand on tiny sets.

Fingerprint facts used below (Morgan r=2, 1024 bits): methane sets 1 bit (its atom), ethane 2
(CH3, CH3-CH3 environment), propane 4 (CH3, CH2 and the two radius-1 environments; the radius-2
environment repeats the middle atom's bond set and is dropped). Ethane and propane share only
the CH3 bit, so T(CC, CCC) = 1/5 = 0.2 and T(C, CC) = 0.
"""
import math
from collections import Counter

import numpy as np
import pytest
from rdkit import Chem, DataStructs

from moldesign.screening import metrics


def test_fingerprint_facts_used_by_the_hand_computations():
    fps = metrics.fingerprints(["C", "CC", "CCC", "not a smiles"])
    assert len(fps) == 3 and fps[0].GetNumBits() == 1024
    assert [fp.GetNumOnBits() for fp in fps] == [1, 2, 4]
    assert DataStructs.TanimotoSimilarity(fps[1], fps[2]) == pytest.approx(0.2)
    assert DataStructs.TanimotoSimilarity(fps[0], fps[1]) == 0.0


def test_validity_counts_empty_and_unparsable_as_invalid():
    assert metrics.fraction_valid(["CCO", "C1CC", "", "c1ccccc1"]) == 0.5
    assert metrics.fraction_valid([]) is None
    assert metrics.canonical_valid(["OCC", "bad", "C(C)O"]) == ["CCO", "CCO"]


def test_unique_at_k_uses_the_first_k_valid_molecules():
    gen = ["CCO", "OCC", "C", "C1CC", "CCO"]  # valid canonical: CCO, CCO, C, CCO
    assert metrics.fraction_unique(gen) == 2 / 4
    assert metrics.fraction_unique(gen, 3) == pytest.approx(2 / 3)
    assert metrics.fraction_unique(gen, 1) == 1.0
    assert metrics.fraction_unique(gen, 5) is None  # only 4 valid: no number labelled @5


def test_novelty_is_over_unique_valid_generated():
    # unique valid {CCO, CCN}; CCO is in train -> 1/2
    assert metrics.novelty(["CCO", "OCC", "CCN", "C1CC"], {"CCO"}) == 0.5
    assert metrics.novelty(["CCO"], ["CCO"]) == 0.0
    assert metrics.novelty(["C1CC"], {"CCO"}) is None


def test_internal_diversity_two_and_three_molecules():
    # [C, CC]: T matrix [[1,0],[0,1]] -> IntDiv = 1 - 2/4; IntDiv2 = 1 - sqrt(1/2)
    assert metrics.internal_diversity(["C", "CC"]) == pytest.approx(0.5)
    assert metrics.internal_diversity(["C", "CC"], p=2) == pytest.approx(1 - math.sqrt(0.5))
    # [CC, CC, CCC], t = 0.2: row sums 2.2, 2.2, 1.4 -> IntDiv = 1 - 5.8/9
    gen = ["CC", "CC", "CCC"]
    assert metrics.internal_diversity(gen) == pytest.approx(1 - 5.8 / 9)
    # IntDiv2 per molecule (MOSES code): rows mean T^2 = 0.68, 0.68, 0.36
    per_mol = 1 - (2 * math.sqrt(0.68) + math.sqrt(0.36)) / 3
    assert metrics.internal_diversity(gen, p=2) == pytest.approx(per_mol)
    # IntDiv2 over pairs (MOSES paper): 1 - sqrt(mean of all T^2)
    pairs = 1 - math.sqrt((2 * 0.68 + 0.36) / 3)
    assert metrics.internal_diversity(gen, p=2, per_molecule=False) == pytest.approx(pairs)
    assert metrics.internal_diversity(["CC", "CC"]) == 0.0
    assert metrics.internal_diversity(["bad"]) is None


def test_snn_is_mean_of_nearest_neighbour_similarity():
    ref = metrics.fingerprints(["CCC", "C"])
    assert metrics.snn(["CC"], ref) == pytest.approx(0.2)  # max(0.2, 0)
    assert metrics.snn(["CC", "CCC", "junk"], metrics.fingerprints(["CCC"])) == pytest.approx((0.2 + 1.0) / 2)
    assert metrics.snn(["junk"], ref) is None


def test_fragments_are_brics_pieces_with_labels():
    counts = metrics.fragment_counts(["CCOc1ccccc1", "CCO", "c1ccccc1"])
    # ethoxybenzene breaks at both C-O bonds; ethanol (OH, not an ether) and benzene do not break
    assert counts == Counter({"[16*]c1ccccc1": 1, "[3*]O[3*]": 1, "[4*]CC": 1, "CCO": 1, "c1ccccc1": 1})
    # gen {CCO: 2, benzene: 1} vs ref {CCO: 1, benzene: 2}: cos = (2 + 2) / (sqrt 5 sqrt 5)
    gen, ref = metrics.fragment_counts(["CCO", "CCO", "c1ccccc1"]), metrics.fragment_counts(["CCO", "c1ccccc1", "c1ccccc1"])
    assert metrics.cosine_similarity(gen, ref) == pytest.approx(0.8)


def test_scaffolds_need_two_rings():
    counts = metrics.scaffold_counts(["c1ccc2ccccc2c1", "Cc1ccc2ccccc2c1", "c1ccccc1", "CCCC"])
    assert counts == Counter({"c1ccc2ccccc2c1": 2})  # methylnaphthalene -> naphthalene; benzene has 1 ring
    ref = metrics.scaffold_counts(["c1ccc(-c2ccccc2)cc1", "c1ccc2ccccc2c1"])
    assert metrics.cosine_similarity(counts, ref) == pytest.approx(1 / math.sqrt(2))  # 2*1 / (2 * sqrt 2)
    assert metrics.cosine_similarity(Counter(), ref) is None


def test_filters_logic_with_given_patterns():
    patterns = [Chem.MolFromSmarts("[OX2H]")]
    gen = ["CCO", "CCN", "C[N+](C)(C)C", "C1CCCCCCC1", "CCP", "CCCl", "C1CC"]
    # pass: CCN, CCCl; fail: OH pattern, charge, 8-ring, phosphorus; C1CC is invalid (not counted)
    assert metrics.fraction_passes_filters(gen, patterns) == pytest.approx(2 / 6)
    assert metrics.fraction_passes_filters(["C1CCCCCC1"], []) == 1.0  # 7-ring is allowed


def test_moses_filter_patterns_committed_from_the_wheel():
    patterns = metrics.moses_filter_patterns()
    assert len(patterns) > 400 and all(p is not None for p in patterns)
    # MCF4 [H]C([H])([#6])[F,Cl,Br,I] rejects a primary alkyl halide; ethanol and aspirin pass
    assert metrics.fraction_passes_filters(["CCCl", "CCO", "CC(=O)Oc1ccccc1C(=O)O"]) == pytest.approx(2 / 3)


def test_conditioning_mae_over_valid_molecules_only():
    # ethanol MW 46.069 (2*12.011 + 6*1.008 + 15.999), HBA 1; benzene MW 78.114, HBA 0; middle is invalid
    conditions = np.array([[50, 0, 1, 1, 20], [0, 0, 0, 0, 0], [80, 2, 0, 1, 0]], dtype=float)
    mae = metrics.conditioning_mae(["CCO", "C1CC", "c1ccccc1"], conditions)
    assert mae["cond_mae_mw"] == pytest.approx(((50 - 46.069) + (80 - 78.114)) / 2, abs=1e-3)
    assert mae["cond_mae_hbd"] == 0.0
    assert mae["cond_mae_hba"] == 0.5
    assert mae["cond_mae_tpsa"] == pytest.approx((20.23 - 20) / 2, abs=1e-3)  # ethanol TPSA 20.23 (OH)
    assert metrics.conditioning_mae(["bad"], conditions[:1])["cond_mae_mw"] is None


def test_fcd_zero_against_own_statistics_and_positive_otherwise(sample):
    if not metrics.fcd_available():
        pytest.skip("fcd not installed")
    a = sample["smiles"].iloc[:60].tolist()
    b = ["C" * k for k in range(1, 61)]  # alkanes: far from drug-like molecules
    stats_a = metrics.chemnet_stats(metrics.canonical_valid(a))
    assert metrics.frechet_chemnet_distance(a, stats_a) == pytest.approx(0.0, abs=1e-3)
    assert metrics.frechet_chemnet_distance(b, stats_a) > 10
    assert metrics.frechet_chemnet_distance(["CCO"], stats_a) is None  # one molecule: no covariance


def test_fcd_is_null_without_the_package(monkeypatch):
    monkeypatch.setattr(metrics, "fcd_available", lambda: False)
    stats = (np.zeros(512), np.eye(512))
    assert metrics.frechet_chemnet_distance(["CCO", "CCN"], stats) is None


def test_reference_set_cache_roundtrip(tmp_path, sample, monkeypatch):
    smiles = sample["smiles"].iloc[:40].tolist()
    cache = tmp_path / "test_ref_stats.npz"
    ref = metrics.reference_set(smiles, cache, with_fcd=False)
    assert cache.exists()
    monkeypatch.setattr(metrics, "valid_mols", lambda s: pytest.fail("recomputed despite a cache"))
    again = metrics.reference_set(smiles, cache, with_fcd=False)
    assert again.frag == ref.frag and again.scaf == ref.scaf and again.smiles == smiles
    assert [fp.ToBitString() for fp in again.fps] == [fp.ToBitString() for fp in ref.fps]
    # a different set does not use the stale cache
    monkeypatch.undo()
    other = metrics.reference_set(smiles[:10], cache, with_fcd=False)
    assert len(other.fps) == 10


def test_reconstruction_table_keeps_every_row(tiny_bundle, tiny_smiles, reconstructed_smiles):
    from moldesign.decoding.sampling import reconstruct

    good = reconstructed_smiles[:2] + [s for s in tiny_smiles if s not in reconstructed_smiles][:8]
    inputs = good + ["C1CC", "[Se]1C=CC=C1", "C" * 200]
    table = metrics.reconstruction_table(tiny_bundle, inputs)
    assert table["input"].tolist() == inputs
    assert table["error"].iloc[:10].eq("").all()
    assert table["output"].iloc[:10].tolist() == reconstruct(tiny_bundle, good)  # greedy decode of μ
    assert table["exact"].iloc[:2].all()  # molecules this model reconstructs (conftest) count as exact
    assert table["exact"].iloc[:10].tolist() == [o == c for o, c in zip(table["output"], good)]
    assert table["error"].iloc[10] == "invalid SMILES"
    assert table["error"].iloc[11].startswith("not encodable") and "[se]" in table["error"].iloc[11]
    assert table["error"].iloc[12].startswith("not encodable")  # longer than max_len
    assert not table["exact"].iloc[10:].any()


def test_condition_targets_are_training_quantiles(tiny_bundle):
    t = metrics.condition_targets(tiny_bundle, (0.0, 0.5, 1.0))
    sample = np.asarray(tiny_bundle.property_stats["sample"])
    np.testing.assert_array_equal(t[0], sample.min(0))
    np.testing.assert_array_equal(t[2], sample.max(0))
    assert all(v in set(sample[:, 2]) for v in t[:, 2])  # HBD: an observed (integer) value


def test_unique_at_k_tops_up_until_k_valid(tiny_bundle, tiny_smiles, monkeypatch):
    """The top-up arithmetic with a scripted sampler (what the tiny model samples differs by machine)."""
    import moldesign.decoding.sampling

    calls = []

    def scripted(bundle, m, seed=0, temperature=1.0, **kw):  # one invalid string, then 20 molecules cycled
        calls.append((m, seed, temperature))
        return ["C1CC"] + [tiny_smiles[i % 20] for i in range(m - 1)], None

    monkeypatch.setattr(moldesign.decoding.sampling, "sample_prior", scripted)
    first = tiny_smiles[:8] + ["C1CC", "xyz"]  # 8 valid, all different
    # enough valid already: no extra samples, the plain unique@k of the first k valid
    assert metrics.unique_at_k_valid(tiny_bundle, first, 3, 0, 0.0, max_samples=500) == (1.0, 10) and not calls
    value, drawn = metrics.unique_at_k_valid(tiny_bundle, first, 30, seed=0, temperature=0.5, max_samples=500)
    assert calls == [(490, 1001, 0.5)] and drawn == 500  # capped at max_samples, another seed
    # the first 30 valid: tiny[0..7] + tiny[0..19] + tiny[0..1] → 20 distinct
    assert value == pytest.approx(20 / 30)
    assert metrics.unique_at_k_valid(tiny_bundle, first, 10**6, 0, 0.0, max_samples=50) == (None, 50)
