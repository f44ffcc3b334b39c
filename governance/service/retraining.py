"""The retraining a job runs: the parent's data with reviewers' corrections folded in, a search aimed at the
binding policy, and the new version published whole (predictions, evaluation, gate) or not at all.

`Retraining` is handed the service actions it calls, so what a job depends on is named, not inherited."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Callable

import duckdb

from governance.errors import InvalidInput
from governance.records import Evaluation, GateRecord, Job, PredictionSet, Version
from governance.service.base import ServiceBase, _now
from governance.service.evaluations import EvaluationActions
from governance.service.gates import GateActions, GateOutcome
from governance.service.registry import RegistryActions
from governance.service.reviews import ReviewActions
from governance.service.training import EpochCallback, TrainingActions
from governance.store import evaluations, gates, jobs, registry

if TYPE_CHECKING:
    import pandas as pd

    from evaluation import MetricSet
    from governance.aim import Aim
    from policies import LoadedPolicy
    from policies.decision import RuleResult
    from training.trainer import TrainedModel

FEEDBACK_WEIGHT = 2.0
EVAL_RESAMPLES = 200  # bootstrap resamples of a retrained version's evaluation, as `govern evaluate`


class LeaseLost(Exception):
    """The worker's lease on the job lapsed and another worker took it: this one must not publish."""


class Retraining:
    def __init__(self, *, base: ServiceBase, registry: RegistryActions, training: TrainingActions,
                 evaluations: EvaluationActions, gates: GateActions, reviews: ReviewActions) -> None:
        self.base = base  # units of work, audit log, artifacts
        self.registry = registry
        self.training = training
        self.evaluations = evaluations
        self.gates = gates
        self.reviews = reviews

    def retrain(self, job: Job, *, worker: str | None = None, progress: EpochCallback | None = None,
                report: Callable[[str], None] = lambda line: None) -> tuple[Version, GateOutcome]:
        """Train the job's new version: the parent's data and split, reviewers' corrections folded in
        (corrected rows join the training rows, upweighted), a search over the job's strategies and
        their strength judged against the model's binding policy on the held-out validation and
        calibration splits (see
        training.search). Then, in one unit of work, the version is registered with its predictions,
        evaluated against the parent's reference, gated, and the job finished: a retrained version
        appears whole or not at all. With `worker`, the job must still be leased to it then."""
        import numpy as np

        from governance.service.training import ROW_ID, read_table, split_rows
        from training.search import search
        parent = self.training.load_trained(model=job.model, version=job.version)
        meta = parent.meta
        detail = self.registry.show_version(model=job.model, version=job.version)
        if detail.version.training_data_sha256 is None:  # registered with a govern artifact, not trained here
            raise InvalidInput(f"{job.model} version {job.version} has no training data on record, so it cannot be "
                               "retrained here.")
        data_path = self.base.artifacts.open_path(detail.version.training_data_sha256)
        frame = read_table(data_path)
        train_rows, eval_rows = split_rows(len(frame), meta["eval_fraction"], meta["split_seed"])
        feedback = self.reviews.build_feedback(model=job.model)
        # a correction names a row of the table its version was trained on: only versions trained on this one
        sha = detail.version.training_data_sha256
        same_table = self.base._run(lambda conn: {v.version for v in registry.list_versions(conn, job.model)
                                                  if v.training_data_sha256 == sha})
        corrections = _positions(self._corrections(feedback.sha256, same_table), frame, meta)
        frame[ROW_ID] = np.arange(len(frame))
        weights = np.ones(len(frame))
        corrected_rows = np.array(sorted(r for r in corrections if 0 <= r < len(frame)), dtype=np.int64)
        if len(corrected_rows):
            frame.loc[corrected_rows, meta["label"]] = [corrections[r] for r in corrected_rows]
            weights[corrected_rows] = FEEDBACK_WEIGHT
            train_rows = np.union1d(train_rows, corrected_rows)
            eval_rows = np.setdiff1d(eval_rows, corrected_rows)
        # The parent's own strategies stay: recalibrating a fairness-penalised parent must not drop the penalty.
        strategies = tuple(dict.fromkeys([*parent.config.strategies, *job.strategies]))
        config = replace(parent.config, strategies=strategies, sensitive=tuple(meta["sensitive"]))
        aim = self._aim(job, meta)
        report(f"  searching {'+'.join(strategies)} against {aim.policy_name}: blocking rules "
               f"{', '.join(aim.rule_ids) or 'none that a model can change'}")
        found = search(frame.iloc[train_rows], label=meta["label"], features=meta["features"], config=config,
                       judge=aim.judge, offsets_for=aim.offsets_for,
                       threshold=aim.threshold, sample_weights=weights[train_rows], on_epoch=progress, report=report)
        trained, chosen = found.model, found.chosen
        trained.meta = meta
        verdict = "passes with margin" if chosen.robust else "passes" if chosen.passes else "closest to passing"
        report(f"  chosen: {chosen.strategy} ({verdict} on the held-out rows)")
        candidates = [c.to_dict() for c in found.candidates]
        lineage = {"job": job.id, "gate": job.gate_decision_id, "failing_rules": job.failing_rules,
                   "strategies": list(strategies),
                   "feedback": {"version": feedback.version, "sha256": feedback.sha256,
                                "corrections": feedback.corrections},
                   "corrections_applied": int(len(corrected_rows)), "config": asdict(trained.config),
                   "seed": config.seed, "search": {"chosen": chosen.to_dict(), "candidates": len(candidates)}}
        # drift against the new version's own reference rows (a sample of its training rows, with its scores), as
        # `govern evaluate` measures it: against its parent's, the score "drifted" by the change of model (PSI 5.9
        # where `evaluate` then found 0.1), and evaluating again was other evidence
        parent_reference = self.base._run(
            lambda conn: registry.latest_prediction_set(conn, job.model, job.version, "reference")
            or registry.latest_prediction_set(conn, job.model, job.version, "eval"))
        outcome: list[GateOutcome] = []
        origin = self._origin_model(job)

        def measure(sets: dict[str, PredictionSet]) -> dict[str, MetricSet]:
            # the challenger (and the origin on the same rows) as `govern evaluate` measures a challenger: same
            # options, no drift
            reference = sets.get("reference", parent_reference)
            return {split: self.evaluations._compute(found, reference if split == "eval" else None,
                                                     resamples=EVAL_RESAMPLES, seed=0, threshold=aim.threshold)
                    for split, found in sets.items() if split != "reference"}

        def settle(conn: duckdb.DuckDBPyConnection, version: Version, sets: dict[str, PredictionSet],
                   measured: dict[str, MetricSet]) -> None:
            if worker is not None:
                state = jobs.job_state(conn, job.id)
                if state is None or state["lease_owner"] != worker:
                    raise LeaseLost(f"worker {worker} lost the lease on job {job.id} before publishing")
            for split, metric_set in measured.items():
                evaluation = self.evaluations._new_evaluation(
                    job.model, version.version, sets[split],
                    sets.get("reference", parent_reference) if split == "eval" else None, metric_set)
                self.evaluations._insert_evaluation(conn, evaluation, metric_set)
            # before the gate: an escalation quotes them
            jobs.set_job_search(conn, job.id, {"policy": aim.policy_name, "rules": aim.bounds(),
                                                "candidates": candidates})
            outcome.append(self.gates._gate_within(conn, job.model, version.version, sets["eval"]))
            jobs.finish_job(conn, job.id, "succeeded", _now(), result_version=version.version)
            self.base._log(conn, "job.succeed", f"job:{job.id}", {"error": None, "version": version.version,
                                                             "chosen": chosen.strategy,
                                                             "candidates": len(candidates)})

        result = self.training._publish(model=job.model, version=None, frame=frame, train_rows=train_rows,
                               eval_rows=eval_rows, trained=trained, data=data_path, parent=job.version,
                               lineage=lineage, corrections=int(len(corrected_rows)), weights=weights,
                               measure=measure, settle=settle, origin=origin)
        return result.version, outcome[-1]

    def _origin_model(self, job: Job) -> tuple[str, TrainedModel] | None:
        """The version the job's loop started from (the nearest ancestor no job made) and its model, to score
        the new version's eval rows: a retrain's cost is judged on the rows the new version was judged on."""
        origin = self.base._run(lambda conn: registry.loop_origin(conn, job.model, job.version))
        if origin is None:
            return None
        try:
            return origin, self.training._trained_artifact(job.model, origin, "scored")
        except InvalidInput:  # not a model govern trained: its own evaluation is the baseline, as before
            return None

    def _aim(self, job: Job, meta: dict[str, Any]) -> Aim:
        """What the search judges candidates by: the blocking metric rules of the model's binding policy
        that a model can change (not drift, approvals or open reviews), on the sensitive columns the
        model was trained with, at the threshold the parent was evaluated with."""
        from governance.aim import Aim
        from policies.schema import MetricRule
        def read(conn: duckdb.DuckDBPyConnection) -> tuple[
                LoadedPolicy, Evaluation | None, dict[str, tuple[str, MetricSet] | None], GateRecord | None]:
            loaded = self.gates._binding(conn, job.model, None)
            parent_eval = evaluations.latest_evaluation(conn, job.model, job.version)
            # the parent's baselines: the new version (and its own challenger) does not exist yet; its
            # parent is the job's version
            baselines = {rule.baseline: self.gates._origin(conn, job.model, job.version)
                         if rule.baseline == "origin" else
                         self.gates._baseline(conn, job.model, rule.baseline, job.version)
                         for rule in loaded.policy.rules
                         if isinstance(rule, MetricRule) and rule.max_regression is not None}
            return loaded, parent_eval, baselines, gates.get_gate(conn, job.gate_decision_id)

        loaded, parent_eval, baselines, queued_by = self.base._run(read)
        threshold = float((parent_eval.params if parent_eval else {}).get("threshold", 0.5))
        # The columns whose groups failed the flagged rules: where group offsets are worth trying.
        failing = {column for result in (queued_by.decision.results if queued_by else ())
                   if result.rule_id in job.failing_rules for column in _failing_columns(result)}
        return Aim.of(loaded, baselines, label=meta["label"], sensitive=list(meta["sensitive"]), threshold=threshold,
                      flagged=job.failing_rules, failing_columns=sorted(failing),
                      eval_rows=(parent_eval.params or {}).get("rows") if parent_eval else None,
                      intersections=meta.get("intersections", ()))

    def _corrections(self, sha256: str, versions: set[str]) -> dict[str, int]:
        """row id (as text) → corrected label, from a feedback dataset's corrections of `versions`' rows."""
        import pandas as pd
        return _corrections_of(pd.read_parquet(self.base.artifacts.open_path(sha256)), versions)


def _corrections_of(feedback: pd.DataFrame, versions: set[str]) -> dict[str, int]:
    """row id → corrected label for the feedback rows of `versions` (corrections of other tables' rows, a
    model's other training sets, are not this table's: a correction of one table's row 381 was applied to
    another table's row 381)."""
    mine = feedback[feedback["version"].astype(str).isin(versions)]
    return {str(i): int(label) for i, label in zip(mine["id"], mine["corrected_label"])}


def _positions(corrections: dict[str, int], frame: pd.DataFrame, meta: dict[str, Any]) -> dict[int, int]:
    """Corrections by position in the training file. A version's row ids are those positions, except for
    versions trained before govern always used them from a table with its own `row_id` column: their ids
    are that column's values, looked up here (ids the table does not hold are left out)."""
    from governance.service.training import ROW_ID
    if ROW_ID in frame.columns and meta.get("row_id") != "position":
        where = {str(value): position for position, value in enumerate(frame[ROW_ID].tolist())}
        return {where[i]: label for i, label in corrections.items() if i in where}
    return {int(i): label for i, label in corrections.items() if i.isdigit()}


def _failing_columns(result: RuleResult) -> list[str]:
    """The sensitive columns a stored rule result failed on (decisions stored before `failing` existed
    name them only as "feature=group" or "feature" in failing_groups)."""
    if result.failing:
        return [f["feature"] for f in result.failing if f.get("feature")]
    return [name.split("=", 1)[0] for name in result.failing_groups]
