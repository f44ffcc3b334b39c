"""Evaluations: run the metric engine on a version's predictions and keep the records."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import duckdb

from governance.errors import Conflict, InvalidInput, NotFound
from governance.limits import max_groups
from governance.records import (
    Comparison,
    DriftPoint,
    Evaluation,
    ItemStatus,
    PredictionSet,
    Priority,
    ReviewItem,
    TrendPoint,
)
from governance.roles import Action
from governance.service.base import _now, _present, _require_version, after
from governance.service.monitoring import (
    DEFAULT_MAX_ECE,
    MonitorOutcome,
    judge,
    monitoring_rules,
    queue_work,
    with_realised,
)
from governance.service.policies import PolicyActions
from governance.service.registry import RegistryActions, reference_columns_missing
from governance.store import evaluations, registry, review_items
from governance.store import labels as label_store

if TYPE_CHECKING:
    import pyarrow as pa

    from evaluation import MetricRecord, MetricSet
    from policies import LoadedPolicy

# What the overview charts across versions: discrimination, accuracy, calibration, fairness gaps.
HEADLINE = ("roc_auc", "accuracy", "ece", "demographic_parity_difference", "equalized_odds_difference")
# The source name of the challenger predictions `govern train` makes (a logistic regression).
TRAINED_CHALLENGER = "logistic-regression.parquet"


def version_threshold(conn: duckdb.DuckDBPyConnection, model: str, version: str, given: float | None) -> float:
    """`given`, or else the threshold the version's latest evaluation used (0.5 without one): a batch is
    judged at the threshold the version was judged at unless asked otherwise."""
    if given is not None:
        return given
    latest = evaluations.latest_evaluation(conn, model, version)
    return float((latest.params if latest else {}).get("threshold", 0.5))


def check_evaluation_options(*, resamples: int, seed: int, threshold: float) -> None:
    if not 0 <= resamples <= 10_000:
        raise InvalidInput(f"resamples must be between 0 and 10,000, not {resamples}.")
    if not 0 <= seed < 2**32:
        raise InvalidInput(f"the seed must be between 0 and 2^32-1, not {seed}.")
    if not 0 <= threshold <= 1:  # also refuses NaN
        raise InvalidInput(f"the threshold must be a score between 0 and 1, not {threshold}.")


class EvaluationActions(PolicyActions, RegistryActions):
    def evaluate(self, *, model: str, version: str, reference_split: str = "reference",
                 reference_version: str | None = None, resamples: int = 200, seed: int = 0,
                 threshold: float = 0.5) -> tuple[Evaluation, MetricSet]:
        """Evaluate the version's latest eval predictions, with drift against a reference.

        The reference is the version's own latest prediction set of `reference_split` (reference,
        or production to compare with what is live), or with `reference_version` that version's
        reference set (its eval set if it has none). Without
        any reference the evaluation has no drift records and says so in its params. Every call
        stores a new immutable evaluation; nothing is replaced.

        The version's latest challenger predictions, if it has any (`govern train` fits a logistic
        regression; `govern ingest --split challenger` registers another model's scores on the eval
        rows), are evaluated in the same call with the same options and no drift, and stored in the same
        unit: rules with `baseline: challenger` judge against that evaluation (`challenger_evaluation`
        reads it). So are a retrained version's origin scores (the version its loop started from, scored on
        this version's eval rows), which `baseline: origin` rules judge against. The returned evaluation is
        always the eval predictions'.
        """
        check_evaluation_options(resamples=resamples, seed=seed, threshold=threshold)

        def plan(conn: duckdb.DuckDBPyConnection) -> tuple[PredictionSet, PredictionSet | None, list[PredictionSet]]:
            self._authorize(conn, Action.EVALUATE)
            _require_version(conn, model, version)
            return (*eval_and_reference(conn), [found for split in ("challenger", "origin")
                                                if (found := registry.latest_prediction_set(conn, model, version,
                                                                                            split)) is not None])

        def eval_and_reference(conn: duckdb.DuckDBPyConnection) -> tuple[PredictionSet, PredictionSet | None]:
            current = registry.latest_prediction_set(conn, model, version, "eval")
            if current is None:
                raise NotFound(f"{model} version {version} has no eval predictions; ingest them with "
                               f"`govern ingest {model} {version} FILE --split eval`.")
            if reference_split not in ("reference", "production"):
                raise InvalidInput(f"reference split {reference_split!r} is not reference or production.")
            if reference_version is None:
                return current, registry.latest_prediction_set(conn, model, version, reference_split)
            _require_version(conn, model, reference_version)
            reference = (registry.latest_prediction_set(conn, model, reference_version, "reference")
                         or registry.latest_prediction_set(conn, model, reference_version, "eval"))
            if reference is None:
                raise NotFound(f"{model} version {reference_version} has no reference or eval predictions to "
                               "compare with.")
            return current, reference

        current, reference, alongside = self._run(plan)
        return self._evaluate_sets(model, version, current, reference, resamples=resamples, seed=seed,
                                   threshold=threshold, alongside=alongside)

    def monitor(self, *, model: str, version: str, batch: str | None = None, resamples: int = 0,
                threshold: float | None = None, max_ece: float = DEFAULT_MAX_ECE) -> MonitorOutcome:
        """Evaluate a production batch (the latest, or prediction set `batch`) against the version's
        reference set, and estimate its performance without labels (CBPE, fitted on the version's eval
        set; refused, with the reason in the evaluation's params, when the eval ECE is above `max_ece`).
        A batch without labels gets the label-free records exactly and the rest estimated; it never
        fails for lack of labels. When the batch shows dataset drift, a drift_alert review item is filed
        (once per batch); when it breaks a monitoring rule of the model's policy (a rule on an
        `estimated.*` metric), a monitor_alert item and, as the rule's on_fail says, a retraining job.
        `threshold` defaults to the one the version's latest evaluation used."""
        check_evaluation_options(resamples=resamples, seed=0, threshold=0.5 if threshold is None else threshold)
        if not 0 < max_ece <= 1:
            raise InvalidInput(f"--max-ece must lie in (0, 1], not {max_ece}.")

        def plan(conn: duckdb.DuckDBPyConnection) -> tuple[PredictionSet, PredictionSet, PredictionSet | None,
                                                           LoadedPolicy | None, list[str], float]:
            self._authorize(conn, Action.EVALUATE)
            _require_version(conn, model, version)
            current = (registry.get_prediction_set(conn, batch) if batch
                       else registry.latest_prediction_set(conn, model, version, "production"))
            if current is None or current.model != model or current.version != version or current.split != "production":
                what = f"prediction set {batch!r}" if batch else "production batch"
                raise NotFound(f"{model} version {version} has no {what}; ingest batches with `--split production`.")
            reference = registry.latest_prediction_set(conn, model, version, "reference")
            if reference is None:
                raise NotFound(f"{model} version {version} has no reference set to measure drift against.")
            eval_set = registry.latest_prediction_set(conn, model, version, "eval")
            arrived = [a.dataset_sha256 for a in label_store.list_arrivals(conn, current.id)]
            return (current, reference, eval_set, monitoring_rules(self._assigned(conn, model).loaded), arrived,
                    version_threshold(conn, model, version, threshold))

        current, reference, eval_set, rules, arrived, threshold = self._run(plan)
        metric_set = self._compute(current, reference, resamples=resamples, seed=0, threshold=threshold)
        metric_set = self._with_estimates(metric_set, current, eval_set, threshold=threshold, max_ece=max_ece)
        # labels that arrived for the batch (`govern labels`) stay beside the estimates in its newest evaluation
        metric_set = with_realised(metric_set, current, self.prediction_set_path(current),
                                   [self.artifacts.open_path(sha) for sha in arrived], threshold=threshold)
        evaluation = self._new_evaluation(model, version, current, reference, metric_set)
        # a refused estimate (its reason in the params) leaves the monitoring rules nothing to judge
        decision = judge(rules, metric_set) if rules is not None and metric_set.select("estimated") else None
        drift = metric_set.find("drift", "dataset_drift")
        # The engine emits the share of drifted columns with every dataset_drift record.
        share = _present(metric_set.find("drift", "share_of_drifted_columns"), "share_of_drifted_columns") \
            if drift is not None and drift.value else None

        def record(conn: duckdb.DuckDBPyConnection) -> MonitorOutcome:
            stored = self._insert_evaluation(conn, evaluation, metric_set)
            user = self._authorize(conn, Action.EVALUATE)
            alert = self._drift_alert(conn, stored, current, share, user.name) if share is not None else None
            items: list[str] = []
            queued: list[str] = []
            if decision is not None and rules is not None:
                items, queued = queue_work(conn, rules, decision, stored, current, user.name, _now())
                self._log(conn, "monitor.judge", f"prediction_set:{current.id}", {
                    "evaluation": stored.id, "policy": rules.policy.name, "policy_sha256": rules.sha256,
                    "results": [{"rule": r.rule_id, "status": r.status, "judged": r.judged} for r in decision.results],
                    "review_items": items, "jobs": queued})
            return MonitorOutcome(stored, metric_set, alert, decision, items, queued)

        return self._run(record)

    def _drift_alert(self, conn: duckdb.DuckDBPyConnection, evaluation: Evaluation, current: PredictionSet,
                     share: MetricRecord, actor: str) -> str:
        evidence = {"evaluation": evaluation.id, "prediction_set": current.id,
                    "batch_time": current.batch_time.isoformat() if current.batch_time else None,
                    "share_of_drifted_columns": share.value, "drifted_columns": share.detail["drifted_columns"]}
        item = ReviewItem(f"ri-{uuid.uuid4().hex[:12]}", evaluation.model, evaluation.version, "drift_alert", None,
                          None, Priority.NORMAL, ItemStatus.OPEN, 1, evidence, _now(), actor)
        [item_id] = review_items.insert_items(conn, [(item, f"drift_alert:{current.id}")])
        self._log(conn, "review.drift_alert", f"review_item:{item_id}", evidence)
        return item_id

    def _with_estimates(self, metric_set: MetricSet, current: PredictionSet, eval_set: PredictionSet | None, *,
                        threshold: float, max_ece: float) -> MetricSet:
        """The batch's records plus its estimated ones (family estimated), or a note in the params saying
        why there are none (no eval set; the eval set too poorly calibrated)."""
        from evaluation import MetricInputError, MetricSet
        from evaluation.estimation import EstimationRefused, estimate
        note: dict[str, Any] = {"method": "CBPE", "max_ece": max_ece}
        records: list[MetricRecord] = []
        if eval_set is None or eval_set.label_column is None:
            note["refused"] = "the version has no eval set with labels to fit the estimate on"
        else:
            sensitive, intersections = _judged(current, self._fairness_unmeasured(current))
            try:
                records, calibration = estimate(
                    current=self.prediction_set_path(current), score=current.score_column,
                    reference=self.prediction_set_path(eval_set), reference_label=eval_set.label_column,
                    reference_score=eval_set.score_column, sensitive=sensitive,
                    intersections=intersections, threshold=threshold, max_ece=max_ece)
                note.update(eval_set=eval_set.id, eval_ece=calibration.ece)
            except EstimationRefused as exc:
                note.update(eval_set=eval_set.id, refused=str(exc))
            except MetricInputError as exc:
                note.update(eval_set=eval_set.id, refused=f"the batch cannot be estimated: {exc}")
        return MetricSet(metric_set.records + tuple(records), {**metric_set.params, "estimation": note})

    def _evaluate_sets(self, model: str, version: str, current: PredictionSet, reference: PredictionSet | None, *,
                       resamples: int, seed: int, threshold: float,
                       alongside: Sequence[PredictionSet] = ()) -> tuple[Evaluation, MetricSet]:
        """The eval set's evaluation, and with the same options and no drift those of the sets `alongside` (a
        challenger's scores, the loop's origin's) on the same rows, stored in one unit."""
        metric_set = self._compute(current, reference, resamples=resamples, seed=seed, threshold=threshold)
        pending = [(self._new_evaluation(model, version, current, reference, metric_set), metric_set)]
        for other in alongside:
            other_metrics = self._compute(other, None, resamples=resamples, seed=seed, threshold=threshold)
            pending.append((self._new_evaluation(model, version, other, None, other_metrics), other_metrics))

        stored = self._run(lambda conn: [self._insert_evaluation(conn, e, m) for e, m in pending])
        return stored[0], metric_set

    def _new_evaluation(self, model: str, version: str, current: PredictionSet, reference: PredictionSet | None,
                        metric_set: MetricSet) -> Evaluation:
        from evaluation import ENGINE_VERSION
        return Evaluation(
            id=f"ev-{uuid.uuid4().hex[:12]}", model=model, version=version, prediction_set_id=current.id,
            reference_set_id=reference.id if reference else None, engine=ENGINE_VERSION, params=metric_set.params,
            records_sha256=metric_set.sha256(), record_count=len(metric_set.records), created_at=_now(),
            created_by=self.actor or "",
        )

    def _insert_evaluation(self, conn: duckdb.DuckDBPyConnection, evaluation: Evaluation,
                           metric_set: MetricSet) -> Evaluation:
        """Store a computed evaluation and log it (inside the caller's unit of work)."""
        from evaluation import ENGINE_VERSION
        user = self._authorize(conn, Action.EVALUATE)
        newest = evaluations.newest_evaluation_time(conn, evaluation.model, evaluation.version)
        stored = Evaluation(**{**evaluation.__dict__, "created_by": user.name,
                               "created_at": after(newest, evaluation.created_at)})
        evaluations.insert_evaluation(conn, stored, metric_set)
        self._log(conn, "version.evaluate", f"version:{stored.model}/{stored.version}", {
            "evaluation": stored.id, "prediction_set": stored.prediction_set_id,
            "reference_set": stored.reference_set_id, "engine": ENGINE_VERSION, "records": stored.record_count,
            "records_sha256": stored.records_sha256,
        })
        return stored

    def _reference_as(self, current: PredictionSet, reference: PredictionSet) -> Path | pa.Table:
        """The reference set, its label and score columns under the current set's names: the roles were
        given at ingest, so `--label y` for one set and `--label outcome` for the other still compare."""
        path = self.prediction_set_path(reference)
        pairs = [(reference.score_column, current.score_column), (reference.label_column, current.label_column)]
        renames = {old: new for old, new in pairs if old is not None and new is not None and old != new}
        if not renames:
            return path
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        clashing = [c for c in table.column_names if c in renames.values() and c not in renames]
        table = table.drop_columns(clashing)  # a reference feature named like the current label gives way
        return table.rename_columns([renames.get(c, c) for c in table.column_names])

    def _compute(self, current: PredictionSet, reference: PredictionSet | None, *, resamples: int, seed: int,
                 threshold: float) -> MetricSet:
        from evaluation import MetricInputError, MetricSet, evaluate
        unmeasured = self._fairness_unmeasured(current)
        sensitive, intersections = _judged(current, unmeasured)
        features: tuple[str, ...] = ()
        skipped: list[str] = []
        undrifted: list[str] = []
        absent: list[str] = []
        if reference is not None:
            reference_columns = set(reference.features) | set(reference.sensitive) | {reference.score_column}
            reference_columns |= {reference.label_column} if reference.label_column else set()
            # a sensitive column of one group is not judged for fairness, but its drift is still measured
            features = tuple(f for f in (*current.features, *unmeasured) if f in reference_columns)
            skipped = [f for f in (*current.features, *current.sensitive) if f not in reference_columns]
            # a sensitive column the reference lacks is judged on the current rows alone, like a feature it lacks
            undrifted = [s for s in sensitive if s not in reference_columns]
            absent = reference_columns_missing(reference, current)
        try:
            metric_set = evaluate(
                current=self.prediction_set_path(current),
                reference=self._reference_as(current, reference) if reference else None,
                label=current.label_column, score=current.score_column, sensitive=sensitive,
                features=features, threshold=threshold, resamples=resamples, seed=seed, max_groups=max_groups(),
                intersections=intersections, probe=current.features, undrifted=undrifted, absent=absent,
            )
        except MetricInputError as exc:
            raise InvalidInput(str(exc)) from exc
        notes: dict[str, Any] = {}
        if reference is None:
            notes["drift"] = "no reference set: drift not computed"
        if skipped:
            notes["features_without_reference"] = skipped
        if unmeasured:
            notes["fairness_unmeasured"] = unmeasured
        if absent:
            notes["reference_columns_missing"] = absent
        return MetricSet(metric_set.records, {**metric_set.params, **notes})

    def _fairness_unmeasured(self, current: PredictionSet) -> dict[str, str]:
        """The sensitive columns of a production batch that hold a single group, each with why its fairness goes
        unmeasured. Ingest refuses such a column in an eval or challenger set, which the gate judges; a batch
        (one shop's day) may hold one group, and its drift and estimates are still worth measuring."""
        if current.split != "production" or not current.sensitive:
            return {}
        from evaluation.sources import single_groups
        return {column: f"the batch holds a single group ({group!r}); fairness compares at least two groups"
                for column, group in single_groups(self.prediction_set_path(current), current.sensitive).items()}

    def latest_evaluation(self, *, model: str, version: str) -> tuple[Evaluation, MetricSet]:
        """The version's most recent evaluation and its records; NotFound if it has none."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[Evaluation, MetricSet]:
            self._authorize(conn, Action.VIEW)
            found = require_evaluation(conn, model, version)
            return found, evaluations.metric_set(conn, found)

        return self._run(unit)

    def stored_evaluation(self, *, model: str, version: str,
                          evaluation_id: str | None = None) -> tuple[Evaluation, MetricSet]:
        """A stored evaluation of the version and its records, read, not made again: the latest of its eval
        predictions, or the one `evaluation_id` names (any of the version's: a challenger's, a batch's)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[Evaluation, MetricSet]:
            self._authorize(conn, Action.VIEW)
            if evaluation_id is None:
                latest = require_evaluation(conn, model, version)
                return latest, evaluations.metric_set(conn, latest)
            _require_version(conn, model, version)
            found = next((e for e in evaluations.list_evaluations(conn, model, version) if e.id == evaluation_id), None)
            if found is None:
                raise NotFound(f"{model} version {version} has no evaluation {evaluation_id!r}; `govern version "
                               f"metrics {model} {version}` prints its latest, and auditors and admins list every "
                               f"one with `govern audit list --model {model} --action version.evaluate`.")
            return found, evaluations.metric_set(conn, found)

        return self._run(unit)

    def challenger_evaluation(self, *, model: str, version: str) -> tuple[str, Evaluation, MetricSet] | None:
        """The label, evaluation and records `baseline: challenger` rules judge the version against; None
        when it has no evaluated challenger predictions."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[str, Evaluation, MetricSet] | None:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            found = latest_challenger(conn, model, version)
            return (*found, evaluations.metric_set(conn, found[1])) if found else None

        return self._run(unit)

    def list_evaluations(self, *, model: str, version: str) -> list[Evaluation]:
        return self._read(Action.VIEW, lambda conn: evaluations.list_evaluations(conn, model, version),
                          require=(model, version))

    def metric_trend(self, *, model: str, metrics: tuple[str, ...] = HEADLINE) -> list[TrendPoint]:
        """The overall `metrics` (with intervals) of every version's latest evaluation, oldest first."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[TrendPoint]:
            self._authorize(conn, Action.VIEW)
            if registry.get_model(conn, model) is None:
                raise NotFound(f"model {model!r} is not registered.")
            return [TrendPoint(*row) for row in evaluations.metric_trend(conn, model, list(metrics))]

        return self._run(unit)

    def drift_timeline(self, *, model: str, version: str) -> list[DriftPoint]:
        """Drift scores per feature and the share of drifted columns for every monitored production
        batch of the version, in batch order (`govern monitor` makes these)."""
        return self._read(Action.VIEW, lambda conn: [DriftPoint(*row) for row in
                                                     evaluations.drift_timeline(conn, model, version)],
                          require=(model, version))

    def compare_versions(self, *, model: str, a: str, b: str, alpha: float = 0.05) -> Comparison:
        """Every record both versions' latest evaluations share: a, b, b − a and whether the difference
        is significant at `alpha` (see evaluation.compare for the test and its assumptions), with the rows
        each evaluation read (a retrained version's eval set lacks the rows reviewers corrected)."""
        from evaluation.compare import compare
        if not 0 < alpha < 1:
            raise InvalidInput(f"alpha must lie strictly between 0 and 1, not {alpha}.")

        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[Evaluation, MetricSet, Evaluation, MetricSet]:
            self._authorize(conn, Action.VIEW)
            first, second = require_evaluation(conn, model, a), require_evaluation(conn, model, b)
            return first, evaluations.metric_set(conn, first), second, evaluations.metric_set(conn, second)

        first, first_metrics, second, second_metrics = self._run(unit)
        return Comparison(model, a, b, compare(first_metrics, second_metrics, alpha=alpha),
                          _rows(first), _rows(second), _threshold(first), _threshold(second))


def _rows(evaluation: Evaluation) -> int | None:
    rows = (evaluation.params or {}).get("rows")
    return int(rows) if isinstance(rows, int) else None


def _threshold(evaluation: Evaluation) -> float | None:
    threshold = (evaluation.params or {}).get("threshold")
    return float(threshold) if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) else None


def challenger_baseline(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> tuple[str, MetricSet] | None:
    """What a rule's `baseline: challenger` compares with: (label, records) of the latest evaluation of the
    version's latest challenger predictions; None when it has none or they are not evaluated yet."""
    found = latest_challenger(conn, model, version)
    return (found[0], evaluations.metric_set(conn, found[1])) if found else None


def latest_challenger(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> tuple[str, Evaluation] | None:
    """(label, evaluation) of the version's latest challenger predictions, if they are evaluated."""
    found = registry.latest_prediction_set(conn, model, version, "challenger")
    if found is None:
        return None
    evaluation = evaluations.latest_evaluation_of(conn, found.id)
    return (challenger_label(found), evaluation) if evaluation else None


def origin_source(version: str) -> str:
    """The file name an `origin` prediction set is registered under: the origin version's scores on a retrained
    version's eval rows."""
    return f"origin-version-{version}.parquet"


def origin_baseline(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> tuple[str, MetricSet] | None:
    """What a rule's `baseline: origin` compares a retrained version with: the origin version's model scored on
    this version's own eval rows (registered with it by the retraining job), if evaluated. Its origin's own
    evaluation covers other rows: the rows reviewers corrected move into training, and those sampled errors
    first are the hard ones, so that comparison had favoured the retrain (0.017 better, where on the same rows it
    was 0.012 worse)."""
    found = registry.latest_prediction_set(conn, model, version, "origin")
    evaluation = evaluations.latest_evaluation_of(conn, found.id) if found is not None else None
    if found is None or evaluation is None:
        return None
    # the version the job scored: where the loop through the job's version (this one's parent) started
    current = registry.get_version(conn, model, version)
    origin = registry.loop_origin(conn, model, current.parent_version if current is not None else None)
    return f"origin, version {origin}, on this version's eval rows", evaluations.metric_set(conn, evaluation)


def challenger_label(prediction_set: PredictionSet) -> str:
    """"challenger (logistic regression)" for the one `govern train` fits, else the ingested file's name."""
    source = prediction_set.source_name
    return f"challenger ({'logistic regression' if source == TRAINED_CHALLENGER else source})"


def require_evaluation(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Evaluation:
    """The version's latest evaluation of its eval predictions; NotFound, saying what to run, if none."""
    _require_version(conn, model, version)
    found = evaluations.latest_evaluation(conn, model, version)
    if found is None:
        raise NotFound(f"{model} version {version} has not been evaluated; run `govern evaluate {model} {version}`.")
    return found


def require_current_evaluation(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Evaluation:
    """`require_evaluation`, refused (Conflict) when eval predictions newer than the ones it judged were
    ingested since (or committed while it ran): a gate judges the version's latest eval data."""
    found = require_evaluation(conn, model, version)
    stale = newer_eval_set(conn, found)
    if stale is not None:
        raise Conflict(f"{model} version {version} has eval predictions ({stale}) newer than those its latest "
                       f"evaluation ({found.id}) judged ({found.prediction_set_id}); run `govern evaluate {model} "
                       f"{version}` first.")
    return found


def newer_eval_set(conn: duckdb.DuckDBPyConnection, evaluation: Evaluation) -> str | None:
    """The id of the version's latest eval prediction set when it is not the one `evaluation` judged."""
    newest = registry.latest_prediction_set(conn, evaluation.model, evaluation.version, "eval")
    return newest.id if newest is not None and newest.id != evaluation.prediction_set_id else None


def _judged(current: PredictionSet, unmeasured: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """The sensitive columns and intersections the set's groups can be judged by: all but the `unmeasured`
    columns (an intersection joining only such columns has a single group too)."""
    return ([c for c in current.sensitive if c not in unmeasured],
            [list(parts) for parts in current.intersections if not all(p in unmeasured for p in parts)])

