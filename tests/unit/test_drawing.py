"""moldesign.drawing: paginated grids and plots are valid, readable images."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from moldesign import drawing


def test_grid_paginates_so_every_page_is_readable(tmp_path):
    smiles = ["C" * (i % 6 + 1) + "O" for i in range(45)]
    n = drawing.grid_image(smiles, [f"#{i}" for i in range(45)], tmp_path / "g.png")
    assert n == 45
    pages = sorted(p.name for p in tmp_path.glob("g*.png"))
    assert pages == ["g-2.png", "g-3.png", "g.png"]  # 20 + 20 + 5
    w, h = Image.open(tmp_path / "g.png").size
    assert w <= drawing.PER_ROW * 300 and h <= drawing.ROWS_PER_PAGE * 260
    assert Image.open(tmp_path / "g-3.png").size[1] == 260  # the last page holds one row


def test_plots_write_valid_png_and_svg(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({k: rng.normal(3, 1, 40) for k in ("mw", "logp", "tpsa", "qed", "sa", "similarity")})
    df["hbd"], df["hba"] = rng.integers(0, 4, 40).astype(float), rng.integers(1, 8, 40).astype(float)
    drawing.plot_generate(df, tmp_path / "g.png", requested={"logp": 2.0}, seed={"logp": 3.1, "mw": 3.0})
    assert Image.open(tmp_path / "g.png").format == "PNG"
    drawing.plot_distributions(df, df.assign(mw=df["mw"] + 1), tmp_path / "d.svg")
    assert (tmp_path / "d.svg").read_text().lstrip().startswith("<?xml")
    rows = [{"step": i, "alpha": i / 3, "smiles": s, "valid": v, "duplicate": False}
            for i, (s, v) in enumerate([("CCO", True), ("C1CC", False), ("CCN", True), ("c1ccccc1", True)])]
    drawing.plot_path(rows, tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").format == "PNG"
    with pytest.raises(ValueError, match="--plot must end in .png or .svg"):
        drawing.check_plot_path(tmp_path / "p.gif")
