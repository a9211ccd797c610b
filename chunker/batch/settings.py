"""Chunker configuration from the environment, read once per process."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chunker.format.encoding import ChunkerConfig


class ChunkerSettings(BaseSettings):
    """``REPLAY_BUCKET`` and the output settings (``CHUNK_BUCKET_MS``, ``CHUNK_TICK_MS``,
    ``CHUNK_HISTOGRAM_BIN_MS``, ``CHUNK_TASK_RETENTION_MS``, ``CHUNK_AIRCRAFT_EXPIRY_MS``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    replay_bucket: str = Field(min_length=3, max_length=63)
    chunk_bucket_ms: int = 60_000
    chunk_tick_ms: int = 1_000
    chunk_histogram_bin_ms: int = 300_000
    chunk_task_retention_ms: int = 3_600_000
    chunk_aircraft_expiry_ms: int = 300_000

    @property
    def chunker_config(self) -> ChunkerConfig:
        """The output resolution as a validated config."""
        return ChunkerConfig(
            bucket_ms=self.chunk_bucket_ms,
            tick_ms=self.chunk_tick_ms,
            histogram_bin_ms=self.chunk_histogram_bin_ms,
            task_retention_ms=self.chunk_task_retention_ms,
            aircraft_expiry_ms=self.chunk_aircraft_expiry_ms,
        )
