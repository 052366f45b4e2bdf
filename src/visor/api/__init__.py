"""The HTTP API (FastAPI)."""

from visor.api.app import create_app

__all__ = ["create_app"]
