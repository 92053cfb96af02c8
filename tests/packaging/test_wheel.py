"""A wheel that works anywhere (issue 30): the wheel built from the checkout carries every module
of the package and the shipped model, and the unpacked wheel runs from another folder with no
checkout and no $MOLDESIGN_MODEL (only the dependencies come from this environment).

The wheel is built (pip wheel --no-deps --no-build-isolation: no network) from a copy of the files
the build reads, so the shared working tree gets no build/ or *.egg-info."""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import moldesign
from moldesign.resources import MODEL_NAME, PACKAGED_MODELS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {MODEL_NAME, "MODEL_CARD.md"}  # what pyproject's package-data takes from models/


def _copy_source(dst: Path) -> None:
    """What the build reads: the top-level files (pyproject.toml, setup.py, README.md, ...),
    moldesign/ and models/."""
    dst.mkdir()
    for f in ROOT.iterdir():
        if f.is_file():
            shutil.copy2(f, dst / f.name)
    shutil.copytree(ROOT / "moldesign", dst / "moldesign", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "models", dst / "models")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the copy of the checkout the wheel was built from, the wheel); removed afterwards (~45 MB)."""
    pytest.importorskip("setuptools", reason="the build backend; --no-build-isolation builds with this environment's")
    tmp = tmp_path_factory.mktemp("wheel")
    _copy_source(tmp / "src")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp / "dist"), str(tmp / "src")],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list((tmp / "dist").glob("moldesign-*.whl"))
    assert len(wheels) == 1, wheels
    yield tmp / "src", wheels[0]
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def unpacked(built, tmp_path_factory):
    """(the unpacked wheel, a working folder outside the checkout, the environment to run in)."""
    tmp = tmp_path_factory.mktemp("installed")
    site = tmp / "site"
    with zipfile.ZipFile(built[1]) as z:
        z.extractall(site)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MOLDESIGN_MODEL"}
    # the unpacked copy comes first on sys.path; the editable install's finder (if any) comes after
    # the path entries, and the working folder is not the checkout: the tests check moldesign.__file__
    env["PYTHONPATH"] = str(site)
    env.setdefault("OMP_NUM_THREADS", "1")
    yield site, elsewhere, env
    shutil.rmtree(tmp, ignore_errors=True)


def test_wheel_carries_every_module_and_the_shipped_model(built):
    src, wheel = built
    with zipfile.ZipFile(wheel) as z:
        infos = {i.filename: i for i in z.infolist()}
        dist_info = next(n.split("/")[0] for n in infos if n.split("/")[0].endswith(".dist-info"))
        metadata = Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    # nothing beside the package at the top (no stray models/ in site-packages)
    assert {n.split("/")[0] for n in infos} == {"moldesign", dist_info}
    # every module and subpackage of the checkout (a subpackage folder without __init__.py is missed)
    pkg = src / "moldesign"
    source = {"/".join(p.relative_to(src).parts) for p in pkg.rglob("*.py") if "__pycache__" not in p.parts}
    subpackages = {p.parent for p in pkg.rglob("*.py") if "__pycache__" not in p.parts and p.parent != pkg}
    no_init = sorted(str(d.relative_to(src)) for d in subpackages if not (d / "__init__.py").is_file())
    assert not no_init, f"setup.py finds no package without __init__.py: {no_init}"
    assert source <= set(infos), sorted(source - set(infos))
    # the shipped model, byte for byte the size of models/'s, and its card; not the MOSES model
    packaged = {n.split("/")[-1]: i for n, i in infos.items() if n.startswith(f"moldesign/{PACKAGED_MODELS}/")}
    assert set(packaged) == SHIPPED
    for name in SHIPPED:
        assert packaged[name].file_size == (src / "models" / name).stat().st_size, name
    assert metadata["Version"] == moldesign.__version__
    assert "ZINC250k" in metadata["Summary"]
    assert "moldesign = moldesign.cli:main" in entry_points


def test_unpacked_wheel_imports_itself_and_finds_its_model(unpacked):
    site, elsewhere, env = unpacked
    run = subprocess.run(
        [sys.executable, "-c", "import moldesign; print(moldesign.__file__); print(moldesign.DEFAULT_MODEL)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    module, model = (Path(line).resolve() for line in run.stdout.splitlines())
    assert module == (site / "moldesign" / "__init__.py").resolve()
    assert model == (site / "moldesign" / PACKAGED_MODELS / MODEL_NAME).resolve()
    assert model.is_file()


def test_unpacked_wheel_generates_with_its_model(unpacked):
    site, elsewhere, env = unpacked
    run = subprocess.run(
        [sys.executable, "-m", "moldesign.cli", "generate", "--like", "aspirin", "-n", "3", "--seed", "0"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert len(rows) == 4, run.stdout  # header + 3 molecules
    assert rows[0][0] == "smiles"
