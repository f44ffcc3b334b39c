"""The DuckDB store: units of work, migrations and every SQL statement the service runs."""

from governance.store.database import Database

__all__ = ["Database"]
