"""A real browser: `moldesign app` on a free localhost port, driven by headless Chromium.

Skipped only when Chromium or its driver is not installed (.ci/run installs Debian's `chromium`
and `chromium-driver` with apt-get) or the [app]/[dev] extras are missing, and says which.
"""
from __future__ import annotations

import pytest

from .browser import chromium_paths, free_port, get

pytest.importorskip("streamlit", reason="the web app needs the [app] extra (pip install 'moldesign[app]')")
pytest.importorskip("selenium", reason="the browser test needs selenium (the [dev] extra)")

browser, driver = chromium_paths()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(browser is None or driver is None,
                       reason="Chromium could not be installed here: no `chromium`/`chromedriver` on PATH "
                              "(.ci/run installs them: apt-get install chromium chromium-driver)"),
]


def test_generate_from_aspirin_in_headless_chromium(tiny_model_path, tmp_path):
    from .browser import chromium, generate_in_browser, running_app

    with running_app(tiny_model_path, free_port(), tmp_path / "app.log", startup_s=30) as (url, startup):
        assert startup < 30
        status, page = get(f"{url}/")
        assert status == 200 and "<html" in page.lower()
        assert get(f"{url}/_stcore/health") == (200, "ok")
        with chromium(tmp_path / "profile") as drv:
            shot = tmp_path / "generate.png"
            # radius 1.5: the tiny model, overfit on 100 molecules, decodes aspirin itself at the default 0.3
            res = generate_in_browser(drv, url, "aspirin", n=4, radius=1.5, screenshot=shot)
    assert res["errors"] == [], res
    assert res["success"] and res["success"][0].startswith("4 molecules around aspirin from"), res
    # the seed's drawing plus one per generated molecule, all loaded; the seed's and the results' tables
    assert res["images"] >= 1 + 4 and res["images_loaded"] == res["images"], res
    assert res["tables"] == 2, res
    assert res["downloads"] == ["Download CSV", "Download SDF"], res
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
