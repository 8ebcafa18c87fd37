"""Headless Debian Chromium for page tests: launch flags, an offline tab, plotly look-ups.

Outside CI a browser test skips when no Chromium executable exists; in CI (``CI`` set) it fails
instead, since ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> str:
    """Path of Debian's chromium; skips (fails in CI) without one."""
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests, but Debian's chromium is not installed")
    pytest.skip("no Chromium executable found (apt-get install chromium); CI installs it")


@contextmanager
def browser_page(executable: str, width: int = 1300, height: int = 1000):
    """A Playwright page in a fresh headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


class OfflineTab:
    """One page that refuses every request not for a ``file://`` URL, and records dialogs,
    refused requests and uncaught script errors."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.route("**/*", self._route)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, path: Path, ready: str, fragment: str = "") -> None:
        """Load ``path`` (plus ``#fragment``) and wait until ``ready`` (a selector) exists."""
        self.dialogs.clear()
        self.blocked.clear()
        self.errors.clear()
        self.page.goto("about:blank")  # a fresh load even when only the fragment differs
        self.page.goto(path.resolve().as_uri() + fragment)
        self.page.wait_for_selector(ready, state="attached", timeout=30_000)

    def points(self, uid: str):
        """Locator of the marker paths of the plotly trace with this ``uid``."""
        return self.page.locator(f'g.trace[class*="trace{uid}"] .points path')

    def click_point(self, uid: str, index: int, *, shift: bool = False) -> None:
        """Click the centre of one marker of a trace (holding Shift if asked)."""
        box = self.points(uid).nth(index).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(x, y)
        if shift:
            self.page.keyboard.up("Shift")
