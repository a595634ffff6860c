"""The store: tables, migrations and queries (SQLAlchemy 2 async; SQLite or PostgreSQL).

Imports `testfleet.protocol` only.
"""

from testfleet.store.db import Store, StoreUrlError, normalize_url, sqlite_url

__all__ = ["Store", "StoreUrlError", "normalize_url", "sqlite_url"]
