"""``/docs`` in a real browser with no internet: Swagger UI from the app's own assets.

Every request the page makes to a host other than 127.0.0.1 is recorded and refused, as a
machine without internet would refuse it; the page must still render every operation of
the app's OpenAPI schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Route, sync_playwright

from tests.streaming import Server, serve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.end_to_end

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "img" / "api-docs.png"
OPERATION_KEYS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def server(s3: S3Client) -> Iterator[Server]:
    yield from serve(s3)


def test_docs_page_renders_every_operation_without_internet(server: Server, tmp_path: Path) -> None:
    schema = server.app.openapi()
    operations = [
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in OPERATION_KEYS
    ]
    outside: list[str] = []
    errors: list[str] = []

    def only_this_machine(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    assert CHROMIUM.exists(), f"Chromium is required for the browser tests: {CHROMIUM}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1600})
            context.route("**/*", only_this_machine)
            page = context.new_page()
            page.on("console", on_console)
            response = page.goto(f"{server.url}/docs")
            assert response is not None and response.ok
            page.wait_for_selector(".opblock", timeout=20_000)
            shown = page.eval_on_selector_all(
                ".opblock",
                "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,"
                " e.querySelector('.opblock-summary-path').getAttribute('data-path')])",
            )
            title = page.locator(".info .title").inner_text()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
            if os.environ.get("UPDATE_SCREENSHOT"):
                page.screenshot(path=str(SCREENSHOT), full_page=False)
        finally:
            browser.close()
    assert outside == [], f"/docs asked the internet for {outside}"
    assert sorted(tuple(op) for op in shown) == sorted(operations)
    assert title.startswith("dispatch-replay")
    assert errors == []
