"""`moldesign screen` through typer's CliRunner: output, summary, options and every bad input."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from moldesign.cli import app

runner = CliRunner()
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


@pytest.fixture
def smi(tmp_path):
    path = tmp_path / "in.smi"
    path.write_text(f"{ASPIRIN} aspirin\nC1CC broken\n\nCC(=O)Oc1ccccc1C(=O)[O-].[Na+] aspirin_na\n"
                    "c1ccc(-c2ccccc2)cc1 biphenyl\n")
    return path


def test_help():
    result = runner.invoke(app, ["screen", "--help"])
    assert result.exit_code == 0
    for opt in ("--filter", "--drop", "--dedupe", "--reference", "--workers", "--smiles-col", "--seed",
                "--device", "--model", "--out", "--quiet"):
        assert opt in result.output


def test_screen_writes_every_row_and_a_summary(smi, tmp_path):
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["screen", str(smi), "-o", str(out), "--workers", "1", "--filter", "logp<3.4",
                                 "--dedupe"])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert df["row"].tolist() == [1, 2, 3, 4, 5]
    assert df["valid"].tolist() == [True, False, False, True, True]
    assert df["error"].fillna("").tolist()[1:3] == ["invalid SMILES: syntax error", "empty SMILES"]
    assert df["duplicate_of"].tolist()[3] == 1  # the sodium salt scores as aspirin
    assert df["passes"].tolist() == [True, False, False, False, True]
    assert df["failed_filters"].fillna("").tolist() == ["", "", "", "duplicate", ""]
    assert "5 rows: 3 valid, 2 invalid; 1 salts/charges standardized; 1 duplicates; 2 pass filters" in result.output


def test_screen_to_stdout_and_drop(smi):
    result = runner.invoke(app, ["screen", str(smi), "-q", "--workers", "1", "--drop", "--filter", "qed>0.5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("row,input,name,valid,error,smiles")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "4", "5"]  # QED 0.55, 0.55, 0.63


def test_screen_reference_and_novel_filter(smi, tmp_path):
    ref = tmp_path / "train.csv"
    pd.DataFrame({"SMILES": [ASPIRIN, "CCO"]}).to_csv(ref, index=False)
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["screen", str(smi), "--reference", str(ref), "--filter", "novel==1", "-o", str(out),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out)
    assert [None if pd.isna(v) else bool(v) for v in df["novel"]] == [False, None, None, False, True]
    assert "2 unique molecules from 2 rows" in result.output


def test_small_chunks_give_the_same_table_as_one_chunk(tmp_path, sample):
    # order across chunks; the 2-worker order test is tests/unit/test_screening.py (one pool per suite)
    from moldesign.screening.screen import screen_smiles

    src = tmp_path / "in.csv"
    sample.head(60)[["smiles"]].to_csv(src, index=False)
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["screen", str(src), "-o", str(out), "-q", "--workers", "1", "--chunk-size", "7"])
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(out)
    api = screen_smiles(sample.head(60)["smiles"].tolist())
    assert cli["input"].tolist() == api["input"].tolist() == sample.head(60)["smiles"].tolist()
    assert cli["smiles"].tolist() == api["smiles"].tolist()
    assert cli["qed"].tolist() == pytest.approx(api["qed"].round(4).tolist())  # exported to 4 decimals


def test_all_invalid_input_writes_rows_and_exits_1(tmp_path):
    src = tmp_path / "bad.smi"
    src.write_text("C1CC\nxyz\n")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["screen", str(src), "-o", str(out), "--workers", "1"])
    assert result.exit_code == 1
    assert "no valid molecule among the 2 rows" in result.output
    assert len(pd.read_csv(out)) == 2


def test_failure_mid_file_leaves_no_output(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("smiles,id\n" + "CCO,1\n" * 30 + "CCN,2,extra,fields\n" + "CCC,3\n" * 5)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["screen", str(src), "-o", str(out), "-q", "--workers", "1", "--chunk-size", "10"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot read") and "line 32" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("args,message", [
    (["missing.smi"], "file not found"),
    (["{smi}", "--filter", "logp<<3"], "bad filter 'logp<<3'"),
    (["{smi}", "--filter", "weight<3"], "unknown property 'weight'"),
    (["{smi}", "--filter", "novel==1"], "needs --reference"),
    (["{smi}", "--reference", "nope.csv"], "--reference file not found"),
    (["{smi}", "-o", "out.xlsx"], "unsupported output type '.xlsx'"),
    (["{smi}", "--workers", "-1"], "--workers must be >= 0"),
    (["{smi}", "--chunk-size", "0"], "--chunk-size must be >= 1"),
    (["{smi}", "--smiles-col", "foo"], "does not apply to .smi"),
    (["{csv}", "--smiles-col", "foo"], "column 'foo' not found"),
    (["{csv_nosmiles}"], "no SMILES column"),
    (["{xlsx}"], "unsupported input type '.xlsx'"),
    (["{smi}", "-o", "{smi}"], "would overwrite the input"),
])
def test_bad_input_one_line_exit_2(args, message, smi, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("smiles\nCCO\n")
    (tmp_path / "n.csv").write_text("name,value\na,1\n")
    (tmp_path / "t.xlsx").write_text("x")
    paths = {"smi": str(smi), "csv": "t.csv", "csv_nosmiles": "n.csv", "xlsx": "t.xlsx"}
    result = runner.invoke(app, ["screen"] + [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --engine dask"),
    (["--partitions", "3"], "--partitions needs --engine dask"),
    (["--engine", "dask", "--partitions", "-1"], "--partitions must be >= 0, got -1"),
    (["--engine", "dask", "--dedupe"], "--dedupe needs --engine local"),
])
def test_screen_engine_options_are_checked(smi, args, message):
    result = runner.invoke(app, ["screen", str(smi), "-q", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_screen_engine_dask_writes_what_local_writes(smi, tmp_path):
    pytest.importorskip("distributed")
    local, dask = tmp_path / "local.csv", tmp_path / "dask.csv"
    assert runner.invoke(app, ["screen", str(smi), "-q", "--workers", "1", "-o", str(local)]).exit_code == 0
    result = runner.invoke(app, ["screen", str(smi), "--engine", "dask", "--workers", "2", "--partitions", "2",
                                 "-o", str(dask)])
    assert result.exit_code == 0, result.output
    assert dask.read_text() == local.read_text()
    assert "5 rows: 3 valid, 2 invalid" in result.output
