"""The HTTP API (FastAPI)."""

from visor.api.app import create_app
from visor.api.server import serve

__all__ = ["create_app", "serve"]
