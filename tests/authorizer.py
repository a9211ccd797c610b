"""What stands in front of the app on a deployed stack, for tests under uvicorn.

CloudFront routes each path to an origin (``tests.test_hosting.behaviour_for``, from the
template); requests it sends to the HTTP API pass its JWT authorizer first. The authorizer
is written here from API Gateway's documented rules ("Controlling access to HTTP APIs with
JWT authorizers"), not with the product's own verifier: the token is a JWT signed by a key
of the issuer's JWKS, ``iss`` is the issuer, it has not expired (``exp``, ``nbf``), and
its ``aud`` — or, for an access token without one, its ``client_id`` — is an accepted
audience. A refused request is answered 401 ``{"message":"Unauthorized"}`` and never
reaches the app; an accepted one reaches it with the claims where API Gateway puts them
(payload 2.0 ``requestContext.authorizer.jwt.claims``, which Mangum hands the app as
``scope["aws.event"]``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jwt
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.test_hosting import behaviour_for


class JwtAuthorizerStandIn:
    """ASGI middleware: the HTTP API's JWT authorizer on the paths CloudFront sends it."""

    def __init__(self, app: ASGIApp, issuer: str, audiences: set[str]) -> None:
        self.app = app
        self.issuer = issuer
        self.audiences = audiences
        self.keys = jwt.PyJWKClient(f"{issuer}/jwks.json", cache_keys=True)
        self.answered: Counter[str] = Counter()  # "allowed" / "refused"
        self.not_before = 0  # tokens issued before this (epoch s) count as expired

    def claims(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ")
        try:
            key = self.keys.get_signing_key_from_jwt(token).key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        audience = claims.get("aud", claims.get("client_id"))
        named = {audience} if isinstance(audience, str) else set(audience or [])
        if not named & self.audiences or int(claims.get("iat", 0)) < self.not_before:
            return None
        return claims

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or behaviour_for(scope["path"])["TargetOriginId"] != "api":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        claims = self.claims(headers.get("authorization"))
        if claims is None:
            self.answered["refused"] += 1
            body = json.dumps({"message": "Unauthorized"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer error="invalid_token"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.answered["allowed"] += 1
        event = {"requestContext": {"authorizer": {"jwt": {"claims": claims, "scopes": None}}}}
        await self.app({**scope, "aws.event": event}, receive, send)
