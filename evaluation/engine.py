"""evaluate(): every metric record for one set of predictions, optionally against a reference."""

from __future__ import annotations

import time
from typing import Sequence

import duckdb

from evaluation import classification, fairness, sanity
from evaluation.bootstrap import UNSTABLE_BELOW, group_intervals, overall_intervals
from evaluation.drift import DriftColumn, drift_records
from evaluation.errors import MetricInputError
from evaluation.intersections import INTERSECTION_SEPARATOR, intersection_name, intersection_sql
from evaluation.records import ENGINE_VERSION, MetricRecord, MetricSet
from evaluation.sources import (
    Columns,
    Source,
    check_columns,
    check_groups,
    check_values,
    column_batches,
    narrowed,
    quote,
    register,
    rescanned_slowly,
)

HEADLINE = {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier_score", "ece", "mce"}
# What a batch without labels still has exactly: who is selected and how the scores spread, per group.
LABEL_FREE = {"count", "selection_rate", "scoring_rate", "impact_ratio", "scoring_impact_ratio",
              "demographic_parity_difference", "demographic_parity_ratio"}
_NO_LABEL = "__govern_no_label"  # a constant stand-in label: only the label-free records are kept


def evaluate(
    *,
    current: Source,
    label: str | None,
    score: str,
    reference: Source | None = None,
    sensitive: Sequence[str] = (),
    features: Sequence[str] = (),
    threshold: float = 0.5,
    resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    threads: int | None = None,
    max_groups: int = 1_000,
    intersections: Sequence[Sequence[str]] = (),
    probe: Sequence[str] = (),
    impact_min_share: float = fairness.IMPACT_MIN_SHARE,
    undrifted: Sequence[str] = (),
    absent: Sequence[str] = (),
) -> MetricSet:
    """Compute performance, calibration, fairness and (with a reference) drift records.

    `current` and `reference` are Parquet or CSV paths, pandas DataFrames or Arrow tables; the
    reference needs only the drift columns (and label and score, for label and prediction drift).
    Drift is computed for `features` and `sensitive` when a reference is given; asking for
    `features` without one is an error. `intersections` (e.g. [("sex", "race")]) are judged like
    sensitive columns, as the feature "sex*race" whose groups read "f & white". `probe` columns are
    checked for leakage (sanity.feature_auc: how well each alone separates the label). Impact ratios
    leave out groups under `impact_min_share` of the rows (NYC LL144's 2 %). `undrifted` sensitive columns
    (ones the reference lacks) are judged for fairness but not for drift; `absent` reference features the
    current data lacks count as drifted in the dataset share. With `label` None (a
    production batch whose outcomes are not known yet) only what needs no labels is computed: the
    selection rate, the label-free fairness records (LABEL_FREE) and drift of the features and the score.
    Raises MetricInputError naming the column and the problem.

    >>> metric_set = evaluate(current="eval.parquet", label="y", score="p", sensitive=["sex"])
    >>> metric_set.find("calibration", "ece").value
    """
    if not 0 <= threshold <= 1:
        raise MetricInputError(f"the threshold must lie in [0, 1], not {threshold}.")
    if resamples < 0:
        raise MetricInputError(f"the number of bootstrap resamples must be 0 or more, not {resamples}.")
    if not 0 < confidence < 1:
        raise MetricInputError(f"the confidence level must lie strictly between 0 and 1, not {confidence}.")
    if features and reference is None:
        raise MetricInputError("drift over features needs reference data: pass a reference (--reference FILE).")
    if not 0 <= impact_min_share < 1:
        raise MetricInputError(f"the impact ratios' minimum group share must lie in [0, 1), not {impact_min_share}.")
    intersections = list(dict.fromkeys(tuple(parts) for parts in intersections))
    for parts in intersections:
        if len(parts) < 2 or len(set(parts)) != len(parts):
            raise MetricInputError(f"an intersection needs two or more different columns, not {list(parts)}.")
    labelled = label is not None
    columns = Columns(label if label is not None else _NO_LABEL, score, tuple(sensitive), tuple(features))
    started = time.perf_counter()
    conn = duckdb.connect()
    try:
        if threads:
            conn.execute(f"SET threads = {int(threads)}")
        if labelled:
            current_types = register(conn, "cur", current, "current")
        else:
            current_types = register(conn, "cur_unlabelled", current, "current")
            conn.execute(f"CREATE VIEW cur AS SELECT *, CAST(0 AS TINYINT) AS {quote(_NO_LABEL)} FROM cur_unlabelled")
            current_types[_NO_LABEL] = "TINYINT"
        check_columns(current_types, columns, "current")
        n = check_values(conn, "cur", columns, "current")
        check_groups(conn, "cur", columns, max_groups)
        if labelled:
            records = _classification(conn, columns, threshold, resamples, seed, confidence)
        else:
            records = [classification.selection_record(conn, "cur", score, threshold)]
        view, judged = _with_intersections(conn, current_types, columns, intersections, max_groups)
        median = classification.median_score(conn, "cur", score)
        for offset, feature in enumerate(judged, start=1):
            found = _fairness(conn, view, columns, feature, threshold, median, resamples, seed + offset,
                              confidence, impact_min_share)
            records += found if labelled else [r for r in found if r.family == "fairness" and r.metric in LABEL_FREE]
        if labelled:
            copy = rescanned_slowly(current, current_types)
            for number, batch in enumerate(column_batches(_probed(current_types, columns, probe), n)):
                with narrowed(conn, "cur", [columns.label, *batch], f"probed_{number}", copy=copy) as view:
                    records += [sanity.feature_separation(conn, view, columns.label, column, current_types[column])
                                for column in batch]
        reference_rows = None
        if reference is not None:
            reference_types = register(conn, "ref", reference, "reference")
            drifted = tuple(c for c in columns.drift_columns if c not in undrifted)
            check_columns(reference_types, Columns(label, score, (), drifted), "reference", need_label_score=False)
            reference_rows = conn.execute("SELECT count(*) FROM ref").fetchone()[0]
            drift_columns = [DriftColumn(c, current_types[c], "sensitive" if c in columns.sensitive else "feature",
                                         reference_types[c]) for c in drifted]
            for name, role in ((score, "score"), (label, "label")):
                if name is not None and name in reference_types:
                    drift_columns.append(DriftColumn(name, current_types[name], role, reference_types[name]))

            def open_cursor() -> duckdb.DuckDBPyConnection:
                cursor = conn.cursor()
                register(cursor, "cur", current, "current")
                register(cursor, "ref", reference, "reference")
                return cursor

            sides = (("ref", reference, reference_types), ("cur", current, current_types))
            copied = [view for view, source, types in sides if rescanned_slowly(source, types)]
            records += drift_records(open_cursor, "ref", "cur", drift_columns, max(n, reference_rows), absent, copied)
    except duckdb.ConversionException as exc:  # a CSV value past the rows DuckDB sniffed its column's type from
        lines = str(exc).strip().splitlines()
        raise MetricInputError(f"the data cannot be read ({'; '.join(lines[:2])[:300]}): give the column's "
                               "values one type, or pass Parquet.") from exc
    finally:
        conn.close()
    params = {
        "engine": ENGINE_VERSION, "threshold": threshold, "resamples": resamples, "seed": seed,
        "confidence": confidence, "n_bins": classification.N_BINS, "rows": n, "reference_rows": reference_rows,
        "label": label, "score": score, "sensitive": list(sensitive), "features": list(features),
        "intersections": [list(parts) for parts in intersections], "impact_min_share": impact_min_share,
        "probed": list(_probed(current_types, columns, probe)) if labelled else [],
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not labelled:
        params["labels"] = "none: label-free records only (selection rates, parity of selection, drift)"
    return MetricSet(tuple(records), params)


def _with_interval(record: MetricRecord, interval: tuple[float, float] | None, note: str | None = None) -> MetricRecord:
    detail = dict(record.detail)
    if note:
        detail["ci_note"] = note
    if interval is None or record.value is None:
        return MetricRecord(record.family, record.metric, record.feature, record.group, record.value, record.n,
                            detail=detail)
    return MetricRecord(record.family, record.metric, record.feature, record.group, record.value, record.n,
                        interval[0], interval[1], detail)


def _unstable(n: int) -> str | None:
    return f"only {n} rows: the interval is not stable" if n < UNSTABLE_BELOW else None


def _classification(conn, columns: Columns, threshold: float, resamples: int, seed: int,
                    confidence: float) -> list[MetricRecord]:
    cells = classification.cells(conn, "cur", columns.label, columns.score, threshold)
    auc, auc_reason = classification.roc_auc(conn, "cur", columns.label, columns.score)
    records = classification.performance_records(cells, auc, auc_reason) + classification.calibration_records(cells)
    if not resamples:
        return records
    intervals = overall_intervals(cells, auc_exact=auc, resamples=resamples, seed=seed, confidence=confidence)
    n = int(cells["n"].sum())
    return [_with_interval(r, intervals.get(r.metric), _unstable(n)) if r.metric in HEADLINE and r.feature is None
            else r for r in records]


def _with_intersections(conn, types: dict[str, str], columns: Columns, intersections: list[tuple[str, ...]],
                        max_groups: int) -> tuple[str, list[str]]:
    """The view fairness reads (the current data plus a column per intersection) and the features it judges."""
    if not intersections:
        return "cur", list(columns.sensitive)
    missing = sorted({p for parts in intersections for p in parts if p not in types})
    if missing:
        raise MetricInputError(f"an intersection names {', '.join(map(repr, missing))}, which the current data "
                               "does not have.")
    intersections = list(dict.fromkeys(intersections))
    names = [intersection_name(parts) for parts in intersections]
    clashing = sorted({n for n in names if names.count(n) > 1})
    if clashing:
        raise MetricInputError(f"two intersections are both named {clashing[0]!r} (their columns' names hold '*'); "
                               "rename the columns.")
    taken = [n for n in names if n in types]
    if taken:
        raise MetricInputError(f"the data already has a column named {taken[0]!r}: an intersection's name would "
                               "hide it; rename the column.")
    separator = INTERSECTION_SEPARATOR
    for part in sorted({p for parts in intersections for p in parts}):
        found = conn.execute(f"SELECT count(*) FROM cur WHERE contains(CAST({quote(part)} AS VARCHAR), ?)",
                             [separator]).fetchone()[0]
        if found:
            raise MetricInputError(f"{found} values of {part!r} contain {separator!r}, which joins an intersection's "
                                   "values: two different groups could read the same; rename those values.")
    added = ", ".join(f"{intersection_sql(parts)} AS {quote(name)}" for parts, name in zip(intersections, names))
    conn.execute(f"CREATE OR REPLACE TEMP VIEW cur_intersections AS SELECT *, {added} FROM cur")
    check_groups(conn, "cur_intersections", Columns(columns.label, columns.score, tuple(names)), max_groups)
    return "cur_intersections", list(columns.sensitive) + [n for n in names if n not in columns.sensitive]


def _probed(types: dict[str, str], columns: Columns, probe: Sequence[str]) -> list[str]:
    """The probe columns the data has, less the label and score themselves."""
    return [c for c in dict.fromkeys(probe) if c in types and c not in (columns.label, columns.score)]


def _fairness(conn, view: str, columns: Columns, feature: str, threshold: float, median: float, resamples: int,
              seed: int, confidence: float, impact_min_share: float) -> list[MetricRecord]:
    cells = fairness.feature_cells(conn, view, columns.label, columns.score, threshold, feature, median)
    records = fairness.fairness_records(cells, feature, impact_min_share=impact_min_share)
    if not resamples:
        return records
    groups, counts = fairness.confusion_by_group(cells)
    sizes = counts.sum(axis=(1, 2))
    levels = fairness.evidence_levels(sizes)
    group_ci, parity_ci, level_ci = group_intervals(
        counts, resamples=resamples, seed=seed, confidence=confidence,
        eligible=fairness.impact_eligible(sizes, impact_min_share), levels=levels)
    index = {g: i for i, g in enumerate(groups)}
    smallest = int(sizes.min())
    result = []
    for r in records:
        if r.family != "fairness":
            result.append(r)
        elif r.group is None:
            note = f"the smallest group has {smallest} rows: the interval is not stable" \
                if smallest < UNSTABLE_BELOW else None
            evidence = [dict(level, ci_low=_finite(bounds[r.metric][0]), ci_high=_finite(bounds[r.metric][1]))
                        for level, bounds in zip(r.detail.get("evidence", []), level_ci)]
            with_levels = MetricRecord(r.family, r.metric, r.feature, r.group, r.value, r.n,
                                       detail={**r.detail, "evidence": evidence})
            result.append(_with_interval(with_levels, parity_ci[r.metric], note))
        elif r.metric == "count":
            result.append(r)
        else:
            lows, highs = group_ci[r.metric]
            i = index[r.group]
            result.append(_with_interval(r, (float(lows[i]), float(highs[i])), _unstable(r.n)))
    return result


def _finite(value: float) -> float | None:
    return float(value) if value == value and abs(value) != float("inf") else None
