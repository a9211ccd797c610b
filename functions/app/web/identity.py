"""Who is calling: the subject of a request, from the JWT authorizer or the local identity.

Behind API Gateway (HTTP API, payload 2.0) the JWT authorizer has verified the token and
put its claims in the event, which Mangum hands to the app as ``scope["aws.event"]``; the
subject is the ``sub`` claim. The stream function's Function URL has no authorizer: on the
one route it serves that needs a caller (the legacy client's fetch-based stream) the app verifies
the bearer JWT itself, against the same issuer and audiences (``functions.app.web.bearer``).
Locally (``AUTH_MODE=local``) the subject is the ``X-Replay-User`` header, or
``LOCAL_IDENTITY`` — for a laptop, never for a deployment.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from fastapi import Depends, Request

from functions.app import paths
from functions.app.dependencies import Services, get_services
from functions.app.settings import AppSettings
from functions.app.web.problems import Problem

if TYPE_CHECKING:  # PyJWT + cryptography cost ~130 ms to import: only where a verifier runs
    from functions.app.web.bearer import JwtVerifier

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME
SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:|+-]{0,199}$")
LOCAL_USER_HEADER = "x-replay-user"
# Routes that verify a bearer JWT in the app when no authorizer claims came with the
# request. Only what the stream's Function URL must serve to a JWT caller: every other
# route needing an identity is reached through the HTTP API and its authorizer.
BEARER_PATHS = frozenset({paths.LEGACY_STREAM})
UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def jwt_verifier(settings: AppSettings) -> JwtVerifier | None:
    """The in-app verifier the settings ask for (None without ``JWT_ISSUER``)."""
    if settings.auth_mode != "jwt" or not settings.jwt_issuer:
        return None
    from functions.app.web.bearer import JwtVerifier

    return JwtVerifier(
        issuer=settings.jwt_issuer,
        audiences=frozenset(settings.jwt_audience),
        jwks_url=settings.jwt_jwks_url,
        leeway_s=settings.jwt_leeway_s,
    )


def _verified_bearer(request: Request) -> str | None:
    verifier: JwtVerifier | None = getattr(request.app.state, "jwt_verifier", None)
    if verifier is None or request.url.path not in BEARER_PATHS:
        return None
    from functions.app.web.bearer import IssuerUnavailable, TokenRejected, bearer_token

    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    try:
        return verifier.subject(token)
    except TokenRejected as exc:
        logger.info("bearer token rejected", extra={"reason": str(exc)[:200]})
        raise Problem(
            401, "unauthenticated", "Authentication required", str(exc)[:200], UNAUTHENTICATED
        ) from exc
    except IssuerUnavailable as exc:
        logger.warning("identity provider unavailable", extra={"error": str(exc)})
        raise Problem(
            503,
            "identity-provider-unavailable",
            "Cannot verify sign-ins right now",
            "Retry shortly.",
            {"Retry-After": "5"},
        ) from exc


def jwt_subject(event: Any) -> str | None:
    """The ``sub`` claim the HTTP API JWT authorizer put in a payload 2.0 event."""
    try:
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    except (KeyError, TypeError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def caller(request: Request, services: Annotated[Services, Depends(get_services)]) -> str:
    """FastAPI dependency: the calling subject, or 401."""
    settings = services.settings
    if settings.auth_mode == "jwt":
        subject = jwt_subject(request.scope.get("aws.event")) or _verified_bearer(request)
    else:
        subject = request.headers.get(LOCAL_USER_HEADER) or settings.local_identity
    if not subject or not SUBJECT_PATTERN.match(subject):
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "No valid caller identity.",
            {"WWW-Authenticate": "Bearer"},
        )
    return subject


Caller = Annotated[str, Depends(caller)]
