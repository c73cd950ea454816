"""Headless Chromium for the browser tests: where it is, how it starts, and an open tab.

Debian's ``chromium`` package (browser downloads are impossible here), driven by
Playwright's Python package. The `browser` fixture in conftest.py starts one
for the whole session.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this
# machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

# The suite's TensorFlow-free pass (see conftest.py): the browser tests' logdirs
# come from Keras, so they run in the TensorFlow pass only.
NO_TF = os.environ.get("TTSMON_TEST_NO_TF") == "1"


def get_json(url: str) -> tuple[int, Any]:
    """(HTTP status, parsed body or None) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def api_url(tb_url: str, route: str, params: list[tuple[str, str]]) -> str:
    """The URL of one of our routes on a running TensorBoard."""
    return f"{tb_url}data/plugin/ttsmon/{route}?{urllib.parse.urlencode(params)}"


def wait_for_run(tb_url: str, run: str) -> None:
    """Waits until TensorBoard has loaded the run's loss and system samples."""
    deadline = time.monotonic() + 30
    while True:
        status, body = get_json(api_url(tb_url, "tags", [("run", run)]))
        tags = {t["tag"] for t in (body or {}).get("tags", [])} if status == 200 else set()
        if {"train/loss", "system/cpu_percent"} <= tags:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"run not loaded: {status} {sorted(tags)}")
        time.sleep(0.3)


def require_browser() -> None:
    """Skips the calling test without Chromium or Playwright; fails it under CI.

    See `conftest.require`: `make test` installs both (Chromium when run as root).
    """
    from conftest import require

    require(os.path.exists(CHROMIUM), f"Chromium ({CHROMIUM}, Debian's chromium package)")
    require(sync_playwright is not None, "the playwright Python package")


# Marks for a browser test module. The check is a session fixture (conftest's
# `browser_installed`), not a skipif mark, so that under CI it can fail; being
# session-scoped it runs before the modules' TensorBoard fixtures.
SKIPS = [
    pytest.mark.skipif(NO_TF, reason="browser tests run in the TensorFlow pass only"),
    pytest.mark.usefixtures("browser_installed"),
]


class Tab:
    """An open TensorBoard page on the TTS Monitor tab, with its console errors."""

    def __init__(self, browser: Any, url: str, *, dark: bool = False) -> None:
        self.context = browser.new_context(
            viewport={"width": 1440, "height": 2600},
            color_scheme="dark" if dark else "light",
            accept_downloads=True,
        )
        self.page = self.context.new_page()
        self._console: list[tuple[str, str]] = []
        # TensorBoard's own page asks for its fonts at "/font-roboto/...", outside
        # any --path_prefix (its bug, not the tab's): failed loads of the top
        # page are told apart from the tab's by the frame that made them.
        self._top_failures: set[str] = set()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda e: self._console.append((f"pageerror: {e}", "")))
        self.page.on("response", self._on_response)
        self.page.goto(url + "#ttsmon")
        iframe = self.page.wait_for_selector('iframe[src*="plugin_entry.html?name=ttsmon"]')
        frame = iframe.content_frame()
        assert frame is not None
        self.frame = frame
        self.frame.wait_for_function(
            "document.body && document.body.dataset.rendered === '1'", timeout=60_000
        )

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self._console.append((message.text, message.location.get("url", "")))

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and response.frame == self.page.main_frame:
            self._top_failures.add(response.url)

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions, TensorBoard's own failed loads left out."""
        return [
            f"{text} ({url})" if url else text
            for text, url in self._console
            if not (text.startswith("Failed to load resource") and url in self._top_failures)
        ]

    def refreshes(self) -> int:
        return int(self.frame.evaluate("window.__ttsmon.refreshes"))

    def screenshot(self, path: Any) -> None:
        self.page.wait_for_timeout(300)  # let the last frame paint
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.context.close()
