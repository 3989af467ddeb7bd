"""`fer-tui serve` in a real browser: the system's Chromium, headless, driven by Selenium.

The page loads, its terminal shows the Dataset screen's class counts of a small synthetic
dataset, `2` typed into it brings the Training screen. Only on 127.0.0.1, on a free port; the
server and every dashboard it started are stopped at the end. Skips where Chromium, chromedriver,
selenium or textual-serve is missing (.ci/run installs them where it can).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_folder_dataset, wait_until

ROOT = Path(__file__).resolve().parents[2]
BROWSER = next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(BROWSER is None, reason="no system Chromium (apt-get install chromium)"),
    pytest.mark.skipif(DRIVER is None, reason="no chromedriver (apt-get install chromium-driver)"),
]

# The page's xterm.js terminal, caught as the page's script builds it (the one object holding
# `fitAddon`), so the test reads the very cells the browser draws.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, 'fitAddon', {configurable: true, set(value) {
  window.ferTerminal = this.terminal;
  Object.defineProperty(this, 'fitAddon',
    {value: value, writable: true, configurable: true, enumerable: true});
}});
"""
READ_SCREEN = """
const t = window.ferTerminal;
if (!t) return null;
const buffer = t.buffer.active, lines = [];
for (let y = 0; y < t.rows; y++) {
  const line = buffer.getLine(buffer.viewportY + y);
  lines.push(line ? line.translateToString(true) : '');
}
return lines.join('\\n');
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("textual_serve", reason="textual-serve is not installed")
    data = make_folder_dataset(tmp_path / "data", per_class={"train": 9, "test": 5})
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fer_tui",
            "--data",
            str(data),
            "--runs-dir",
            str(tmp_path / "runs"),
            "serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the dashboards it starts share its group: stopped together
    )

    def listening() -> bool:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=60, interval=0.2, what="fer-tui serve to listen")
        yield f"http://127.0.0.1:{port}/"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            log.close()
        try:  # a dashboard that outlived the server
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        driver.set_page_load_timeout(60)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_TERMINAL})
        yield driver
    finally:
        driver.quit()


def test_the_dashboard_in_a_browser(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)

    def screen_with(pattern: str):
        def check() -> str | None:
            text = browser.execute_script(READ_SCREEN) or ""
            return text if re.search(pattern, text) else None

        return check

    # the Dataset screen: each class with its 9 train and 5 test faces, 63 and 35 in all
    text = wait_until(
        screen_with(r"total\s+63\s"),
        timeout=90,
        interval=0.5,
        what="the Dataset screen's class counts in the browser",
    )
    for name in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
        assert re.search(rf"^\s*{name}\s.*\s9\s.*\s5\s", text, re.M), text
    assert re.search(r"total\s+63\s.*\s35\s", text), text

    browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys("2")
    text = wait_until(
        screen_with(r"No runs in .* yet"),
        timeout=60,
        interval=0.5,
        what="the Training screen after pressing 2 in the browser",
    )
    assert "status" in text and "arch" in text, text
