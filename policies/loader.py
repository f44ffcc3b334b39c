"""Read a policy pack from YAML, validating every rule and naming the rule and line of each problem."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from pydantic import ValidationError

from policies.errors import PolicyInvalid
from policies.schema import RULE_KINDS, Policy, PolicyHeader, Rule

_TOP_KEYS = {"name", "version", "description", "rules"}
MAX_POLICY_BYTES = 1 << 20
PACKS_DIR = Path(__file__).parent
SCHEMA_PATH = PACKS_DIR / "schema.json"


class PolicyNotFound(PolicyInvalid):
    """A name or path that is neither a shipped pack, a registered pack nor a policy file."""


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy with the hash of its exact text and the line of each rule."""

    policy: Policy
    sha256: str
    text: str
    source: str
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, rule_id: str) -> int | None:
        return self.lines.get(rule_id)

    def with_rules(self, rules: list) -> "LoadedPolicy":
        """The same pack (name, version, sha256 of its text) judging only `rules`: what a retraining
        search or a benchmark asks of part of a policy. Never stored as a decision of the whole pack."""
        return LoadedPolicy(self.policy.model_copy(update={"rules": list(rules)}), self.sha256, self.text,
                            self.source, dict(self.lines))


def shipped_packs() -> dict[str, Path]:
    """The packs that ship with govern, by file stem (default, strict)."""
    return {path.stem: path for path in sorted(PACKS_DIR.glob("*.yaml"))}


def shipped_by_declared_name(name: str) -> "LoadedPolicy | None":
    """The shipped pack whose file declares `name` (strict-high-risk, the name a gate prints for `strict`)."""
    for path in shipped_packs().values():
        loaded = load_policy(path)
        if loaded.policy.name == name:
            return loaded
    return None


Registered = Callable[[str], "tuple[str, str] | None"]


def resolve(ref: str | Path | LoadedPolicy, *, registered: Registered | None = None) -> LoadedPolicy:
    """The validated pack that `ref` names, the one way every front-end and the service read a policy
    reference. In this order:

    1. a LoadedPolicy is itself;
    2. a shipped pack's name (default, strict), or the name its file declares, the one a gate prints
       (strict-high-risk for strict), always means the shipped pack, whatever file or registered pack shares
       the name (an admin's pack registered as strict-high-risk had taken the shipped pack's place);
    3. with `registered`, a registered pack's `NAME` or `NAME@VERSION` (text with no `/` that does not end
       in .yaml or .yml): `registered(ref)` returns the pack's (source, text), or None when there is none;
    4. else the YAML file at that path.

    The result's `source` says what was read ("default.yaml", "mine@2", "pack.yaml") and `text` is its
    exact text. Raises PolicyNotFound when nothing matches, PolicyInvalid (listing every problem) when the
    pack is not valid; `registered` may raise its own errors (a malformed @VERSION).

        resolve("default")            # the shipped default pack
        resolve("packs/mine.yaml")    # a file
    """
    if isinstance(ref, LoadedPolicy):
        return ref
    text = str(ref)
    shipped = shipped_packs()
    if text in shipped:
        return load_policy(shipped[text])
    declared = shipped_by_declared_name(text) if "/" not in text else None
    if declared is not None:
        return declared
    if registered is not None and "/" not in text and not text.endswith((".yaml", ".yml")):
        found = registered(text)
        if found is not None:
            source, body = found
            return parse_policy(body, source=source)
    if not Path(text).is_file():
        packs = f"a shipped pack ({', '.join(shipped)})"
        kinds = (f"a file, {packs} or a registered pack (`govern policy list`)" if registered is not None
                 else f"a file or {packs}")
        raise PolicyNotFound(f"no policy pack or file {text!r}: give {kinds}.")
    return load_policy(Path(text))


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load and validate the pack at `path`; raise PolicyInvalid listing every problem."""
    path = Path(path)
    if not path.exists():
        raise PolicyInvalid(f"policy {path} does not exist.")
    if not path.is_file():
        raise PolicyInvalid(f"policy {path} is not a regular file.")
    if path.stat().st_size > MAX_POLICY_BYTES:
        raise PolicyInvalid(f"policy {path} is over {MAX_POLICY_BYTES:,} bytes; a policy pack is a short YAML file.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyInvalid(f"cannot read policy {path}: {exc.strerror}.") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyInvalid(f"{path.name} is not UTF-8 text.") from exc
    return parse_policy(text, source=path.name)


def parse_policy(text: str, *, source: str = "policy") -> LoadedPolicy:
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyInvalid(f"{source} is over {MAX_POLICY_BYTES:,} characters; a policy pack is a short YAML file.")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        expanded = _expanded_size(node)
        data = yaml.safe_load(text) if expanded <= MAX_EXPANDED_VALUES else None
    except RecursionError as exc:
        raise PolicyInvalid(f"{source}: nested too deeply to be a policy.") from exc
    except ValueError as exc:  # an integer of thousands of digits, past Python's limit on reading one
        raise PolicyInvalid(f"{source}: a number in it is too long to read ({str(exc)[:120]}).") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PolicyInvalid(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from exc
    if expanded > MAX_EXPANDED_VALUES:
        raise PolicyInvalid(f"{source}: its aliases (*name) expand it to "
                            + ("a value that contains itself" if expanded == _CYCLE else
                               f"{expanded:,} values, more than the {MAX_EXPANDED_VALUES:,} a policy may hold")
                            + "; write the rules out.")
    if not isinstance(data, dict):
        raise PolicyInvalid(f"{source}: a policy is a mapping with name, version and rules.")
    problems: list[str] = repeated_keys(node) + _huge_numbers(node)
    if problems:  # the rules read may not be the rules written (a second `rules:` list wins): nothing more to say
        raise PolicyInvalid(f"{source} is not a valid policy ({len(problems)} problem{'s' * (len(problems) > 1)}):"
                            "\n  - " + "\n  - ".join(problems))
    try:  # the header's problems come with the rules' ones, not only once the rules parse
        PolicyHeader.model_validate({key: data[key] for key in _TOP_KEYS - {"rules"} if key in data})
    except ValidationError as exc:
        problems += [f"line {_key_line(node, str(e['loc'][0]))}: {_describe(e)}" for e in exc.errors()]
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        problems.append(f"line {_key_line(node, key)}: unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    rules_node = _child(node, "rules")
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        problems.append("rules: give a non-empty list of rules")
        rules = []
    parsed: list[Rule] = []
    lines: dict[str, int] = {}
    for index, rule in enumerate(rules):
        rule_node = rules_node.value[index] if rules_node is not None else None
        line = rule_node.start_mark.line + 1 if rule_node is not None else 0
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        label = f"rule {rule_id!r}" if rule_id else f"rule {index + 1}"
        if not isinstance(rule, dict):
            problems.append(f"{label} (line {line}): a rule is a mapping")
            continue
        kind = rule.get("kind", "metric")
        cls = RULE_KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            problems.append(f"{label} (line {line}): unknown kind {kind!r} (known: {', '.join(RULE_KINDS)})")
            continue
        try:
            parsed.append(cls.model_validate(rule))
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else None
                at = _key_line(rule_node, key) if key else line
                problems.append(f"{label} (line {at}): {_describe(error)}")
            continue
        if rule_id in lines:
            problems.append(f"{label} (line {line}): the id is used twice (first on line {lines[rule_id]})")
        lines[rule_id] = line
    if parsed and not problems and all(getattr(r, "metric", "").startswith("estimated.") for r in parsed):
        problems.append("every rule is a monitoring rule (estimated.*, judged on production batches), so a release "
                        "gate under this pack would judge nothing and pass; add a rule on the eval evidence (for "
                        "example calibration.ece)")
    policy = None
    if not problems:
        try:
            policy = Policy.model_validate({**data, "rules": parsed})
        except ValidationError as exc:
            problems += [f"line {_key_line(node, str(e['loc'][0]))}: {_describe(e)}" for e in exc.errors()]
    if problems:
        count = len(problems)
        raise PolicyInvalid(f"{source} is not a valid policy ({count} problem{'s' if count > 1 else ''}):\n  - "
                            + "\n  - ".join(problems))
    return LoadedPolicy(policy, hashlib.sha256(text.encode("utf-8")).hexdigest(), text, source, lines)


MAX_EXPANDED_VALUES = 200_000  # an 11,000-rule pack holds about 60,000; nine nested aliases of ten held 10**9
_CYCLE = 2**62  # the size given a node that contains itself (`&a [*a]`)


def _expanded_size(root: yaml.Node | None) -> int:
    """How many values the document holds once its aliases are expanded, counted on the composed nodes (an
    alias shares its anchor's node, so this stays cheap): 532 bytes of nested aliases ('billion laughs') held a
    billion values, and naming a rule's id took minutes and gigabytes before any check could refuse it."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = ([item for pair in node.value for item in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(_CYCLE, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:  # reached again inside itself
            return _CYCLE
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return _CYCLE
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _describe(error: dict) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def repeated_keys(root: yaml.Node | None) -> list[str]:
    """A key given twice in one mapping: YAML keeps the last value where a reader sees the first (`max: 0.1`
    then `max: 0.9` judged at 0.9). Merge keys (`<<`) aside, whose values explicit keys override."""
    problems: list[str] = []
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias shares its anchor's node
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                stack.append(value_node)
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    problems.append(f"line {line}: key {key_node.value!r} is given twice in one mapping (first on "
                                    f"line {first[key_node.value]}); give it once")
                else:
                    first[key_node.value] = line
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(problems, key=lambda problem: int(problem.split(":")[0].removeprefix("line ")))


LARGEST_NUMBER = 2**63 - 1  # no count, version or bound of a policy needs more; hex of 4,000 digits broke each gate


def _huge_numbers(root: yaml.Node | None) -> list[str]:
    """Whole numbers in the pack beyond LARGEST_NUMBER (in any notation YAML reads: 0x…, 1_000, …)."""
    problems: list[str] = []
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(value for pair in node.value for value in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            try:
                value = yaml.SafeLoader.construct_yaml_int(yaml.SafeLoader(""), node)
            except ValueError:
                value = LARGEST_NUMBER + 1
            if abs(value) > LARGEST_NUMBER:
                problems.append(f"line {node.start_mark.line + 1}: the number {node.value[:24]}… is larger than any "
                                f"policy needs (at most {LARGEST_NUMBER:,})")
    return problems


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    return None


def _key_line(node: yaml.Node | None, key: str | None) -> int:
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1
        return node.start_mark.line + 1
    return node.start_mark.line + 1 if node is not None else 0
