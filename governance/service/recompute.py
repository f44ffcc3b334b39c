"""Effective challenge: a stored evaluation recomputed with the reference libraries, the agreement logged."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from governance.errors import InvalidInput, NotAllowed, NotFound
from governance.records import Evaluation, PredictionSet
from governance.roles import PERMISSIONS, Action
from governance.service.base import _require_version
from governance.service.evaluations import EvaluationActions, require_evaluation
from governance.store import audit_log, evaluations, registry

if TYPE_CHECKING:
    from governance.recompute import Recomputation

RECOMPUTE_ACTION = "version.recompute"
# Those who challenge a number (auditors, validators) and those who made it (engineers) may recompute it.
_MAY_RECOMPUTE = PERMISSIONS[Action.AUDIT] | PERMISSIONS[Action.EVALUATE]


class RecomputeActions(EvaluationActions):

    def recompute(self, *, model: str, version: str, evaluation: str | None = None) -> Recomputation:
        """Recompute the version's latest evaluation (or `evaluation`, by id) with scikit-learn, torchmetrics,
        fairlearn and Evidently from its stored prediction set, compare every stored record, and log the
        agreement (`version.recompute`: the largest relative difference per family and each record that
        differs by more than 1e-6). Auditors, engineers and admins. Returns the verdict; a disagreement is a
        verdict (`agrees` false), not an error. InvalidInput when the reference libraries are missing."""
        from governance.recompute import compare, library_versions, load_oracles, reference_values

        def plan(conn: duckdb.DuckDBPyConnection) -> tuple[Evaluation, list[dict[str, Any]], PredictionSet,
                                                           PredictionSet | None]:
            self._authorize_recompute(conn)
            found = _evaluation(conn, model, version, evaluation)
            current = registry.get_prediction_set(conn, found.prediction_set_id)
            reference = registry.get_prediction_set(conn, found.reference_set_id) if found.reference_set_id else None
            if current is None:
                raise NotFound(f"the prediction set {found.prediction_set_id} of evaluation {found.id} is missing.")
            if not found.params.get("label") or not current.label_column:
                raise InvalidInput(f"evaluation {found.id} was made without labels (a production batch awaiting its "
                                   "outcomes); the reference libraries recompute labelled evaluations only.")
            return found, evaluations.metric_set(conn, found).to_list(), current, reference

        found, records, current, reference = self._run(plan)
        oracles = load_oracles()
        import pyarrow.parquet as pq

        current_frame = pq.read_table(self.prediction_set_path(current)).to_pandas()
        reference_frame = None
        if reference is not None:
            table = self._reference_as(current, reference)
            reference_frame = (pq.read_table(table) if isinstance(table, Path) else table).to_pandas()
        expected = reference_values(oracles, current_frame, reference_frame, found.params)
        families, mismatches = compare(records, expected)
        from evaluation import MetricSet
        intact = MetricSet.from_dicts(records).sha256() == found.records_sha256

        from governance.recompute import TOLERANCE, Recomputation
        result = Recomputation(model=model, version=version, evaluation=found.id, records_sha256=found.records_sha256,
                               tolerance=TOLERANCE, agrees=not mismatches and intact, families=families,
                               mismatches=mismatches, libraries=library_versions(), records_intact=intact)

        def record(conn: duckdb.DuckDBPyConnection) -> Recomputation:
            self._authorize_recompute(conn)
            payload = result.to_dict()
            payload.pop("seq"), payload.pop("hash")
            payload["mismatches"] = payload["mismatches"][:50]
            payload["mismatch_count"] = len(mismatches)
            payload["prediction_set"], payload["reference_set"] = current.id, reference.id if reference else None
            self._log(conn, RECOMPUTE_ACTION, f"version:{model}/{version}", payload)
            seq, digest, _ = self._appended[-1]
            return dataclasses.replace(result, seq=seq, hash=digest)

        return self._run(record)

    def latest_recomputation(self, *, model: str, version: str) -> dict[str, Any] | None:
        """The payload (plus seq and hash) of the newest `version.recompute` event of the version, if any."""
        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            return latest_recompute_event(conn, model, version)

        return self._run(unit)

    def _authorize_recompute(self, conn: duckdb.DuckDBPyConnection) -> None:
        user = self._identify(conn, Action.AUDIT)
        if user.role not in _MAY_RECOMPUTE:
            raise NotAllowed(f"{user.name} is a {user.role.value}: recomputing an evaluation is for auditors, "
                             "engineers and admins.")


def latest_recompute_event(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> dict[str, Any] | None:
    import json
    _, events = audit_log.filter_events(conn, model=model, actor=None, action=RECOMPUTE_ACTION, since=None,
                                        until=None, limit=100_000)
    for event in events:  # newest first
        if event.entity == f"version:{model}/{version}":
            return {**json.loads(event.payload), "seq": event.seq, "hash": event.hash, "ts": event.ts}
    return None


def _evaluation(conn: duckdb.DuckDBPyConnection, model: str, version: str, evaluation: str | None) -> Evaluation:
    if evaluation is None:
        return require_evaluation(conn, model, version)
    _require_version(conn, model, version)
    for found in evaluations.list_evaluations(conn, model, version):
        if found.id == evaluation:
            return found
    raise NotFound(f"{model} version {version} has no evaluation {evaluation!r}; `govern version show "
                   f"{model} {version}` lists its prediction sets.")
