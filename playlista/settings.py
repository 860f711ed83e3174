"""One settings object, read once at the edge (flow start, CLI) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".wav",
        ".aif",
        ".aiff",
        ".wma",
    }
)


# What every playlista process needs from Prefect, set before Prefect is imported: no
# analytics, time for a temporary server to start on a slow machine, and playlista's own
# loggers (also on Dask workers, outside any run) sent to the flow run's logs.
PREFECT_ENVIRONMENT: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "playlista",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


class Settings(BaseSettings):
    """playlista's defaults; every field can be set as ``PLAYLISTA_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PLAYLISTA_", frozen=True)

    db: Path = Field(Path("playlista.duckdb"), description="DuckDB file the results go to.")
    playlist_dir: Path = Field(
        Path("playlists"), description="Folder the M3U8 playlists and the library report go to."
    )
    batch_size: int = Field(
        8, ge=1, description="Files per Prefect task; amortises the per-task overhead."
    )
    workers: int | None = Field(
        None, ge=1, description="Worker processes of a local Dask cluster (default: one per core)."
    )
    min_workers: int | None = Field(
        None,
        ge=1,
        description="With max_workers: the fewest workers Dask's adaptive scaling keeps.",
    )
    max_workers: int | None = Field(
        None,
        ge=1,
        description="Scale the local cluster by load, up to this many workers (adaptive).",
    )
    max_in_flight: int | None = Field(
        None, ge=1, description="Batches submitted and not yet collected (default: 2 per worker)."
    )
    dask_address: str | None = Field(
        None, description="Scheduler of an existing Dask cluster; none starts a local one."
    )
    host: str = Field(
        "127.0.0.1", description="Interface the local cluster and its dashboard listen on."
    )
    writer_wait_seconds: float = Field(
        6 * 3600.0,
        ge=0,
        description="How long a run waits for another run writing the same database to finish.",
    )
    write_retries: int = Field(
        6,
        ge=0,
        description=(
            "Tries, with exponential backoff (1, 2, 4 ... s), to merge staged batches at the "
            "end of a run while another process holds the database."
        ),
    )
    follow_symlinks: bool = Field(False, description="Follow symbolic links while discovering.")
    min_audio_seconds: float = Field(
        1.0, gt=0, description="Files decoding to less audio than this are recorded as failures."
    )
    decode_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="A file whose decoding takes longer fails as 'timeout' (decoder stopped).",
    )
    analysis_max_seconds: float = Field(
        600.0,
        ge=0,
        description=(
            "Longer files (that soundfile reads) are analysed from 10 evenly spaced excerpts of "
            "this much audio in all; loudness, energy and duration are still the whole file's. "
            "0: no limit."
        ),
    )
    musicnn_max_patches: int = Field(
        8,
        ge=0,
        description="3-s patches per track that MusiCNN sees, spread over the track (0: all).",
    )
    transient_retries: int = Field(
        3, ge=0, description="Extra tries, with backoff and jitter, for files failing transiently."
    )

    def with_options(self, **options: Any) -> Settings:
        """These settings with the ``options`` that are given (not None) instead; the
        database's path made absolute, so that two spellings of it are one database."""
        given = {k: v for k, v in options.items() if v is not None}
        db = Path(os.path.abspath(given.pop("db", self.db)))
        return self.model_copy(update={**given, "db": db})


def _default(name: str) -> object:
    return Settings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class AnalysisParams:
    """How each file is analysed; sent with every batch to the workers.

    The defaults are :class:`Settings`' (``AnalysisParams.of(settings)`` takes a run's).
    """

    min_seconds: float = _default("min_audio_seconds")  # type: ignore[assignment]
    max_seconds: float = _default("analysis_max_seconds")  # type: ignore[assignment]
    decode_timeout: float = _default("decode_timeout_seconds")  # type: ignore[assignment]
    musicnn_max_patches: int = _default("musicnn_max_patches")  # type: ignore[assignment]

    @classmethod
    def of(cls, settings: Settings) -> AnalysisParams:
        return cls(
            min_seconds=settings.min_audio_seconds,
            max_seconds=settings.analysis_max_seconds,
            decode_timeout=settings.decode_timeout_seconds,
            musicnn_max_patches=settings.musicnn_max_patches,
        )
