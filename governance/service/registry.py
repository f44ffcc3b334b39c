"""Models, versions and prediction sets."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import duckdb

from governance.errors import Conflict, InvalidInput, NotFound
from governance.ingest import ColumnRoles
from governance.records import Dataset, Model, PredictionSet, Version, VersionDetail
from governance.roles import Action
from governance.service.base import (
    ServiceBase,
    _now,
    _require_model,
    _require_version,
    after,
    check_name,
    hidden_characters,
    parse_time,
)
from governance.store import registry, users

if TYPE_CHECKING:
    from governance.ingest import PreparedFile

RISK_TIERS = ("low", "medium", "high")
# Independent approvals every release needs, whatever policy was gated; admins may only raise it per model.
TIER_APPROVALS = {"low": 1, "medium": 1, "high": 2}


def approval_floor(model: Model) -> tuple[int, str]:
    """The approvals a release of `model` needs at least, and why, in words."""
    tier = TIER_APPROVALS.get(model.risk_tier, max(TIER_APPROVALS.values()))
    if model.min_approvals is not None and model.min_approvals > tier:
        return model.min_approvals, f"an admin set {model.min_approvals} for {model.name}"
    return tier, f"risk tier {model.risk_tier} needs {tier}"


MAX_INVENTORY_TEXT = 4_000


def _inventory_text(what: str, text: str | None) -> str | None:
    """An inventory text stripped, or InvalidInput when it is too long or holds control characters."""
    if text is None:
        return None
    text = text.strip()
    if len(text) > MAX_INVENTORY_TEXT:
        raise InvalidInput(f"the {what} is {len(text):,} characters; at most {MAX_INVENTORY_TEXT:,} fit.")
    hidden = hidden_characters(text)
    if hidden:  # controls, and the bidirectional overrides (U+202E) comments already refuse
        raise InvalidInput(f"the {what} holds characters that do not show as written ({', '.join(hidden[:5])}); "
                           "write it as plain text.")
    return text


def _new_prediction_set(model: str, version: str, split: str, when: datetime | None, roles: ColumnRoles,
                        prepared: PreparedFile, actor: str) -> PredictionSet:
    return PredictionSet(
        id=f"ps-{uuid.uuid4().hex[:12]}", model=model, version=version, split=split, batch_time=when,
        dataset_sha256=prepared.sha256, source_name=prepared.source_name, source_sha256=prepared.source_sha256,
        row_count=prepared.row_count, id_column=roles.id, label_column=prepared.label, score_column=roles.score,
        sensitive=list(roles.sensitive), features=prepared.features, created_at=_now(), created_by=actor,
        intersections=[list(parts) for parts in roles.intersections],
    )


class RegistryActions(ServiceBase):

    def register_model(self, *, name: str, owner: str | None = None, description: str | None = None,
                       risk_tier: str = "medium", intended_use: str | None = None,
                       limitations: str | None = None) -> Model:
        """Register a model with its inventory: owner, risk tier, description, intended use and limitations."""
        check_name("model", name)
        intended_use, limitations = _inventory_text("intended use", intended_use), _inventory_text("limitations",
                                                                                                  limitations)
        description = _inventory_text("description", description)
        if risk_tier not in RISK_TIERS:
            raise InvalidInput(f"risk tier {risk_tier!r} is not one of {', '.join(RISK_TIERS)}.")

        return self._run(lambda conn: self._insert_model(conn, name, owner=owner, description=description,
                                                         risk_tier=risk_tier, intended_use=intended_use,
                                                         limitations=limitations))

    def _insert_model(self, conn: duckdb.DuckDBPyConnection, name: str, *, owner: str | None = None,
                      description: str | None = None, risk_tier: str = "medium", intended_use: str | None = None,
                      limitations: str | None = None) -> Model:
        """Register the model inside the caller's unit of work (`govern train` registers a new model in the
        same unit as its first version, so a failed training leaves no empty model behind)."""
        user = self._authorize(conn, Action.REGISTER)
        if registry.get_model(conn, name) is not None:
            raise Conflict(f"model {name!r} is already registered; an admin changes its risk tier or details with "
                           f"`govern model edit {name}`.")
        if owner is not None and users.get_user(conn, owner) is None:
            raise NotFound(f"owner {owner!r} is not a user of this store.")
        model = Model(name, owner or user.name, description, risk_tier, _now(), user.name,
                      intended_use=intended_use or None, limitations=limitations or None)
        registry.insert_model(conn, model)
        self._log(conn, "model.register", f"model:{name}", model.to_dict())
        return model

    def edit_model(self, *, name: str, description: str | None = None, risk_tier: str | None = None,
                   min_approvals: int | None = None, intended_use: str | None = None,
                   limitations: str | None = None) -> Model:
        """Change a model's description, intended use or limitations (engineers, admins; an empty text clears
        one), or its risk tier or approval floor (admins: they set the approvals a release needs, which may be
        raised above the tier's, never lowered)."""
        intended_use, limitations = _inventory_text("intended use", intended_use), _inventory_text("limitations",
                                                                                                  limitations)
        description = _inventory_text("description", description)
        if risk_tier is not None and risk_tier not in RISK_TIERS:
            raise InvalidInput(f"risk tier {risk_tier!r} is not one of {', '.join(RISK_TIERS)}.")
        if min_approvals is not None and not 1 <= min_approvals <= 20:
            raise InvalidInput(f"--min-approvals must be between 1 and 20, not {min_approvals}.")

        def unit(conn: duckdb.DuckDBPyConnection) -> Model:
            self._authorize(conn, Action.REGISTER)
            if risk_tier is not None or min_approvals is not None:
                self._authorize(conn, Action.SET_RELEASE_RULES)
            current = _require_model(conn, name)
            tier = risk_tier or current.risk_tier
            if min_approvals is not None and min_approvals < TIER_APPROVALS[tier]:
                raise InvalidInput(f"risk tier {tier} already needs {TIER_APPROVALS[tier]} approvals; the floor "
                                   f"can be raised above that, never lowered (asked: {min_approvals}).")
            floor = min_approvals if min_approvals is not None else current.min_approvals
            registry.update_model(
                conn, name, risk_tier=tier, min_approvals=floor,
                description=description if description is not None else current.description,
                intended_use=(intended_use or None) if intended_use is not None else current.intended_use,
                limitations=(limitations or None) if limitations is not None else current.limitations)
            changed = _require_model(conn, name)
            fields = ("risk_tier", "min_approvals", "description", "intended_use", "limitations")
            self._log(conn, "model.edit", f"model:{name}", {
                "before": {f: getattr(current, f) for f in fields},
                "after": {f: getattr(changed, f) for f in fields}})
            return changed

        return self._run(unit)

    def list_models(self) -> list[Model]:
        return self._read(Action.VIEW, lambda conn: registry.list_models(conn))

    def register_version(self, *, model: str, version: str, artifact: Path, training_data: Path | None = None,
                         parent: str | None = None, lineage: dict[str, Any] | None = None) -> Version:
        """Store the artifact (and training data) by sha256 and register the version."""
        check_name("version", version)

        def check(conn: duckdb.DuckDBPyConnection) -> None:  # before any file is stored: a refusal leaves none
            self._authorize(conn, Action.REGISTER)
            _require_model(conn, model)
            _check_new_version(conn, model, version, parent)

        self._run(check)
        if not Path(artifact).is_file():
            raise NotFound(f"artifact {artifact} does not exist or is not a regular file.")
        training = self._store_dataset(Path(training_data)) if training_data is not None else None
        artifact_sha, artifact_size = self.artifacts.put_file(Path(artifact))

        return self._run(lambda conn: self._insert_version(conn, model, version, (artifact_sha, artifact_size,
                                                                                  Path(artifact).name),
                                                           training, parent, lineage))

    def _insert_version(self, conn: duckdb.DuckDBPyConnection, model: str, version: str,
                        artifact: tuple[str, int, str], training: Dataset | None, parent: str | None,
                        lineage: dict[str, Any] | None) -> Version:
        """Record a version whose artifact (sha256, size, name) is already stored (in the caller's unit)."""
        user = self._authorize(conn, Action.REGISTER)
        _require_model(conn, model)
        _check_new_version(conn, model, version, parent)
        artifact_sha, artifact_size, artifact_name = artifact
        registry.insert_artifact(conn, sha256=artifact_sha, size_bytes=artifact_size, original_name=artifact_name,
                                 created_at=_now())
        if training is not None:
            registry.insert_dataset(conn, training, created_at=_now())
        record = Version(model, version, artifact_sha, training.sha256 if training else None, parent,
                         "registered", _now(), user.name, lineage)
        registry.insert_version(conn, record)
        self._log(conn, "version.register", f"version:{model}/{version}", record.to_dict())
        return record

    def _store_dataset(self, path: Path) -> Dataset:
        from governance.ingest import describe_table_file
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
        return self._read(Action.VIEW, lambda conn: registry.list_versions(conn, model), require=model)


    def ingest(self, *, model: str, version: str, file: Path, split: str, roles: ColumnRoles = ColumnRoles(),
               batch_time: str | datetime | None = None, delimiter: str = ",") -> PredictionSet:
        """Validate `file` completely, store it as Parquet by sha256 and record the prediction set.

        `roles.label` None leaves the label column unnamed: a production batch then may come without
        labels (no `label` column: its outcomes arrive later through `labels`); other splits use `label`.
        Raises InvalidInput listing every problem in the file; the store is unchanged then.
        """
        from governance.ingest import SPLITS
        if split not in SPLITS:
            raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}.")
        when = parse_time(batch_time, what="batch time")
        self._run(lambda conn: (self._authorize(conn, Action.INGEST), _require_version(conn, model, version)))
        optional = roles.label is None and split == "production"
        roles = replace(roles, label="label") if roles.label is None else roles
        eval_set = self._run(lambda conn: registry.latest_prediction_set(conn, model, version, "eval")) \
            if split == "challenger" else None

        def check(path: Path, prepared: PreparedFile) -> None:  # after the file's own problems
            if split != "challenger":
                return
            if eval_set is None:
                raise InvalidInput(f"{model} version {version} has no eval set yet; a challenger scores the eval "
                                   "rows, so ingest those first.")
            self._check_same_rows(eval_set, path, prepared, roles, Path(file).name)

        prepared = self._stage_prediction_file(Path(file), roles, delimiter=delimiter, label_optional=optional,
                                               judged_for_fairness=split in ("eval", "challenger"), check=check)
        return self._run(lambda conn: self._record_prediction_set(conn, model, version, split, when, roles, prepared))

    def _check_same_rows(self, eval_set: PredictionSet, path: Path, prepared: PreparedFile, roles: ColumnRoles,
                         name: str) -> None:
        """A challenger (normalised at `path`) scores the version's eval rows with their recorded labels, no
        other rows: the same ids when the eval set has ids (else as many rows, in the same order), the same
        label on each. Else its ROC AUC is a benchmark of other data (100 unrelated rows at 0.5, or the eval
        ids with every label flipped, disarmed a blocking challenger-auc rule)."""
        from evaluation.sources import quote
        if eval_set.id_column is not None and roles.id is None:
            raise InvalidInput(f"the eval set {eval_set.id} names its rows by {eval_set.id_column!r}: give the "
                               f"challenger's id column with --id, so that {name} can be matched to them.")
        if roles.id is None or eval_set.id_column is None:
            if prepared.row_count != eval_set.row_count:
                raise InvalidInput(f"{name} has {prepared.row_count:,} rows and the eval set {eval_set.id} "
                                   f"{eval_set.row_count:,}: a challenger scores the same eval rows.")
            # without ids, rows match by position
            c_key = e_key = "file_row_number"
        else:
            c_key, e_key = f"CAST({quote(roles.id)} AS VARCHAR)", f"CAST({quote(eval_set.id_column)} AS VARCHAR)"
        label, eval_label = quote(roles.label or "label"), quote(eval_set.label_column or "label")
        probe = duckdb.connect()
        try:  # identifiers are the sets' own column names, checked at ingest, quoted
            outside, missing, relabelled = probe.execute(
                f"WITH c AS (SELECT {c_key} AS id, {label} AS y FROM read_parquet($c, file_row_number = true)), "
                f"e AS (SELECT {e_key} AS id, {eval_label} AS y FROM read_parquet($e, file_row_number = true)) "
                "SELECT (SELECT count(*) FROM c WHERE id NOT IN (SELECT id FROM e)), "
                "(SELECT count(*) FROM e WHERE id NOT IN (SELECT id FROM c)), "
                "(SELECT count(*) FROM c JOIN e USING (id) WHERE c.y IS DISTINCT FROM e.y)",
                {"c": str(path), "e": str(self.prediction_set_path(eval_set))}
            ).fetchone() or (0, 0, 0)
        finally:
            probe.close()
        if outside or missing:
            raise InvalidInput(f"{name} does not score the eval rows of {eval_set.id}: {outside:,} of its ids are "
                               f"not eval rows and {missing:,} eval rows have no score; a challenger scores the same "
                               "eval rows.")
        if relabelled:
            raise InvalidInput(f"{name} gives {relabelled:,} eval row(s) another label than the eval set "
                               f"{eval_set.id} records; a challenger is scored against the same labels.")

    def ingest_notes(self, prediction_set: PredictionSet) -> list[str]:
        """What the user should know about a set just ingested: a production batch without the sensitive
        columns the version's eval set judges fairness by (its label-free fairness goes unmeasured) or with a
        sensitive column of one group (the same), a batch or eval set without some of the reference set's
        features (drift counts them as drifted), and a file ingested before as another set of the same split
        (both are kept)."""
        from evaluation.sources import single_groups
        ps = prediction_set
        single = single_groups(self.prediction_set_path(ps), ps.sensitive) if ps.split == "production" else {}

        def unit(conn: duckdb.DuckDBPyConnection) -> list[str]:
            self._authorize(conn, Action.VIEW)
            notes = []
            eval_set = registry.latest_prediction_set(conn, ps.model, ps.version, "eval")
            left_out = [c for c in (eval_set.sensitive if eval_set else []) if c not in ps.sensitive]
            if ps.split == "production" and left_out:
                present = [c for c in left_out if c in ps.features]  # kept: every column not named otherwise
                remedy = (f"ingest it again with --sensitive {','.join(present)} to measure them" if present
                          else "the file holds none of those columns")
                notes.append(f"the version's eval set judges fairness by {', '.join(left_out)}, which this batch "
                             f"does not name with --sensitive: its selection rates per group and parity gaps go "
                             f"unmeasured ({remedy}).")
            notes += [f"column {column!r} holds one group in every row ({group!r}): its selection rates per group "
                      "and parity gaps go unmeasured (fairness compares at least two groups)."
                      for column, group in single.items()]
            reference = registry.latest_prediction_set(conn, ps.model, ps.version, "reference")
            absent = reference_columns_missing(reference, ps) if reference and ps.split in ("production", "eval") \
                else []
            if absent:
                notes.append(f"the version's reference set has {', '.join(absent)}, which this "
                             f"{'batch' if ps.split == 'production' else 'set'} lacks: drift counts "
                             f"{'it as a drifted column' if len(absent) == 1 else 'them as drifted columns'}.")
            same = [other for other in registry.list_prediction_sets(conn, ps.model, ps.version)
                    if other.id != ps.id and other.split == ps.split and other.source_sha256 == ps.source_sha256]
            if same:
                notes.append(f"the same file was ingested before as {', '.join(o.id for o in same)} ({ps.split}); "
                             f"{'both' if len(same) == 1 else f'all {len(same) + 1}'} sets are kept.")
            return notes

        return self._run(unit)

    def _stage_prediction_file(self, file: Path, roles: ColumnRoles, *, delimiter: str = ",",
                               label_optional: bool = False, judged_for_fairness: bool = False,
                               check: Callable[[Path, PreparedFile], None] | None = None) -> PreparedFile:
        """Validate the file and store its normalised Parquet by sha256 (no record yet); `check(normalised
        file, prepared)`, where given, may refuse it before anything is stored."""
        from governance.ingest import prepare_prediction_file
        scratch = self.artifacts.scratch_path(".parquet")
        try:
            prepared = prepare_prediction_file(Path(file), roles, scratch, delimiter=delimiter,
                                               label_optional=label_optional, judged_for_fairness=judged_for_fairness)
            if check is not None:
                check(scratch, prepared)
            self.artifacts.adopt(scratch, prepared.sha256)
        finally:
            self.artifacts.discard(scratch)
        return prepared

    def _record_prediction_set(self, conn: duckdb.DuckDBPyConnection, model: str, version: str, split: str,
                               when: datetime | None, roles: ColumnRoles, prepared: PreparedFile) -> PredictionSet:
        return self._insert_prediction_set(conn, prepared, _new_prediction_set(model, version, split, when, roles,
                                                                               prepared, self.actor or ""))

    def _insert_prediction_set(self, conn: duckdb.DuckDBPyConnection, prepared: PreparedFile,
                               prediction_set: PredictionSet) -> PredictionSet:
        """Record a prediction set whose Parquet file is already stored (in the caller's unit)."""
        user = self._authorize(conn, Action.INGEST)
        _require_version(conn, prediction_set.model, prediction_set.version)
        registry.insert_dataset(
            conn, Dataset(prepared.sha256, "parquet", prepared.row_count, prepared.columns, prepared.source_name),
            created_at=_now(),
        )
        newest = registry.newest_prediction_set_time(conn, prediction_set.model, prediction_set.version)
        prediction_set = replace(prediction_set, created_by=user.name,
                                 created_at=after(newest, prediction_set.created_at))
        registry.insert_prediction_set(conn, prediction_set)
        self._log(conn, "predictions.ingest", f"prediction_set:{prediction_set.id}", prediction_set.to_dict())
        return prediction_set

    def prediction_set_path(self, prediction_set: PredictionSet | str) -> Path:
        """The Parquet file holding a prediction set's rows (for the metric engine to query in place); the
        set given as its record or its id (`ps-…`)."""
        if isinstance(prediction_set, str):
            set_id = prediction_set
            found = self._read(Action.VIEW, lambda conn: registry.get_prediction_set(conn, set_id))
            if found is None:
                raise NotFound(f"prediction set {set_id!r} does not exist; `govern version show MODEL VERSION` lists "
                               "a version's sets.")
            prediction_set = found
        return self.artifacts.open_path(prediction_set.dataset_sha256)


def _check_new_version(conn: duckdb.DuckDBPyConnection, model: str, version: str, parent: str | None) -> None:
    if registry.get_version(conn, model, version) is not None:
        raise Conflict(f"version {version!r} of model {model!r} is already registered.")
    if parent is not None and registry.get_version(conn, model, parent) is None:
        raise NotFound(f"parent version {parent!r} of model {model!r} is not registered.")


def reference_columns_missing(reference: PredictionSet, current: PredictionSet) -> list[str]:
    """The reference's feature and sensitive columns that `current` does not hold at all: drift counts them as
    drifted, since a batch that leaves features out must not look as if less had drifted."""
    held = {*current.features, *current.sensitive, current.score_column, current.label_column, current.id_column}
    return [c for c in dict.fromkeys([*reference.features, *reference.sensitive]) if c not in held]
