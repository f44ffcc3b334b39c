"""The human review queue, reviewer agreement, and the feedback dataset reviewers' corrections make."""

from __future__ import annotations

import json

import click

from governance.cli import render
from governance.cli.common import MAX_CLAIM_MINUTES, Finite, GovernGroup, model_version_args, service_command
from governance.errors import InvalidInput
from governance.records import ItemStatus, Priority, Verdict
from governance.review_guidance import settled_jobs

MAX_BATCH = 500  # governance.service.reviews.MAX_BATCH, without loading the service for --help


@click.group(cls=GovernGroup)
def review() -> None:
    """The human review queue."""


@review.command("list")
@click.option("--model", "model_name", metavar="MODEL", help="Only this model's items.")
@click.option("--version", "version_name", metavar="VERSION", help="Only this version's items.")
@click.option("--status", type=click.Choice([s.value for s in ItemStatus]),
              help="Only items in this state.")
@click.option("--kind", metavar="KIND",
              help="Only items of this kind: rule_failure, example, drift_alert, manual, override_expired, or "
                   "escalation (the retraining loop stopped without meeting the policy; engineers work these).")
@service_command(render.review_items)
def review_list(service, *, model_name: str | None, version_name: str | None, status: str | None,
                kind: str | None):
    """List review items in queue order: by when they were filed, then rule and kind."""
    return service.list_review_items(model=model_name, version=version_name, status=status, kind=kind)


@review.command("show")
@click.argument("item_id", metavar="ID")
@service_command(render.review_detail)
def review_show(service, *, item_id: str):
    """Show an item's evidence, status and judgments."""
    return service.show_review_item(item_id=item_id)


@review.command("claim")
@click.argument("item_ids", metavar="[ID]...", nargs=-1)
@click.option("--next", "next_count", type=click.IntRange(1, MAX_BATCH), metavar="N",
              help="Instead of naming items: claim the next N open items you may judge (blocking first, a gate's "
                   "examples before its rule failure), fewer if fewer are open.")
@click.option("--model", "model_name", metavar="MODEL", help="With --next: only this model's items.")
@click.option("--kind", metavar="KIND", help="With --next: only items of this kind (example, rule_failure, ...).")
@click.option("--minutes", type=click.IntRange(1, MAX_CLAIM_MINUTES), default=60, show_default=True,
              help="How long the claim holds before others may take the item.")
@service_command(render.claimed)
def review_claim(service, *, item_ids: tuple[str, ...], next_count: int | None, model_name: str | None,
                 kind: str | None, minutes: int):
    """Claim items so that only you judge them (reviewers): `claim ID [ID ...]` takes every item named or,
    if any cannot be taken, none; `claim --next N` takes the next N of your queue."""
    if next_count is not None:
        if item_ids:
            raise InvalidInput("name the items to claim or give --next N, not both.")
        return service.claim_next_review_items(count=next_count, model=model_name, kind=kind, minutes=minutes)
    if model_name is not None or kind is not None:
        raise InvalidInput("--model and --kind go with --next; named items are claimed whatever they are.")
    if not item_ids:
        raise InvalidInput("name the items to claim (`govern review claim ID [ID ...]`) or give --next N.")
    if len(item_ids) == 1:
        return service.claim_review_item(item_id=item_ids[0], minutes=minutes)
    return service.claim_review_items(item_ids=list(item_ids), minutes=minutes)


@review.command("judge")
@click.argument("item_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--verdict", required=True, type=click.Choice([s.value for s in Verdict]),
              help="What is wrong, if anything (`govern review show ID` says what each verdict means for the "
                   "item's kind).")
@click.option("--label", type=click.IntRange(0, 1), help="With label_wrong: the corrected label, 0 or 1.")
@click.option("--comment", required=True, help="Why, in a sentence.")
@service_command(render.judged)
def review_judge(service, *, item_ids: tuple[str, ...], verdict: str, label: int | None, comment: str):
    """Judge items you claimed; each resolves when it has its required judgments. Several IDs take the
    same verdict, label and comment in one step: every item must exist, be claimed by you (the claim not
    expired) and take the verdict, or nothing is judged and the error names each item refused and why."""
    if len(item_ids) == 1:
        result = service.judge_review_item(item_id=item_ids[0], verdict=verdict, label=label, comment=comment)
    else:
        result = service.judge_review_items(item_ids=list(item_ids), verdict=verdict, label=label, comment=comment)
    _settled_jobs(service, result if isinstance(result, list) else [result])
    return result


def _settled_jobs(service, items: list) -> None:
    """Say on stderr which retraining jobs the judgments settled (`review_guidance.settled_jobs`)."""
    if not any(item.status == "resolved" and item.gate_decision_id for item in items):
        return
    try:
        settled = settled_jobs(items, service.list_jobs())
    except Exception:  # the judgments are stored: a failure here must not read as "nothing was changed"
        return
    for sentence in settled:
        click.echo(f"note: {sentence[0].lower()}{sentence[1:]}", err=True)


class _StrictJSON(ValueError):
    """JSON that parses, but not as anyone reading it would: a repeated key, NaN or Infinity."""


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _StrictJSON(f"the key {repeated[0][:40]!r} is given twice in one object (JSON keeps the last); give it "
                          "once.")
    return dict(pairs)


def _no_constant(name: str) -> object:
    raise _StrictJSON(f"{name} is no number JSON can carry; give a number or text.")


@review.command("add")
@model_version_args
@click.option("--evidence", required=True, help="What to look at, as text or a JSON object.")
@click.option("--priority", type=click.Choice([s.value for s in Priority]),
              help="Blocking items come first in the queue [default: normal; a gold item: that of the examples "
                   "the version's latest gate sampled, which it passes for].")
@click.option("--judgments", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Independent judgments the item needs.")
@click.option("--due", metavar="ISO8601", help="When it should be done.")
@click.option("--gold-verdict", type=click.Choice([s.value for s in Verdict]),
              help="Admins: make it a gold item with this known verdict.")
@click.option("--gold-label", type=click.IntRange(0, 1), help="Admins: the gold item's known corrected label.")
@service_command(lambda item: f"filed {item.id} ({item.kind})")
def review_add(service, *, model_name: str, version_name: str, evidence: str, priority: str | None, judgments: int,
               due: str | None, gold_verdict: str | None, gold_label: int | None):
    """File a review item by hand (or, for admins, a gold item that measures reviewers)."""
    try:
        body = json.loads(evidence, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constant)
    except _StrictJSON as exc:
        raise InvalidInput(f"--evidence: {exc}") from exc
    except ValueError:
        body = {"note": evidence}
    except RecursionError as exc:
        raise InvalidInput("--evidence is nested too deeply; give at most 32 levels of JSON.") from exc
    if not isinstance(body, dict):
        body = {"note": body}
    if gold_label is not None and gold_verdict is None:
        raise InvalidInput("--gold-label goes with --gold-verdict label_wrong (the known answer is a corrected "
                           "label); give both, or neither for an ordinary item.")
    gold = {"verdict": gold_verdict, "label": gold_label} if gold_verdict else None
    return service.add_review_item(model=model_name, version=version_name, evidence=body, priority=priority,
                                   judgments=judgments, due=due, gold=gold)


@review.command("dismiss")
@click.argument("item_id", metavar="ID")
@click.option("--comment", required=True, help="Why the item needs no judgment.")
@service_command(lambda item: f"dismissed {item.id}")
def review_dismiss(service, *, item_id: str, comment: str):
    """Close an item without judging it (filed twice, or in error): an admin's call, or whoever filed it by
    hand before anyone judged it; escalations, engineers' and admins'. Reviewers judge instead (`ambiguous`
    where the evidence does not settle it)."""
    return service.dismiss_review_item(item_id=item_id, comment=comment)


@click.command("agreement")
@click.option("--model", "model_name", metavar="MODEL", help="Only this model's items.")
@click.option("--floor", type=Finite(0, 1), default=0.8, show_default=True,
              help="Flag reviewers whose gold accuracy falls below this.")
@service_command(render.agreement)
def agreement_command(service, *, model_name: str | None, floor: float):
    """Reviewer agreement (Krippendorff's alpha, Cohen's kappa per pair) and gold-item accuracy."""
    return service.agreement(model=model_name, accuracy_floor=floor)


@click.command("feedback")
@click.argument("model_name", metavar="MODEL")
@service_command(render.feedback)
def feedback_command(service, *, model_name: str):
    """Snapshot reviewers' label corrections as the model's next feedback dataset (retraining reads it)."""
    return service.build_feedback(model=model_name)


COMMANDS = [review, agreement_command, feedback_command]
