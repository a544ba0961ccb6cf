"""Retake the app's screenshots (docs/screenshots/*.png) from the run folders in the workspace's checkpoints/.

    python docs/screenshots/take.py [--pages home,results,...] [--widths 1400,800]

Starts ``streamlit run app.py`` on a free local port, opens each page in headless Debian chromium
(playwright, as tests/app/test_browser.py) and saves a PNG of a window tall enough for the page's main views, once per
window width: ``<page>.png`` at 1400 px, ``<page>-<width>.png`` at any other width (800 px: the narrowest the app's
layouts are made for). For Train it starts a short cpu-tiny job
on synthetic tiles, waits until it is training, shoots, cancels it and deletes its folder. The pages show the workspace's
folders relative to it (``checkpoints/``), so no local path appears. Needs the test extra and chromium.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
# page -> (URL path, heading to wait for, seconds to let plotly and fragments paint, window height in px:
# Streamlit scrolls inside its main block, so a taller window is what shows more of a page; at a narrower width the
# height grows by NARROW_TALLER, as columns wrap)
PAGES = {
    "home": ("", "AnoViT explorer", 2, 1000),
    "results": ("Results", "Results", 2, 1900),
    "gallery": ("Gallery", "Gallery", 3, 1700),
    "heatmaps": ("Heatmaps", "Heatmaps", 3, 2000),
    "inspect": ("Inspect", "Inspect", 3, 1500),
    "attention": ("Attention", "Attention", 3, 1500),
    "train": ("Train", "New training run", 2, 1650),
    "ablations": ("Ablations", "Ablations", 4, 1700),
}
WIDE = 1400
NARROW_TALLER = 1.5


def serve(port: int) -> subprocess.Popen:
    """``streamlit run app.py`` on 127.0.0.1:``port`` (its log: /tmp/anovit-screenshots.log), once healthy."""
    log = open("/tmp/anovit-screenshots.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("streamlit did not start; see /tmp/anovit-screenshots.log")


def training_job() -> Path:
    """Start a short cpu-tiny AnoViT job on synthetic tiles (for the Train screenshot); returns its run folder."""
    from anovit.jobs.background import start_job, unique_run_dir
    from anovit.runs.catalog import default_checkpoint_dir
    from anovit.training.config import TrainConfig

    config = TrainConfig(dataset="synthetic", category="tiles", model="anovit", preset="cpu-tiny", epochs=3)
    run_dir = unique_run_dir(default_checkpoint_dir(), f"{config.run_name()}-screenshot")
    start_job(config, run_dir)
    return run_dir


def drawn(page, name: str) -> None:
    """Wait until the page's script run has finished and nothing is drawn as a skeleton any more."""
    if name != "train":  # Train's fragment reruns every second while the job runs
        page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=600_000)
    for _ in range(120):  # elements still being drawn show as skeletons
        if page.locator('[data-testid="stSkeleton"]').count() == 0:
            break
        page.wait_for_timeout(500)


def inspect_a_test_image(page) -> None:
    """Inspect: the AnoViT checkpoint, then a test image (a defect, picked by the page) instead of an upload."""
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=re.compile("anovit")).first.click()
    page.wait_for_timeout(1500)  # the rerun starts
    drawn(page, "inspect")
    page.get_by_text("A test image of the class").click()
    page.wait_for_timeout(1500)
    drawn(page, "inspect")


def shoot(page, url: str, name: str, heading: str, settle_s: float, file: Path) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=600_000)
    drawn(page, name)
    if name == "inspect":
        inspect_a_test_image(page)
    page.wait_for_timeout(settle_s * 1000)
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        raise SystemExit(f"{name}: exception box: {errors.all_inner_texts()}")
    page.screenshot(path=str(file))
    print(f"wrote {file}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated (default: %(default)s)")
    parser.add_argument("--widths", default=f"{WIDE},800", help="window widths in px (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: docs/screenshots)")
    args = parser.parse_args()
    names, widths = args.pages.split(","), [int(w) for w in args.widths.split(",")]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for name, width in ((n, w) for n in names for w in widths):
                path, heading, settle_s, height = PAGES[name]
                page.set_viewport_size({"width": width, "height": round(height * (1 if width >= WIDE else NARROW_TALLER))})
                url = f"http://127.0.0.1:{port}/{path}"
                file = args.out / (f"{name}.png" if width == WIDE else f"{name}-{width}.png")
                if name == "train":
                    from anovit.jobs.background import cancel_job, delete_run, read_job

                    run_dir = training_job()
                    while (state := read_job(run_dir)) is not None and state.active and state.progress < 0.3:
                        time.sleep(1)
                    url += f"?job={run_dir.name}"
                    shoot(page, url, name, heading, settle_s, file)
                    cancel_job(run_dir)
                    while (state := read_job(run_dir)) is not None and state.active:
                        time.sleep(1)
                    delete_run(run_dir)
                else:
                    shoot(page, url, name, heading, settle_s, file)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    main()
