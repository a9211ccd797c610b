"""The app's configuration: environment variables read once into one settings object.

Local and cloud differ only in these values (e.g. ``AUTH_MODE=local`` on a laptop,
``jwt`` behind API Gateway), never in code paths.
"""

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The app's route groups (functions.app.application.ROUTE_GROUPS): what one process serves.
RouteGroup = Literal["control", "history", "stream"]
ROUTE_GROUPS: tuple[RouteGroup, ...] = ("control", "history", "stream")


class AppSettings(BaseSettings):
    """Every knob of the control API and the stream."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # Which route groups this process serves (comma-separated): all of them locally (one
    # uvicorn serves the dashboard everything); in AWS each function serves what API
    # Gateway and its Function URL route to it, and importing and declaring the other
    # routes would only lengthen its cold start (docs/architecture.md, "One app, composed").
    app_routes: Annotated[list[RouteGroup], NoDecode] = Field(
        default_factory=lambda: list(ROUTE_GROUPS), min_length=1
    )
    replay_bucket: str = Field(min_length=3, max_length=63, description="Chunks bucket.")
    replay_table: str = Field(default="dispatch-replay-sessions", description="Sessions table.")

    # Identity: 'jwt' reads the API Gateway JWT authorizer's claims; 'local' trusts
    # LOCAL_IDENTITY (or the X-Replay-User header) and is for a laptop only.
    auth_mode: Literal["jwt", "local"] = "jwt"
    local_identity: str = "local-user"
    stream_token_secret: SecretStr = Field(min_length=32, description="HMAC key of stream tokens.")
    stream_token_ttl_s: int = Field(default=900, ge=30, le=86_400)
    share_token_ttl_s: int = Field(default=7 * 86_400, ge=60)
    cors_origins: list[str] = Field(default_factory=list)
    # Bearer JWTs the app verifies itself where no authorizer is in front (the stream's
    # Function URL, functions.app.web.bearer): the HTTP API authorizer's issuer and audiences.
    jwt_issuer: str = Field(default="", description="Issuer URL; empty: no in-app check.")
    jwt_audience: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted audiences (comma-separated)."
    )
    jwt_jwks_url: str = Field(default="", description="JWKS URL; empty: OpenID discovery.")
    jwt_leeway_s: float = Field(default=60.0, ge=0, le=300, description="Clock skew allowed.")

    # Sessions.
    session_ttl_s: int = Field(default=86_400, ge=300)
    presence_lease_s: int = Field(default=120, ge=10)
    # Co-watchers who may join one session (409 session-full beyond): bounds the item (a
    # member is up to 200 characters; DynamoDB's limit is 400 KB) and each poll's read.
    session_max_members: int = Field(default=50, ge=0, le=1_000)
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)

    # Where clients open streams (the Function URL in the cloud; empty = same origin).
    stream_base_url: str = ""

    # The stream.
    stream_poll_ms: int = Field(default=150, ge=20, le=5_000)
    stream_max_fps: float = Field(default=10.0, gt=0, le=60)
    stream_heartbeat_s: float = Field(default=15.0, gt=0, le=25)
    stream_max_seconds: float = Field(default=840.0, gt=0)
    stream_max_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    stream_resume_max_gap_ms: int = Field(default=300_000, ge=0)
    # A write the client does not take within this long ends the stream (a client that
    # stopped reading); the duration limit also cuts a blocked write short.
    stream_send_timeout_s: float = Field(default=30.0, gt=0, le=300)
    # A stream waits at most this long for a chunk from S3 (the load goes on for the next
    # asker), then tells its client to come back: never a silent stream.
    stream_chunk_wait_s: float = Field(default=10.0, gt=0, le=60)
    chunk_cache_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    # Frames of co-watched positions, rendered once per process and shared by bytes
    # (functions/app/stream/shared_frames.py); 0: every stream renders its own (Lambda,
    # where a process serves one stream).
    stream_shared_frames_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # Concurrent streams: one open stream holds one Lambda execution environment, so one
    # user (or one session's co-watchers) may hold only this many (429 beyond). Counted
    # in DynamoDB with leases of STREAM_LEASE_S, renewed while a stream lives. 0: no cap
    # (and no lease) of that kind.
    stream_max_per_user: int = Field(default=8, ge=0, le=1_000)
    stream_max_per_session: int = Field(default=64, ge=0, le=1_000)
    stream_lease_s: int = Field(default=60, ge=3, le=900)

    # The map: a mover whose last fix is older than this (replay time, against the data
    # the page shows) is drawn faded, then hidden (docs/api.md, "Staleness"). Parked
    # vehicles report every 30 s, so fading starts well beyond that.
    mover_fade_after_s: int = Field(default=90, ge=1, le=86_400)
    mover_hide_after_s: int = Field(default=600, ge=1, le=86_400)

    @model_validator(mode="after")
    def _fade_before_hide(self) -> "AppSettings":
        if self.mover_hide_after_s < self.mover_fade_after_s:
            raise ValueError("MOVER_HIDE_AFTER_S must be at least MOVER_FADE_AFTER_S")
        return self

    @field_validator("app_routes", "jwt_audience", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # The template passes lists joined with commas (JwtAudience, a CommaDelimitedList
        # parameter; APP_ROUTES).
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


def _secret_from_secrets_manager(secret_id: str) -> str:
    from chunker.format.clients import aws_client

    client = aws_client("secretsmanager")
    value: str = client.get_secret_value(SecretId=secret_id)["SecretString"]
    return value


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """The process's settings, read from the environment once.

    In AWS the stream-token key is not in the environment (it would show in the function's
    configuration): ``STREAM_TOKEN_SECRET_ARN`` names a Secrets Manager secret, read here
    once per container. ``STREAM_TOKEN_SECRET`` (local runs) takes precedence.
    """
    secret_arn = os.environ.get("STREAM_TOKEN_SECRET_ARN")
    if secret_arn and not os.environ.get("STREAM_TOKEN_SECRET"):
        secret = _secret_from_secrets_manager(secret_arn)
        return AppSettings(stream_token_secret=secret)  # type: ignore[call-arg, arg-type]
    return AppSettings()  # type: ignore[call-arg]  # values come from the environment
