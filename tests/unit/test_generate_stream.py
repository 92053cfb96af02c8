"""generate --raw streamed in chunks: same rows as the in-memory stream, part files that resume an
interrupted run, and a refusal to mix parts of different runs."""
import pandas as pd
import pytest

from moldesign.api import RAW_COLUMNS, Designer
from moldesign.data import DataError
from moldesign.design import raw


@pytest.fixture
def designer(tiny_bundle, tiny_model_path):
    return Designer(tiny_bundle, tiny_model_path)


def test_chunks_are_seeded_independently(designer):
    # chunk k draws from (seed, k): producing chunk 2 alone gives the rows the full stream has there
    full = pd.concat(list(designer.generate_raw_chunks(n=50, seed=3, chunk_size=20, temperature=1.0)),
                     ignore_index=True)
    assert len(full) == 50 and list(full.columns) == RAW_COLUMNS
    last = next(designer.generate_raw_chunks(n=50, seed=3, chunk_size=20, temperature=1.0, start_chunk=2))
    pd.testing.assert_frame_equal(last.reset_index(drop=True), full.iloc[40:].reset_index(drop=True))
    # n within one chunk: exactly what generate(raw=True) returns
    pd.testing.assert_frame_equal(designer.generate(n=20, seed=3, temperature=1.0, raw=True),
                                  full.iloc[:20], check_like=False)


def test_stream_to_file_resumes_after_an_interruption(designer, tmp_path, monkeypatch):
    out = tmp_path / "raw.parquet"
    whole = designer.generate_raw_to(tmp_path / "whole.parquet", n=50, seed=1, chunk_size=20, temperature=1.0)
    assert whole == {"attempts": 50, "valid": pytest.approx(whole["valid"]), "parts": 3, "reused": 0}
    assert not (tmp_path / "whole.parquet.parts").exists()  # removed once the output is complete
    expected = pd.read_parquet(tmp_path / "whole.parquet")
    assert whole["valid"] == pytest.approx(expected["valid"].mean()) and len(expected) == 50

    calls = {"n": 0}
    real_table = raw.result_table

    def dies_on_second_chunk(strings, seed=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_table(strings, seed)

    monkeypatch.setattr(raw, "result_table", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        designer.generate_raw_to(out, n=50, seed=1, chunk_size=20, temperature=1.0)
    monkeypatch.undo()
    assert not out.exists()  # no output that looks complete
    assert sorted(p.name for p in (tmp_path / "raw.parquet.parts").iterdir()) == ["manifest.json", "part-000000.parquet"]

    with pytest.raises(DataError, match="different seed"):  # other arguments: the parts are not reused
        designer.generate_raw_to(out, n=50, seed=2, chunk_size=20, temperature=1.0)
    resumed = designer.generate_raw_to(out, n=50, seed=1, chunk_size=20, temperature=1.0)
    assert resumed["reused"] == 1 and resumed["parts"] == 2
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_stream_to_csv_and_bad_arguments(designer, tmp_path):
    out = tmp_path / "raw.csv"
    designer.generate_raw_to(out, n=30, seed=0, chunk_size=7, float_format="%.8g")
    df = pd.read_csv(out)
    assert len(df) == 30 and df["valid"].dtype == bool
    from moldesign.errors import DesignInputError

    with pytest.raises(DesignInputError, match="-n must be a positive integer"):
        designer.generate_raw_to(tmp_path / "x.parquet", n=0)
    assert not (tmp_path / "x.parquet.parts").exists()  # checked before any folder is made
