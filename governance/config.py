"""Where the data home is and how long to wait for the store lock."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.errors import InvalidInput

if TYPE_CHECKING:
    from governance.store.backend import Backend

DEFAULT_HOME = "govern-data"
DEFAULT_LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Settings:
    home: Path
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    store: str = ""  # "" the embedded file in home; "ducklake:postgres:<libpq conninfo>" a shared DuckLake
    data_path: Path | None = None  # DuckLake's Parquet files (GOVERN_DATA_PATH; default home/lake)
    key_file: Path | None = None  # the signing key (GOVERN_KEY_FILE; default home/keys/installation_ed25519.pem)
    witness_file: Path | None = None  # signed heads (GOVERN_WITNESS_FILE; default home/witness/heads.jsonl)
    oidc_domain: str = ""  # GOVERN_OIDC_DOMAIN: whose verified email addresses name users (pat@it → pat)

    @property
    def database_path(self) -> Path:
        return self.home / "govern.duckdb"

    def database(self) -> Backend:
        """The backend of the configured store: the embedded file, or DuckLake when GOVERN_STORE names one."""
        if self.store:
            from governance.store.ducklake import DuckLakeBackend, parse_store

            return DuckLakeBackend(parse_store(self.store), self.data_path or self.home / "lake",
                                   lock_timeout_s=self.lock_timeout_s)
        from governance.store.file import FileBackend

        return FileBackend(self.database_path, lock_timeout_s=self.lock_timeout_s)

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def key_path(self) -> Path:
        return self.key_file or self.home / "keys" / "installation_ed25519.pem"

    @property
    def witness_path(self) -> Path:
        return self.witness_file or self.home / "witness" / "heads.jsonl"

    @property
    def store_id(self) -> str:
        """What names this store to a user's saved sessions: the file, or the catalog without its password."""
        return self.database().identity


def resolve_settings(*, home: str | os.PathLike | None = None, lock_timeout_s: float | None = None) -> Settings:
    """Settings from explicit values, else GOVERN_HOME / GOVERN_LOCK_TIMEOUT / GOVERN_STORE /
    GOVERN_DATA_PATH, else the defaults."""
    home_path = Path(home or os.environ.get("GOVERN_HOME") or DEFAULT_HOME).expanduser().absolute()
    if lock_timeout_s is None:
        raw = os.environ.get("GOVERN_LOCK_TIMEOUT")
        if raw:
            try:
                lock_timeout_s = float(raw)
            except ValueError as exc:
                raise InvalidInput(f"GOVERN_LOCK_TIMEOUT must be a number of seconds, not {raw!r}.") from exc
        else:
            lock_timeout_s = DEFAULT_LOCK_TIMEOUT_S
    if lock_timeout_s < 0:
        raise InvalidInput(f"the lock timeout must be zero or more seconds, not {lock_timeout_s}.")
    store = os.environ.get("GOVERN_STORE", "").strip()
    if store:
        from governance.store.ducklake import parse_store

        parse_store(store)  # a clear sentence now rather than a failed attach later
    if lock_timeout_s != lock_timeout_s or lock_timeout_s == float("inf"):
        raise InvalidInput("the lock timeout must be a finite number of seconds.")
    return Settings(home=home_path, lock_timeout_s=lock_timeout_s, store=store,
                    data_path=_env_path("GOVERN_DATA_PATH"), key_file=_env_path("GOVERN_KEY_FILE"),
                    witness_file=_env_path("GOVERN_WITNESS_FILE"),
                    oidc_domain=os.environ.get("GOVERN_OIDC_DOMAIN", "").strip().lstrip("@").lower())


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser().absolute() if value else None
