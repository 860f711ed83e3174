"""DuckDB storage: the schema, planning against it, and the single writer."""

from playlista.store.db import Store, connect
from playlista.store.plan import Plan

__all__ = ["Plan", "Store", "connect"]
