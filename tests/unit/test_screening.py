"""Screening: every odd row keeps its place, chemistry decisions, filters, order, atomic output."""
import math

import pandas as pd
import pytest
from rdkit import Chem

from moldesign import chem
from moldesign.screening import screen as screening
from moldesign.data import DataError
from moldesign.screening.screen import FilterError, ScreenOptions, parse_filter, screen_file, screen_smiles

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_odd_rows_keep_their_place_with_a_reason():
    inputs = [ASPIRIN, "", "   ", None, "C1CC", "N(C)(C)(C)(C)C", "c1cccc1", "CCO"]
    df = screen_smiles(inputs)
    assert df["row"].tolist() == list(range(1, 9))
    assert df["valid"].tolist() == [True, False, False, False, False, False, False, True]
    err = df["error"].tolist()
    assert err[0] == "" and err[7] == ""
    assert err[1] == err[2] == err[3] == "empty SMILES"
    assert err[4] == "invalid SMILES: syntax error"  # unclosed ring
    assert "valence" in err[5].lower() and "N" in err[5]
    assert "kekulize" in err[6].lower()
    assert df.loc[~df["valid"], ["mw", "qed", "sa"]].isna().all().all()
    assert df.loc[~df["valid"], "smiles"].isna().all()


def test_valid_row_values_match_chem_helpers():
    row = screen_smiles([ASPIRIN]).iloc[0]
    expected = chem.mol_scores(Chem.MolFromSmiles(ASPIRIN))
    for k, v in expected.items():
        assert row[k] == pytest.approx(v)
    assert row["mw"] == pytest.approx(180.159, abs=1e-3)
    assert row["rotb"] == 2  # ester C-O and aryl-C(ester) bonds; the acid C-O(H) is terminal
    assert row["brenk"] == "phenol_ester" and row["pains"] == ""
    assert row["lipinski"] and row["lipinski_violations"] == "" and row["veber"]


def test_salts_are_scored_as_the_neutral_parent_and_noted():
    df = screen_smiles(["CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", "Cl.CN(C)CCc1ccccc1", ASPIRIN])
    assert df["smiles"].tolist()[0] == ASPIRIN and df["mw"][0] == pytest.approx(df["mw"][2])
    assert df["standardization"][0] == "largest of 2 fragments; neutralized"
    assert df["smiles"][1] == "CN(C)CCc1ccccc1" and df["standardization"][1] == "largest of 2 fragments"
    assert df["standardization"][2] == ""
    raw = screen_smiles(["CC(=O)Oc1ccccc1C(=O)[O-].[Na+]"], ScreenOptions(standardize=False)).iloc[0]
    assert raw["smiles"] == "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]" and raw["mw"] > 200  # sodium salt as given


def test_charged_molecules():
    df = screen_smiles(["C[N+](C)(C)CCO", "NCC(=O)O", "[NH3+]CC(=O)[O-]", "O=[N+]([O-])c1ccccc1"])
    assert df["standardization"][0] == "net charge +1"  # quaternary ammonium cannot be neutralized
    assert df["smiles"][2] == df["smiles"][1] == "NCC(=O)O" and df["standardization"][2] == "neutralized"
    assert df["standardization"][3] == "" and df["smiles"][3] == "O=[N+]([O-])c1ccccc1"  # nitro left alone


def test_very_long_molecules_are_scored_up_to_max_atoms():
    chain = "C" * 150
    df = screen_smiles([chain])
    assert df["valid"][0] and df["mw"][0] == pytest.approx(150 * 12.011 + 302 * 1.008, abs=0.01)
    assert df["lipinski_violations"][0] == "mw>500; logp>5" and not df["lipinski"][0]
    assert df["veber_violations"][0] == "rotb>10" and not df["veber"][0]
    small = screen_smiles([chain, "CCO"], ScreenOptions(max_atoms=100))
    assert not small["valid"][0] and small["error"][0] == "not scored: 150 heavy atoms > max_atoms 100"
    assert small["valid"][1]


def test_lipinski_allows_one_violation_and_names_them():
    # 16 hydroxyls on a C16 chain: NH+OH = 16 > 5 and N+O = 16 > 10 -> two violations, fails
    polyol = "C(O)" * 16
    row = screen_smiles([polyol]).iloc[0]
    assert row["lipinski_violations"] == "nh_oh>5; n_o>10" and not row["lipinski"]
    row = screen_smiles(["CCCCCCCCCCCCCCCCCCCC"]).iloc[0]  # eicosane: logP > 5 only
    assert row["lipinski_violations"] == "logp>5" and row["lipinski"]


@pytest.mark.parametrize("text,key,op,value", [
    ("logp<3", "logp", "<", 3.0), (" qed >= 0.5 ", "qed", ">=", 0.5), ("MW<=500", "mw", "<=", 500.0),
    ("hbd=0", "hbd", "=", 0.0), ("pains==0", "pains", "==", 0.0), ("tpsa>-1e2", "tpsa", ">", -100.0),
])
def test_filters_parse(text, key, op, value):
    f = parse_filter(text)
    assert (f.key, f.op, f.value) == (key, op, value)


@pytest.mark.parametrize("text,message", [
    ("logp<<3", "bad filter 'logp<<3'"), ("logp", "bad filter"), ("logp<abc", "bad filter"),
    ("<3", "bad filter"), ("", "bad filter"), ("foo<3", "unknown property 'foo'"), ("3<logp", "bad filter"),
])
def test_filters_reject_nonsense_with_one_line(text, message):
    with pytest.raises(FilterError) as e:
        parse_filter(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_filters_mark_or_drop():
    inputs = [ASPIRIN, "c1ccc(-c2ccccc2)cc1", "C1CC", "O=C(C=Cc1ccccc1)c1ccccc1"]  # logP 1.31, 3.35, -, 3.58
    marked = screen_smiles(inputs, ScreenOptions(filters=["logp<3", "brenk==0"]))
    assert marked["passes"].tolist() == [False, False, False, False]
    assert marked["failed_filters"].tolist() == ["brenk==0", "logp<3", "", "logp<3; brenk==0"]
    marked = screen_smiles(inputs, ScreenOptions(filters=["logp<3.4"]))
    assert marked["passes"].tolist() == [True, True, False, False]
    dropped = screen_smiles(inputs, ScreenOptions(filters=["logp<3.4"], drop=True))
    assert dropped["row"].tolist() == [1, 2] and dropped["passes"].all()
    valid_only = screen_smiles(inputs, ScreenOptions(drop=True))  # no filter: drop keeps valid rows
    assert valid_only["row"].tolist() == [1, 2, 4]
    with pytest.raises(FilterError, match="needs a reference"):
        ScreenOptions(filters=["novel==1"])


def _nullable(values):
    return [None if pd.isna(v) else v for v in values]


def test_dedupe_compares_standardized_isomeric_smiles():
    # L-alanine, D-alanine (a different compound), L-alanine HCl, junk, L-alanine written from N
    inputs = ["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "C[C@H](N)C(=O)O.Cl", "bad", "N[C@@H](C)C(=O)O"]
    df = screen_smiles(inputs, ScreenOptions(dedupe=True))
    assert _nullable(df["duplicate_of"]) == [None, None, 1, None, 1]  # invalid rows are never duplicates
    assert df["passes"].tolist() == [True, True, False, False, False]
    assert df["failed_filters"].iloc[2] == "duplicate"


def test_novelty_against_a_reference_file(tmp_path):
    ref = tmp_path / "ref.smi"
    ref.write_text("OCC\nc1ccccc1C[C@H](N)C\nnot_a_smiles\n")
    keys = screening.load_reference(ref)
    assert keys == {"CCO", "CC(N)Cc1ccccc1"}  # non-isomeric canonical; the bad row is ignored
    df = screen_smiles(["CCO", "C[C@@H](N)Cc1ccccc1", "CCN", "bad", "[O-]CC.[Na+]"],
                       ScreenOptions(reference=keys, filters=["novel==1"]))
    assert _nullable(df["novel"]) == [False, False, True, None, False]  # stereo and salt forms are known
    assert df["passes"].tolist() == [False, False, True, False, False]


def test_order_is_kept_with_two_workers(sample):
    smiles = sample["smiles"].iloc[:240].tolist()
    smiles[17] = "C1CC"
    one = screen_smiles(smiles, chunk_size=20)
    two = screen_smiles(smiles, workers=2, chunk_size=20)
    pd.testing.assert_frame_equal(one, two)
    assert two["input"].tolist() == smiles and two["row"].tolist() == list(range(1, 241))
    assert two["smiles"].iloc[0] == Chem.MolToSmiles(Chem.MolFromSmiles(smiles[0]))


def test_input_formats_give_the_same_rows(tmp_path):
    smiles = [ASPIRIN, "C1CC", "CCO"]
    (tmp_path / "a.smi").write_text("".join(f"{s} m{i}\n" for i, s in enumerate(smiles)))
    pd.DataFrame({"id": ["m0", "m1", "m2"], "Structure": smiles}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"id": ["m0", "m1", "m2"], "Structure": smiles}).to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    pd.DataFrame({"id": [0, 1, 2], "smiles": smiles}).to_parquet(tmp_path / "a.parquet")
    w = Chem.SDWriter(str(tmp_path / "a.sdf"))
    for i, s in enumerate([ASPIRIN, "CCO"]):
        m = Chem.MolFromSmiles(s)
        m.SetProp("_Name", f"m{i}")
        m.SetProp("ID", str(i))
        w.write(m)
    w.close()
    for name, col in (("a.smi", None), ("a.csv", "Structure"), ("a.tsv", "Structure"), ("a.parquet", None)):
        out = tmp_path / f"{name}.csv"
        counts = screen_file(tmp_path / name, out, smiles_col=col, chunk_size=2)
        df = pd.read_csv(out)
        assert counts["rows"] == 3 and counts["valid"] == 2, name
        assert df["valid"].tolist() == [True, False, True], name
        assert df["input"].tolist() == smiles, name
    assert pd.read_csv(tmp_path / "a.smi.csv")["name"].tolist() == ["m0", "m1", "m2"]
    screen_file(tmp_path / "a.sdf", tmp_path / "s.csv")
    sdf = pd.read_csv(tmp_path / "s.csv")
    assert sdf["name"].tolist() == ["m0", "m1"] and sdf["ID"].tolist() == [0, 1]
    assert sdf["smiles"].tolist() == [ASPIRIN, "CCO"]


def test_sdf_records_that_do_not_read_keep_their_row(tmp_path):
    good = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    bad_valence = Chem.MolToMolBlock(Chem.MolFromSmiles("OCO")).replace(" C ", " F ")  # F with 2 bonds
    broken = "junk\n\n\n  x  y  z\nM  END\n"
    (tmp_path / "m.sdf").write_text("$$$$\n".join([good, bad_valence, broken, good]) + "$$$$\n")
    screen_file(tmp_path / "m.sdf", tmp_path / "o.csv")
    df = pd.read_csv(tmp_path / "o.csv")
    assert df["valid"].tolist() == [True, False, False, True]
    assert "valence" in df["error"][1].lower() and df["error"][2] == "unreadable SD record"


def test_recomputed_input_columns_appear_once_and_others_are_kept(tmp_path):
    # a `generate` table screened again: its mw/valid are screen's own, its similarity and ids stay
    pd.DataFrame({"smiles": ["CCO"], "mw": ["vendor 46"], "valid": ["yes"], "similarity": [0.42], "row": ["r7"],
                  "seed_id": ["s1"]}).to_csv(tmp_path / "a.csv", index=False)
    screen_file(tmp_path / "a.csv", tmp_path / "o.csv")
    df = pd.read_csv(tmp_path / "o.csv")
    assert not [c for c in df.columns if c in ("input_mw", "input_valid")]
    assert list(df.columns).count("mw") == 1 and list(df.columns).count("valid") == 1
    assert df["mw"][0] == pytest.approx(46.069, abs=1e-3) and df["valid"][0]
    assert df["similarity"][0] == 0.42 and df["seed_id"][0] == "s1" and df["input_row"][0] == "r7"


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".sdf", ".smi"])
def test_outputs_in_every_format_have_every_row(tmp_path, suffix):
    src = tmp_path / "in.smi"
    src.write_text(f"{ASPIRIN}\nC1CC\nCCO\n")
    out = tmp_path / f"out{suffix}"
    screen_file(src, out, chunk_size=2)
    if suffix == ".csv":
        assert len(pd.read_csv(out)) == 3
    elif suffix == ".parquet":
        df = pd.read_parquet(out)
        assert df["valid"].tolist() == [True, False, True] and df["mw"].isna().tolist() == [False, True, False]
    elif suffix == ".sdf":
        mols = list(Chem.SDMolSupplier(str(out)))
        assert len(mols) == 3 and mols[1].GetNumAtoms() == 0 and mols[1].GetProp("error").startswith("invalid")
    else:
        assert out.read_text().splitlines() == [ASPIRIN, "", "CCO"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    src = tmp_path / "in.smi"
    src.write_text("CCO\n" * 50)
    out = tmp_path / "out.parquet"
    calls = []
    real = screening.score_smiles

    def flaky(args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(screening, "score_smiles", flaky)
    with pytest.raises(KeyboardInterrupt):
        screen_file(src, out, chunk_size=10)
    # neither out.parquet nor a temporary file; only the finished parts, kept for --resume
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.parquet.parts", "in.smi"]
    assert not [p for p in screening.parts_dir(out).iterdir() if p.name.endswith(".tmp")]
    out.write_text("previous result")
    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        screen_file(src, out, chunk_size=10)
    assert out.read_text() == "previous result"  # an older output survives a failed run


def test_empty_input_writes_header_only(tmp_path):
    (tmp_path / "e.csv").write_text("smiles,id\n")
    counts = screen_file(tmp_path / "e.csv", tmp_path / "o.csv")
    df = pd.read_csv(tmp_path / "o.csv")
    assert counts["rows"] == 0 and len(df) == 0 and {"valid", "error", "smiles", "qed"} <= set(df.columns)


def test_scoring_error_in_one_molecule_keeps_the_row(monkeypatch):
    real = chem.mol_scores

    def boom(mol):
        if mol.GetNumAtoms() == 3:
            raise RuntimeError("descriptor blew up")
        return real(mol)

    monkeypatch.setattr(chem, "mol_scores", boom)
    df = screen_smiles(["CCO", "CCCC"])
    assert df["valid"].tolist() == [False, True]
    assert df["error"][0] == "scoring failed: RuntimeError: descriptor blew up"
    assert not math.isnan(df["mw"][1])


def test_similarity_filter_reads_the_input_column(tmp_path):
    pd.DataFrame({"smiles": ["CCO", "CCN", "CCC"], "similarity": [0.6, 0.2, ""]}).to_csv(tmp_path / "g.csv", index=False)
    screen_file(tmp_path / "g.csv", tmp_path / "o.csv", ScreenOptions(filters=["similarity>0.4"]))
    df = pd.read_csv(tmp_path / "o.csv")
    assert df["passes"].tolist() == [True, False, False]
    assert df["failed_filters"].fillna("").tolist() == ["", "similarity>0.4", "similarity>0.4"]


def test_similarity_filter_without_the_column_names_it(tmp_path):
    pd.DataFrame({"smiles": ["CCO"]}).to_csv(tmp_path / "g.csv", index=False)
    with pytest.raises(DataError, match="needs a `similarity` column"):
        screen_file(tmp_path / "g.csv", tmp_path / "o.csv", ScreenOptions(filters=["similarity>0.4"]))
    assert not (tmp_path / "o.csv").exists()


def test_reference_keys_are_cached_by_file_checksum(tmp_path, monkeypatch):
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"smiles": ["CCO", "c1ccccc1O", "[Na+].CC(=O)[O-]"]}).to_csv(ref, index=False)
    logs = []
    first = screening.load_reference(ref, log=logs.append)
    assert first == {"CCO", "Oc1ccccc1", "CC(=O)O"}
    cached = list(screening.reference_cache_dir().glob("*.parquet"))
    assert len(cached) == 1 and "cached in" in logs[-1]

    def no_work(*a, **k):
        raise AssertionError("recomputed although cached")

    original = screening.reference_keys
    monkeypatch.setattr(screening, "reference_keys", no_work)
    assert screening.load_reference(ref, log=logs.append) == first and "(cached in" in logs[-1]
    with pytest.raises(AssertionError, match="recomputed"):  # another standardization is another key
        screening.load_reference(ref, standardize=False)
    ref.write_text("smiles\nCCN\n")  # same path, new content: new checksum, recomputed
    monkeypatch.setattr(screening, "reference_keys", original)
    assert screening.load_reference(ref) == {"CCN"}
    assert screening.load_reference(ref, cache=False) == {"CCN"}
