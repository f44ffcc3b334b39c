"""Policy packs (YAML), their schema and the release gate.

    from policies import resolve, run_gate
    decision = run_gate(policy=resolve("default"), metrics=metric_set)

`resolve` is how a pack is named anywhere: a shipped pack's name, a registered pack (given a lookup),
or a file.
"""

from policies.errors import PolicyInvalid
from policies.gate import GateDecision, ReviewState, RuleResult, run_gate
from policies.loader import PACKS_DIR, LoadedPolicy, PolicyNotFound, load_policy, parse_policy, resolve, shipped_packs

SCHEMA_PATH = PACKS_DIR / "schema.json"

__all__ = ["GateDecision", "LoadedPolicy", "PolicyInvalid", "PolicyNotFound", "ReviewState", "RuleResult",
           "load_policy", "parse_policy", "resolve", "run_gate", "shipped_packs", "PACKS_DIR", "SCHEMA_PATH"]
