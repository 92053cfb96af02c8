"""moldesign.design.filters: the default sanity filter, --keep and the design filter language."""
import pytest
from rdkit import Chem

from moldesign.chem import mol_scores, structural_alerts
from moldesign.design.filters import MoleculeFilter, Sanity, parse_design_filters, parse_keep
from moldesign.screening.screen import FilterError


@pytest.mark.parametrize("smiles,reason", [
    ("CC1OC1=O", "3-ring with heteroatom and sp2 atom"),      # α-lactone
    ("CN1CC1=O", "3-ring with heteroatom and sp2 atom"),      # aziridinone
    ("CC1=NC1", "3-ring with heteroatom and sp2 atom"),       # 2H-azirine
    ("CC1ON1C", "3-ring with 2 heteroatoms"),                 # oxaziridine
    ("CC1(C)OOC1", "4-ring with 2 adjacent heteroatoms"),     # 1,2-dioxetane
    ("C1NCN1", "4-ring with 2 heteroatoms"),                  # 1,3-diazetidine
    ("CCN(C)C(F)(F)F", "N-CF3"),
    ("O=C1CCCCCCCCCN1", "ring size 11 > 8"),                  # macrolactam
])
def test_sanity_flags_strained_rings_ncf3_and_macrocycles(smiles, reason):
    assert reason in Sanity().problems(Chem.MolFromSmiles(smiles))
    assert Sanity.off().problems(Chem.MolFromSmiles(smiles)) == []


@pytest.mark.parametrize("smiles", [
    "CC(=O)Oc1ccccc1C(=O)O",         # aspirin
    "CC1CO1",                         # epoxide: in drugs (e.g. carfilzomib)
    "CN1CC1",                         # aziridine
    "C1COC1",                         # oxetane
    "O=C1CCN1",                       # β-lactam
    "C1CCCCCCC1",                     # 8-ring: at the limit
    "FC(F)(F)c1ccccc1",               # C-CF3 is fine
])
def test_sanity_passes_drug_like_rings(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert Sanity().problems(mol, mol_scores(mol)["sa"]) == []


def test_sanity_sa_threshold_uses_the_score_given():
    mol = Chem.MolFromSmiles("CCO")
    assert Sanity(max_sa=6.0).problems(mol, 6.5) == ["sa > 6"]
    assert Sanity(max_sa=7.0).problems(mol, 6.5) == []
    assert Sanity().problems(mol, float("nan")) == []


def test_design_filters_parse_screen_language_and_similarity():
    fs = parse_design_filters(["qed>=0.5", "similarity > 0.4", "pains==0"])
    assert [(f.key, f.op, f.value) for f in fs] == [("qed", ">=", 0.5), ("similarity", ">", 0.4), ("pains", "==", 0.0)]
    with pytest.raises(FilterError, match="'novel' is not a column of designed molecules"):
        parse_design_filters(["novel==1"])
    with pytest.raises(FilterError, match="unknown property 'potency'"):
        parse_design_filters(["potency>3"])
    with pytest.raises(FilterError, match="bad filter"):
        parse_design_filters(["qed>>1"])


def test_keep_smarts():
    q = parse_keep("c1ccccc1S(N)(=O)=O")
    assert Chem.MolFromSmiles("Cc1ccc(S(N)(=O)=O)cc1").HasSubstructMatch(q)
    for bad in ("c1ccc", "", "[X"):
        with pytest.raises(FilterError, match="not a valid SMARTS"):
            parse_keep(bad)


def test_molecule_filter_reasons_and_counts():
    f = MoleculeFilter(keep=parse_keep("C(=O)O"), filters=parse_design_filters(["mw<200", "pains==0"]),
                       min_similarity=0.5)
    aspirin = Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O")
    row = {**mol_scores(aspirin), "similarity": 0.7}
    assert f.check(aspirin, row) == []
    assert f.check(aspirin, {**row, "similarity": 0.3}) == ["similarity < 0.5"]
    ethanol = Chem.MolFromSmiles("CCO")
    assert f.check(ethanol, {**mol_scores(ethanol), "similarity": 0.9}) == ["lacks --keep substructure"]
    brenk = MoleculeFilter(filters=parse_design_filters(["brenk==0"]), sanity=Sanity.off())
    for smi in ("C=CC(=O)Oc1ccccc1", "CCOC(=O)c1ccccc1C"):  # the filter agrees with the alert count
        m = Chem.MolFromSmiles(smi)
        assert brenk.check(m, mol_scores(m)) == (["brenk==0"] if structural_alerts(m, "brenk") else [])
    assert structural_alerts(Chem.MolFromSmiles("C=CC(=O)Oc1ccccc1"), "brenk")  # a Michael acceptor: flagged
    for m, r in ((aspirin, row), (ethanol, {**mol_scores(ethanol), "similarity": 0.9}),
                 (aspirin, {**row, "similarity": 0.1})):
        f.passes(m, r)
    assert f.removed == {"lacks --keep substructure": 1, "similarity < 0.5": 1}
    import pandas as pd

    mask, reasons = f.table_mask(pd.DataFrame([row, row]), [aspirin, None])
    assert mask.tolist() == [True, False] and reasons == ["", "invalid"]
