"""Policy packs (YAML), their schema and the release gate.

    from policies import resolve, run_gate
    decision = run_gate(policy=resolve("default"), metrics=metric_set)

`resolve` is how a pack is named anywhere: a shipped pack's name, a registered pack (given a lookup),
or a file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from policies.decision import GateDecision, ReviewState, RuleResult
from policies.errors import PolicyInvalid

if TYPE_CHECKING:
    from policies.gate import run_gate
    from policies.loader import (
        PACKS_DIR,
        SCHEMA_PATH,
        LoadedPolicy,
        PolicyNotFound,
        load_policy,
        parse_policy,
        resolve,
        shipped_packs,
    )

# The loader (YAML, pydantic) and the gate load on first use: reading a stored decision needs neither.
_LAZY = {"run_gate": "policies.gate", **dict.fromkeys(
    ("LoadedPolicy", "PolicyNotFound", "load_policy", "parse_policy", "resolve", "shipped_packs", "PACKS_DIR",
     "SCHEMA_PATH"), "policies.loader")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")

__all__ = ["GateDecision", "LoadedPolicy", "PolicyInvalid", "PolicyNotFound", "ReviewState", "RuleResult",
           "load_policy", "parse_policy", "resolve", "run_gate", "shipped_packs", "PACKS_DIR", "SCHEMA_PATH"]
