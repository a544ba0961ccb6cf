"""Real-browser smoke test: `streamlit run app.py` on 127.0.0.1, driven by Debian's chromium through playwright.

Loads Home, the Train page (through the sidebar) and the Gallery (by URL) and fails on any exception
box. Skips (with the reason) where chromium or playwright are not installed; `.ci/run` installs both.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {
        **os.environ,
        "ANOVIT_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "ANOVIT_CHECKPOINTS": str(tmp_path_factory.mktemp("checkpoints")),
    }
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "wb")
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
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def settle(page, heading: str) -> None:
    """Wait for ``heading`` and for the page's script run to finish; fail on any exception box."""
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=60_000)
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
