"""Real-browser tests: `streamlit run app.py` on 127.0.0.1, driven by Debian's chromium through playwright.

An empty app: Home, the Train page (through the sidebar) and the Gallery (by URL) load without an
exception box. An app with the session's two trained runs: the pixels of an anomaly map, as the
browser paints them, carry the colour scale's colours (its low end where the error is lowest); in an 800 px
window no label of a plotly figure (title, annotation, colour bar, legend) overlaps another.
Skips (with the reason) where chromium or playwright are not installed; `.ci/run` installs both.
"""

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anovit.app.common import PAGES
from anovit.visualization.imaging import ERROR_COLORSCALE, colorize, colour_lut

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"streamlit did not answer {url}/_stcore/health within {timeout} s")


def start_app(checkpoints: Path, data: Path, log_dir: Path):
    """A ``streamlit run app.py`` process on a free port (the app's URL and the process)."""
    port = free_port()
    env = {**os.environ, "ANOVIT_DATA_DIR": str(data), "ANOVIT_CHECKPOINTS": str(checkpoints)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=open(log_dir / "streamlit.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except AssertionError:
        stop(proc)
        raise
    return url, proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout and proc.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app over an empty checkpoints folder."""
    url, proc = start_app(
        tmp_path_factory.mktemp("checkpoints"), tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("log")
    )
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory, trained_runs):
    """The app over a copy of the session's trained l2-CAE and AnoViT runs."""
    checkpoints = shutil.copytree(trained_runs, tmp_path_factory.mktemp("trained") / "checkpoints")
    url, proc = start_app(Path(checkpoints), tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("log"))
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def settle(page, heading: str, timeout_s: float = 60) -> None:
    """Wait for ``heading`` and for the page's script run to finish; fail on any exception box."""
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout_s * 1000)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_s * 1000)
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.all_inner_texts()


def test_home_and_train_pages_render_in_chromium(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            settle(page, "AnoViT explorer")
            assert page.get_by_text("First step (offline, about a minute)").is_visible()
            page.get_by_role("link", name="Train").first.click()  # the sidebar's multipage navigation
            settle(page, "New training run")
            assert page.get_by_text("No training job yet").is_visible()
            page.goto(f"{server}/Gallery")  # a direct URL, as after a browser reload
            settle(page, "Gallery")
            assert page.get_by_text("No checkpoint yet").is_visible()
        finally:
            browser.close()


FIRST_VISITS = [("", "AnoViT explorer"), ("home", "AnoViT explorer")] + [
    (title, title) for _, title, _ in PAGES.values()
]


@pytest.mark.parametrize("path,heading", FIRST_VISITS, ids=[p or "root" for p, _ in FIRST_VISITS])
def test_each_page_opened_first_by_its_url_has_homes_navigation(path, heading, browser, tmp_path):
    """On a fresh server, the very first visit by a page's URL (e.g. /Heatmaps) shows the app's navigation (Home
    and every page, with icons), as a visit through Home does; /home leads to Home."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "data").mkdir()
    url, proc = start_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path)
    page = browser.new_page()
    try:
        page.goto(f"{url}/{path}")
        settle(page, heading, timeout_s=240)  # a fresh server's first run imports torch
        nav = page.locator('[data-testid="stSidebarNav"]')
        links = [t.strip() for t in nav.get_by_role("link").all_inner_texts()]
        titles = ["Home"] + [title for _, title, _ in PAGES.values()]
        assert [t.split("\n")[-1].strip() for t in links] == titles, links
        assert "Page not found" not in page.content()
        if path == "home":
            assert page.url.rstrip("/") == url  # sent to the root URL, where Home lives
    finally:
        page.close()
        stop(proc)


# Where plotly drew each heatmap of a figure: its z, colour range, and the page position of its first and last cell.
HEATMAP_GEOMETRY = """gd => {
  const box = gd.getBoundingClientRect();
  return gd._fullData.filter(t => t.type === "heatmap").map(t => {
    const xa = gd._fullLayout[t.xaxis.replace("x", "xaxis")], ya = gd._fullLayout[t.yaxis.replace("y", "yaxis")];
    const ca = gd._fullLayout[t.coloraxis];
    const z = Array.from(t.z, row => Array.from(row));
    const at = (i, j) => [box.left + xa._offset + xa.l2p(j), box.top + ya._offset + ya.l2p(i)];
    return {z: z, cmin: ca.cmin, cmax: ca.cmax, first: at(0, 0), last: at(z.length - 1, z[0].length - 1)};
  });
}"""
# Where the colour bar paints its low end: the left end of a horizontal bar, the bottom of a vertical one.
COLOURBAR_LOW_END = """gd => {
  const r = gd.querySelector(".colorbar .cbfill").getBoundingClientRect();
  return r.width > r.height ? [r.left + 2, r.top + r.height / 2] : [r.left + r.width / 2, r.bottom - 2];
}"""
TOLERANCE = 30  # per RGB channel: plotly's interpolation and the browser's resampling differ a little


PATCH = 5  # side of the flat patches whose colours are checked


def extreme_patches(z: np.ndarray, size: int = PATCH) -> list[tuple[int, int]]:
    """Centres (row, column) of the ``size`` x ``size`` patches of ``z`` with the smallest largest value and
    the largest smallest value: flat regions at the two ends of the map's range."""
    windows = np.lib.stride_tricks.sliding_window_view(z, (size, size))
    low, high = windows.max(axis=(2, 3)), windows.min(axis=(2, 3))
    return [
        (int(i) + size // 2, int(j) + size // 2)
        for i, j in (np.unravel_index(np.argmin(low), low.shape), np.unravel_index(np.argmax(high), high.shape))
    ]


def test_anomaly_maps_are_painted_with_their_colour_scale(trained_server, browser):
    """On Heatmaps, the colour bar's zero is painted in the colour scale's low end (Inferno's near-black, from
    plotly.py's definition: under Streamlit it was lavender), and the lowest- and highest-error patches of
    every anomaly map in the scale's colours for their values."""
    page = browser.new_page(viewport={"width": 1600, "height": 4000})
    try:
        page.goto(f"{trained_server}/Heatmaps")
        settle(page, "Heatmaps", timeout_s=300)  # both models score the test split first
        grid = page.locator(".js-plotly-plot").first
        grid.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)  # plotly paints heatmaps asynchronously
        maps = grid.evaluate(HEATMAP_GEOMETRY)
        bar = grid.evaluate(COLOURBAR_LOW_END)
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    finally:
        page.close()
    low_end = colour_lut(ERROR_COLORSCALE)[0].astype(int)
    painted = shot[round(bar[1]), round(bar[0])]
    assert np.abs(painted - low_end).max() <= TOLERANCE, f"zero is painted {painted}, the scale's low end is {low_end}"
    assert len(maps) >= 2  # the l2-CAE's and AnoViT's anomaly maps of at least one image
    for m in maps:
        z = np.asarray(m["z"], np.float64)
        (x0, y0), (x1, y1) = m["first"], m["last"]
        for i, j in extreme_patches(z):
            x = x0 + (x1 - x0) * j / (z.shape[1] - 1)
            y = y0 + (y1 - y0) * i / (z.shape[0] - 1)
            painted = shot[round(y), round(x)]
            # the browser resamples the map, so the painted pixel lies among the colours of its patch's values
            half = PATCH // 2
            patch = z[i - half:i + half + 1, j - half:j + half + 1].ravel()
            colours = np.stack([colorize(v, m["cmin"], m["cmax"]).astype(int) for v in patch])
            low, high = colours.min(axis=0) - TOLERANCE, colours.max(axis=0) + TOLERANCE
            assert ((painted >= low) & (painted <= high)).all(), (painted, colours.min(axis=0), colours.max(axis=0), z[i, j])


def grid_cells(page, header: str) -> list[str]:
    """The text of every rendered cell of the Streamlit data grids that have a column ``header`` (their
    accessible tables; columns scrolled out of view are not rendered)."""
    grid = page.locator('[data-testid="stDataFrame"]').filter(
        has=page.locator('th[role="columnheader"]', has_text=header)
    )
    grid.first.wait_for(timeout=60_000)
    cells = grid.locator('[role="gridcell"]')
    cells.first.wait_for(state="attached", timeout=60_000)
    return [t.strip() for t in cells.evaluate_all("cells => cells.map(c => c.textContent)")]


RUN_ROW = ("counts", "run folder", "model", "class", "seed", "budget", "recipe", "finished", "image AUROC", "source")


def test_results_cells_name_their_runs(trained_server, browser):
    """Results, as the browser shows it: the comparison gives each model's budget, the runs table names the run
    that fills each cell (folder, seed, time) and the runs-that-count table lists each run with its tick."""
    page = browser.new_page(viewport={"width": 1600, "height": 2400})
    try:
        page.goto(f"{trained_server}/Results")
        settle(page, "Results", timeout_s=120)
        comparison, runs, editor = (grid_cells(page, h) for h in ("abs. diff.", "runs", "run folder"))
        cells_recipes = grid_cells(page, "recipe")
        assert "1 epoch / 1 epoch" in comparison, comparison
        for name in ("weave-cae", "weave-anovit"):
            assert any(t.startswith(f"{name} (seed 0, ") for t in runs), runs  # the run, its seed and time
        assert any(t.startswith("lr ") and "sigma" in t for t in cells_recipes), cells_recipes  # what its folder records
        rows = [editor[i : i + len(RUN_ROW)] for i in range(0, len(editor), len(RUN_ROW))]
        for name in ("weave-cae", "weave-anovit"):  # one row per run, ticked: it counts by default
            assert any(r[0] == "true" and r[1] == name and r[5] == "1 epoch" for r in rows), editor
    finally:
        page.close()


def test_gallery_tiles_enlarge_on_click(trained_server, browser):
    """Gallery: every tile has a fullscreen button named by its caption; clicking one shows the tile enlarged."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    try:
        page.goto(trained_server)
        settle(page, "AnoViT explorer")
        page.goto(f"{trained_server}/Gallery")
        settle(page, "Gallery", timeout_s=300)
        tiles = page.locator('[data-testid="stImage"] img')
        tiles.first.wait_for(timeout=60_000)
        buttons = page.get_by_role("button", name=re.compile(r"^Fullscreen: #\d+ · "))
        from playwright.sync_api import expect  # playwright is imported where chromium exists (module skip)

        expect(buttons).to_have_count(24, timeout=60_000)  # one per tile of the first page (tiles paint one by one)
        small = tiles.nth(3).bounding_box()["width"]
        tiles.nth(3).hover()
        buttons.first.click(force=True)
        page.wait_for_timeout(1000)
        widths = [b["width"] for b in (tiles.nth(i).bounding_box() for i in range(tiles.count())) if b]
        assert max(widths) > 2 * small, (small, widths)
    finally:
        page.close()


# Every label plotly drew for a figure, as page boxes: its title, subplot and row titles and other annotations, axis
# titles, colour bars (bar, title and tick labels together) and legend; empty ones (zero area) left out.
LABEL_BOXES = """gd => {
  const kinds = [[".g-gtitle, [class^='g-x'][class$='title'], [class^='g-y'][class$='title']", "title"],
                 [".annotation", "annotation"], [".colorbar", "colour bar"], [".legend", "legend"]];
  const boxes = [];
  for (const [selector, kind] of kinds) {
    for (const el of gd.querySelectorAll(selector)) {
      if (kind !== "colour bar" && el.closest(".colorbar")) continue;
      const r = el.getBoundingClientRect();
      if (r.width * r.height > 0) boxes.push({kind: kind, text: el.textContent.slice(0, 40),
                                              box: [r.left, r.top, r.right, r.bottom]});
    }
  }
  return boxes;
}"""
NARROW = 800  # px: the narrowest window the app's layouts are made for
# page -> (plotly figures it shows at least, colour bars among them at least) with the session's two runs
FIGURES_AT_NARROW = {"Heatmaps": (4, 1), "Attention": (3, 2), "Results": (1, 0), "Ablations": (1, 0)}


def overlapping(labels: list[dict], tolerance: float = 1.0) -> list[tuple[str, str]]:
    """The pairs of ``labels`` (LABEL_BOXES' answer) whose boxes overlap by more than ``tolerance`` px both ways."""
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            (l1, t1, r1, b1), (l2, t2, r2, b2) = a["box"], b["box"]
            if min(r1, r2) - max(l1, l2) > tolerance and min(b1, b2) - max(t1, t2) > tolerance:
                pairs.append((f"{a['kind']} {a['text']!r}", f"{b['kind']} {b['text']!r}"))
    return pairs


@pytest.mark.parametrize("title", list(FIGURES_AT_NARROW))
def test_plot_labels_do_not_overlap_in_an_800_px_window(title, trained_server, browser):
    """At 800 px wide (the sidebar open), no title, subplot title, axis title, annotation, colour bar or legend of
    a plotly figure overlaps another on Heatmaps, Attention, Results and Ablations; no exception box."""
    page = browser.new_page(viewport={"width": NARROW, "height": 4000})
    try:
        page.goto(f"{trained_server}/{title}")
        settle(page, title, timeout_s=300)
        n_figures, n_bars = FIGURES_AT_NARROW[title]
        figures = page.locator(".js-plotly-plot")
        figures.nth(n_figures - 1).wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # plotly lays out its labels after the first paint
        labels = [figure.evaluate(LABEL_BOXES) for figure in figures.all()]
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        page.close()
    assert sum(1 for figure in labels for label in figure if label["kind"] == "colour bar") >= n_bars, labels
    assert all(figure for figure in labels[:n_figures]), labels  # every figure shows labels to compare
    clashes = [pair for figure in labels for pair in overlapping(figure)]
    assert not clashes, clashes
