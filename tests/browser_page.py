"""A dashboard page in headless Chromium, as the browser tests drive it.

Headless Chromium at ``/usr/bin/chromium`` (Debian's package: ``playwright install`` cannot
download browsers here); the page's read-only test hook ``window.__replay.state()`` tells
what the page holds. Every wait is a condition with a timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 20_000


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium; missing Chromium is a failure, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is required for the browser tests and was not found at {CHROMIUM} "
            "(install the distribution's chromium package)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Dashboard:
    """One open dashboard page and the errors it reported."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """The page's test hook: what the dashboard holds right now."""
        state: dict[str, Any] = self.page.evaluate("window.__replay.state()")
        return state

    def wait(self, condition: str, arg: Any = None, timeout: int = WAIT_MS) -> None:
        """Wait until ``condition`` (JS over ``s``, the hook's state, and ``arg``) holds."""
        self.page.wait_for_function(
            f"(arg) => {{ const s = window.__replay.state(); return Boolean({condition}); }}",
            arg=arg,
            timeout=timeout,
        )

    def click(self, test_id: str) -> None:
        self.page.get_by_test_id(test_id).click()

    def ids(self, test_id: str, attribute: str) -> list[str]:
        """``attribute`` of every element with ``data-testid=test_id``, in DOM order."""
        values: list[str] = self.page.eval_on_selector_all(
            f"[data-testid={test_id}]", f"els => els.map(e => e.getAttribute('{attribute}'))"
        )
        return values

    def set_speed(self, speed: str) -> None:
        self.page.get_by_test_id("speed-select").select_option(speed)
        self.wait("s.streamPlayback && s.streamPlayback.speed === Number(arg)", speed)

    def play(self) -> None:
        self.click("play-button")
        self.wait("s.streamPlayback && s.streamPlayback.state === 'playing'")

    def pause(self) -> None:
        self.click("play-button")
        self.wait("s.streamPlayback && s.streamPlayback.state === 'paused'")

    def replay_rate(self, advance_ms: int) -> float:
        """Replay ms streamed per wall ms, while the stream advances by ``advance_ms``."""
        probe = "() => ({p: window.__replay.state().streamPosition, w: performance.now()})"
        start: dict[str, float] = self.page.evaluate(probe)
        self.wait(
            "s.streamPosition >= arg.p + arg.advance", {"p": start["p"], "advance": advance_ms}
        )
        end: dict[str, float] = self.page.evaluate(probe)
        return (end["p"] - start["p"]) / max(1.0, end["w"] - start["w"])


def open_dashboard(context: BrowserContext, url: str) -> Dashboard:
    """Open ``url`` and wait until the dashboard has its session and first snapshot."""
    page = context.new_page()
    dashboard = Dashboard(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            dashboard.errors.append(f"console.error: {message.text}")

    def on_page_error(error: Error) -> None:
        dashboard.errors.append(f"pageerror: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    response = page.goto(url)
    assert response is not None and response.ok, (
        f"GET {url} answered {response.status if response else 'nothing'}: "
        "the app must serve functions/dashboard (index.html at /, the rest under /static/)"
    )
    page.wait_for_function(
        "() => window.__replay && window.__replay.state().ready"
        " && window.__replay.state().streamPosition !== null",
        timeout=WAIT_MS,
    )
    return dashboard
