"""The terminal's text for each result the service returns (the dashboard draws its own; --json prints
the records themselves). Pure functions of a result: no store, no click."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluation import MetricRecord
    from governance.records import FeedbackSnapshot, JobDetail


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _fixed(value) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- the store, users and tokens --------------------------------------------------------------------------

def bootstrap(result, *, admin: str | None) -> str:
    status = result.status
    if admin and not result.created_admin:  # init again: it had read as if it had set the store up
        return (f"store ready at {status.home} ({len(status.migrations)} migrations applied); it was set up "
                f"already and admin {admin!r} exists, unchanged (its password was not checked or changed): "
                f"`govern login {admin}` starts a session")
    return (f"store ready at {status.home} ({len(status.migrations)} migrations applied)"
            + (f"; admin {admin!r}" if admin else "")
            + (f", logged in until {result.session.expires_at:%Y-%m-%d %H:%M} UTC" if result.session else ""))


def store_status(s) -> str:
    witness = s.witness or {}
    return "\n".join([
        f"home:            {s.home}",
        f"migrations:      {', '.join(s.migrations)}",
        f"users:           {s.users}",
        f"models:          {s.models}",
        f"versions:        {s.versions}",
        f"prediction sets: {s.prediction_sets}",
        f"audit events:    {s.audit_events} (head {s.audit_head[:16] + '…' if s.audit_head else 'none'})",
        f"witness:         {witness.get('witnessed', 0)} signed heads, "
        + ("the live chain matches" if witness.get("ok", True) else "MISMATCH"),
    ] + [f"PROBLEM: {problem}" for problem in s.problems])


def session(session) -> str:
    return f"logged in as {session.user} ({session.role}) until {session.expires_at:%Y-%m-%d %H:%M} UTC"


def logout(result: tuple[str | None, str | None]) -> str:
    actor, revoked = result
    return f"logged out {actor}" + (f" (session {revoked} revoked)" if revoked else "")


def whoami(me: dict[str, Any]) -> str:
    return f"{me['user']} ({me['role']}), authenticated by {me['method']}" + (f" {me['token']}" if me.get("token")
                                                                              else "")


def users(found) -> str:
    return "\n".join(f"{u.name}\t{u.role.value}" + ("" if u.enabled else "\tdisabled") for u in found) or "no users"


def issued_token_note(issued) -> str:
    return (f"token {issued.id} for {issued.user} ({issued.role}) until {issued.expires_at:%Y-%m-%d %H:%M} "
            "UTC; shown once: use it as GOVERN_TOKEN")


def tokens(found) -> str:
    return "\n".join(
        f"{t.id}  {t.user:<12} {t.kind:<9} {t.name or '-':<12} expires {t.expires_at:%Y-%m-%d %H:%M}"
        + (f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "") for t in found) or "no tokens"


# -- models and versions ------------------------------------------------------------------------------------

def models(found) -> str:
    return "\n".join(f"{m.name}\t{m.risk_tier}\t{m.owner or ''}" for m in found) or "no models"


def versions(found) -> str:
    return "\n".join(
        f"{v.version}\t{v.status}\t{v.created_by}\t{v.created_at:%Y-%m-%d %H:%M}" for v in found) or "no versions"


def version_detail(detail) -> str:
    v = detail.version
    lines = [
        f"{v.model} version {v.version} ({v.status})",
        f"  created:       {v.created_at:%Y-%m-%d %H:%M:%S} by {v.created_by}",
        f"  artifact:      {v.artifact_sha256}",
        f"  training data: {v.training_data_sha256 or '-'}"
        + (f" ({detail.training_data.row_count} rows)" if detail.training_data else ""),
        f"  parent:        {v.parent_version or '-'}",
        f"  prediction sets: {len(detail.prediction_sets) or 'none'}",
    ]
    lines += [
        f"    {p.id}  {p.split:<10} {p.row_count:>10} rows  {p.source_name}"
        + (f"  batch {p.batch_time:%Y-%m-%d %H:%M}" if p.batch_time else "")
        for p in detail.prediction_sets
    ]
    return "\n".join(lines)


def trained(result, *, model_name: str) -> str:
    model = model_name
    return (f"trained {model} version {result.version.version} in {result.epochs} epochs; eval "
            f"predictions {result.eval_set.id} ({result.eval_set.row_count} rows), challenger "
            f"(logistic regression) {result.challenger_set.id}; next: "
            f"`govern evaluate {model} {result.version.version}`"
            + "".join(f"\nnote: {note}" for note in result.notes))


def scored_file(result, *, model_name: str, version_name: str) -> str:
    return (f"scored {result.rows:,} rows with {model_name} version {version_name} → {result.out} (column "
            f"{result.score_column!r}, mean {result.mean_score:.4f})"
            + "".join(f"\nnote: column {column!r}: {count:,} row(s) hold a value the model never saw in training "
                      "(scored as unseen)" for column, count in result.unseen.items())
            + "".join(f"\nnote: column {column!r}: {count:,} row(s) empty, not a number or infinite (scored as the "
                      "training mean)" for column, count in result.not_numbers.items())
            + "".join(f"\nnote: column {column!r}: {count:,} row(s) lie over a million standard deviations from the "
                      "training mean (scored as that far; check the units)" for column, count in result.far_out.items())
            + "".join(f"\nnote: column {column!r}: {count:,} row(s) empty, so without the version's group offset "
                      "for it (and `govern ingest` refuses empty sensitive cells)" for column, count
                      in result.no_group.items()))


def epoch(epoch: int, total: int, record: dict) -> str:
    return f"  epoch {epoch}/{total}  validation loss {record.get('validation_loss', 0):.4f}"


def lineage(chain) -> str:
    lines = []
    for v in chain:
        line = f"{v.model} version {v.version} ({v.created_at:%Y-%m-%d %H:%M} by {v.created_by})"
        if v.lineage:
            line += (f" ← {v.parent_version} by job {v.lineage.get('job')} for {', '.join(v.lineage['failing_rules'])}"
                     f" ({'+'.join(v.lineage['strategies'])}; {v.lineage['corrections_applied']} corrections)")
        lines.append(line)
    return "\n".join(lines)


# -- metrics -------------------------------------------------------------------------------------------------

def stored_evaluation(found) -> str:
    """A stored evaluation: what it ran on and with, then its records."""
    evaluation, metric_set = found
    params = evaluation.params or {}
    settings = ", ".join(part for part in (
        f"threshold {params['threshold']:g}" if isinstance(params.get("threshold"), (int, float)) else "",
        f"{params['rows']:,} rows" if isinstance(params.get("rows"), int) else "",
        f"{params['resamples']} resamples" if isinstance(params.get("resamples"), int) else "",
        f"reference {evaluation.reference_set_id}" if evaluation.reference_set_id else "no reference") if part)
    return (f"{evaluation.model} version {evaluation.version}: evaluation {evaluation.id} of "
            f"{evaluation.prediction_set_id}, {evaluation.created_at:%Y-%m-%d %H:%M:%S} by {evaluation.created_by}\n"
            f"  {settings}\n" + records_table(metric_set.records))


def records_table(records: tuple[MetricRecord, ...] | list[MetricRecord]) -> str:
    """One line per record (reliability bins summarised), aligned in columns."""
    shown = [r for r in records if r.metric != "reliability_bin"]
    rows = [("family", "metric", "feature", "group", "value", "95% interval", "n", "note")]
    for r in shown:
        interval = f"[{_number(r.ci_low)}, {_number(r.ci_high)}]" if r.ci_low is not None else ""
        note = r.detail.get("reason") or r.detail.get("method_name") or r.detail.get("ci_note") or ""
        value = str(int(r.value)) if r.metric == "count" and r.value is not None else _number(r.value)
        rows.append((r.family, r.metric, r.feature or "", r.group or "", value, interval, str(r.n), note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1]
             for row in rows]
    bins = len(records) - len(shown)
    if bins:
        lines.append(f"(+ {bins} reliability-diagram bins; --json or --format json lists them)")
    return "\n".join(line.rstrip() for line in lines)


def evaluation(result, *, model_name: str, version_name: str) -> str:
    """An evaluation, its records and its challenger's headline (or how to add a challenger)."""
    model, version = model_name, version_name
    stored, metric_set, challenger = result
    lines = [f"evaluation {stored.id} of {model} version {version}: "
             f"{stored.record_count} records, {metric_set.params['rows']} rows"
             + (f"; {metric_set.params['drift']}" if "drift" in metric_set.params else ""),
             records_table(metric_set.records)]
    if challenger:
        label, challenger_stored, records = challenger
        shown = ", ".join(f"{name} {record.value:.4f}" for name in ("roc_auc", "accuracy")
                          if (record := records.find("performance", name)) and record.value is not None)
        lines.append(f"{label}: evaluation {challenger_stored.id}; {shown or 'no defined ROC AUC or accuracy'}")
    else:
        lines.append(f"no challenger predictions; `govern ingest {model} {version} FILE --split "
                     "challenger` registers a benchmark model's scores on the same eval rows")
    return "\n".join(lines)


def evaluation_plain(result) -> dict[str, Any]:
    stored, metric_set, challenger = result
    return {"evaluation": stored.to_dict(), "records": metric_set.to_list(),
            "challenger": {"label": challenger[0], "evaluation": challenger[1].to_dict(),
                           "records": challenger[2].to_list()} if challenger else None}


def monitored(result) -> str:
    stored, metric_set, alert = result
    share = metric_set.find("drift", "share_of_drifted_columns")
    lines = [f"batch {stored.prediction_set_id}: evaluation {stored.id}; share of drifted columns "
             f"{_number(share.value) if share else 'n/a'}"
             + (f"; DRIFT ALERT filed as {alert}" if alert else "; no alert")]
    absent = metric_set.params.get("reference_columns_missing")
    if absent:
        lines.append(f"  note: the batch lacks the reference's {', '.join(absent)}: counted as drifted columns")
    estimation = metric_set.params.get("estimation", {})
    if estimation.get("refused"):
        lines.append(f"  not estimated: {estimation['refused']}")
    for metric in ("accuracy", "roc_auc", "f1"):
        found = metric_set.find("estimated", metric)
        if found is not None and found.value is not None:
            band = f" [{found.ci_low:.4f}, {found.ci_high:.4f}]" if found.ci_low is not None else ""
            lines.append(f"  estimated {metric} {found.value:.4f}{band} (CBPE, no labels needed)")
    for gap in metric_set.select("fairness", "demographic_parity_difference"):  # measured, labels or not
        if gap.feature is None or gap.group is not None or gap.value is None:
            continue
        rates = [r for r in metric_set.select("fairness", "selection_rate")
                 if r.feature == gap.feature and r.group is not None and r.value is not None]
        shown = ", ".join(f"{r.group} {r.value:.3f}" for r in rates[:8]) + (", …" if len(rates) > 8 else "")
        lines.append(f"  {gap.feature}: parity gap {gap.value:.4f} over every group (selection rate {shown})")
    for column, reason in metric_set.params.get("fairness_unmeasured", {}).items():
        lines.append(f"  {column}: fairness not measured: {reason}")
    if any(line.startswith("  ") and " parity gap " in line for line in lines):  # not the gate's gap
        lines.append("  (a gate's parity rule judges the groups its min_samples admits: small groups can make "
                     "these gaps larger)")
    decision = getattr(result, "decision", None)
    for rule in decision.results if decision is not None else ():
        lines.append(f"  monitoring rule {rule.rule_id}: {rule.status.upper()} - {rule.reason}")
    if getattr(result, "items", None):
        queued = f"; queued {', '.join(result.jobs)}" if result.jobs else ""
        lines.append(f"  filed {', '.join(result.items)}{queued}")
    return "\n".join(lines)


def monitored_plain(result) -> dict[str, Any]:
    stored, metric_set, alert = result
    decision = getattr(result, "decision", None)
    return {"evaluation": stored.to_dict(), "records": metric_set.to_list(), "alert": alert,
            "monitoring": decision.to_dict() if decision is not None else None,
            "review_items": list(getattr(result, "items", [])), "jobs": list(getattr(result, "jobs", []))}


def comparison(result, *, model: str, a: str, b: str, alpha: float, show_all: bool) -> str:
    differences = result.differences
    shown = differences if show_all else [d for d in differences if d.significant]
    lines = [f"{model}: version {b} against {a}, {len(differences)} shared records, "
             f"{sum(1 for d in differences if d.significant)} significant at alpha={alpha}"]
    for d in shown:
        where = f"[{d.feature}={d.group}]" if d.group else f"[{d.feature}]" if d.feature else ""
        verdict = {True: "significant", False: "not significant", None: "no interval"}[d.significant]
        diff = "n/a" if d.difference is None else f"{d.difference:+.4f}"
        p_value = "" if d.p_value is None else f" p={d.p_value:.3g}"
        lines.append(f"  {d.family:<11} {d.metric + where:<48} {_fmt(d.a)} → {_fmt(d.b)}  {diff}  {verdict}{p_value}")
    if any(d.family == "fairness" and d.group is None for d in shown):  # a gap here is not the gate's gap
        lines.append(f"note: a fairness gap here is over every group; the gate judges the groups its rule's "
                     f"min_samples admits (`govern gate show {model} {b}` shows the gap it judged).")
    return "\n".join(lines)


# -- policies and gates ---------------------------------------------------------------------------------------

def policy_valid(body: dict[str, Any]) -> str:
    return f"valid: {body['name']} v{body['version']}, {body['rules']} rules, sha256 {body['sha256']}"


def policy_registered(pack: dict[str, Any]) -> str:
    return (f"registered policy {pack['name']}@{pack['version']} (sha256 {pack['sha256'][:16]}…); assign it with "
            f"`govern policy assign {pack['name']} --model MODEL`")


def policy_assigned(assigned) -> str:
    version = f"@{assigned.policy_version}" if assigned.policy_version else " (shipped)"
    return f"{assigned.scope} {assigned.target}: binding gates run {assigned.policy_name}{version}"


def policy_catalog(catalog) -> str:
    lines = [f"shipped: {', '.join(catalog.shipped)} (risk tiers low/medium: default, high: strict, unless assigned)"]
    lines += [f"{p.name}@{p.version}  sha256 {p.sha256[:16]}…  by {p.registered_by} {p.registered_at:%Y-%m-%d}"
              for p in catalog.packs]
    lines += [f"{a.scope} {a.target} → {a.policy_name}" + (f"@{a.policy_version}" if a.policy_version else "")
              for a in catalog.assignments]
    return "\n".join(lines)


def policy_catalog_plain(catalog) -> dict[str, Any]:
    return {"packs": [{k: v for k, v in p.to_dict().items() if k != "text"} for p in catalog.packs],
            "assignments": [a.to_dict() for a in catalog.assignments], "shipped": catalog.shipped}


_STATUS = {"passed": "PASS", "failed": "FAIL", "warned": "WARN", "insufficient": "INSUFFICIENT"}


def gate_outcome(outcome, *, dry_run: bool) -> str:
    """A gate just run: its summary, one line per rule, and what it queued."""
    decision = outcome.decision
    lines = [decision.summary() + (" (dry run: nothing stored)" if dry_run else f" [{outcome.gate_id}]")
             + _judged_under(decision)]
    lines += [f"  {_STATUS[r.status]:<12} {r.rule_id}: {r.reason}" for r in decision.results]
    waiting = len(outcome.review_items) - len(outcome.worked)
    if waiting or outcome.jobs:
        lines.append(f"{waiting} review item(s) and {len(outcome.jobs)} job(s) follow from this gate "
                     "(any already open from an earlier run are the same ones, not queued twice); "
                     "see `govern review list` and `govern jobs list`")
    if outcome.worked:  # gated again after the review: it had said the worked items "follow" as new work
        lines.append(f"{len(outcome.worked)} review item(s) this gate files were worked already, after an earlier run "
                     "on the same evidence (`govern review list --status resolved`)")
    for job, version in getattr(outcome, "retrained", {}).items():  # gated again after its loop moved on
        lines.append(f"the retrain this evidence asks for ran already: {job} made version {version} "
                     "(`govern lineage` follows the loop from there)")
    if outcome.superseded:
        lines.append(f"cancelled {', '.join(outcome.superseded)}, queued by an earlier gate of this version: this "
                     "gate's decision is the one that counts now")
    if outcome.escalations:  # the loop stopped: what the items are for now, and where the reason is
        lines.append(f"the retraining loop stopped and escalated to engineers ({', '.join(outcome.escalations)}: "
                     f"`govern review show {outcome.escalations[0]}` says why); no retrain follows"
                     + (" the review items, which are for people to judge" if outcome.review_items else ""))
    return "\n".join(lines)


def _judged_under(decision) -> str:
    """", at decision threshold 0.5, 2,500 eval rows": what the rules were judged under, where recorded."""
    parts = ([f"at decision threshold {decision.decision_threshold:g}"] if decision.decision_threshold is not None
             else []) + ([f"{decision.rows:,} eval rows"] if decision.rows is not None else [])
    return f", {', '.join(parts)}" if parts else ""


def _shown(value: float | int | None) -> str:
    """Counts (approvals, open items) as integers, metric values as records_table shows them."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _number(value)


def _threshold(result: dict) -> str:
    """What a rule's value was held to, in words: "<= 0.05", ">= 2", or the regression allowed."""
    comparison, threshold = result.get("comparison"), result.get("threshold")
    if comparison is None or threshold is None:
        return "—"
    if comparison == "max_regression":
        return (f"at most {_shown(threshold)} worse than the baseline's "
                f"{_shown(result.get('baseline_value'))}")
    return f"{comparison} {_shown(threshold)}"


def gate_decision(record) -> str:
    """A stored gate decision (a GateRecord) as text: what was decided under which policy and evidence,
    then per rule its status, the value judged against its bound, rows, failing groups and reason."""
    decision = record.decision
    lines = [f"{record.model} version {record.version}: gate {record.verdict.upper()} [{record.id}]",
             f"  mode:           {decision.mode}",
             f"  decided:        {record.created_at:%Y-%m-%d %H:%M:%S} by {record.created_by}",
             f"  policy:         {record.policy_name} v{record.policy_version} (sha256 {record.policy_sha256})",
             f"  evaluation:     {record.evaluation_id} (metrics sha256 {record.metrics_sha256})"
             + _judged_under(decision),
             f"  baseline:       {decision.baseline or '-'}",
             f"  rules:          {len(decision.results)}"]
    for result in (r.to_dict() for r in decision.results):
        judged = result.get("judged") if result.get("judged") is not None else result.get("observed")
        what = result.get("metric") or result["kind"]
        where = "".join(f" {key} {result[key]}" for key in ("feature", "group") if result.get(key) is not None)
        lines += [f"  {_STATUS.get(result['status'], result['status'].upper()):<12} {result['rule_id']} "
                  f"({result['kind']}, severity {result['severity']}{', blocking' if result['blocking'] else ''})",
                  f"      {what}{where}: {_shown(judged)}"
                  + (f" (judged at {result['bound']})" if result.get("bound") not in (None, "point") else "")
                  + f"; limit {_threshold(result)}" + (f"; n {result['n']}" if result.get("n") is not None else "")]
        if result.get("failing_groups"):
            lines.append(f"      failing groups: {', '.join(result['failing_groups'])}")
        lines.append(f"      {result['reason']}")
    return "\n".join(lines)


# -- review ---------------------------------------------------------------------------------------------------

def review_items(items) -> str:
    return "\n".join(f"{i.id}  {i.model}/{i.version}  {i.kind:<13} {i.status:<8} {i.priority:<8} {i.rule_id or ''}"
                     for i in items) or "no review items"


def review_detail(detail) -> str:
    """An item for a person: what to judge and what each verdict means there, the rule it concerns, the
    row (features, score, label, why it was sampled), the raw evidence, then its judgments."""
    i = detail.item
    claimed = f"  claimed by {i.assignee} until {i.claim_expires_at:%Y-%m-%d %H:%M}" if i.status == "claimed" else ""
    lines = [f"{i.id}  {i.model}/{i.version}  {i.kind}  {i.status}  priority {i.priority}{claimed}",
             f"  needs {i.judgments_required} judgment(s); rule {i.rule_id or '-'}; gate {i.gate_decision_id or '-'}"]
    if detail.guidance is not None:
        lines.append(f"  to judge: {detail.guidance.question}")
        lines += [f"    {verdict}: {meaning}" for verdict, meaning in detail.guidance.verdicts.items()]
    rule = detail.rule or i.evidence.get("rule")  # a rule failure or monitoring alert carries its rule
    if isinstance(rule, dict) and rule.get("rule_id"):
        lines.append(f"  rule {rule['rule_id']}: {rule_bound(rule)}")
        if rule.get("reason"):
            lines.append(f"    {rule['reason']}")
    if isinstance(i.evidence.get("retraining"), str):
        lines.append(f"  retraining: {i.evidence['retraining']}")
    if isinstance(i.evidence.get("features"), dict):
        lines.append("  row: " + row_summary(i.evidence))
        lines.append("  features: " + ", ".join(f"{k}={v}" for k, v in i.evidence["features"].items()))
    if i.kind == "escalation":
        lines += escalation_lines(i.evidence)
    else:
        lines.append("  evidence: " + json.dumps(i.evidence, sort_keys=True, default=str))
    lines += [f"  {j.reviewer}: {j.verdict}"
              + (f" → label {j.corrected_label}" if j.corrected_label is not None else "")
              + f"  “{j.comment}”" for j in detail.judgments]
    return "\n".join(lines)


def escalation_lines(evidence: dict[str, Any]) -> list[str]:
    """Why the loop stopped and what its last search tried, a line each (`--json` has the whole record)."""
    lines = [f"  why the loop stopped: {evidence.get('reason', '-')}",
             f"  failing rules {', '.join(evidence.get('failing_rules') or []) or '-'} (their on_fail would retrain "
             f"with {', '.join(evidence.get('strategies') or []) or '-'}); retrains {evidence.get('rounds', '-')} "
             f"of at most {evidence.get('max_rounds', '-')}"]
    candidates = evidence.get("candidates") or []
    failed_by = {}  # rule id → how many candidates failed it: the rules the search could not meet are the story
    for c in candidates:
        for rule in {str(f).split(":", 1)[0] for f in c.get("failing") or []}:
            failed_by[rule] = failed_by.get(rule, 0) + 1
    if candidates and failed_by:
        every = [rule for rule, count in failed_by.items() if count == len(candidates)]
        some = sorted((rule for rule in failed_by if rule not in every), key=lambda rule: -failed_by[rule])
        lines.append("  " + (f"no candidate met {', '.join(sorted(every))}" if every else "every rule was met by some "
                                                                                        "candidate")
                     + ("; " if every and some else ", " if some else "")
                     + ("; ".join(f"{rule} failed {failed_by[rule]} of {len(candidates)}" for rule in some[:5])))
    if candidates:
        lines.append(f"  candidates the last search tried ({len(candidates)}; * kept):")
        for c in candidates:
            accuracy = (c.get("metrics") or {}).get("accuracy")
            outcome = _candidate_verdict(c) if c.get("passes") else \
                "fails: " + "; ".join(c.get("failing") or [])[:160]
            lines.append(f"    {'*' if c.get('chosen') else ' '} {c.get('strategy')}: accuracy "
                         f"{_number(accuracy)}, {outcome}")
    lines.append("  (the whole record: `govern review show ID --json`)")
    return lines


def rule_bound(rule: dict[str, Any]) -> str:
    """A rule result's metric, the value judged and the bound it was held to: "fairness.x[sex] 0.22 (point)
    must be <= 0.1; n 3663: failed"."""
    where = "".join(f"[{rule[key]}]" for key in ("feature", "group") if rule.get(key) is not None)
    judged = rule.get("judged") if rule.get("judged") is not None else rule.get("observed")
    what = f"{rule.get('metric') or rule.get('kind')}{where}"
    return (f"{what} {_evidence_value(judged)} ({rule.get('bound') or 'point'}) must be {_threshold(rule)}"
            + (f"; n {rule['n']}" if rule.get("n") is not None else "") + f": {rule.get('status', '?')}")


def row_summary(evidence: dict[str, Any]) -> str:
    """A sampled row's label, score, prediction and why it was sampled, in one line."""
    from governance.review_guidance import STRATEGIES

    parts = [f"id {evidence.get('id', evidence.get('row', '?'))}", f"recorded label {evidence.get('label', '?')}"]
    if evidence.get("score") is not None:
        parts.append(f"score {_evidence_value(evidence['score'])} → prediction {evidence.get('prediction', '?')}")
    if evidence.get("strategy"):
        why = STRATEGIES.get(evidence["strategy"], evidence["strategy"])
        rank = f"rank {evidence['rank']}: " if "rank" in evidence else ""
        parts.append(f"sampled by {evidence['strategy']} ({rank}{why})")
    if isinstance(evidence.get("groups"), dict) and evidence["groups"]:
        parts.append("groups " + ", ".join(f"{k}={v}" for k, v in evidence["groups"].items()))
    return "; ".join(parts)


def _evidence_value(value: Any) -> str:
    """A number from an item's evidence as records_table shows numbers; anything else (a hand-filed item's
    evidence is anyone's JSON) as its text."""
    return _shown(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def claimed(result) -> str:
    """One claimed item, or each of several (an empty list: nothing was open to claim)."""
    items = result if isinstance(result, list) else [result]
    return "\n".join(f"claimed {i.id} until {i.claim_expires_at:%Y-%m-%d %H:%M} UTC" for i in items) or \
        "nothing to claim: no open review item you may judge"


def judged(result) -> str:
    items = result if isinstance(result, list) else [result]
    return "\n".join(f"judged {i.id}: now {i.status}" for i in items)


def agreement(result) -> str:
    def fmt(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    lines = [f"items judged by 2+ reviewers: {result.items}; Krippendorff's alpha {fmt(result.alpha)}"]
    lines += [f"  kappa {p['reviewers'][0]} ~ {p['reviewers'][1]}: {fmt(p['cohens_kappa'])} over {p['items']} items"
              for p in result.pairs]
    lines += [f"  {r['reviewer']}: gold accuracy {r['gold_accuracy']:.2f} over {r['gold_judged']}"
              + ("  FLAGGED" if r["flagged"] else "") for r in result.reviewers]
    return "\n".join(lines)


def feedback(result: FeedbackSnapshot, *, model_name: str) -> str:
    return (f"feedback dataset v{result.version} of {model_name}: {result.corrections} "
            f"corrections, sha256 {result.sha256[:16]}…" + ("" if result.new else " (unchanged)"))


# -- sign-off and release --------------------------------------------------------------------------------------

_PAST = {"approve": "approved", "reject": "rejected", "withdraw": "withdrew"}


def signoff(signoff, *, model_name: str, version_name: str) -> str:
    model, version, decision = model_name, version_name, str(signoff.decision)
    if decision == "withdraw":
        return f"{signoff.reviewer} withdrew their decision on {model} version {version}"
    replaces = f"; it supersedes their earlier {'one' if signoff.revision == 2 else 'ones'}" \
        if signoff.revision > 1 else ""
    return f"{signoff.reviewer} {_PAST[decision]} {model} version {version} (decision {signoff.revision}{replaces})"


def cautions(decision, *, approved: str) -> str:
    """For a reviewer who approved: what blocks the gate they approved (with --acknowledge-blocked; approval rules
    aside, which approvals settle) and what it flags without blocking, one rule a line."""
    blocking = acknowledged(decision)
    lines = ([f"note: the gate you approved ({approved}) is blocked, as you acknowledged, by:"]
             + [f"  {_STATUS[r.status]:<12} {r.rule_id}: {r.reason}" for r in blocking]) if blocking else []
    if decision.cautions:
        lines += [f"note: the gate you approved ({approved}) flags, without blocking:" if not blocking else
                  "and flags, without blocking:"]
        lines += [f"  {_STATUS[r.status]:<12} {r.rule_id}: {r.reason}" for r in decision.cautions]
    return "\n".join(lines)


def acknowledged(decision) -> list:
    """The blocking results an approval of a blocked gate accepts: all but the approval rules themselves."""
    return [r for r in decision.results if r.blocking and r.kind != "approvals"]


def release(move, *, model_name: str) -> str:
    return (f"{model_name} production: {move.previous_version or '-'} → {move.version}"
            + (f" (OVERRIDE by {move.actor}: {move.override_reason}; expires "
               f"{move.override_expires:%Y-%m-%d %H:%M})" if move.action == "override" else ""))


def rollback(move, *, model_name: str) -> str:
    return f"{model_name} production rolled back: {move.previous_version} → {move.version}"


def history(moves) -> str:
    return "\n".join(
        f"{m.seq:>3}  {m.moved_at:%Y-%m-%d %H:%M}  {m.action:<8} {m.previous_version or '-'} → {m.version}"
        f"  by {m.actor}"
        + (f"  OVERRIDE: {m.override_reason} ({'EXPIRED' if m.expired else 'expires'} "
           f"{m.override_expires:%Y-%m-%d %H:%M})" if m.action == "override" else "") for m in moves) \
        or "no releases yet"


# -- retraining jobs -------------------------------------------------------------------------------------------

def jobs(found) -> str:
    return "\n".join(
        f"{j.id}  {j.model}/{j.version}  {j.status:<14} {'+'.join(j.strategies)}  rules: {', '.join(j.failing_rules)}"
        for j in found) or "no jobs"


def job_detail(detail: JobDetail) -> str:
    job, progress = detail.job, detail.progress or {}
    lines = [
        f"{job.id}  {job.model}/{job.version}  {job.status}  attempts {job.attempts}",
        f"  strategies: {', '.join(job.strategies)}; failing rules: {', '.join(job.failing_rules)}",
        (f"  progress: {'model ' + str(progress['model']) + ', ' if 'model' in progress else ''}"
         f"epoch {progress.get('epoch', '-')}/{progress.get('epochs', '-')}"
         + (f"; worker {detail.lease_owner}" if detail.lease_owner else "")) if job.status == "running" else
        f"  progress: {job.status}",
        f"  result: version {detail.result_version}" if detail.result_version else
        f"  error: {detail.error}" if detail.error else "  result: -",
    ]
    if detail.candidates:
        kept = ("the most accurate of those passing with the most margin for sampling error, the best calibrated "
                "among equally accurate ones" if any(c.get("passes") for c in detail.candidates) else
                "none passed: the one closest to passing")
        lines.append(f"  candidates ({len(detail.candidates)}, judged on the held-out validation and calibration "
                     f"splits; * kept: {kept}):")
        for c in detail.candidates:
            metrics = c.get("metrics") or {}
            shown = "  ".join(f"{k} {_fixed(metrics.get(name))}" for k, name in
                              (("accuracy", "accuracy"), ("roc auc", "roc_auc"), ("ece", "ece")))
            lines.append(f"  {'*' if c['chosen'] else ' '} {c['strategy']:<36} {shown}  {_candidate_verdict(c)}")
    return "\n".join(lines)


def _candidate_verdict(candidate: dict[str, Any]) -> str:
    """passes (with how many standard errors of margin for sampling error), or the rules it fails."""
    if not candidate.get("passes"):
        return "fails " + "; ".join(str(f).split(":")[0] for f in candidate.get("failing") or [])
    margin = candidate.get("margin")
    if margin is None:
        margin = 2.0 if candidate.get("robust") else 0.0
    return f"passes with {margin:g} s.e. of margin" if margin else "passes, on the bound (no margin)"


def job_cancelled(detail: JobDetail, *, job_id: str) -> str:
    return f"{job_id}: " + ("cancellation requested; it stops at the next epoch" if detail.job.status == "running"
                             else detail.job.status)


def worker_results(result) -> str:
    """One line per job the worker ran; with none, whether other workers hold running jobs and which jobs
    wait for their review items (a job runs once every item its gate filed is worked)."""
    results, busy, waiting = result
    if not results:
        return "no jobs to run" + (f" ({len(busy)} running under another worker's lease: "
                                   f"{', '.join(j.id for j in busy)})" if busy else "") + "".join(
            f"\n{j.id} ({j.model}/{j.version}) waits until the review items its gate filed are worked: "
            f"`govern review list --model {j.model}`" for j in waiting)
    return "\n".join(
        f"{r.job}: {r.status}" + (f" → version {r.version}" if r.version else "")
        + (f", gate {r.verdict}" if r.verdict else "")
        + (f" by {', '.join(r.blocked_by)}" if r.blocked_by else "")
        + (f"; escalated: {', '.join(r.escalations)}" if r.escalations else "")
        + (f" ({r.error})" if r.error else "") for r in results)


# -- audit ------------------------------------------------------------------------------------------------------

def chain_report(report) -> str:
    return (f"audit chain intact: {report.event_count} events, head {report.head_hash}; "
            f"{report.witnessed or 0} witnessed heads match" if report.ok
            else f"audit chain BROKEN{f' at seq {report.broken_seq}' if report.broken_seq is not None else ''}: "
                 f"{report.problem}")


def audit_verification(report, *, directory: str | None, since: str | None) -> str:
    """The live chain's report, or with DIR the export's."""
    if directory is None:
        return chain_report(report)
    return (f"export intact: {report.row_count} events, head {report.head_hash}, signed by {report.public_key}"
            + (f"; extends {since} unchanged" if since else "")
            if report.ok else "export FAILED verification:\n  - " + "\n  - ".join(report.problems))


def audit_events(result) -> str:
    matched, events = result
    lines = [f"{matched} event(s) matched" + (f"; the newest {len(events)} shown" if matched > len(events) else "")]
    lines += [f"  {e.seq:>6}  {e.ts}  {e.actor or '-':<12} {e.action:<20} {e.entity}" for e in events]
    return "\n".join(lines)


def audit_events_plain(result) -> dict[str, Any]:
    matched, events = result
    return {"matched": matched, "events": [e.to_dict() for e in events]}


def exported(manifest: dict[str, Any], *, out: str) -> str:
    return (f"exported {manifest['row_count']} events to {out} "
            f"(head {manifest['head_hash'][:16]}…); verify it offline with `govern audit verify {out} --key KEY`, "
            "KEY the installation's public key (`govern audit key` prints it; take it from where you trust it)"
            ) + altered_log_warning(manifest, "export")


def altered_log_warning(signed: dict[str, Any], what: str) -> str:
    """For an export or report taken of a log that no longer matched its witness or itself: what it records."""
    check = signed.get("log_check") or {}
    if check.get("ok", True):
        return ""
    return (f"\nWARNING: the live log did not match its witness or itself, so this {what} holds an altered log; "
            f"it records that (signed), and verifying it fails: {' '.join(check.get('problems') or [])}")


def log_check_exit(signed: dict[str, Any]) -> int:
    """1 for an export or report of an altered log (a negative verdict), else 0."""
    return 0 if (signed.get("log_check") or {}).get("ok", True) else 1


def rewitnessed(report, *, dry_run: bool = False) -> str:
    most = 50  # events listed; the rest counted
    lines = ([f"dry run, nothing witnessed: {' '.join(report.problems) or 'no gap'}"] if dry_run else
             [f"witnessed up to seq {report.covered}; " + (
                 "the live chain matches the witness" if report.ok else "still wrong: " + " ".join(report.problems))])
    if report.checked_against:
        lines.append(f"checked against the export {report.checked_against}: the live log begins with its events, "
                     "unchanged")
    if report.credential_holders:
        lines.append(f"note: {', '.join(report.credential_holders)} could have used your credential (set the password "
                     "this session opened with, or issued it): this re-witness is as independent as that (recorded in "
                     "its event). An auditor signed in through the identity provider holds a credential nobody issued.")
    if report.vouched:
        lines.append(f"no signed head vouches for these {len(report.vouched)} event(s), "
                     f"{'only you would' if dry_run else 'only you'}:")
        lines += [f"  {event}" for event in report.vouched[:most]]
        if len(report.vouched) > most:
            lines.append(f"  … and {len(report.vouched) - most} more (`govern audit list` shows them)")
    return "\n".join(lines)
