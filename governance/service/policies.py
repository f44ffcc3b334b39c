"""Policy packs as governed objects: admins register them (versioned, by sha256, with their exact text)
and assign them to models or risk tiers; a binding gate runs the assigned pack, any pack or file may be
tried with a dry run. Shipped pack names (default, strict) always mean the shipped packs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import duckdb

from governance.errors import InvalidInput, NotAllowed, NotFound
from governance.records import Record
from governance.roles import Action
from governance.service.base import ServiceBase, _now, _present, _require_model, check_name
from governance.store import policies
from governance.store.policies import PolicyAssignment, PolicyPack

if TYPE_CHECKING:
    from policies import LoadedPolicy

RISK_TIER_PACKS = {"low": "default", "medium": "default", "high": "strict"}  # when nothing is assigned
PolicyRef = Union[str, Path, "LoadedPolicy"]  # a shipped pack's name or a registered one's, a file, or a parsed policy


@dataclass(frozen=True)
class BoundPolicy:
    """The pack a model's binding gates run, and why it is that one."""

    loaded: LoadedPolicy
    reason: str  # "the pack assigned to model credit", "the shipped pack for risk tier high", …


@dataclass(frozen=True)
class PolicyCatalog(Record):
    packs: list[PolicyPack]
    assignments: list[PolicyAssignment]
    shipped: list[str]


class PolicyActions(ServiceBase):
    def load_policy(self, path: Path) -> LoadedPolicy:
        """A policy file or a shipped pack's name, validated (store-free: `govern policy validate`)."""
        from policies import PolicyInvalid, load_policy
        from policies.loader import shipped_by_declared_name
        try:
            found = _shipped(str(path))
            if found is None and not Path(path).exists():  # the name a gate prints (strict-high-risk)
                found = shipped_by_declared_name(str(path))
            return found or load_policy(Path(path))
        except PolicyInvalid as exc:
            raise InvalidInput(str(exc)) from exc

    def register_policy(self, *, file: Path) -> PolicyPack:
        """Register a pack's text under its `name:` as that name's next version (admins); registering the
        same text again returns the version that holds it."""
        from policies import load_policy, shipped_packs
        loaded = self.load_policy(Path(file))
        name = loaded.policy.name
        shipped = {stem.casefold() for stem in shipped_packs()} | {
            load_policy(path).policy.name.casefold() for path in shipped_packs().values()}
        if name.casefold() in shipped:  # Strict-High-Risk had registered, and gated "under Strict-High-Risk"
            raise InvalidInput(f"{name!r} is a shipped pack's name, which always means the shipped pack; give "
                               "your pack another name.")
        check_name("policy", name)

        def unit(conn: duckdb.DuckDBPyConnection) -> PolicyPack:
            user = self._authorize(conn, Action.MANAGE_POLICIES)
            latest = policies.get_pack(conn, name)
            if latest is not None and latest.sha256 == loaded.sha256:
                return latest
            pack = PolicyPack(name, (latest.version if latest else 0) + 1, loaded.sha256, loaded.text, _now(),
                              user.name)
            policies.insert_pack(conn, pack)
            self._log(conn, "policy.register", f"policy:{name}", {"name": name, "version": pack.version,
                                                                  "sha256": pack.sha256,
                                                                  "declared_version": loaded.policy.version})
            return pack

        return self._run(unit)

    def assign_policy(self, *, policy: str, model: str | None = None, tier: str | None = None) -> PolicyAssignment:
        """Assign a pack (`name` or `name@version`; a registered name pins its latest version now, a shipped
        name the shipped pack) to a model or to every model of a risk tier (admins)."""
        from policies import load_policy, shipped_packs
        if (model is None) == (tier is None):
            raise InvalidInput("assign a policy to exactly one of a model (--model) or a risk tier (--tier).")
        if tier is not None and tier not in RISK_TIER_PACKS:
            raise InvalidInput(f"risk tier {tier!r} is not one of {', '.join(RISK_TIER_PACKS)}.")
        name, wanted = _pack_ref(policy)
        declared = {load_policy(path).policy.name: stem for stem, path in shipped_packs().items()}
        name = declared.get(name, name)  # strict-high-risk, as a gate prints it, is the shipped `strict`: it had
        # been sent to register a pack under a name that registering refuses

        def unit(conn: duckdb.DuckDBPyConnection) -> PolicyAssignment:
            user = self._authorize(conn, Action.MANAGE_POLICIES)
            if model is not None:
                _require_model(conn, model)
            if name in shipped_packs():
                if wanted is not None:
                    raise InvalidInput(f"the shipped pack {name!r} has no versions to pick; assign {name!r}.")
                version = None
            else:
                pack = policies.get_pack(conn, name, wanted)
                if pack is None:
                    raise NotFound(f"no registered policy pack {policy!r}; an admin registers it with "
                                   "`govern policy register FILE`.")
                version = pack.version
            # exactly one of model and tier was given, and an empty model name is refused above
            target = _present(model or tier, "the model or tier to assign to")
            assignment = PolicyAssignment("model" if model else "tier", target, name, version, _now(), user.name)
            policies.set_assignment(conn, assignment)
            self._log(conn, "policy.assign", f"model:{model}" if model else f"tier:{tier}",
                      {"scope": assignment.scope, "target": assignment.target, "policy": name, "version": version})
            return assignment

        return self._run(unit)

    def policy_catalog(self) -> PolicyCatalog:
        from policies import shipped_packs
        def unit(conn: duckdb.DuckDBPyConnection) -> PolicyCatalog:
            self._authorize(conn, Action.VIEW)
            return PolicyCatalog(policies.list_packs(conn), policies.list_assignments(conn), sorted(shipped_packs()))

        return self._run(unit)

    def bound_policy(self, *, model: str) -> BoundPolicy:
        """The pack the model's binding gates run."""
        return self._read(Action.VIEW, lambda conn: self._assigned(conn, model))

    def _resolve(self, conn: duckdb.DuckDBPyConnection, ref: PolicyRef) -> LoadedPolicy:
        """A shipped pack by name, a registered pack by `name` or `name@version`, else a file (policies.resolve,
        with this store's registered packs)."""
        from policies import PolicyInvalid, PolicyNotFound, resolve

        def registered(text: str) -> tuple[str, str] | None:
            name, wanted = _pack_ref(text)
            pack = policies.get_pack(conn, name, wanted)
            return (f"{pack.name}@{pack.version}", pack.text) if pack is not None else None

        try:
            return resolve(ref, registered=registered)
        except PolicyNotFound as exc:
            raise NotFound(str(exc)) from exc
        except PolicyInvalid as exc:
            raise InvalidInput(str(exc)) from exc

    def _assigned(self, conn: duckdb.DuckDBPyConnection, model: str) -> BoundPolicy:
        return assigned_pack(conn, model)

    def _binding(self, conn: duckdb.DuckDBPyConnection, model: str, ref: PolicyRef | None) -> LoadedPolicy:
        """The pack a binding gate runs: the assigned one; `ref`, if given, must be that very pack."""
        bound = self._assigned(conn, model)
        if ref is None:
            return bound.loaded
        asked = self._resolve(conn, ref)
        if asked.sha256 != bound.loaded.sha256:
            raise NotAllowed(
                f"a binding gate of {model} runs {bound.reason} ({bound.loaded.policy.name} "
                f"v{bound.loaded.policy.version}, sha256 {bound.loaded.sha256[:12]}…), and {asked.source} is not that "
                f"pack: try it with --dry-run, or an admin registers and assigns it (`govern policy register FILE`, "
                f"`govern policy assign NAME --model {model}`).")
        return bound.loaded


def assigned_pack(conn: duckdb.DuckDBPyConnection, model: str) -> BoundPolicy:
    """The pack the model's binding gates run now, and why: the one assigned to it or its risk tier, else the
    shipped pack for its risk tier."""
    from policies import parse_policy
    record = _require_model(conn, model)
    for scope, target in (("model", model), ("tier", record.risk_tier)):
        found = policies.get_assignment(conn, scope, target)
        if found is None:
            continue
        reason = f"the pack assigned to {'model' if scope == 'model' else 'risk tier'} {target}"
        if found.policy_version is None:
            shipped = _present(_shipped(found.policy_name), f"shipped pack {found.policy_name}")
            return BoundPolicy(shipped, reason)
        pack = _present(policies.get_pack(conn, found.policy_name, found.policy_version),
                        f"policy pack {found.policy_name}@{found.policy_version}")
        return BoundPolicy(parse_policy(pack.text, source=f"{pack.name}@{pack.version}"), reason)
    name = RISK_TIER_PACKS.get(record.risk_tier, "strict")
    return BoundPolicy(_present(_shipped(name), f"shipped pack {name}"),
                       f"the shipped pack for risk tier {record.risk_tier}")


def _shipped(name: str) -> LoadedPolicy | None:
    from policies import load_policy, shipped_packs
    path = shipped_packs().get(name)
    return load_policy(path) if path else None


def _pack_ref(text: str) -> tuple[str, int | None]:
    """A registered pack's name and version from `name@3` (None from `name`: the latest). `x@` had been read
    as `x`, and a non-ASCII digit ('x@²') passed the check and failed to convert."""
    name, at, wanted = text.partition("@")
    if not at:
        return name, None
    # 18 digits at most: a store's version is a BIGINT, and 5,000 digits had passed the check and failed int()
    if not (wanted.isascii() and wanted.isdigit()) or len(wanted) > 18 or int(wanted) < 1:
        raise InvalidInput(f"policy version {wanted!r} is not a version number: give name@3 (versions start at 1), "
                           "or the name alone for its latest version.")
    return name, int(wanted)
