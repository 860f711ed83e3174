"""DuckDB storage: the schema, planning against it, the single writer and the readers.

:class:`Store` writes (and reads); :class:`Reader` opens the file read-only. Nothing outside
this package touches DuckDB.
"""

from playlista.store.db import Store
from playlista.store.plan import Plan
from playlista.store.read import Reader

__all__ = ["Plan", "Reader", "Store"]
