"""The store: one DuckDB file; the only place that writes SQL."""

from visor.store.db import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Store"]
