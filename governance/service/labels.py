"""Late labels: outcomes of a production batch arrive after its predictions, are joined by row id, and the
realised metrics are recorded next to the estimates the batch had without them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from governance.errors import Conflict, InvalidInput, NotFound
from governance.records import Dataset, EstimatePoint, Evaluation, LabelArrival, PredictionSet
from governance.roles import Action
from governance.service.base import _now, _require_version
from governance.service.evaluations import EvaluationActions
from governance.service.monitoring import DEFAULT_MAX_ECE, with_realised
from governance.store import evaluations, labels, registry

if TYPE_CHECKING:
    from evaluation import MetricSet
    from policies import LoadedPolicy

# estimated metric → (family, metric) of the realised record it is compared with
REALISED = {
    ("accuracy", False): ("performance", "accuracy"), ("precision", False): ("performance", "precision"),
    ("recall", False): ("performance", "recall"), ("f1", False): ("performance", "f1"),
    ("roc_auc", False): ("performance", "roc_auc"), ("true_positive_rate", False): ("performance", "recall"),
    ("accuracy", True): ("fairness", "accuracy"), ("recall", True): ("fairness", "true_positive_rate"),
    ("true_positive_rate", True): ("fairness", "true_positive_rate"),
    ("false_positive_rate", True): ("fairness", "false_positive_rate"),
    ("equalized_odds_difference", True): ("fairness", "equalized_odds_difference"),
    ("equal_opportunity_difference", True): ("fairness", "equal_opportunity_difference"),
}


@dataclass(frozen=True)
class LabelOutcome:
    """An arrival of labels and the batch's evaluation it made (estimates beside realised metrics)."""

    arrival: LabelArrival
    evaluation: Evaluation
    metrics: MetricSet
    batch_rows: int


class LabelActions(EvaluationActions):
    def labels(self, *, model: str, version: str, file: Path, batch: str, id_column: str, label: str,
               delimiter: str = ",", threshold: float | None = None,
               max_ece: float | None = None) -> LabelOutcome:
        """Record outcomes for production batch `batch` (ingested without labels, with --id): the file's
        `id_column` names the batch's rows, `label` their outcome (0/1). A file may label part of the batch
        (later files add more; rows labelled again with the same label are counted, not stored twice).
        The batch is then evaluated again: its label-free records and estimates as `monitor` makes them,
        and the realised metrics over its labelled rows beside them, at `threshold` (by default the one the
        version's latest evaluation used). `max_ece` defaults to the bound the batch's last evaluation
        estimated under (`monitor --max-ece`), else DEFAULT_MAX_ECE: re-evaluating at the default had
        dropped estimates a monitor had made under a looser bound.

        Raises InvalidInput naming every problem (unknown ids, changed labels, bad values), the store
        unchanged; Conflict when other labels for the batch were recorded meanwhile (run it again).
        """
        from evaluation.engine import evaluate  # noqa: F401  (fail here, not midway, if the engine is broken)
        from governance.ingest import prepare_label_file
        from governance.service.evaluations import check_evaluation_options, version_threshold
        check_evaluation_options(resamples=0, seed=0, threshold=0.5 if threshold is None else threshold)

        if max_ece is not None and not 0 < max_ece <= 1:
            raise InvalidInput(f"--max-ece must lie in (0, 1], not {max_ece}.")

        def plan(conn: duckdb.DuckDBPyConnection) -> tuple[PredictionSet, list[LabelArrival], PredictionSet | None,
                                                           PredictionSet | None, float, float]:
            self._authorize(conn, Action.INGEST)
            _require_version(conn, model, version)
            found = registry.get_prediction_set(conn, batch)
            if found is None or found.model != model or found.version != version or found.split != "production":
                raise NotFound(f"{model} version {version} has no production batch {batch!r}; `govern version show "
                               f"{model} {version}` lists its prediction sets.")
            if found.label_column is not None:
                raise InvalidInput(f"batch {batch} came with its labels (column {found.label_column!r}); late labels "
                                   "are for batches ingested without them.")
            if found.id_column is None:
                raise InvalidInput(f"batch {batch} was ingested without --id, so its rows cannot be matched to "
                                   "labels; ingest batches whose labels come later with --id COL.")
            return (found, labels.list_arrivals(conn, batch),
                    registry.latest_prediction_set(conn, model, version, "reference"),
                    registry.latest_prediction_set(conn, model, version, "eval"),
                    version_threshold(conn, model, version, threshold),
                    max_ece if max_ece is not None else _batch_max_ece(conn, batch))

        batch_set, earlier, reference, eval_set, threshold, bound = self._run(plan)
        earlier_files = [self.artifacts.open_path(a.dataset_sha256) for a in earlier]
        scratch = self.artifacts.scratch_path(".parquet")
        try:
            prepared = prepare_label_file(Path(file), id_column=id_column, label=label,
                                          batch=self.prediction_set_path(batch_set),
                                          batch_id_column=batch_set.id_column or "", earlier=earlier_files,
                                          scratch=scratch, batch_name=batch, delimiter=delimiter)
            # measured before the file is kept: a batch that cannot be evaluated leaves no artifact behind
            metric_set = self._with_realised(batch_set, reference, eval_set, [*earlier_files, scratch],
                                             threshold=threshold, max_ece=bound)
            self.artifacts.adopt(scratch, prepared.sha256)
        finally:
            self.artifacts.discard(scratch)
        evaluation = self._new_evaluation(model, version, batch_set, reference, metric_set)

        def record(conn: duckdb.DuckDBPyConnection) -> LabelOutcome:
            user = self._authorize(conn, Action.INGEST)
            if [a.id for a in labels.list_arrivals(conn, batch)] != [a.id for a in earlier]:
                raise Conflict(f"other labels for batch {batch} were recorded meanwhile; run the command again.")
            registry.insert_dataset(conn, Dataset(prepared.sha256, "parquet", prepared.new_labels,
                                                  {"row_id": "VARCHAR", "label": "TINYINT"}, prepared.source_name),
                                    created_at=_now())
            stored = self._insert_evaluation(conn, evaluation, metric_set)
            arrival = LabelArrival(f"la-{uuid.uuid4().hex[:12]}", batch, len(earlier) + 1, prepared.source_name,
                                   prepared.source_sha256, prepared.sha256, prepared.file_rows, prepared.new_labels,
                                   prepared.repeated, prepared.labelled_total, stored.id, _now(), user.name)
            labels.insert_arrival(conn, arrival)
            self._log(conn, "labels.arrive", f"prediction_set:{batch}",
                      {**arrival.to_dict(), "batch_rows": prepared.batch_rows})
            return LabelOutcome(arrival, stored, metric_set, prepared.batch_rows)

        return self._run(record)

    def _with_realised(self, batch: PredictionSet, reference: PredictionSet | None, eval_set: PredictionSet | None,
                       label_files: list[Path], *, threshold: float, max_ece: float) -> MetricSet:
        """The batch's records as `monitor` makes them, plus the realised ones over its labelled rows."""
        batch_records = self._compute(batch, reference, resamples=0, seed=0, threshold=threshold)
        batch_records = self._with_estimates(batch_records, batch, eval_set, threshold=threshold, max_ece=max_ece)
        return with_realised(batch_records, batch, self.prediction_set_path(batch), label_files, threshold=threshold)

    def label_arrivals(self, *, batch: str) -> list[LabelArrival]:
        return self._read(Action.VIEW, lambda conn: labels.list_arrivals(conn, batch))

    def estimate_timeline(self, *, model: str, version: str) -> list[EstimatePoint]:
        """Every estimated record of each monitored production batch (its latest evaluation), with the
        realised value where labels arrived, in batch order: NannyML's estimated-vs-realised chart."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[EstimatePoint]:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            return _pair(labels.estimate_rows(conn, model, version))

        return self._run(unit)

    def monitoring_bounds(self, *, model: str) -> list[MonitoringBound]:
        """The bounds of the monitoring rules (rules on estimated metrics) in the model's assigned pack."""
        return self._read(Action.VIEW, lambda conn: monitoring_bounds(self._assigned(conn, model).loaded),
                          require=model)


@dataclass(frozen=True)
class MonitoringBound:
    """A monitoring rule's bound on an estimated metric, as the chart draws it."""

    rule_id: str
    metric: str  # without the family: accuracy, equalized_odds_difference, ...
    feature: str | None
    group: str | None
    comparison: str  # <= or >=
    threshold: float


def monitoring_bounds(loaded: LoadedPolicy) -> list[MonitoringBound]:
    from policies.gate import is_monitoring_rule
    from policies.schema import MetricRule
    out = []
    for rule in loaded.policy.rules:
        if isinstance(rule, MetricRule) and is_monitoring_rule(rule):
            limit, comparison = (rule.max, "<=") if rule.max is not None else (rule.min, ">=")
            if limit is not None:
                out.append(MonitoringBound(rule.id, rule.metric.split(".", 1)[1], rule.feature, rule.group,
                                           comparison, limit))
    return out


def _pair(rows: list[tuple[Any, ...]]) -> list[EstimatePoint]:
    realised: dict[tuple[str, str, str, str | None, str | None], tuple[float | None, int]] = {}
    for ps, _, _, _, _, family, metric, feature, group, value, n, _, _ in rows:
        if family != "estimated":
            realised[(ps, family, metric, feature, group)] = (value, n)
    out = []
    for ps, batch_time, ingested, batch_rows, evaluation, family, metric, feature, group, value, _, low, high in rows:
        if family != "estimated":
            continue
        found = REALISED.get((metric, feature is not None))
        value_n = realised.get((ps, *found, feature, group)) if found else None
        out.append(EstimatePoint(ps, batch_time, ingested, evaluation, metric, feature, group, value, low, high,
                                 batch_rows, value_n[0] if value_n else None, value_n[1] if value_n else 0))
    return out


def _batch_max_ece(conn: duckdb.DuckDBPyConnection, batch: str) -> float:
    """The ECE bound the batch's latest evaluation estimated under, else DEFAULT_MAX_ECE."""
    found = evaluations.latest_evaluation_of(conn, batch)
    note = (found.params or {}).get("estimation") if found is not None else None
    bound = note.get("max_ece") if isinstance(note, dict) else None
    return float(bound) if isinstance(bound, (int, float)) and 0 < bound <= 1 else DEFAULT_MAX_ECE
