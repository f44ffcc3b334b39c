"""govern's core: the store, registry, ingest, users and roles, audit log, service API and CLI."""

__version__ = "0.1.0"
