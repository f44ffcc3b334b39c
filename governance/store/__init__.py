"""The store: backends (the embedded file, DuckLake), migrations, and every SQL statement the service runs,
one module per entity (registry, evaluations, gates, review_items, judgments, signoffs, aliases, jobs,
feedback, policies, users, auth, audit_log)."""

from governance.store.backend import Backend
from governance.store.file import FileBackend

__all__ = ["Backend", "FileBackend"]
