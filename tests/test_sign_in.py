"""Signing in to the hosted dashboard, in Chromium, as on a deployed stack.

In front of the app stands what the cloud puts there: CloudFront's routing (from the
template) and the HTTP API's JWT authorizer (``tests.authorizer``, written from API
Gateway's rules); the app runs with ``AUTH_MODE=jwt``; ``config.js`` is the one
``make deploy`` writes (``functions.local.publish``); the identity provider is a small
OpenID Connect provider on 127.0.0.1 (``tests.oidc_provider``). The page must sign in with
the authorization code flow and PKCE, call the API with the bearer token, renew it before
it expires and when the API refuses it mid-replay, and sign out.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client
from playwright.sync_api import Browser

from functions.local.publish import render_config
from tests.authorizer import JwtAuthorizerStandIn
from tests.browser_page import chromium, open_dashboard
from tests.oidc_provider import CLIENT_ID, Provider, serve_provider
from tests.streaming import Server, publish_tiny_day, serve

pytestmark = pytest.mark.end_to_end

TOKEN_TTL_S = 75  # renewed a minute before it expires: ~15 s into the test


@dataclass
class Hosted:
    server: Server
    provider: Provider
    authorizer: JwtAuthorizerStandIn


class ConfigFromStack:
    """Serves ``/static/config.js`` as ``make deploy`` writes it for this stack."""

    def __init__(self, app: object, body: bytes) -> None:
        self.app = app
        self.body = body

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/static/config.js":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/javascript; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.app(scope, receive, send)  # type: ignore[operator]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def hosted(s3: S3Client) -> Iterator[Hosted]:
    publish_tiny_day(s3)
    with serve_provider(token_ttl_s=TOKEN_TTL_S) as provider:
        config = render_config({"SignInIssuer": provider.url, "SignInClientId": CLIENT_ID})
        fronts: list[JwtAuthorizerStandIn] = []

        def front(app: object) -> object:
            authorizer = JwtAuthorizerStandIn(app, provider.url, {CLIENT_ID})  # type: ignore[arg-type]
            fronts.append(authorizer)
            return ConfigFromStack(authorizer, config)

        yield from (
            Hosted(server, provider, fronts[0])
            for server in serve(
                s3,
                front=front,  # type: ignore[arg-type]
                auth_mode="jwt",
                jwt_issuer=provider.url,
                jwt_audience=[CLIENT_ID],
            )
        )


def test_the_provider_refuses_a_code_without_its_verifier(hosted: Hosted) -> None:
    """The stand-in checks PKCE for real: a wrong verifier gets no tokens (so the page's
    sign-in below passing means its S256 challenge and verifier are right)."""
    provider = hosted.provider
    provider.redirect_uris.add("http://127.0.0.1:1/")
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1:1/",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "state": "s",
        }
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{provider.url}/authorize?{query}")
    location = redirect.value.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    form = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "code": code,
            "redirect_uri": "http://127.0.0.1:1/",
            "code_verifier": "not-the-verifier",
        }
    ).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{provider.url}/token", data=form)
    assert refused.value.code == 400 and provider.refused["pkce"] == 1


def test_sign_in_replay_renewal_and_sign_out(
    hosted: Hosted,
    browser: Browser,
    tmp_path: Path,
) -> None:
    provider, authorizer, server = hosted.provider, hosted.authorizer, hosted.server
    provider.redirect_uris.add(f"{server.url}/")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        # Unauthenticated, the API refuses (the authorizer, not the app).
        assert context.request.get(f"{server.url}/api/replay/airports").status == 401

        # A deep link survives the round trip through the provider.
        dashboard = open_dashboard(context, f"{server.url}/?lang=en")
        page = dashboard.page
        assert provider.grants["authorization_code"] == 1
        assert provider.refused == {}
        assert page.url.startswith(server.url) and "code=" not in page.url and "lang=en" in page.url
        assert authorizer.answered["allowed"] > 0 and authorizer.answered["refused"] == 1
        # Tokens are in memory only: nothing the page keeps outlives it.
        stored = page.evaluate("() => [Object.keys(localStorage), Object.keys(sessionStorage)]")
        assert stored == [[], []]
        sign_out = page.get_by_test_id("sign-out")
        assert sign_out.is_visible() and sign_out.get_attribute("title") == "alice@example.com"
        page.screenshot(path=str(tmp_path / "signed-in.png"))

        # Playing, the token is renewed before it expires, and the stream carries on.
        dashboard.play()
        dashboard.wait("s.connection === 'live'")
        _wait_for(lambda: provider.grants["refresh_token"] >= 1, "a renewal before expiry")
        before = dashboard.state()["streamPosition"]
        dashboard.wait("s.streamPosition > arg", before)

        # Mid-replay the authorizer stops taking every token issued so far (as if they had
        # expired): the next control call is refused, renewed, retried, and applied.
        refused_before = authorizer.answered["refused"]
        authorizer.not_before = int(time.time()) + 1
        _wait_for(lambda: time.time() >= authorizer.not_before, "a token issued from now on")
        dashboard.pause()
        assert authorizer.answered["refused"] > refused_before
        assert provider.grants["refresh_token"] >= 2
        # The browser itself logs the one refused call; the page reports nothing.
        assert dashboard.errors == [
            "console.error: Failed to load resource: the server responded with a status of "
            "401 (Unauthorized)"
        ]

        # Sign-out ends the provider's session and leaves no token behind.
        codes_before = provider.grants["authorization_code"]
        sign_out.click()
        _wait_for(lambda: provider.logouts == 1, "the provider's logout")
        # Back on the page, signing in again starts over (a new code, no old token used).
        page.wait_for_function("() => window.__replay && window.__replay.state().ready")
        assert provider.grants["authorization_code"] == codes_before + 1
    finally:
        context.close()


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll a condition of the test's own servers (not the page) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
