"""Bearer JWTs verified in the app (the stream's Function URL has no authorizer).

A key pair made here, the issuer's discovery document and JWKS served on 127.0.0.1
(tests/jwt_issuer.py). Through the app: every bad token is a 401 problem+json, a good one
streams. The key rules (rotation, refetch cooldown, outage) run on a fake clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from functions.app.web.bearer import IssuerUnavailable, JwtVerifier, TokenRejected
from tests.jwt_issuer import AUDIENCE, Issuer, rsa_key, serve_issuer
from tests.streaming import Server, StreamReader, publish_tiny_day, serve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SEED_STREAM = "/api/auto_dispatch/replay/stream"
BODY = {
    "airportId": "XTST",
    "startTime": "2026-03-14T00:10:00+08:00",
    "endTime": "2026-03-14T01:10:00+08:00",
    "playbackSpeed": 16,
}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with serve_issuer() as served:
        yield served


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def verifier(issuer: Issuer, clock: FakeClock, **options: Any) -> JwtVerifier:
    return JwtVerifier(issuer.url, frozenset({AUDIENCE}), clock=clock, **options)


# --- through the app -----------------------------------------------------------------------


@pytest.fixture
def server(s3: S3Client, issuer: Issuer) -> Iterator[Server]:
    publish_tiny_day(s3)
    yield from serve(s3, auth_mode="jwt", jwt_issuer=issuer.url, jwt_audience=[AUDIENCE])


def unsigned(issuer: Issuer) -> str:
    """``alg: none``: a token anybody can write."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    header = part({"alg": "none", "typ": "JWT", "kid": "k1"})
    claims = part({"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": 4_000_000_000})
    return f"{header}.{claims}."


def bad_tokens(issuer: Issuer) -> dict[str, str]:
    public_pem = issuer.keys["k1"].public_key()
    from cryptography.hazmat.primitives import serialization

    pem = public_pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "expired": issuer.token(exp=1_700_000_000, iat=1_699_999_000),
        "wrong audience": issuer.token(aud="another-client"),
        "wrong issuer": issuer.token(iss="https://evil.example.com"),
        "unknown kid": issuer.token(kid="k-rogue", key=rsa_key()),
        "known kid, other key": issuer.token(kid="k1", key=rsa_key()),
        "alg none": unsigned(issuer),
        # The public key used as an HMAC secret (algorithm confusion).
        "HS256 with the public key": _hs256(issuer, pem),
        "no exp": issuer.token(exp=None),
        "not a JWT": "not.a.jwt",
    }


def _hs256(issuer: Issuer, secret: bytes) -> str:
    import hashlib
    import hmac

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": 4_000_000_000}
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{part(signature)}"


def test_bad_tokens_are_401_problems(server: Server, issuer: Issuer) -> None:
    url = f"{server.url}{SEED_STREAM}"
    with httpx.Client(timeout=30) as client:
        answers = {
            case: client.post(url, json=BODY, headers={"Authorization": f"Bearer {token}"})
            for case, token in bad_tokens(issuer).items()
        }
        answers["no token"] = client.post(url, json=BODY)
    for case, response in answers.items():
        assert response.status_code == 401, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        assert response.json()["status"] == 401, case
        assert response.headers["www-authenticate"].startswith("Bearer"), case


def test_a_good_token_streams_as_its_subject(server: Server, issuer: Issuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.token(sub='user-bob-0002')}"}
    with httpx.Client(headers=headers) as client:
        stream = StreamReader(client, f"{server.url}{SEED_STREAM}", body=BODY)
        try:
            events = stream.read_until(lambda e: e.event == "snapshot")
        finally:
            stream.close()
    session = events[0].json()
    assert events[0].event == "session" and session["clock"]["state"] == "playing"
    stored = server.services.sessions.get(session["session_id"])
    assert stored is not None and stored.owner == "user-bob-0002"


def test_a_cognito_access_token_matches_by_client_id(server: Server, issuer: Issuer) -> None:
    token = issuer.token(aud=None, client_id=AUDIENCE, token_use="access")
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        stream = StreamReader(client, f"{server.url}{SEED_STREAM}", body=BODY)
        stream.read_until(lambda e: e.event == "session")
        stream.close()


def test_other_routes_do_not_take_bearer_tokens_in_the_app(server: Server, issuer: Issuer) -> None:
    """Everything else needing a caller is reached through the HTTP API's authorizer."""
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    response = httpx.get(
        f"{server.url}/api/replay/sessions/s-EventSampleSession000001", headers=headers
    )
    assert response.status_code == 401


def test_the_issuer_down_is_503_not_401(server: Server, issuer: Issuer) -> None:
    issuer.up = False
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    response = httpx.post(f"{server.url}{SEED_STREAM}", json=BODY, headers=headers)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]


# --- keys, on a fake clock -----------------------------------------------------------------


def test_keys_are_fetched_once_and_cached(issuer: Issuer) -> None:
    clock = FakeClock()
    check = verifier(issuer, clock)
    for _ in range(5):
        assert check.subject(issuer.token()) == "user-alice-0001"
    assert issuer.requests == {"/.well-known/openid-configuration": 1, "/jwks.json": 1}


def test_a_rotated_key_is_fetched_once_then_unknown_kids_wait_for_the_cooldown(
    issuer: Issuer,
) -> None:
    clock = FakeClock()
    check = verifier(issuer, clock, cooldown_s=60)
    check.subject(issuer.token())
    clock.now += 61
    issuer.keys["k2"] = rsa_key()  # the issuer rotates
    assert check.subject(issuer.token(kid="k2")) == "user-alice-0001"
    assert issuer.requests["/jwks.json"] == 2
    # Made-up kids right after: rejected from the cache, no fetch per request.
    for n in range(20):
        with pytest.raises(TokenRejected, match="unknown key"):
            check.subject(issuer.token(kid=f"rogue-{n}", key=rsa_key()))
    assert issuer.requests["/jwks.json"] == 2
    clock.now += 60
    with pytest.raises(TokenRejected, match="unknown key"):
        check.subject(issuer.token(kid="rogue-x", key=rsa_key()))
    assert issuer.requests["/jwks.json"] == 3  # one refetch per cooldown


def test_a_removed_key_stops_verifying_when_the_cache_ages(issuer: Issuer) -> None:
    clock = FakeClock()
    check = verifier(issuer, clock, max_age_s=3_600)
    old = issuer.token(kid="k1")
    check.subject(old)
    issuer.keys = {"k2": rsa_key()}
    clock.now += 3_601
    with pytest.raises(TokenRejected, match="unknown key"):
        check.subject(old)


def test_an_outage_keeps_cached_keys_and_retries_at_most_once_per_cooldown(
    issuer: Issuer,
) -> None:
    clock = FakeClock()
    check = verifier(issuer, clock, max_age_s=100, cooldown_s=60)
    check.subject(issuer.token())
    issuer.up = False
    clock.now += 101  # the cache is stale, the issuer down: cached keys go on verifying
    for _ in range(10):
        assert check.subject(issuer.token()) == "user-alice-0001"
    assert check.fetches == 2
    with pytest.raises(IssuerUnavailable):  # an unknown kid cannot be told apart now
        check.subject(issuer.token(kid="k9", key=rsa_key()))
    assert check.fetches == 2


def test_clock_skew_within_the_leeway_is_accepted(issuer: Issuer) -> None:
    import time

    check = verifier(issuer, FakeClock(), leeway_s=60)
    now = int(time.time())
    assert check.subject(issuer.token(exp=now - 30))  # expired 30 s ago by our clock
    assert check.subject(issuer.token(nbf=now + 30))  # valid 30 s from now by our clock
    with pytest.raises(TokenRejected):
        check.subject(issuer.token(exp=now - 120))
