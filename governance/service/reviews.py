"""The review queue: file, claim, judge and dismiss items; agreement and gold accuracy; feedback sets."""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Sequence, TypeVar

import duckdb

from governance.errors import Conflict, GovernError, InvalidInput, NotAllowed, NotFound
from governance.records import (
    Dataset,
    FeedbackSnapshot,
    ItemKind,
    ItemStatus,
    Judgment,
    Priority,
    ReviewItem,
    User,
    Verdict,
)
from governance.review_guidance import Guidance, guidance_for
from governance.roles import Action, Role, allowed, authorize
from governance.service.base import (
    LATEST,
    ServiceBase,
    _now,
    _present,
    _require_model,
    _require_version,
    check_text,
    hidden_characters,
    is_blank,
    parse_time,
)
from governance.store import evaluations, feedback, gates, jobs, judgments, registry, review_items
from governance.store.rows import Row

if TYPE_CHECKING:
    import pyarrow as pa

CLAIM_MINUTES = 60
GOLD_ACCURACY_FLOOR = 0.8
GOLD_MINIMUM = 3
MAX_BATCH = 500  # items one claim or judgment may name at once
T = TypeVar("T")


@dataclass(frozen=True)
class ItemDetail:
    """An item with its judgments, what to judge on it (`guidance`), and for an item a gate queued the
    result of its rule in that gate decision (`rule`: metric, observed value, bound, threshold, reason)."""

    item: ReviewItem
    judgments: list[Judgment]
    gold_answer: dict[str, Any] | None = None  # shown to admins only
    guidance: Guidance | None = None
    rule: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item.to_dict(), "judgments": [j.to_dict() for j in self.judgments],
                "gold_answer": self.gold_answer, "guidance": self.guidance.to_dict() if self.guidance else None,
                "rule": self.rule}


@dataclass(frozen=True)
class Agreement:
    items: int
    alpha: float | None
    pairs: list[dict[str, Any]] = field(default_factory=list)
    reviewers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "krippendorff_alpha": self.alpha, "pairs": self.pairs,
                "reviewers": self.reviewers}


def _label(judgment: Judgment) -> str:
    return f"{judgment.verdict}:{judgment.corrected_label}" if judgment.verdict == "label_wrong" else judgment.verdict


def _matches(answer: dict[str, Any], verdict: str, label: int | None) -> bool:
    return answer.get("verdict") == verdict and (verdict != "label_wrong" or answer.get("label") == label)


class ReviewActions(ServiceBase):
    def add_review_item(self, *, model: str, version: str, evidence: dict[str, Any], kind: str = "manual",
                        priority: str | None = None, judgments: int = 1, due: str | datetime | None = None,
                        gold: dict[str, Any] | None = None) -> ReviewItem:
        """File an item by hand (engineers, reviewers, admins); `gold` (admins only) makes it a gold item
        with a known answer {"verdict": …, "label": …} that measures reviewers' accuracy.

        To reviewers a gold item is an example: it takes the rule, gate and priority (unless `priority` is
        given) of the examples the version's latest gate sampled, and shows their number of judgments, so
        that nothing in the queue tells it from them. Filed before any gate sampled examples, it has none
        to pass for: file gold items after the gate. `priority` defaults to normal."""
        if priority is not None and priority not in tuple(Priority):
            raise InvalidInput(f"priority {priority!r} is not blocking or normal.")
        if not 1 <= judgments <= 10:
            raise InvalidInput(f"an item needs 1 to 10 judgments, not {judgments}.")
        if gold is not None:
            _check_verdict(gold.get("verdict"), gold.get("label"))
            if _repeats_label(evidence, gold.get("verdict"), gold.get("label")):
                raise InvalidInput(f"the gold answer corrects the label to {gold.get('label')}, the label its evidence "
                                   "records: no reviewer could give it (a correction must change the label).")
        due_at = _parse_due(due)
        if _depth(evidence) > MAX_EVIDENCE_DEPTH:
            raise InvalidInput(f"the evidence is nested more than {MAX_EVIDENCE_DEPTH} levels deep.")
        _check_evidence(evidence)
        if _blank(evidence):  # `--evidence ''` (or '{"a": [""]}', or a zero-width space) had filed an empty item
            raise InvalidInput("the evidence is empty; say what a reviewer should look at.")

        def unit(conn: duckdb.DuckDBPyConnection) -> ReviewItem:
            user = self._authorize_any(conn, (Action.JUDGE, Action.GATE), "file review items")
            if gold is not None and user.role is not Role.ADMIN:
                raise NotAllowed(f"user {user.name!r} is {user.role.value}; only an admin files gold items.")
            _require_version(conn, model, version)
            now = _now()
            kin = _gold_kin(conn, model, version) if gold is not None else None
            item_id = _gold_id(conn, kin, evidence) if kin is not None else f"ri-{uuid.uuid4().hex[:12]}"
            item = ReviewItem(item_id, model, version, "gold" if gold else kind,
                              kin.rule_id if kin else None, kin.gate_decision_id if kin else None,
                              Priority(priority or (kin.priority if kin else Priority.NORMAL)), ItemStatus.OPEN,
                              judgments, evidence, now, user.name)
            review_items.insert_items(conn, [(item, uuid.uuid4().hex)])
            review_items.set_due(conn, item.id, due_at)
            if gold is not None:
                shown = {"judgments": kin.judgments_required, "created_by": kin.created_by,
                         "created_at": kin.created_at.isoformat()} if kin else None
                review_items.set_gold(conn, item.id, {"verdict": gold["verdict"], "label": gold.get("label")}
                                      | ({"shown": shown} if shown else {}))
                if kin is not None:  # the job waiting for its kin waits for it too: queued before it, the job's
                    jobs.wait_also_for(conn, kin.id, item.id)  # status had named the one open "example" as gold
            self._log(conn, "review.add", f"review_item:{item.id}", {"model": model, "version": version,
                                                                      "kind": item.kind, "gold": gold is not None})
            return _present(review_items.get_item(conn, item.id), f"review item {item.id}")  # just filed

        return self._run(unit)

    def list_review_items(self, *, model: str | None = None, version: str | None = None,
                          status: str | None = None, kind: str | None = None) -> list[ReviewItem]:
        """Items in queue order (oldest first). Reviewers see gold items as the examples they pass for, so
        `kind="example"` lists them too and `kind="gold"` nothing."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
            user = self._authorize(conn, Action.VIEW)
            _known_model(conn, model)
            reviewer = user.role is Role.REVIEWER  # kind and status filtered as the reviewer sees them
            found = review_items.list_items(conn, model=model, version=version, status=None if reviewer else status,
                                             kind=None if reviewer else kind)
            judged = judgments.judgment_times(conn, user.name) if reviewer else {}
            seen = _queue_order([_as_seen_by(item, user, judged) for item in found])
            return [item for item in seen
                    if (kind is None or item.kind == kind) and (status is None or item.status == status)]

        return self._run(unit)

    def review_worklist(self, *, model: str | None = None, kind: str | None = None) -> list[ReviewItem]:
        """The acting user's work: the items they hold a live claim on, then the items they may claim (open,
        or on a lapsed claim; not ones they already judged), each part in working order: blocking first,
        then by due time and age, a gate's example items before its rule failure (judge the rows, then the
        rule)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
            user = self._authorize(conn, Action.VIEW)
            _known_model(conn, model)
            now = _now()
            held = [i for i in review_items.list_items(conn, model=model, status=ItemStatus.CLAIMED)
                    if i.assignee == user.name and i.claim_expires_at is not None and i.claim_expires_at >= now]
            items = [_as_seen_by(i, user) for i in _working_order(held, user) + self._claimable(conn, user, model)]
            return [i for i in items if kind is None or i.kind == kind]

        return self._run(unit)

    def show_review_item(self, *, item_id: str) -> ItemDetail:
        def unit(conn: duckdb.DuckDBPyConnection) -> ItemDetail:
            user = self._authorize(conn, Action.VIEW)
            true = _require_item(conn, item_id)
            item = _as_seen_by(true, user, judgments.judgment_times(conn, user.name))
            answer = review_items.gold_answer(conn, item_id) if user.role is Role.ADMIN else None
            seen = judgments.judgments_of(conn, item_id)
            if user.role is Role.REVIEWER and true.status not in (ItemStatus.RESOLVED, ItemStatus.DISMISSED):
                # others' judgments of an open item wait until it resolves: each judgment stays independent
                # (no anchoring on the first verdict), and a gold item's other judgments would give it away
                seen = [j for j in seen if j.reviewer == user.name]
            return ItemDetail(item, seen, answer, guidance_for(item.kind, item.evidence), _rule_result(conn, item))

        return self._run(unit)

    def claim_review_item(self, *, item_id: str, minutes: int = CLAIM_MINUTES) -> ReviewItem:
        """Take the item for `minutes`; Conflict while another reviewer's claim is live."""
        return self.claim_review_items(item_ids=[item_id], minutes=minutes)[0]

    def claim_review_items(self, *, item_ids: Sequence[str], minutes: int = CLAIM_MINUTES) -> list[ReviewItem]:
        """Claim every item named, in one unit of work: all of them or, when any cannot be claimed, none
        (the error names each refused item and why; one item named raises that item's own error)."""
        ids = _batch(item_ids)
        _check_minutes(minutes)

        def unit(conn: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
            now = _now()
            return _all_or_none(ids, "claimed", lambda item_id: self._claim(conn, item_id, minutes, now))

        return self._run(unit)

    def claim_next_review_items(self, *, count: int, model: str | None = None, kind: str | None = None,
                                minutes: int = CLAIM_MINUTES) -> list[ReviewItem]:
        """Claim the first `count` claimable items of the acting user's worklist (review_worklist's order, of
        `model` and `kind` if given), in one unit of work; fewer when fewer are open to them, none when the
        queue has nothing for them."""
        if not 1 <= count <= MAX_BATCH:
            raise InvalidInput(f"claim 1 to {MAX_BATCH} items at once, not {count}.")
        _check_minutes(minutes)

        def unit(conn: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
            user = self._authorize_any(conn, (Action.JUDGE, Action.RESOLVE_ESCALATION), "claim review items")
            _known_model(conn, model)
            now = _now()
            wanted = [i for i in self._claimable(conn, user, model)
                      if kind is None or _as_seen_by(i, user).kind == kind]
            return [self._claim(conn, item.id, minutes, now) for item in wanted[:count]]

        return self._run(unit)

    def judge_review_item(self, *, item_id: str, verdict: str, comment: str, label: int | None = None) -> ReviewItem:
        """Record the claimer's judgment; the item resolves once it has its k distinct judgments."""
        return self.judge_review_items(item_ids=[item_id], verdict=verdict, comment=comment, label=label)[0]

    def judge_review_items(self, *, item_ids: Sequence[str], verdict: str, comment: str,
                           label: int | None = None) -> list[ReviewItem]:
        """Judge several items with one verdict (and label and comment), in one unit of work: each must
        exist, be claimed by the acting user (the claim still live) and take the verdict, or nothing is
        written and the error names each refused item and why (one item named raises its own error).
        Each judgment is recorded and audited as judge_review_item records one.

            service.judge_review_items(item_ids=["ri-1", "ri-2"], verdict="label_correct", comment="checked")
        """
        ids = _batch(item_ids)
        _check_verdict(verdict, label)
        if is_blank(comment):
            raise InvalidInput("a judgment needs a comment saying why.")
        check_text("the comment", comment)

        def unit(conn: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
            now = _now()
            ready = _all_or_none(ids, "judged", lambda item_id: self._judgeable(conn, item_id, verdict, label, now))
            judged = [self._record_judgment(conn, item, user, verdict, label, comment.strip(), now)
                      for item, user in ready]
            self._queue_ready_jobs(conn, now)
            return judged

        return self._run(unit)

    def _claim(self, conn: duckdb.DuckDBPyConnection, item_id: str, minutes: int, now: datetime) -> ReviewItem:
        item = _require_item(conn, item_id)
        user = self._authorize(conn, _action_for(item))
        _check_kind_allowed(item, user)
        _check_still_open(conn, item, user)
        _check_not_own(conn, item, user)
        if not review_items.claim(conn, item_id, user.name, now, now + timedelta(minutes=minutes)):
            raise Conflict(f"review item {item_id} is claimed by {item.assignee} until "
                           f"{item.claim_expires_at:%Y-%m-%d %H:%M} UTC.")
        self._log(conn, "review.claim", f"review_item:{item_id}", {"minutes": minutes})
        return _as_seen_by(_present(review_items.get_item(conn, item_id), f"review item {item_id}"), user)

    def _claimable(self, conn: duckdb.DuckDBPyConnection, user: User, model: str | None) -> list[ReviewItem]:
        """The items `user` may claim (open, or claimed on a claim that lapsed), in working order."""
        done, now = judgments.judged_by(conn, user.name), _now()
        lapsed = [i for i in review_items.list_items(conn, model=model, status=ItemStatus.CLAIMED)
                  if i.claim_expires_at is None or i.claim_expires_at < now]
        mine = {(v.model, v.version) for v in registry.versions_created_by(conn, user.name)}
        return _working_order([i for i in review_items.list_items(conn, model=model, status=ItemStatus.OPEN) + lapsed
                               if allowed(user.role, _action_for(i)) and i.id not in done
                               and (i.kind not in ADMIN_ITEM_KINDS or user.role is Role.ADMIN)
                               and ((i.model, i.version) not in mine or i.kind in _OWNERS_KINDS)
                               and not (i.is_gold and i.created_by == user.name)], user)

    def _judgeable(self, conn: duckdb.DuckDBPyConnection, item_id: str, verdict: str, label: int | None,
                   now: datetime) -> tuple[ReviewItem, User]:
        """The item and the acting user, when the user may judge it with `verdict` now."""
        item = _require_item(conn, item_id)
        user = self._authorize(conn, _action_for(item))
        verdicts = guidance_for(item.kind).verdicts  # a rule failure, alert or escalation takes no label verdict
        if verdict not in verdicts:
            article = "an" if item.kind[0] in "aeiou" else "a"
            raise InvalidInput(f"review item {item_id} is {article} {item.kind}: it has no row to relabel. Judge it "
                               f"{' or '.join(verdicts)} (`govern review show {item_id}` says what each means), "
                               "or dismiss it with a comment.")
        _check_still_open(conn, item, user)  # said first: claiming it would be refused too
        _check_not_own(conn, item, user)
        if (item.status != ItemStatus.CLAIMED or item.assignee != user.name or item.claim_expires_at is None
                or item.claim_expires_at < now):
            raise NotAllowed(f"you do not hold a live claim on review item {item_id}; claim it first with "
                             f"`govern review claim {item_id}`.")
        _check_changes_label(item, verdict, label)
        return item, user

    def _record_judgment(self, conn: duckdb.DuckDBPyConnection, item: ReviewItem, user: User, verdict: str,
                         label: int | None, comment: str, now: datetime) -> ReviewItem:
        judgments.insert_judgment(conn, Judgment(item.id, user.name, Verdict(verdict), label, comment, now))
        count = len(judgments.judgments_of(conn, item.id))
        if count >= item.judgments_required:
            review_items.resolve(conn, item.id, "resolved", now)
        else:
            review_items.release_claim(conn, item.id)
        self._log(conn, "review.judge", f"review_item:{item.id}", {
            "verdict": verdict, "label": label, "comment": comment, "judgments": count,
            "required": item.judgments_required})
        return _as_seen_by(_present(review_items.get_item(conn, item.id), f"review item {item.id}"), user,
                           {item.id: now})

    def dismiss_review_item(self, *, item_id: str, comment: str) -> ReviewItem:
        if is_blank(comment):
            raise InvalidInput("dismissing an item needs a comment saying why.")
        check_text("the comment", comment)

        def unit(conn: duckdb.DuckDBPyConnection) -> ReviewItem:
            item = _require_item(conn, item_id)
            if item.kind == ItemKind.ESCALATION:
                user = self._authorize(conn, Action.RESOLVE_ESCALATION)
            else:
                user = self._authorize_any(conn, (Action.JUDGE, Action.GATE), "dismiss review items")
                _check_may_dismiss(conn, item, user)
            _check_kind_allowed(item, user)
            if item.status in ("resolved", "dismissed"):
                raise Conflict(f"review item {item_id} is already {item.status}.")
            now = _now()
            review_items.resolve(conn, item_id, "dismissed", now)
            self._log(conn, "review.dismiss", f"review_item:{item_id}", {"comment": comment.strip()})
            self._queue_ready_jobs(conn, now)
            return _as_seen_by(_present(review_items.get_item(conn, item_id), f"review item {item_id}"), user)

        return self._run(unit)

    def agreement(self, *, model: str | None = None, accuracy_floor: float = GOLD_ACCURACY_FLOOR) -> Agreement:
        """Krippendorff's alpha over items with ≥ 2 judgments, Cohen's kappa per reviewer pair, and each
        reviewer's accuracy on gold items (flagged below `accuracy_floor` after 3 gold judgments)."""
        from governance.agreement import krippendorff_alpha, pairwise_kappas

        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[User, list[tuple[Judgment, str]],
                                                            list[tuple[str, str, int | None, str]], set[str]]:
            user = self._authorize(conn, Action.VIEW)
            if model is not None:
                _require_model(conn, model)  # `agreement --model nosuch` had answered "no judgments yet", exit 0
            # a reviewer's own gold record counts gold items once resolved: it moved at their judgment, and
            # told them the item was gold and whether they matched its answer
            return user, judgments.all_judgments(conn, model), \
                judgments.gold_judgments(conn, model, resolved_only=user.role is Role.REVIEWER), \
                {i.id for i in review_items.list_items(conn, model=model, status=ItemStatus.RESOLVED)}

        user, judged, gold, resolved = self._run(unit)
        if user.role is Role.REVIEWER:  # what others did moves as they judge a gold item: only resolved items'
            # agreement, and one's own gold record (else an open item with two judgments stands out as gold)
            gold = [row for row in gold if row[0] == user.name]
            judged = [(judgment, model) for judgment, model in judged if judgment.item_id in resolved]
        by_item: dict[str, dict[str, str]] = {}
        for judgment, _ in judged:
            by_item.setdefault(judgment.item_id, {})[judgment.reviewer] = _label(judgment)
        shared: dict[Hashable, dict[str, str]] = {item: labels for item, labels in by_item.items() if len(labels) >= 2}
        pairs = [{"reviewers": list(pair), "cohens_kappa": kappa, "items": n}
                 for pair, (kappa, n) in pairwise_kappas(shared).items()]
        scores: dict[str, list[bool]] = {}
        for reviewer, verdict, label, answer in gold:
            scores.setdefault(reviewer, []).append(_matches(json.loads(answer), verdict, label))
        reviewers = [{"reviewer": r, "gold_judged": len(s), "gold_accuracy": sum(s) / len(s),
                      "flagged": len(s) >= GOLD_MINIMUM and sum(s) / len(s) < accuracy_floor}
                     for r, s in sorted(scores.items())]
        alpha = krippendorff_alpha({item: list(labels.values()) for item, labels in shared.items()})
        return Agreement(len(shared), alpha, pairs, reviewers)

    def build_feedback(self, *, model: str) -> FeedbackSnapshot:
        """Snapshot the model's label corrections as a new feedback dataset version (if they changed).

        Each row: the prediction set and row, the original and corrected label, and provenance
        (item, reviewers, gate decision). Retraining reads the latest version.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._run(lambda conn: (self._authorize(conn, Action.REGISTER), judgments.corrections(conn, model))[1])
        by_item: dict[str, list[Row]] = {}
        for row in rows:
            by_item.setdefault(row[0], []).append(row)
        records = []
        for item_id, judged in sorted(by_item.items()):
            labels = Counter(r[5] for r in judged if r[5] is not None)
            wrong = [r for r in judged if r[5] is not None]
            if len(wrong) * 2 <= len(judged) or not labels:
                continue  # the consensus is not "label wrong"
            evidence = json.loads(judged[0][3])
            records.append({"item": item_id, "version": judged[0][1], "gate": judged[0][2],
                            "prediction_set": evidence.get("prediction_set"), "row": evidence.get("row"),
                            "id": str(evidence.get("id")), "original_label": evidence.get("label"),
                            "corrected_label": labels.most_common(1)[0][0],
                            "reviewers": ",".join(sorted(r[4] for r in judged))})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "feedback.parquet"
            pq.write_table(pa.Table.from_pylist(records, schema=_arrow_schema()), path)
            sha, _ = self.artifacts.put_file(path)

        def record(conn: duckdb.DuckDBPyConnection) -> FeedbackSnapshot:
            user = self._authorize(conn, Action.REGISTER)
            latest = feedback.latest_feedback(conn, model)
            if latest and latest[1] == sha:
                return FeedbackSnapshot(model, latest[0], sha, latest[2], new=False)
            number = (latest[0] + 1) if latest else 1
            registry.insert_dataset(conn, Dataset(sha, "parquet", len(records), _FEEDBACK_COLUMNS,
                                                  f"feedback-{model}-v{number}.parquet"), created_at=_now())
            feedback.insert_feedback(conn, model, number, sha, len(records), _now(), user.name)
            self._log(conn, "feedback.build", f"model:{model}", {"version": number, "sha256": sha,
                                                                 "corrections": len(records)})
            return FeedbackSnapshot(model, number, sha, len(records), new=True)

        return self._run(record)

    def _authorize_any(self, conn: duckdb.DuckDBPyConnection, actions: tuple[Action, ...], what: str) -> User:
        """The acting user, allowed one of `actions`. Who it is is settled first: a forged, revoked or
        expired credential is said as it is, not as a missing role."""
        user = self._identify(conn, actions[0])
        errors: list[NotAllowed] = []
        for action in actions:
            try:
                authorize(user=user.name, role=user.role, action=action)
                return user
            except NotAllowed as exc:
                errors.append(exc)
        raise NotAllowed(f"user {user.name!r} is {user.role.value} and may not {what}: that needs the role "
                         "reviewer, engineer or admin.") from errors[0]


_FEEDBACK_COLUMNS = {"item": "VARCHAR", "version": "VARCHAR", "gate": "VARCHAR", "prediction_set": "VARCHAR",
                     "row": "BIGINT", "id": "VARCHAR", "original_label": "BIGINT", "corrected_label": "BIGINT",
                     "reviewers": "VARCHAR"}


def _arrow_schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {"VARCHAR": pa.string(), "BIGINT": pa.int64()}
    return pa.schema([(name, kinds[t]) for name, t in _FEEDBACK_COLUMNS.items()])


MAX_CLAIM_MINUTES = 7 * 24 * 60
MAX_EVIDENCE_DEPTH = 32


def _depth(value: Any, limit: int = MAX_EVIDENCE_DEPTH + 1) -> int:
    """How deeply `value` nests (stops counting past `limit`, so a hostile value cannot recurse far)."""
    if limit <= 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
ADMIN_ITEM_KINDS = ("override_expired",)  # items about admins' own decisions


def _action_for(item: ReviewItem) -> Action:
    """Escalations of the retraining loop are engineers' and admins' work; every other item reviewers'."""
    return Action.RESOLVE_ESCALATION if item.kind == "escalation" else Action.JUDGE


# The kinds a version's creator works: the loop's escalations and expired overrides ask what its makers do next.
_OWNERS_KINDS = (ItemKind.ESCALATION, ItemKind.OVERRIDE_EXPIRED)


def _check_still_open(conn: duckdb.DuckDBPyConnection, item: ReviewItem, user: User) -> None:
    """Conflict when the item, as `user` sees it, is resolved or dismissed, or they already judged it: a gold
    item a reviewer judged shows as resolved (as the example it passes for would be), and says so here too;
    "you already judged" had told it apart from an example's "is resolved"."""
    seen = _as_seen_by(item, user, judgments.judgment_times(conn, user.name))
    if seen.status in (ItemStatus.RESOLVED, ItemStatus.DISMISSED):
        raise Conflict(f"review item {item.id} is {seen.status}; there is nothing left to judge.")
    if any(j.reviewer == user.name for j in judgments.judgments_of(conn, item.id)):
        raise Conflict(f"you already judged review item {item.id}.")


def _known_model(conn: duckdb.DuckDBPyConnection, model: str | None) -> None:
    """A --model filter names a model (a typo had listed "no review items" and exited 0)."""
    if model is not None:
        _require_model(conn, model)


def _check_not_own(conn: duckdb.DuckDBPyConnection, item: ReviewItem, user: User) -> None:
    """The version's creator does not judge its review items: an admin who trained a version had judged its
    examples and written its training labels (`feedback`). Escalations and expired overrides are the
    makers' to work."""
    if item.kind in _OWNERS_KINDS:
        return
    if item.is_gold and item.created_by == user.name:  # only its filer hears this: it tells them nothing new
        raise NotAllowed(f"you filed gold item {item.id} and know its answer: it measures reviewers, who judge it "
                         "without one, so your judgment would count for nothing but one of its judgments.")
    version = registry.get_version(conn, item.model, item.version)
    if version is not None and version.created_by == user.name:
        raise NotAllowed(f"user {user.name!r} created {item.model} version {item.version}; four eyes: its review "
                         "items are judged by someone else.")


def _check_may_dismiss(conn: duckdb.DuckDBPyConnection, item: ReviewItem, user: User) -> None:
    """Dismissing takes an item out of the queue unjudged: an admin's call, or that of whoever filed it by
    hand while nobody has judged it. A reviewer had dismissed items needing three judgments, items claimed by
    someone else and the gold items measuring them, with a word; a reviewer judges (`ambiguous` where the
    evidence does not settle it). The same sentence for every item, so that it tells no gold item apart."""
    if user.role is Role.ADMIN:
        return
    by_hand = item.kind not in set(ItemKind) - {ItemKind.MANUAL}
    if by_hand and item.created_by == user.name and not judgments.judgments_of(conn, item.id):
        return
    raise NotAllowed(f"dismissing review item {item.id} is for an admin (or whoever filed it by hand, before it is "
                     "judged): judge it instead (`ambiguous` where the evidence does not settle it, saying what "
                     "would).")


def _check_kind_allowed(item: ReviewItem, user: User) -> None:
    if item.kind in ADMIN_ITEM_KINDS and user.role is not Role.ADMIN:
        raise NotAllowed(f"review item {item.id} is an {item.kind} item, which only admins work.")


def _check_verdict(verdict: str | None, label: int | None) -> None:
    if verdict not in tuple(Verdict):
        raise InvalidInput(f"verdict {verdict!r} is not one of {', '.join(Verdict)}.")
    if verdict == "label_wrong" and label not in (0, 1):
        raise InvalidInput("label_wrong needs the corrected label, 0 or 1"
                           + (": none was given." if label is None else f", not {label!r}."))
    if verdict != "label_wrong" and label is not None:
        raise InvalidInput("a corrected label goes only with the verdict label_wrong.")


def _blank(value: Any) -> bool:
    """Whether evidence shows a reader nothing: no value anywhere in it but empty or invisible text."""
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_blank(v) for v in value)
    if isinstance(value, str):
        return is_blank(value)
    return value is None


def _gold_kin(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> ReviewItem | None:
    """The example a gold item passes for: one a retraining job of the version still waits for (after a gate under
    another pack, the newest example had been the superseded gate's, whose job no longer runs), else the newest a
    gate sampled."""
    for job in jobs.list_jobs(conn, status="waiting_review"):
        if (job.model, job.version) != (model, version):
            continue
        for item_id in job.depends_on:
            found = review_items.get_item(conn, item_id)
            if found is not None and found.kind == "example" and not found.is_gold:
                return found
    return review_items.sampled_example(conn, model, version)


def _gold_id(conn: duckdb.DuckDBPyConnection, kin: ReviewItem, evidence: Any) -> str:
    """A gold item's id: the one a gate would give an example of its row (`gates.example_key`, from the gate its
    kin was sampled by), so that recomputing ids from `gate show` tells it from no example. Evidence without a
    row passes for no example anyway: a random id."""
    from governance.service.gates import example_key

    record = gates.get_gate(conn, kin.gate_decision_id) if kin.gate_decision_id else None
    judged = next((e for e in evaluations.list_evaluations(conn, record.model, record.version)
                   if e.id == record.evaluation_id), None) if record is not None else None
    if record is None or judged is None or not isinstance(evidence, dict) or "row" not in evidence:
        return f"ri-{uuid.uuid4().hex[:12]}"
    item_id = "ri-" + example_key(kin.model, kin.version, record.policy_sha256,
                                  evaluations.metric_set(conn, judged).values_sha256(), kin.rule_id,
                                  evidence["row"])[:12]
    if review_items.get_item(conn, item_id) is not None:
        raise InvalidInput(f"row {evidence['row']!r} is already an example of that gate ({item_id}); a gold item "
                           "passes for an example of another row.")
    return item_id


def _repeats_label(evidence: Any, verdict: str | None, label: int | None) -> bool:
    """Whether `verdict` is a correction to the label the evidence's row already records (0 or 1)."""
    recorded = evidence.get("label") if isinstance(evidence, dict) else None
    return (verdict == "label_wrong" and isinstance(recorded, (int, float)) and recorded in (0, 1)
            and recorded == label)  # 1.0 in hand-filed evidence is label 1


def _check_changes_label(item: ReviewItem, verdict: str, label: int | None) -> None:
    """A correction must change the row's label: `label_wrong` giving the label already recorded would be
    counted as a correction (and fed to retraining) while saying the recorded label is right."""
    if _repeats_label(item.evidence, verdict, label):
        raise InvalidInput(f"review item {item.id}'s row already has label {label}: a correction gives the other "
                           "label; judge it label_correct if the recorded label is right.")


def _parse_due(value: str | datetime | None) -> datetime | None:
    return parse_time(value, what="due time")


def _require_item(conn: duckdb.DuckDBPyConnection, item_id: str) -> ReviewItem:
    item = review_items.get_item(conn, item_id)
    if item is None:
        raise NotFound(f"review item {item_id!r} does not exist; `govern review list` shows the queue.")
    return item


def _check_minutes(minutes: int) -> None:
    if not 1 <= minutes <= MAX_CLAIM_MINUTES:
        raise InvalidInput(f"a claim lasts 1 to {MAX_CLAIM_MINUTES} minutes (a week), not {minutes}.")


def _batch(item_ids: Sequence[str]) -> list[str]:
    """The item ids of one claim or judgment: at least one, at most MAX_BATCH, none named twice."""
    ids = [item_ids] if isinstance(item_ids, str) else list(item_ids)
    if not ids:
        raise InvalidInput("name at least one review item.")
    if len(ids) > MAX_BATCH:
        raise InvalidInput(f"name at most {MAX_BATCH} review items at once, not {len(ids)}.")
    twice = sorted({item_id for item_id in ids if ids.count(item_id) > 1})
    if twice:
        raise InvalidInput(f"review item {', '.join(map(repr, twice))} is named more than once; name each item once.")
    return ids


def _all_or_none(ids: list[str], done: str, step: Callable[[str], T]) -> list[T]:
    """`step(id)` for every id in the unit of work, or, when any refuses, an error naming each refused item
    and why (the unit rolls back whatever the others wrote). One id alone raises its own error."""
    results: list[T] = []
    refused: dict[str, list[str]] = {}  # reason → the items it refused
    errors: list[GovernError] = []
    for item_id in ids:
        try:
            results.append(step(item_id))
        except GovernError as exc:
            if len(ids) == 1:
                raise
            errors.append(exc)
            refused.setdefault(str(exc), []).append(item_id)
    if not errors:
        return results
    kinds = {type(exc) for exc in errors}
    error = kinds.pop() if len(kinds) == 1 else InvalidInput
    reasons = [reason if len(named) == 1 and named[0] in reason else f"{', '.join(named)}: {reason}"
               for reason, named in refused.items()]
    raise error(f"nothing was {done}: {len(errors)} of the {len(ids)} items named cannot be. "
                + " ".join(f"({n}) {reason}" for n, reason in enumerate(reasons, start=1))) from errors[0]


def _as_seen_by(item: ReviewItem, user: User, judged: dict[str, datetime] | None = None) -> ReviewItem:
    """A gold item as `user` may see it: to reviewers, the example it passes for (so that they judge it as
    they judge any other); everyone else sees the truth. `judged` (the reviewer's judgments' times by item)
    lets a gold item the reviewer judged show as an example that judgment resolved, as theirs would have,
    while it waits for the other reviewers it measures."""
    if user.role is not Role.REVIEWER:
        return item
    if "rank" in item.evidence:  # a sample's order is nothing to judge by, and a gold item's would stand out
        item = replace(item, evidence={k: v for k, v in item.evidence.items() if k != "rank"})
    if item.is_gold or item.kind == "gold":
        shown = item.shown or {}
        item = replace(item, kind="example", is_gold=False, shown=None,
                       judgments_required=shown.get("judgments", item.judgments_required),
                       created_by=shown.get("created_by", item.created_by),
                       created_at=datetime.fromisoformat(shown["created_at"]) if "created_at" in shown
                       else item.created_at)
        when = (judged or {}).get(item.id)
        if when is not None and item.status in (ItemStatus.OPEN, ItemStatus.CLAIMED) \
                and item.judgments_required <= 1:
            item = replace(item, status=ItemStatus.RESOLVED, resolved_at=when, assignee=None, claim_expires_at=None)
    return item


def _queue_order(items: list[ReviewItem]) -> list[ReviewItem]:
    """The store's listing order (`review_items.list_items`: created_at, rule, kind descending, id), applied
    to items as a user sees them: a gold item falls among the examples it passes for."""
    ordered = sorted(items, key=lambda i: i.id)
    ordered.sort(key=lambda i: i.kind, reverse=True)  # stable: ties keep the order so far
    ordered.sort(key=lambda i: i.rule_id or "")
    ordered.sort(key=lambda i: i.created_at)
    return ordered


def _working_order(items: list[ReviewItem], user: User) -> list[ReviewItem]:
    """Blocking items first, then by due time and age; within one gate's items, the examples before the
    rule failure they were sampled for, so the reviewer has seen the rows when judging the rule. Each item
    placed as `user` sees it (a gold item among the examples it passes for)."""
    def key(item: ReviewItem) -> tuple[Any, ...]:
        i = _as_seen_by(item, user)
        return i.priority != Priority.BLOCKING, i.due_at or LATEST, i.created_at, i.rule_id or "", \
            i.kind == "rule_failure", i.id

    return sorted(items, key=key)


def _rule_result(conn: duckdb.DuckDBPyConnection, item: ReviewItem) -> dict[str, Any] | None:
    """The result of the item's rule in the gate decision that queued it (None for items no gate queued)."""
    if item.gate_decision_id is None or item.rule_id is None:
        return None
    record = gates.get_gate(conn, item.gate_decision_id)
    found = [r for r in record.decision.results if r.rule_id == item.rule_id] if record else []
    return found[0].to_dict() if found else None


def _check_evidence(value: Any, where: str = "the evidence") -> None:
    """Evidence a reviewer reads as written and strict JSON holds: no NaN or infinity (shown as null, or as
    Infinity no JSON reader takes), no text that does not show as written (U+202E, controls, lone
    surrogates) in its keys or values."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{where} holds {value!r}, which is no number JSON can carry; give a number or text.")
    if isinstance(value, str):
        hidden = [c for c in hidden_characters(value) if c not in ("U+000A", "U+0009")]
        if hidden:
            raise InvalidInput(f"{where} holds characters that do not show as written ({', '.join(hidden[:5])}); "
                               "remove them.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_evidence(str(key), f"a key of {where}")
            _check_evidence(item, f"{where}'s {str(key)[:40]!r}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_evidence(item, where)
