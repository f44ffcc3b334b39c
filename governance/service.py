"""The service API: every action the CLI, the dashboard and the tests take is one method here.

Each method authorises the acting user inside the same transaction as its change, and appends
its audit event in that transaction too, so a change and its record land together or not at all.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from governance import __version__
from governance.artifacts import ArtifactStore, sha256_file
from governance.audit_chain import ChainReport, verify_chain
from governance.audit_export import (
    FORMATS, MANIFEST, ExportVerification, build_manifest, events_file_name, manifest_message, verify_export,
    write_events,
)
from governance.config import Settings, resolve_settings
from governance.errors import Conflict, InvalidInput, NotAllowed, NotFound
from governance.ingest import SPLITS, ColumnRoles, PreparedFile, describe_table_file, prepare_prediction_file
from governance.keys import load_or_create_key, public_key_hex, sign
from governance.records import Dataset, Model, PredictionSet, StoreStatus, User, Version, VersionDetail
from governance.roles import Action, Role, authorize, needed_roles_text, parse_role
from governance.store import Database, audit_log, migrations, registry, users
from governance.store.audit_log import utc_timestamp

T = TypeVar("T")
RISK_TIERS = ("low", "medium", "high")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_migrated: set[Path] = set()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise InvalidInput(
            f"{kind} {value!r} is not a valid name: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return value


class Service:
    """One installation seen by one acting user (`actor`, None only for store-level commands)."""

    def __init__(self, settings: Settings, actor: str | None = None) -> None:
        self.settings = settings
        self.actor = actor
        self.database = Database(settings.database_path, lock_timeout_s=settings.lock_timeout_s)
        self.artifacts = ArtifactStore(settings.artifacts_dir)

    @classmethod
    def open(cls, *, home: str | Path | None = None, actor: str | None = None,
             lock_timeout_s: float | None = None) -> "Service":
        return cls(resolve_settings(home=home, lock_timeout_s=lock_timeout_s), actor)

    # -- units of work -------------------------------------------------------------------------

    def _run(self, unit: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run a unit of work, applying pending migrations first (once per process and store)."""
        path = self.settings.database_path
        if path not in _migrated:
            self.database.run(self._migrate)
            _migrated.add(path)
        return self.database.run(unit)

    def _migrate(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        applied = migrations.apply_pending(conn)
        if applied:
            audit_log.append_event(conn, actor=self.actor, action="store.migrate", entity="store",
                                   payload={"applied": applied, "govern_version": __version__})
        return applied

    def _authorize(self, conn: duckdb.DuckDBPyConnection, action: Action) -> User:
        if not self.actor:
            raise NotAllowed(
                f"no acting user: pass --as USER or set GOVERN_USER (to {action.value} "
                f"you need the role {needed_roles_text(action)})."
            )
        user = users.get_user(conn, self.actor)
        if user is None:
            raise NotAllowed(
                f"unknown user {self.actor!r}: an admin adds users with `govern user add` "
                f"(to {action.value} you need the role {needed_roles_text(action)})."
            )
        authorize(user=user.name, role=user.role, action=action)
        return user

    def _log(self, conn: duckdb.DuckDBPyConnection, action: str, entity: str, payload: dict[str, Any]) -> None:
        audit_log.append_event(conn, actor=self.actor, action=action, entity=entity, payload=payload)

    # -- store ----------------------------------------------------------------------------------

    def init(self, *, admin: str | None = None, password: str | None = None) -> StoreStatus:
        """Create the store (idempotent) and, on a store with no users, its first admin."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        load_or_create_key(self.settings.keys_dir)

        def unit(conn: duckdb.DuckDBPyConnection) -> None:
            applied = migrations.apply_pending(conn)
            if applied:
                self._log(conn, "store.init" if "m001_users_registry_artifacts" in applied else "store.migrate",
                          "store", {"applied": applied, "govern_version": __version__})
            if admin is None:
                return
            check_name("user", admin)
            existing = users.get_user(conn, admin)
            if existing is not None:
                if existing.role is not Role.ADMIN:
                    raise Conflict(f"user {admin!r} already exists as {existing.role.value}, not admin.")
                return
            if users.count_users(conn):
                raise NotAllowed(
                    "the store already has users, so `init --admin` cannot add one; "
                    "an admin adds users with `govern user add NAME --role admin`."
                )
            users.insert_user(conn, name=admin, role=Role.ADMIN, password_hash=_hash(password),
                              created_at=_now(), created_by=None)
            audit_log.append_event(conn, actor=admin, action="user.add", entity=f"user:{admin}",
                                   payload={"name": admin, "role": "admin", "bootstrap": True})

        self.database.run(unit, create=True)
        _migrated.add(self.settings.database_path)
        return self._status_unchecked()

    def status(self) -> StoreStatus:
        self._run(lambda conn: self._authorize(conn, Action.VIEW))
        return self._status_unchecked()

    def _status_unchecked(self) -> StoreStatus:
        def unit(conn: duckdb.DuckDBPyConnection) -> StoreStatus:
            head = audit_log.head(conn)
            counts = registry.counts(conn)
            return StoreStatus(
                home=str(self.settings.home), database=str(self.settings.database_path),
                migrations=migrations.applied_migrations(conn), users=users.count_users(conn),
                models=counts["models"], versions=counts["versions"], prediction_sets=counts["prediction_sets"],
                audit_events=audit_log.event_count(conn), audit_head=head[1] if head else None,
            )

        return self._run(unit)

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, *, name: str, role: str | Role, password: str | None = None) -> User:
        check_name("user", name)
        parsed = parse_role(role) if isinstance(role, str) else role
        password_hash = _hash(password)

        def unit(conn: duckdb.DuckDBPyConnection) -> User:
            self._authorize(conn, Action.MANAGE_USERS)
            if users.get_user(conn, name) is not None:
                raise Conflict(f"user {name!r} already exists.")
            users.insert_user(conn, name=name, role=parsed, password_hash=password_hash,
                              created_at=_now(), created_by=self.actor)
            self._log(conn, "user.add", f"user:{name}",
                      {"name": name, "role": parsed.value, "password_set": password is not None})
            return users.get_user(conn, name)

        return self._run(unit)

    def list_users(self) -> list[User]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[User]:
            self._authorize(conn, Action.MANAGE_USERS)
            return users.list_users(conn)

        return self._run(unit)

    def check_password(self, *, name: str, password: str) -> User:
        """The user if `password` is theirs; NotAllowed (saying nothing of which part was wrong) if not."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[User | None, str | None]:
            return users.get_user(conn, name), users.password_hash(conn, name)

        user, stored = self._run(unit)
        try:
            if user is None or stored is None or not PasswordHasher().verify(stored, password):
                raise VerificationError()
        except VerificationError:
            raise NotAllowed("unknown user or wrong password.") from None
        return user

    # -- registry -------------------------------------------------------------------------------

    def register_model(self, *, name: str, owner: str | None = None, description: str | None = None,
                       risk_tier: str = "medium") -> Model:
        check_name("model", name)
        if risk_tier not in RISK_TIERS:
            raise InvalidInput(f"risk tier {risk_tier!r} is not one of {', '.join(RISK_TIERS)}.")

        def unit(conn: duckdb.DuckDBPyConnection) -> Model:
            user = self._authorize(conn, Action.REGISTER)
            if registry.get_model(conn, name) is not None:
                raise Conflict(f"model {name!r} is already registered.")
            if owner is not None and users.get_user(conn, owner) is None:
                raise NotFound(f"owner {owner!r} is not a user of this store.")
            model = Model(name, owner or user.name, description, risk_tier, _now(), user.name)
            registry.insert_model(conn, model)
            self._log(conn, "model.register", f"model:{name}", model.to_dict())
            return model

        return self._run(unit)

    def list_models(self) -> list[Model]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[Model]:
            self._authorize(conn, Action.VIEW)
            return registry.list_models(conn)

        return self._run(unit)

    def register_version(self, *, model: str, version: str, artifact: Path, training_data: Path | None = None,
                         parent: str | None = None) -> Version:
        """Store the artifact (and training data) by sha256 and register the version."""
        check_name("version", version)
        self._run(lambda conn: (self._authorize(conn, Action.REGISTER), _require_model(conn, model)))
        if not Path(artifact).is_file():
            raise NotFound(f"artifact {artifact} does not exist or is not a regular file.")
        training = self._store_dataset(Path(training_data)) if training_data is not None else None
        artifact_sha, artifact_size = self.artifacts.put_file(Path(artifact))

        def unit(conn: duckdb.DuckDBPyConnection) -> Version:
            user = self._authorize(conn, Action.REGISTER)
            _require_model(conn, model)
            if registry.get_version(conn, model, version) is not None:
                raise Conflict(f"version {version!r} of model {model!r} is already registered.")
            if parent is not None and registry.get_version(conn, model, parent) is None:
                raise NotFound(f"parent version {parent!r} of model {model!r} is not registered.")
            registry.insert_artifact(conn, sha256=artifact_sha, size_bytes=artifact_size,
                                     original_name=Path(artifact).name, created_at=_now())
            if training is not None:
                registry.insert_dataset(conn, training, created_at=_now())
            record = Version(model, version, artifact_sha, training.sha256 if training else None, parent,
                             "registered", _now(), user.name)
            registry.insert_version(conn, record)
            self._log(conn, "version.register", f"version:{model}/{version}", record.to_dict())
            return record

        return self._run(unit)

    def _store_dataset(self, path: Path) -> Dataset:
        fmt, row_count, columns = describe_table_file(path)
        sha, _ = self.artifacts.put_file(path)
        return Dataset(sha, fmt, row_count, columns, path.name)

    def show_version(self, *, model: str, version: str) -> VersionDetail:
        def unit(conn: duckdb.DuckDBPyConnection) -> VersionDetail:
            self._authorize(conn, Action.VIEW)
            record = _require_version(conn, model, version)
            training = registry.get_dataset(conn, record.training_data_sha256) if record.training_data_sha256 else None
            return VersionDetail(record, training, registry.list_prediction_sets(conn, model, version))

        return self._run(unit)

    def list_versions(self, *, model: str) -> list[Version]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[Version]:
            self._authorize(conn, Action.VIEW)
            _require_model(conn, model)
            return registry.list_versions(conn, model)

        return self._run(unit)

    # -- ingest ---------------------------------------------------------------------------------

    def ingest(self, *, model: str, version: str, file: Path, split: str, roles: ColumnRoles = ColumnRoles(),
               batch_time: str | datetime | None = None, delimiter: str = ",") -> PredictionSet:
        """Validate `file` completely, store it as Parquet by sha256 and record the prediction set.

        Raises InvalidInput listing every problem in the file; the store is unchanged then.
        """
        if split not in SPLITS:
            raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}.")
        when = _parse_time(batch_time)
        self._run(lambda conn: (self._authorize(conn, Action.INGEST), _require_version(conn, model, version)))
        scratch = self.artifacts.scratch_path(".parquet")
        try:
            prepared = prepare_prediction_file(Path(file), roles, scratch, delimiter=delimiter)
            self.artifacts.adopt(scratch, prepared.sha256)
        finally:
            self.artifacts.discard(scratch)
        return self._run(lambda conn: self._record_prediction_set(conn, model, version, split, when, roles, prepared))

    def _record_prediction_set(self, conn: duckdb.DuckDBPyConnection, model: str, version: str, split: str,
                               when: datetime | None, roles: ColumnRoles, prepared: PreparedFile) -> PredictionSet:
        user = self._authorize(conn, Action.INGEST)
        _require_version(conn, model, version)
        registry.insert_dataset(
            conn, Dataset(prepared.sha256, "parquet", prepared.row_count, prepared.columns, prepared.source_name),
            created_at=_now(),
        )
        prediction_set = PredictionSet(
            id=f"ps-{uuid.uuid4().hex[:12]}", model=model, version=version, split=split, batch_time=when,
            dataset_sha256=prepared.sha256, source_name=prepared.source_name, source_sha256=prepared.source_sha256,
            row_count=prepared.row_count, id_column=roles.id, label_column=roles.label, score_column=roles.score,
            sensitive=list(roles.sensitive), features=prepared.features, created_at=_now(), created_by=user.name,
        )
        registry.insert_prediction_set(conn, prediction_set)
        self._log(conn, "predictions.ingest", f"prediction_set:{prediction_set.id}", prediction_set.to_dict())
        return prediction_set

    def prediction_set_path(self, prediction_set: PredictionSet) -> Path:
        """The Parquet file holding a prediction set's rows (for the metric engine to query in place)."""
        return self.artifacts.open_path(prediction_set.dataset_sha256)

    # -- audit ----------------------------------------------------------------------------------

    def verify_audit(self) -> ChainReport:
        def unit(conn: duckdb.DuckDBPyConnection) -> ChainReport:
            self._authorize(conn, Action.AUDIT)
            return verify_chain(audit_log.read_events(conn))

        return self._run(unit)

    def export_audit(self, *, out: Path, fmt: str = "jsonl") -> dict[str, Any]:
        """Write the whole log plus a signed manifest into the new folder `out`; return the manifest.

        The export is itself an audit event, the last one in the export. Files are written to a
        scratch folder inside the transaction and moved into place only after it commits.
        """
        if fmt not in FORMATS:
            raise InvalidInput(f"export format {fmt!r} is not one of {', '.join(FORMATS)}.")
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidInput(f"{out} already exists and is not an empty folder; choose a new one.")
        key = load_or_create_key(self.settings.keys_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".audit-export-", dir=out.parent))

        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            user = self._authorize(conn, Action.AUDIT)
            self._log(conn, "audit.export", "audit", {"format": fmt, "out": out.name})
            events = audit_log.read_events(conn)
            name = events_file_name(fmt)
            write_events(events, scratch / name, fmt)
            manifest = build_manifest(events=events, fmt=fmt, files={name: sha256_file(scratch / name)},
                                      exported_at=utc_timestamp(), exported_by=user.name,
                                      public_key=public_key_hex(key))
            manifest["signature"] = sign(key, manifest_message(manifest))
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            return manifest

        try:
            manifest = self._run(unit)
            if out.exists():
                out.rmdir()
            scratch.rename(out)
        finally:
            self.artifacts.discard(scratch)
        return manifest

    def public_key(self) -> str:
        self._run(lambda conn: self._authorize(conn, Action.VIEW))
        return public_key_hex(load_or_create_key(self.settings.keys_dir))


def verify_audit_export(directory: Path, *, expected_public_key: str | None = None) -> ExportVerification:
    """Offline verification: needs only the export's files, no store and no user."""
    return verify_export(Path(directory), expected_public_key=expected_public_key)


def _hash(password: str | None) -> str | None:
    if password is None:
        return None
    if len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters.")
    return PasswordHasher().hash(password)


def _parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"batch time {value!r} is not an ISO 8601 time such as 2024-05-01T00:00:00Z.") from exc
    if parsed is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _require_model(conn: duckdb.DuckDBPyConnection, model: str) -> Model:
    record = registry.get_model(conn, model)
    if record is None:
        raise NotFound(f"model {model!r} is not registered; register it with `govern model register {model}`.")
    return record


def _require_version(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Version:
    _require_model(conn, model)
    record = registry.get_version(conn, model, version)
    if record is None:
        raise NotFound(f"version {version!r} of model {model!r} is not registered.")
    return record
