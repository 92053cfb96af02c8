import math
import re

import pytest
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

from moldesign import chem
from moldesign.known_molecules import KNOWN_MOLECULES, UnknownMolecule, known_names, resolve_molecule


def test_aspirin_properties_match_rdkit_and_literature():
    p = chem.mol_scores(chem.mol_from_smiles("CC(=O)Oc1ccccc1C(=O)O"))
    assert p["mw"] == pytest.approx(180.159, abs=1e-3)  # C9H8O4
    assert p["hbd"] == 1 and p["hba"] == 3
    assert p["tpsa"] == pytest.approx(63.6, abs=0.01)
    assert p["logp"] == pytest.approx(1.3101, abs=1e-3)
    assert 0.5 < p["qed"] < 0.6
    assert 1.0 <= p["sa"] < 2.5  # aspirin is easy to make


def test_tamiflu_properties_match_rdkit():
    label, smiles = resolve_molecule("Tamiflu")
    mol = Chem.MolFromSmiles(smiles)
    p = chem.mol_properties(mol)
    assert p["mw"] == pytest.approx(312.41, abs=0.01)  # C16H28N2O4
    assert rdMolDescriptors.CalcMolFormula(mol) == "C16H28N2O4"
    assert p == {
        "mw": Descriptors.MolWt(mol), "logp": Crippen.MolLogP(mol),
        "hbd": rdMolDescriptors.CalcNumHBD(mol), "hba": rdMolDescriptors.CalcNumHBA(mol),
        "tpsa": rdMolDescriptors.CalcTPSA(mol),
    }
    assert (p["hbd"], p["hba"]) == (2, 5)
    assert chem.qed(mol) == pytest.approx(QED.qed(mol))


@pytest.mark.parametrize("bad", ["", "   ", "C1CC", "not a smiles", "C(C"])
def test_invalid_smiles_raise_with_the_input_named(bad):
    with pytest.raises(chem.InvalidSmiles, match=re.escape(repr(bad.strip())) if bad.strip() else "empty"):
        chem.mol_from_smiles(bad)


def test_canonicalize_is_stable_and_isomeric_optional():
    assert chem.canonicalize("OCC") == "CCO"
    assert chem.canonicalize("C[C@H](N)O") != chem.canonicalize("C[C@H](N)O", isomeric=False)
    assert "@" not in chem.canonicalize("C[C@H](N)O", isomeric=False)


def test_compute_table_keeps_every_row_in_order_with_workers():
    smiles = ["CCO", "bad", "", "c1ccccc1", None, "CC(=O)O"] * 5
    for workers in (1, 2):
        t = chem.compute_table(smiles, with_scores=True, workers=workers, chunk_size=4)
        assert len(t) == len(smiles)
        assert t["input"].tolist() == smiles
        assert t["valid"].tolist() == [True, False, False, True, False, True] * 5
        assert t.loc[1, "error"] == "invalid SMILES" and t.loc[2, "error"] == "empty SMILES"
        assert math.isnan(t.loc[1, "mw"]) and t.loc[0, "mw"] == pytest.approx(46.069, abs=1e-3)
        assert t.loc[3, "smiles"] == "c1ccccc1"


def test_tanimoto_to_seed():
    seed = chem.mol_from_smiles("CCO")
    sims = chem.tanimoto_to(seed, [chem.mol_from_smiles("CCO"), None, chem.mol_from_smiles("c1ccccc1")])
    assert sims[0] == 1.0 and math.isnan(sims[1]) and sims[2] == 0.0


def test_known_molecules_all_parse_and_resolve_case_insensitively():
    required = ["aspirin", "tamiflu", "oseltamivir", "ibuprofen", "paracetamol", "caffeine", "penicillin g",
                "celecoxib", "imatinib", "sildenafil", "atorvastatin"]
    for name in required:
        assert resolve_molecule(name.upper())[1] == resolve_molecule(name)[1]
    for smiles in KNOWN_MOLECULES.values():
        assert chem.is_valid(smiles)
    assert resolve_molecule("tamiflu")[1] == resolve_molecule("Oseltamivir")[1]
    assert "tamiflu" in known_names()


def test_smiles_accepted_where_a_name_is_expected():
    assert resolve_molecule("OCC") == ("OCC", "CCO")


def test_unknown_name_lists_close_names():
    with pytest.raises(UnknownMolecule, match="did you mean aspirin"):
        resolve_molecule("asprin")
    with pytest.raises(UnknownMolecule, match="neither a known molecule name nor a valid SMILES"):
        resolve_molecule("zzzzqqq")
    with pytest.raises(UnknownMolecule, match="empty"):
        resolve_molecule("")


# ------------------------------------------------------------------ penalized logP (issue 17)
@pytest.mark.parametrize("smiles,logp,sa,cycle", [
    # hand-checked: Crippen logP and Ertl SA as RDKit gives them; cycle = max(0, largest ring - 6)
    ("CCO", -0.0014, 1.98, 0),
    ("c1ccccc1", 1.6866, 1.00, 0),
    ("C1CCCCCCC1", 3.1208, 1.00, 2),  # cyclooctane: one 8-ring
    ("CC(=O)Oc1ccccc1C(=O)O", 1.3101, 1.58, 0),  # aspirin
])
def test_penalized_logp_hand_checked(smiles, logp, sa, cycle):
    mol = chem.mol_from_smiles(smiles)
    assert Crippen.MolLogP(mol) == pytest.approx(logp, abs=1e-3)
    assert chem.sa_score(mol) == pytest.approx(sa, abs=0.02)
    assert chem.ring_penalty(mol) == cycle
    # JT-VAE's units: logP - SA, no ring term, no normalization
    assert chem.plogp_raw(mol) == pytest.approx(logp - sa, abs=0.02)
    # normalized (GCPN …): each term standardized by the ZINC250k constants of the issue
    expected = (logp - 2.4571) / 1.4343 + (-sa + 3.0526) / 0.8335 + (-cycle + 0.0486) / 0.2860
    assert chem.penalized_logp(mol) == pytest.approx(expected, abs=0.03)


def test_penalized_logp_ring_term_and_exact_formula():
    big = chem.mol_from_smiles("C1CCCCCCCCCCC1")  # 12-ring: cycle 6, about −21 normalized units from the ring alone
    small = chem.mol_from_smiles("C1CCCCC1")
    assert chem.ring_penalty(big) == 6 and chem.ring_penalty(small) == 0
    assert chem.ring_penalty(chem.mol_from_smiles("CCCC")) == 0  # acyclic
    for mol in (big, small):
        exact = ((Crippen.MolLogP(mol) - chem.PLOGP_LOGP_MEAN) / chem.PLOGP_LOGP_STD
                 + (-chem.sa_score(mol) - chem.PLOGP_SA_MEAN) / chem.PLOGP_SA_STD
                 + (-chem.ring_penalty(mol) - chem.PLOGP_CYCLE_MEAN) / chem.PLOGP_CYCLE_STD)
        assert chem.penalized_logp(mol) == pytest.approx(exact, abs=1e-9)
    assert chem.penalized_logp(small) - chem.penalized_logp(big) > 15  # the 12-ring costs 6/0.286 ≈ 21 units


def test_one_atom_edits():
    assert sorted(chem.one_atom_edits(chem.mol_from_smiles("CCO"))) == sorted(["OCCl", "CCS"])  # methyl C→Cl, O→S
    assert chem.one_atom_edits(chem.mol_from_smiles("c1ccncc1")) == ["c1ccccc1"]  # n→c
    assert chem.one_atom_edits(chem.mol_from_smiles("c1ccccc1")) == []  # aromatic carbons have two neighbours
    # N-methylacetamide: N→C, O→S, and each of its two methyls → Cl
    assert sorted(chem.one_atom_edits(chem.mol_from_smiles("CNC(C)=O"))) == sorted(
        ["CCC(C)=O", "CNC(C)=S", "CC(=O)NCl", "CNC(=O)Cl"])
