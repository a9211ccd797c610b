"""Signed, expiring tokens: stream tokens (EventSource cannot send headers) and share tokens.

Format: ``base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims JSON))``. A token is
bound to its purpose (``typ``) and session (``sid``) and expires (``exp``, epoch seconds).
Tokens are credentials: never log them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

import orjson

from functions.app.domain.errors import DomainError

MAX_TOKEN_CHARS = 2048


class InvalidToken(DomainError):
    """Malformed, forged, expired, or for another purpose or session.

    Raised as the subclass of the token's purpose (``TOKEN_ERRORS``): a bad share token is
    a refusal (403), a bad stream token a missing credential (401)."""

    status = 403
    slug = "invalid-token"
    title = "Invalid token"


class InvalidShareToken(InvalidToken):
    """A share token that does not let its bearer join."""

    status = 403
    slug = "invalid-share-token"
    title = "Invalid share token"


class InvalidStreamToken(InvalidToken):
    """A stream token that does not open this session's stream."""

    status = 401
    slug = "invalid-stream-token"
    title = "Invalid stream token"


TOKEN_ERRORS: dict[str, type[InvalidToken]] = {
    "share": InvalidShareToken,
    "stream": InvalidStreamToken,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def _unb64(text: str) -> bytes:
    """Decode canonical unpadded base64url only: one spelling per token, so an altered
    token (padding, ``+/``, characters appended, other trailing bits) never verifies."""
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def issue(
    secret: bytes, typ: str, session_id: str, ttl_s: int, now: float | None = None, **claims: Any
) -> str:
    """A token of purpose ``typ`` for ``session_id``, valid ``ttl_s`` seconds."""
    issued = int(time.time() if now is None else now)
    payload = orjson.dumps(
        {"typ": typ, "sid": session_id, "exp": issued + ttl_s, **claims},
        option=orjson.OPT_SORT_KEYS,
    )
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(
    secret: bytes, token: str, typ: str, session_id: str | None = None, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid token of purpose ``typ`` (and session, if given); raises
    the ``InvalidToken`` subclass of ``typ`` otherwise."""
    error = TOKEN_ERRORS.get(typ, InvalidToken)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise error("malformed token")
    encoded_payload, encoded_signature = token.split(".")
    try:
        payload = _unb64(encoded_payload)
        signature = _unb64(encoded_signature)
    except (ValueError, TypeError) as exc:
        raise error("malformed token") from exc
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise error("bad signature")
    try:
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise error("malformed claims") from exc
    if not isinstance(claims, dict) or claims.get("typ") != typ:
        raise error(f"not a {typ} token")
    if session_id is not None and claims.get("sid") != session_id:
        raise error("token is for another session")
    expires = claims.get("exp")
    if not isinstance(expires, int) or expires < (time.time() if now is None else now):
        raise error("token expired")
    return claims
