"""Policy packs (YAML), their schema and the release gate.

    from policies import load_policy, run_gate
    decision = run_gate(policy=load_policy("policies/default.yaml"), metrics=metric_set)
"""

from pathlib import Path

from policies.errors import PolicyInvalid
from policies.gate import GateDecision, ReviewState, RuleResult, run_gate
from policies.loader import LoadedPolicy, load_policy, parse_policy

PACKS_DIR = Path(__file__).parent
SCHEMA_PATH = PACKS_DIR / "schema.json"


def shipped_packs() -> dict[str, Path]:
    """The packs that ship with govern, by file stem (default, strict)."""
    return {path.stem: path for path in sorted(PACKS_DIR.glob("*.yaml"))}


__all__ = ["GateDecision", "LoadedPolicy", "PolicyInvalid", "ReviewState", "RuleResult", "load_policy",
           "parse_policy", "run_gate", "shipped_packs", "PACKS_DIR", "SCHEMA_PATH"]
