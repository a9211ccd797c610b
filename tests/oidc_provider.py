"""A small OpenID Connect provider on 127.0.0.1 for the sign-in browser test.

What a real one (Cognito's hosted UI, Entra, Keycloak) does for a public client, and no
more: discovery, JWKS, ``/authorize`` (the user is taken as signed in and approves at once:
a 302 back with a code bound to the PKCE challenge and redirect URI), ``/token`` (the
code grant, which checks the S256 verifier, and the refresh grant), ``/logout``. Token
requests from the page are cross-origin, so they are answered with CORS headers. Tokens
are RS256 JWTs signed by the provider's own key (``tests.jwt_issuer.Issuer``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.jwt_issuer import Issuer, rsa_key, serve_http

CLIENT_ID = "dashboard-client"


@dataclass
class Grant:
    redirect_uri: str
    challenge: str
    subject: str


@dataclass
class Provider:
    issuer: Issuer
    redirect_uris: set[str] = field(default_factory=set)
    token_ttl_s: int = 600
    subject: str = "user-alice-0001"
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> subject
    grants: Counter[str] = field(default_factory=Counter)  # grant types answered
    refused: Counter[str] = field(default_factory=Counter)  # reason -> count
    logouts: int = 0

    @property
    def url(self) -> str:
        return self.issuer.url

    def tokens(self, subject: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {"sub": subject, "iat": now, "exp": now + self.token_ttl_s, "aud": CLIENT_ID}
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = subject
        return {
            "token_type": "Bearer",
            "expires_in": self.token_ttl_s,
            "id_token": self.issuer.token(**claims, email="alice@example.com", token_use="id"),
            # Cognito-like: an access token naming the client in client_id, without aud.
            "access_token": self.issuer.token(
                **{**claims, "aud": None}, client_id=CLIENT_ID, token_use="access"
            ),
            "refresh_token": refresh,
        }


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@contextmanager
def serve_provider(token_ttl_s: int = 600) -> Iterator[Provider]:
    provider = Provider(Issuer(keys={"k1": rsa_key()}), token_ttl_s=token_ttl_s)

    class Handler(BaseHTTPRequestHandler):
        def _answer(
            self, status: int, document: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            body = b"" if document is None else json.dumps(document).encode()
            self.send_response(status)
            origin = self.headers.get("Origin")
            if origin:  # the page's fetches are cross-origin
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if document is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, reason: str) -> None:
            provider.refused[reason] += 1
            self._answer(400, {"error": "invalid_grant", "error_description": reason})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            base = provider.url
            if url.path == "/.well-known/openid-configuration":
                self._answer(
                    200,
                    {
                        "issuer": base,
                        "jwks_uri": f"{base}/jwks.json",
                        "authorization_endpoint": f"{base}/authorize",
                        "token_endpoint": f"{base}/token",
                        "end_session_endpoint": f"{base}/logout",
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            elif url.path == "/jwks.json":
                self._answer(200, provider.issuer.jwks())
            elif url.path == "/authorize":
                redirect = query.get("redirect_uri", "")
                if (
                    query.get("client_id") != CLIENT_ID
                    or redirect not in provider.redirect_uris
                    or query.get("response_type") != "code"
                    or query.get("code_challenge_method") != "S256"
                    or not query.get("code_challenge")
                ):
                    provider.refused["authorize"] += 1
                    self._answer(400, {"error": "invalid_request"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = Grant(redirect, query["code_challenge"], provider.subject)
                back = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
                self._answer(302, headers={"Location": f"{redirect}?{back}"})
            elif url.path == "/logout":
                provider.logouts += 1
                target = query.get("post_logout_redirect_uri", "")
                if target not in provider.redirect_uris:
                    self._answer(400, {"error": "invalid_request"})
                    return
                self._answer(302, headers={"Location": target})
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if self.path != "/token":
                self._answer(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if form.get("client_id") != CLIENT_ID:
                self._refuse("client")
                return
            kind = form.get("grant_type", "")
            if kind == "authorization_code":
                grant = provider.codes.pop(form.get("code", ""), None)  # one use
                if grant is None:
                    self._refuse("code")
                elif form.get("redirect_uri") != grant.redirect_uri:
                    self._refuse("redirect_uri")
                elif s256(form.get("code_verifier", "")) != grant.challenge:
                    self._refuse("pkce")
                else:
                    provider.grants[kind] += 1
                    self._answer(200, provider.tokens(grant.subject))
            elif kind == "refresh_token":
                subject = provider.refresh_tokens.get(form.get("refresh_token", ""))
                if subject is None:
                    self._refuse("refresh_token")
                else:
                    provider.grants[kind] += 1
                    self._answer(200, provider.tokens(subject))
            else:
                self._refuse("grant_type")

        def log_message(self, *_: Any) -> None:
            pass

    with serve_http(Handler) as url:
        provider.issuer.url = url
        yield provider
