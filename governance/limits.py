"""Limits that keep one hostile or careless input from exhausting the machine; each can be raised.

| limit | default | environment variable |
|---|---|---|
| groups per sensitive column | 1,000 | GOVERN_MAX_GROUPS |
| bytes a compressed file may decompress to | 2 GiB | GOVERN_MAX_DECOMPRESSED_BYTES |
| bytes of one stored artifact (model, training data) | 2 GiB | GOVERN_MAX_ARTIFACT_BYTES |
"""

from __future__ import annotations

import os

from governance.errors import InvalidInput

GIB = 1 << 30


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 1:
        raise InvalidInput(f"{name} must be 1 or more, not {value}.")
    return value


def max_groups() -> int:
    return _limit("GOVERN_MAX_GROUPS", 1_000)


def max_columns() -> int:
    return _limit("GOVERN_MAX_COLUMNS", 10_000)


def max_decompressed_bytes() -> int:
    return _limit("GOVERN_MAX_DECOMPRESSED_BYTES", 2 * GIB)


def max_artifact_bytes() -> int:
    return _limit("GOVERN_MAX_ARTIFACT_BYTES", 2 * GIB)
