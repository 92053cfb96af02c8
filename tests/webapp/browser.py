"""Drive `moldesign app` in headless Chromium (Selenium, Debian's chromium + chromedriver).

Used by test_browser.py, and to take the README screenshot from the shipped model:

    PYTHONPATH=. python -m tests.webapp.browser --out docs/app_generate.png
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import moldesign

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--window-size=1400,2600"]


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) from PATH; Debian names the browser `chromium`."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode(errors="replace")


@contextlib.contextmanager
def running_app(model: str | Path, port: int, log: Path, startup_s: float = 30.0) -> Iterator[tuple[str, float]]:
    """`moldesign app --port PORT --model MODEL` in a child process; yields (url, seconds until
    /_stcore/health said ok). Raises if it is not healthy within `startup_s`; stops it after."""
    env = dict(os.environ, PYTHONPATH=str(Path(moldesign.__file__).resolve().parent.parent))
    cmd = [sys.executable, "-c", "from moldesign.cli import app; app()", "app", "--port", str(port),
           "--host", "localhost", "--model", str(model)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url, t0 = f"http://localhost:{port}", time.time()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moldesign app exited with {proc.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if get(f"{url}/_stcore/health") == (200, "ok"):
                    break
            if time.time() - t0 > startup_s:
                raise RuntimeError(f"moldesign app not healthy after {startup_s:.0f} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, time.time() - t0
    finally:
        proc.terminate()  # `moldesign app` exec'd streamlit: this stops the server itself
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium(profile_dir: Path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile_dir}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def generate_in_browser(driver, url: str, seed: str = "aspirin", n: int = 10, radius: float | None = None,
                        screenshot: Path | None = None, timeout: float = 180.0) -> dict:
    """Open the app, type the seed, set n (and radius), press Generate, wait for the results grid.
    Returns what is on the Generate tab: image count, tables, the summary line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    driver.get(url)
    seed_box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'input[aria-label^="Seed molecule"]')))
    seed_box.send_keys(Keys.CONTROL, "a")
    seed_box.send_keys(seed, Keys.ENTER)

    def set_number(label_prefix: str, value) -> None:
        box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f'input[aria-label^="{label_prefix}"]')))
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.ENTER)
        wait.until(lambda d: float(d.find_element(By.CSS_SELECTOR, f'input[aria-label^="{label_prefix}"]')
                                   .get_attribute("value") or "nan") == float(value))

    set_number("n (valid", n)
    if radius is not None:
        set_number("radius", radius)
    panel = driver.find_element(By.CSS_SELECTOR, '[role="tabpanel"]')  # the first: Generate
    button = wait.until(EC.element_to_be_clickable(
        (By.XPATH, '//div[@role="tabpanel"][1]//button[.//p[normalize-space()="Generate"]]')))
    time.sleep(0.5)  # let the last input's rerun settle before the click
    button.click()
    wait.until(lambda d: panel.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentSuccess"]')
               or panel.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]'))
    errors = [e.text for e in panel.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')]
    if not errors:  # wait until the grid's images have loaded (naturalWidth > 0)
        wait.until(lambda d: d.execute_script(
            "const imgs = arguments[0].querySelectorAll('[data-testid=\"stImage\"] img');"
            "return imgs.length > 1 && Array.from(imgs).every(i => i.complete && i.naturalWidth > 0);", panel))
        # the download buttons come last on the tab: once they are there, the page is complete
        wait.until(lambda d: len(panel.find_elements(By.CSS_SELECTOR, '[data-testid="stDownloadButton"]')) >= 2)
        time.sleep(1.0)  # the table canvases and the histogram image paint
    images = panel.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
    result = {
        "errors": errors,
        "images": len(images),
        "images_loaded": sum(bool(driver.execute_script("return arguments[0].naturalWidth", i)) for i in images),
        "tables": len(panel.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')),
        "success": [e.text for e in panel.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentSuccess"]')],
        "downloads": [b.text for b in panel.find_elements(By.CSS_SELECTOR, '[data-testid="stDownloadButton"] button')],
    }
    if screenshot is not None:
        driver.save_screenshot(str(screenshot))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the shipped model)")
    ap.add_argument("--seed", default="aspirin")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--radius", type=float)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    from moldesign.api import DEFAULT_MODEL

    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        with running_app(a.model or DEFAULT_MODEL, free_port(), Path(tmp) / "app.log") as (url, startup):
            with chromium(Path(tmp) / "profile") as driver:
                res = generate_in_browser(driver, url, a.seed, a.n, a.radius, a.out)
    print(json.dumps({"startup_s": round(startup, 2), **res}))


if __name__ == "__main__":
    main()
