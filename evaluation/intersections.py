"""Intersections of sensitive columns (sex*race), judged like a column of their own: their names and the
SQL of their groups. Light on purpose: ingest and the review sampler use it without the metric engine."""

from __future__ import annotations

from typing import Sequence

from evaluation.sources import quote

INTERSECTION_SEPARATOR = " & "


def intersection_name(parts: Sequence[str]) -> str:
    """The feature name of an intersection: its columns joined by '*' (sex*race)."""
    return "*".join(parts)


def intersection_sql(parts: Sequence[str]) -> str:
    """SQL for an intersection's group (its columns' values joined by ' & '); empty when any part is."""
    nulls = " OR ".join(f"{quote(p)} IS NULL" for p in parts)
    values = ", ".join(f"CAST({quote(p)} AS VARCHAR)" for p in parts)
    return f"CASE WHEN {nulls} THEN NULL ELSE concat_ws('{INTERSECTION_SEPARATOR}', {values}) END"
