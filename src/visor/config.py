"""Settings, read from `VISOR_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISOR_", extra="ignore")

    home: Path = Path("visor-data")
    host: str = "127.0.0.1"
    port: int = 8000
    thumbnail_size: int = 256
    job_workers: int = 2
    # Embedding model used when none is named: a registry name, a folder or a hub id.
    model: str = "dinov2-base"
    # How the embed model runs on a CPU: auto (OpenVINO where installed, else PyTorch),
    # torch or openvino (`visor embed --backend`).
    embed_backend: str = "auto"
    # Similarity search uses an ANN index (built as a job, kept on disk) from this many
    # vectors up; below, exact search is fast enough (bench/search.py).
    ann_min_vectors: int = 50_000
    # The most memory DuckDB itself may hold (e.g. "4GB" or "25%"; default: a quarter of the
    # RAM, at most 4 GB); larger sorts and exports spill to disk beside the store. DuckDB's
    # own default, 80%, let a 1M-sample Parquet export reach 10.6 GB, and pages it had read
    # stayed cached beside a job's own arrays.
    db_memory: str | None = None
    # The built web UI to serve at / (default: the one built into the package).
    ui_dir: Path | None = None
    # Object stores: extra options for s3fs (e.g. a local S3 API) and gcsfs.
    s3_endpoint_url: str | None = None
    gcs_endpoint_url: str | None = None

    @property
    def db_path(self) -> Path:
        return self.home / "visor.duckdb"

    @property
    def thumbnails_dir(self) -> Path:
        return self.home / "thumbnails"

    @property
    def compiled_dir(self) -> Path:
        """Converted models (OpenVINO, static int8) and auto's measured choices."""
        return self.home / "compiled"


@lru_cache
def get_settings() -> Settings:
    return Settings()
