import numpy as np
import pandas as pd
import pytest

from moldesign.chem import PROPERTIES
from moldesign.data import (DataError, PropertyScaler, bucket_batches, encode_table, find_smiles_column, load_training_table, read_smiles_file, write_atomic_table)
from moldesign.model.tokenizer import Vocabulary


def test_sample_is_committed_with_properties(sample):
    assert len(sample) == 5000 and set(sample["split"]) == {"train", "test"}
    assert list(sample.columns[:6]) == ["smiles", *PROPERTIES]
    assert sample["mw"].between(250, 350).all()  # MOSES's molecular weight window


def test_csv_with_bad_rows_is_loaded_and_bad_rows_reported(tmp_path):
    path = tmp_path / "mols.csv"
    pd.DataFrame({"name": list("abcde"), "SMILES": ["CCO", "C1CC", "", "c1ccccc1", "xyz"]}).to_csv(path, index=False)
    messages = []
    table = load_training_table(path, log=messages.append)
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1"]
    assert len(messages) == 1 and "3 of 5 rows invalid" in messages[0]
    assert "row 2: 'C1CC'" in messages[0] and "row 5: 'xyz'" in messages[0]
    assert table.loc[0, "mw"] == pytest.approx(46.069, abs=1e-3)


def test_smi_and_tsv_files(tmp_path):
    smi = tmp_path / "a.smi"
    smi.write_text("CCO ethanol\nc1ccccc1 benzene\nCC\n")
    df = read_smiles_file(smi)
    assert df["smiles"].tolist() == ["CCO", "c1ccccc1", "CC"]
    tsv = tmp_path / "a.tsv"
    tsv.write_text("id\tmol\n1\tCCO\n")
    assert read_smiles_file(tsv)["smiles"].tolist() == ["CCO"]


def test_file_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_smiles_file(tmp_path / "missing.csv")
    nocol = tmp_path / "x.csv"
    nocol.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no SMILES column among \['a', 'b'\]"):
        read_smiles_file(nocol)
    with pytest.raises(DataError, match="column 'zz' not found"):
        find_smiles_column(["a"], "zz")
    weird = tmp_path / "x.xlsx"
    weird.write_text("")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        read_smiles_file(weird)


def test_scaler_roundtrip(sample):
    train = sample[sample["split"] == "train"]
    scaler = PropertyScaler.fit(train)
    scaled = scaler.transform(train[list(PROPERTIES)].to_numpy())
    np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(0), 1, atol=1e-4)
    again = PropertyScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(again.inverse(scaled), train[list(PROPERTIES)].to_numpy(), rtol=1e-5, atol=1e-4)
    assert again.names == PROPERTIES


def test_scaler_constant_column_does_not_divide_by_zero():
    df = pd.DataFrame({"a": [1.0, 1.0], "b": [0.0, 2.0]})
    s = PropertyScaler.fit(df, ["a", "b"])
    assert s.std[0] == 1.0 and np.isfinite(s.transform(df.to_numpy())).all()


def test_bucketed_batches_cover_everything_once_and_cut_padding(sample):
    vocab = Vocabulary.build(sample["smiles"])
    data, keep = encode_table(sample, vocab, PropertyScaler.fit(sample), max_len=64)
    assert keep.all() and data.ids.shape[0] == 5000
    assert (data.ids[np.arange(5000), data.lengths - 1] == vocab.eos_id).all()
    padded = lambda batches: sum(len(b) * data.lengths[b].max() for b in batches)
    rng = np.random.default_rng(0)
    bucketed = bucket_batches(data.lengths, 64, rng, bucketed=True)
    plain = bucket_batches(data.lengths, 64, np.random.default_rng(0), bucketed=False)
    for batches in (bucketed, plain):
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(5000))
    real = data.lengths.sum()
    assert padded(bucketed) / real - 1 < 0.01  # < 1% padding tokens
    assert padded(plain) / real - 1 > 0.15  # random batches pad to their longest member
    again = bucket_batches(data.lengths, 64, np.random.default_rng(0), bucketed=True)
    assert all(np.array_equal(a, b) for a, b in zip(bucketed, again))  # fixed seed, same batches


def test_encode_table_leaves_out_too_long_and_unknown(sample):
    vocab = Vocabulary.build(["CCO"])
    table = pd.DataFrame({"smiles": ["CCO", "CCCCCCCCCCO", "CCN"], **{p: [1.0, 2.0, 3.0] for p in PROPERTIES}})
    data, keep = encode_table(table, vocab, PropertyScaler.fit(table), max_len=8)
    assert keep.tolist() == [True, False, False] and len(data) == 1


def test_atomic_write_leaves_no_file_on_failure(tmp_path):
    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    out = tmp_path / "t.csv"
    with pytest.raises(RuntimeError):
        write_atomic_table(pd.DataFrame({"a": [Boom()]}), out)
    assert list(tmp_path.iterdir()) == []
    write_atomic_table(pd.DataFrame({"a": [1]}), out)
    assert out.read_text() == "a\n1\n"


def test_training_table_of_a_large_file_is_cached_by_checksum(tmp_path, monkeypatch, sample):
    from moldesign import data

    monkeypatch.setattr(data, "CACHE_MIN_ROWS", 10)
    f = tmp_path / "mols.smi"
    f.write_text("\n".join(sample["smiles"].head(30)) + "\n")
    cache = tmp_path / "cache"
    first = data.load_training_table(f, cache_dir=cache, log=lambda m: None)
    entries = list(cache.glob("*.parquet"))
    assert len(entries) == 1 and entries[0].name.startswith(data.file_sha256(f)[:20])
    monkeypatch.setattr("moldesign.chem.compute_table", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = data.load_training_table(f, cache_dir=cache, log=lambda m: None)
    pd.testing.assert_frame_equal(first, again)
    f.write_text("\n".join(sample["smiles"].head(31)) + "\n")  # another file: another key, computed afresh
    monkeypatch.undo()
    monkeypatch.setattr(data, "CACHE_MIN_ROWS", 10)
    assert len(data.load_training_table(f, cache_dir=cache, log=lambda m: None)) == 31
    assert len(list(cache.glob("*.parquet"))) == 2
