"""Bearer JWTs verified by the app itself, where no API Gateway authorizer stands in front.

The stream function is reached through its Function URL, which has no JWT authorizer, so
the legacy client's ``POST /api/auto_dispatch/replay/stream`` would carry no claims there. This
verifies the caller's token as the HTTP API's JWT authorizer does (its documented checks):
an RSA signature by a key of the issuer's JWKS (``kid`` in the header), ``iss`` equal to
the issuer, ``aud`` (or, for Cognito access tokens, ``client_id``) one of the audiences,
``exp``/``nbf`` with a clock-skew leeway. ``alg: none`` and HMAC algorithms never verify.

Keys: the JWKS is found through the issuer's OpenID discovery document (or given), fetched
once and cached; it is fetched again when older than ``max_age_s``, or when a token names
a ``kid`` the cache does not hold (key rotation). Every fetch, failed or not, is at most
once per ``cooldown_s``, so neither tokens with made-up ``kid`` values nor an issuer
outage make every request fetch; during an outage cached keys go on verifying. The clock
is passed in: these rules are tested with a fake one.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWKSetError

# What API Gateway's JWT authorizer accepts: RSA signatures only.
ALGORITHMS = ("RS256", "RS384", "RS512")
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenRejected(Exception):
    """The token does not prove who the caller is (reason in the message)."""


class IssuerUnavailable(Exception):
    """The issuer's keys could not be fetched and none that fit are cached."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass
class JwtVerifier:
    """Verifies bearer JWTs of one issuer for a set of audiences."""

    issuer: str
    audiences: frozenset[str]
    jwks_url: str = ""  # empty: from the issuer's discovery document
    leeway_s: float = 60.0
    cooldown_s: float = 60.0
    max_age_s: float = 3_600.0
    timeout_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, PyJWK] = field(default_factory=dict, init=False)
    _fetched_at: float | None = field(default=None, init=False)
    _attempted_at: float | None = field(default=None, init=False)
    _failure: str | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    fetches: int = field(default=0, init=False)

    def subject(self, token: str) -> str:
        """The verified ``sub`` of ``token``; TokenRejected or IssuerUnavailable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"malformed token: {exc}") from exc
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise TokenRejected(f"algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no key (kid)")
        key = self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(str(exc)) from exc
        audience = claims.get("aud")
        audiences = {audience} if isinstance(audience, str) else set(audience or [])
        if not audiences & self.audiences and claims.get("client_id") not in self.audiences:
            raise TokenRejected("the token is for another audience")
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise TokenRejected("sub is not a string")
        return subject

    # --- keys ------------------------------------------------------------------------------

    def _key(self, kid: str) -> PyJWK:
        with self._lock:
            now = self.clock()
            due = self._attempted_at is None or now - self._attempted_at >= self.cooldown_s
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age_s
            if due and (stale or kid not in self._keys):
                self._refresh(now, kid)
            key = self._keys.get(kid)
            if key is None and self._failure is not None:
                raise IssuerUnavailable(self._failure)  # cannot tell: the last fetch failed
        if key is None:
            raise TokenRejected(f"unknown key id {kid!r}")
        return key

    def _refresh(self, now: float, kid: str) -> None:
        """Fetch the JWKS; on failure, cached keys go on serving until the next attempt."""
        self._attempted_at = now
        self.fetches += 1
        try:
            url = self.jwks_url or self._discover()
            client = PyJWKClient(url, cache_jwk_set=False, timeout=self.timeout_s)
            keys = {k.key_id: k for k in client.get_signing_keys() if k.key_id}
        except (PyJWKClientError, PyJWKSetError, OSError, ValueError) as exc:
            # Unreachable, or reachable with no usable key (PyJWKClientConnectionError is
            # a PyJWKClientError).
            self._failure = f"cannot fetch the issuer's keys: {exc}"[:300]
            if kid not in self._keys:
                raise IssuerUnavailable(self._failure) from exc
            return
        self._keys, self._fetched_at, self._failure = keys, now, None

    def _discover(self) -> str:
        """``jwks_uri`` from the issuer's OpenID discovery document (remembered)."""
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"issuer {self.issuer!r} is not an http(s) URL")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
            document = json.load(response)
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError(f"{url} names no jwks_uri")
        self.jwks_url = jwks_uri
        return jwks_uri
