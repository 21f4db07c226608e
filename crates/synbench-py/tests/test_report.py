"""report.html, checked in a real browser: a small sweep of linear-Gaussian
"models" of several widths (one partial, one failed), its page opened in
headless Chromium through Selenium and the system chromedriver; the DOM is
checked as rendered (rows, intervals, sorting by a score column, filtering,
the overlay's curves per ticked row) and a screenshot is checked not blank.

Under CI the browser is required (`.ci/run` installs Debian's chromium and
chromium-driver); elsewhere the browser tests skip without it."""

import os
import pathlib
import shutil
import base64
import subprocess
import sys
import zlib

import numpy as np
import pytest

import synbench
import synbench.sweep
from synbench import _synbench

from conftest import run_cli

PROTOCOL = dict(
    shape=(16,),
    scales=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
    n_train=256,
    n_test=256,
    epsilons=(0.0, 0.2),
    thresholds=(0.6, 0.7, 0.8),
)

# (name, width, noise): wider and noisier encoders score differently.
MODELS = [
    ("lin_w8_clean", 8, 0.05),
    ("lin_w8_noisy", 8, 0.6),
    ("lin_w16_clean", 16, 0.05),
    ("lin_w16_noisy", 16, 0.6),
    ("lin_w32_mid", 32, 0.3),
    ("lin_w64_mid", 64, 0.3),
    ("proj_w24", 24, 0.15),
    ("proj_w48", 48, 0.9),
]


def encoder(width: int, noise: float, name: str):
    seed = zlib.crc32(name.encode())
    a = np.random.default_rng(seed).standard_normal((16, width)).astype(np.float32) / 4.0

    def encode(batch) -> np.ndarray:
        x = batch.inputs.reshape(len(batch), -1)
        eta = np.random.default_rng([seed, batch.scale_index, int(batch.split == "test"), batch.start]).standard_normal((len(batch), width))
        return (x @ a + noise * eta).astype(np.float32)

    return encode


def make_sweep(root: pathlib.Path) -> pathlib.Path:
    """A sweep folder: the finished models above, one killed after 3 of 6
    scales, one failed before its first scale."""
    sweep = root / "sweep"
    sweep.mkdir(parents=True)
    names = [m[0] for m in MODELS] + ["lin_w12_partial", "broken_model"]
    _synbench._write_sweep(
        str(sweep), "models.txt", "protocol.toml", 1, [(n, n, i + 1, 0) for i, n in enumerate(names)]
    )
    for name, width, noise in MODELS:
        exp = synbench.Experiment(**PROTOCOL, model=name, output_dir=sweep / name)
        encode = encoder(width, noise, name)
        for batch in exp.batches():
            exp.fold(batch, encode(batch))
        exp.finish()
    # A run killed after three scales: its folder has run.json and three scale files.
    exp = synbench.Experiment(**PROTOCOL, model="lin_w12_partial", output_dir=sweep / "lin_w12_partial")
    exp.start(scales_in_flight=0)
    encode = encoder(12, 0.2, "lin_w12_partial")
    for batch in exp.batches():
        exp.fold(batch, encode(batch))
        if len(exp.finished_scales()) >= 3:
            break
    del exp
    _synbench._record_failure(
        str(sweep), "broken_model", "broken_model", "RuntimeError: CUDA out of memory", "RuntimeError",
        "Traceback (most recent call last):\n  ...", "0/1", "node1",
    )
    return sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> pathlib.Path:
    return make_sweep(tmp_path_factory.mktemp("report"))


def test_collect_and_report_write_one_self_contained_page(sweep):
    _, markdown, paths = synbench.sweep.collect(str(sweep))
    page = sweep / "report.html"
    assert str(page) in paths
    html = page.read_text()
    # One file, nothing fetched: no external script, style, image or font.
    for needle in ("http://", "https://", "<link", "src=\""):
        assert needle not in html.replace('xmlns="http://www.w3.org/2000/svg"', ""), needle
    # Every scored model has a section and a leaderboard row per ε; the failed and partial ones are named.
    for name, *_ in MODELS:
        assert f">{name}</a>" in html and f"{name}</h3>" in html
    assert "partial (3 of 6 scales)" in html and "CUDA out of memory" in html
    # The same Rust code through the CLI and through `python -m synbench report` writes the same page.
    first = html
    run_cli("report", sweep)
    assert (sweep / "report.html").read_text() == first
    out = subprocess.run(
        [sys.executable, "-m", "synbench", "report", str(sweep)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert (sweep / "report.html").read_text() == first
    # A run folder has its own page, written by finish().
    run_page = (sweep / "lin_w8_clean" / "report.html").read_text()
    assert "reference estimator" in run_page and "population estimator" in run_page
    assert "Provenance" in run_page and "generator_revision" in run_page


def test_no_report_is_honoured(tmp_path):
    exp = synbench.Experiment(**PROTOCOL, model="plain", output_dir=tmp_path / "run")
    exp.start(report=False)
    encode = encoder(8, 0.1, "plain")
    for batch in exp.batches():
        exp.fold(batch, encode(batch))
    exp.finish()
    assert (tmp_path / "run" / "results.json").is_file()
    assert not (tmp_path / "run" / "report.html").exists()


# ---- the browser ----


def chromium() -> tuple:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        browser = None
    if browser and driver:
        return browser, driver
    if os.environ.get("CI"):
        pytest.fail("the browser test needs chromium, chromedriver and selenium: .ci/run installs them")
    pytest.skip("chromium, chromedriver or selenium is missing")


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


def rendered_rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].filter(r => r.offsetParent !== null)"
        ".map(r => r.dataset.model + '@' + r.cells[4].textContent)"
    )


def visible_curves(driver):
    """The overlay's drawn curves: `<use>` layers that render (a box of
    non-zero size) and reference a symbol holding a path."""
    return driver.execute_script(
        """
        return [...document.querySelectorAll('svg.overlay use.layer')].filter(u => {
            const box = u.getBoundingClientRect();
            const target = document.querySelector(u.getAttribute('href'));
            return getComputedStyle(u).display !== 'none' && box.width > 0 && target.querySelector('path');
        }).map(u => u.dataset.curve);
        """
    )


def test_the_sweep_report_renders_sorts_filters_and_overlays_in_chromium(sweep, browser, tmp_path):
    from selenium.webdriver.common.by import By

    synbench.sweep.collect(str(sweep))
    driver = browser
    driver.get((sweep / "report.html").as_uri())
    keep_screenshot(driver, "report_sweep.png")
    lines = (sweep / "leaderboard.csv").read_text().count("\n")
    assert lines == 1 + 2 * (len(MODELS) + 1) + 1  # header, two ε per scored model, one failed row
    rows = rendered_rows(driver)
    assert len(rows) == 2 * (len(MODELS) + 1) + 1
    # Every finished model's score at t = 0.7 shows its interval, low < score < high.
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => [r.dataset.model, r.cells[6].firstChild.textContent,"
        " r.cells[6].querySelector('small') ? r.cells[6].querySelector('small').textContent : ''])"
    )
    finished = [c for c in cells if c[0] in {m[0] for m in MODELS}]
    assert len(finished) == 2 * len(MODELS)
    for model, value, interval in finished:
        low, high = (float(v) for v in interval.split("–"))
        assert low <= float(value) <= high, (model, value, interval)
    # Ranked by t = 0.7, highest first, as leaderboard.csv ranks.
    scores = [float(c[1]) for c in cells if c[1] != "—"]
    assert scores[: 2 * len(MODELS)] == sorted(scores[: 2 * len(MODELS)], reverse=True)

    # Sorting by the t = 0.6 column reorders the rows: highest first, then lowest first on a second click.
    header = driver.find_element(By.XPATH, "//table[@id='board']//th[normalize-space()='t = 0.6']/button")
    header.click()
    by_06 = driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => parseFloat(r.cells[5].firstChild.textContent))"
        ".filter(v => !isNaN(v))"
    )
    assert by_06 == sorted(by_06, reverse=True)
    assert rendered_rows(driver) != rows
    header.click()
    up = driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => parseFloat(r.cells[5].firstChild.textContent))"
        ".filter(v => !isNaN(v))"
    )
    assert up == sorted(up)
    assert header.find_element(By.XPATH, "..").get_attribute("aria-sort") == "ascending"

    # By keyboard: Enter on a column's button sorts by it (every control is a button, link, box or select).
    from selenium.webdriver.common.keys import Keys

    by_width = driver.find_element(By.XPATH, "//table[@id='board']//th[normalize-space()='width']/button")
    by_width.send_keys(Keys.ENTER)
    assert by_width.find_element(By.XPATH, "..").get_attribute("aria-sort") == "descending"
    widths = driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => parseFloat(r.cells[11].textContent))"
        ".filter(v => !isNaN(v))"
    )
    assert widths == sorted(widths, reverse=True) and len(widths) == 2 * len(MODELS)

    # The filter hides the rows that do not match (model or family), and says how many show.
    box = driver.find_element(By.ID, "filter")
    box.send_keys("w16")
    shown = rendered_rows(driver)
    assert sorted({r.split("@")[0] for r in shown}) == ["lin_w16_clean", "lin_w16_noisy"]
    assert len(shown) == 4
    assert driver.find_element(By.ID, "shown").text == f"4 of {len(rows)} rows shown"
    box.clear()
    box.send_keys("proj")
    assert {r.split("@")[0] for r in rendered_rows(driver)} == {"proj_w24", "proj_w48"}
    box.send_keys("\b" * 10)
    driver.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
    assert len(rendered_rows(driver)) == len(rows)

    # The overlay: one drawn curve per ticked row — five by default (the best row of the five best models).
    ticked = driver.execute_script("return [...document.querySelectorAll('input.pick:checked')].map(b => b.dataset.curve)")
    assert len(ticked) == 5
    assert sorted(visible_curves(driver)) == sorted(ticked)
    for box in driver.find_elements(By.CSS_SELECTOR, "input.pick:checked")[:3]:
        box.click()
    extra = driver.find_elements(By.CSS_SELECTOR, "input.pick:not(:checked)")[-1]
    extra.click()
    ticked = driver.execute_script("return [...document.querySelectorAll('input.pick:checked')].map(b => b.dataset.curve)")
    assert len(ticked) == 3
    assert sorted(visible_curves(driver)) == sorted(ticked)
    legend = driver.execute_script(
        "return [...document.querySelectorAll('#overlay-legend li')].filter(l => l.offsetParent !== null).length"
    )
    assert legend == 3
    # Distinct colours for the ticked curves.
    colours = driver.execute_script(
        "return [...document.querySelectorAll('svg.overlay use.layer:not(.off)')].map(u => getComputedStyle(u).color)"
    )
    assert len(set(colours)) == 3

    # The width figure: one per threshold, the chosen one shown.
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "width-t")).select_by_visible_text("t = 0.8")
    shown_t = driver.execute_script(
        "return [...document.querySelectorAll('svg.wfig')].filter(f => getComputedStyle(f).display !== 'none')"
        ".map(f => f.dataset.t)"
    )
    assert shown_t == ["2"]

    # A row's link opens the model's section.
    driver.find_element(By.LINK_TEXT, "proj_w48").click()
    assert driver.execute_script(
        "return document.querySelector(location.hash + ' details').open && location.hash"
    ) == "#" + driver.find_element(By.LINK_TEXT, "proj_w48").get_attribute("href").split("#")[1]

    # Printed, the page drops its controls (filter, tick boxes) and keeps the table.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print", "features": []})
    assert driver.execute_script("return getComputedStyle(document.querySelector('.controls')).display") == "none"
    assert driver.execute_script("return getComputedStyle(document.getElementById('board')).display") == "table"
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})

    # A screenshot, not blank: many distinct colours, dark text on the white ground.
    shot = tmp_path / "sweep.png"
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(shot))
    assert_not_blank(shot)


def test_a_run_report_renders_its_tables_and_figures_in_chromium(sweep, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get((sweep / "lin_w16_clean" / "report.html").as_uri())
    keep_screenshot(driver, "report_run.png")
    tables = driver.find_elements(By.CSS_SELECTOR, "table.scores")
    assert len(tables) == 2  # both estimators
    for table in tables:
        body = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(body) == 3  # two ε and the best-ε row
    figures = driver.execute_script(
        "return [...document.querySelectorAll('.figs svg')].map(s => [s.getAttribute('class'),"
        " s.getBoundingClientRect().width, s.querySelectorAll('use').length])"
    )
    assert [f[0] for f in figures] == ["bound_vs_threshold", "accuracy_vs_scale", "score_vs_n"]
    assert all(f[1] > 200 for f in figures)
    # The bound figure draws its frame and one curve per ε from the shared symbols.
    assert figures[0][2] == 3
    assert driver.execute_script("return document.querySelector('details.prov') !== null")
    shot = tmp_path / "run.png"
    driver.save_screenshot(str(shot))
    assert_not_blank(shot)

    # Dark mode follows the system: a dark ground, light text, figures still on white.
    def looks():
        return driver.execute_script(
            "const s = getComputedStyle(document.body), f = getComputedStyle(document.querySelector('.figs svg'));"
            "return [s.backgroundColor, s.color, f.backgroundColor]"
        )

    light = looks()
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = looks()
    assert light[0] == "rgb(255, 255, 255)" and dark[0] != light[0] and dark[1] != light[1]
    assert brightness(dark[0]) < 60 < 180 < brightness(dark[1])
    assert dark[2] == light[2] == "rgb(255, 255, 255)"
    # Printing hides the controls and keeps the tables.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print", "features": []})
    assert driver.execute_script("return getComputedStyle(document.querySelector('table.scores')).display") == "table"
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})


def brightness(css: str) -> float:
    r, g, b = (float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (r + g + b) / 3


def keep_screenshot(driver, name: str):
    """With SYNBENCH_SCREENSHOTS=DIR, the whole page as first rendered, into
    DIR/name (docs/report/ holds the ones the README shows)."""
    folder = os.environ.get("SYNBENCH_SCREENSHOTS")
    if folder:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (pathlib.Path(folder) / name).write_bytes(base64.b64decode(shot["data"]))
        assert_not_blank(pathlib.Path(folder) / name)


def assert_not_blank(path: pathlib.Path):
    """The screenshot shows a page: many distinct colours, and both
    near-white ground and dark text or lines."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50, f"{path}: only {len(colours)} colours: a blank page?"
    luminance = pixels.mean(axis=2)
    assert (luminance > 240).mean() > 0.2 and (luminance < 80).mean() > 0.002, path
