"""Exported tables: counts as integers, properties rounded to 4 decimals, SDF titles."""
import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from moldesign.data import export_frame, write_atomic_table


def test_export_frame_integers_and_rounding():
    df = pd.DataFrame({"smiles": ["CCO", "x"], "mw": [178.18699999999995, np.nan], "hbd": [1.0, np.nan],
                       "hba": [2.0, 3.0], "alpha": [1 / 3, 2 / 3], "other": [1.0, 2.0]})
    out = export_frame(df)
    assert str(out["hbd"].dtype) == "Int64" and out["hbd"].tolist()[0] == 1 and out["hbd"].isna().tolist()[1]
    assert out["mw"][0] == 178.187
    assert out["alpha"][0] == 1 / 3 and out["other"].dtype == np.float64  # not properties / not counts
    assert df["hbd"].dtype == np.float64  # the caller's frame is untouched
    # a count column with a fraction in it (never from RDKit) stays as it is
    assert export_frame(pd.DataFrame({"hbd": [1.5]}))["hbd"].tolist() == [1.5]


def test_csv_has_integer_counts_and_short_floats(tmp_path):
    df = pd.DataFrame({"smiles": ["CC(=O)Oc1ccccc1C(=O)O"], "mw": [180.15899999999996], "hbd": [1.0], "hba": [3.0],
                       "qed": [0.55000000001]})
    write_atomic_table(df, tmp_path / "a.csv", float_format="%.8g")
    text = (tmp_path / "a.csv").read_text()
    assert text.splitlines()[1] == "CC(=O)Oc1ccccc1C(=O)O,180.159,1,3,0.55"


@pytest.mark.parametrize("columns,title", [
    ({"id": ["cpd-7"], "name": ["aspirin"]}, "cpd-7"),
    ({"name": ["aspirin"]}, "aspirin"),
    ({"seed_id": ["s2"]}, "s2"),
    ({}, "CC(=O)Oc1ccccc1C(=O)O"),
])
def test_sdf_title_from_id_name_else_smiles(tmp_path, columns, title):
    df = pd.DataFrame({"smiles": ["CC(=O)Oc1ccccc1C(=O)O"], "hbd": [1.0], **columns})
    write_atomic_table(df, tmp_path / "a.sdf")
    mol = next(iter(Chem.SDMolSupplier(str(tmp_path / "a.sdf"))))
    assert mol.GetProp("_Name") == title
    assert mol.GetProp("hbd") == "1"
