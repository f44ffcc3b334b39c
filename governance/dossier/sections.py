"""The sections of each document kind, built from the evidence: blocks of facts, tables and text.

A block is {"type": "facts", "rows": [[label, figure]]}, {"type": "table", "caption", "columns", "rows"} (a
cell is a figure or plain text) or {"type": "text", "text"}. Figures come from `Evidence`, so each cites its
audit event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from governance.dossier.evidence import (
    GROUP_METRICS,
    OVERALL,
    PARITY,
    Evidence,
    Figure,
    number,
    records_by_key,
    verdict_counts,
)

Block = dict[str, Any]

KINDS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    # kind: (title, [(section id, heading, builder)])
    "model-card": ("Model card", [
        ("details", "Model details", "inventory"),
        ("intended-use", "Intended use and limitations", "intended_use"),
        ("data", "Training and evaluation data", "data"),
        ("metrics", "Performance and calibration", "metrics"),
        ("fairness", "Fairness by group", "fairness"),
        ("recomputation", "Independent recomputation", "recomputation"),
        ("decisions", "Gate decisions, sign-offs and releases", "decisions"),
    ]),
    "annex-iv": ("EU AI Act Annex IV technical documentation", [
        ("description", "1. General description of the system", "inventory_and_use"),
        ("development", "2. Development: lineage and the feedback that shaped each retrain", "lineage"),
        ("monitoring-control", "3. Monitoring, functioning and control: gates, human review, sign-offs, overrides",
         "oversight"),
        ("performance", "4. Performance metrics, including fairness", "metrics_and_fairness"),
        ("risk-management", "5. Risk management", "risk"),
        ("data-governance", "6. Data governance", "data"),
        ("change-log", "7. Change log", "changelog"),
        ("post-market", "8. Post-market monitoring plan and history", "monitoring"),
    ]),
    "validation": ("Model validation report (SR 26-2)", [
        ("scope", "Scope and model inventory", "inventory_and_use"),
        ("conceptual-soundness", "Conceptual soundness and development", "lineage"),
        ("outcomes", "Outcome analysis", "outcomes"),
        ("effective-challenge", "Effective challenge: independent recomputation and human review", "challenge"),
        ("ongoing-monitoring", "Ongoing monitoring", "monitoring"),
        ("findings", "Findings: gate decisions and overrides", "findings"),
        ("approvals", "Approvals", "signoffs"),
    ]),
    "bias-audit": ("Bias audit summary (NYC Local Law 144)", [
        ("summary", "Audit summary", "audit_summary"),
        ("data-source", "Data source", "data"),
        ("selection-rates", "Selection rates and impact ratios by category", "selection_rates"),
        ("scoring-rates", "Scoring rates and scoring impact ratios by category", "scoring_rates"),
        ("intersections", "Intersectional categories", "intersections"),
        ("excluded", "Categories left out of the impact ratios", "excluded"),
        ("recomputation", "Independent recomputation", "recomputation"),
    ]),
}
KIND_NAMES = tuple(KINDS)


@dataclass
class Sources:
    """What the store holds beside the log: the records and texts the events hash or name."""

    model: str
    version: str
    records: dict[str, list[dict[str, Any]]]  # evaluation id → its metric records
    splits: dict[str, str]  # prediction set id → split
    gates: dict[str, dict[str, Any]]  # gate id → {"results": [...], "policy_text": str | None}
    review_items: list[dict[str, Any]]
    agreement: dict[str, Any] | None
    generated_at: str
    notes: dict[str, Any] = field(default_factory=dict)
    model_review_items: list[str] = field(default_factory=list)  # every version's item ids: agreement is per model


class Builder:
    def __init__(self, ev: Evidence, src: Sources) -> None:
        self.ev, self.src = ev, src
        self.model, self.version = src.model, src.version
        self.entity = f"version:{src.model}/{src.version}"
        self._evaluation: str | None | bool = False

    def section(self, builder: str) -> list[Block]:
        blocks: list[Block] = getattr(self, builder)()
        return blocks or [text("Nothing of this kind is recorded for this version.")]

    # -- inventory ---------------------------------------------------------------------------------------

    def _model_field(self, name: str) -> Figure | None:
        """The latest value of a model field, cited to the register or edit event that set it."""
        for event in reversed(self.ev.where(entity=f"model:{self.model}")):
            body = self.ev.payload(event)
            if event.action == "model.register" and name in body:
                return self.ev.field(event, name)
            if event.action == "model.edit" and name in body.get("after", {}):
                return self.ev.field(event, f"after.{name}")
        return None

    def _version_event(self, version: str | None = None) -> Any:
        found = self.ev.where(action="version.register", entity=f"version:{self.model}/{version or self.version}")
        return found[-1] if found else None

    def inventory(self) -> list[Block]:
        rows = [["model", self._model_field("name") or plain(self.model)]]
        for label, name in (("owner", "owner"), ("risk tier", "risk_tier"), ("approval floor set by an admin",
                                                                               "min_approvals"),
                            ("description", "description")):
            found = self._model_field(name)
            if found is not None:
                rows.append([label, found])
        event = self._version_event()
        if event is not None:
            rows += [["version", self.ev.field(event, "version")],
                     ["registered by", self.ev.field(event, "created_by")],
                     ["registered at", self.ev.field(event, "created_at")],
                     ["artifact sha256", self.ev.field(event, "artifact_sha256")],
                     ["parent version", self.ev.field(event, "parent_version")]]
        release = self._alias_moves()
        rows.append(["in production", release[-1][1] if release else plain("no")])
        return [facts(rows)]

    def intended_use(self) -> list[Block]:
        rows = []
        for label, name in (("intended use", "intended_use"), ("limitations", "limitations"),
                            ("description", "description")):
            found = self._model_field(name)
            if found is not None and found["text"] not in ("—", ""):
                rows.append([label, found])
        if not rows:
            return [text("No intended use or limitations are recorded for this model; record them with "
                         "`govern model edit MODEL --intended-use TEXT --limitations TEXT`.")]
        return [facts(rows)]

    def inventory_and_use(self) -> list[Block]:
        return self.inventory() + self.intended_use()

    # -- data --------------------------------------------------------------------------------------------

    def data(self) -> list[Block]:
        blocks = []
        event = self._version_event()
        if event is not None:
            blocks.append(facts([["training data sha256", self.ev.field(event, "training_data_sha256")]]))
        rows = []
        for ingest in self.ev.where(action="predictions.ingest", model=self.model, version=self.version):
            rows.append([self.ev.field(ingest, "split", ), self.ev.field(ingest, "id"),
                         self.ev.field(ingest, "row_count"), self.ev.field(ingest, "dataset_sha256"),
                         self.ev.field(ingest, "source_name"), self.ev.field(ingest, "source_sha256"),
                         self.ev.field(ingest, "batch_time")])
        if rows:
            blocks.append(table("Prediction sets (stored as Parquet by sha256)",
                                ["split", "prediction set", "rows", "sha256", "source file", "source sha256",
                                 "batch time"], rows))
        return blocks

    # -- metrics -----------------------------------------------------------------------------------------

    def _evaluate_events(self, split: str) -> list[Any]:
        return [e for e in self.ev.where(action="version.evaluate", entity=self.entity)
                if self.src.splits.get(self.ev.payload(e).get("prediction_set")) == split
                and self.ev.payload(e).get("evaluation") in self.src.records]

    def evaluation(self) -> str | None:
        """The id of the version's latest evaluation of its eval predictions, embedded; None if none."""
        if self._evaluation is False:
            events = self._evaluate_events("eval")
            self._evaluation = None
            if events:
                event = events[-1]
                self._evaluation = self.ev.evaluation(event, self.src.records[self.ev.payload(event)["evaluation"]])
        return self._evaluation if isinstance(self._evaluation, str) else None

    def _records(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        evaluation = self.evaluation()
        return records_by_key(self.ev.evaluations[evaluation]["records"]) if evaluation else {}

    def metrics(self) -> list[Block]:
        evaluation = self.evaluation()
        if evaluation is None:
            return [text(f"{self.model} {self.version} has no evaluation of its eval predictions.")]
        records = self._records()
        rows = []
        for metric in OVERALL:
            for family in ("performance", "calibration"):
                found = records.get((family, metric, None, None))
                if found is not None:
                    rows.append([plain(f"{family}.{metric}"), self.ev.record(evaluation, found),
                                 plain(number(found["n"]))])
        source = self.ev.evaluations[evaluation]
        return [facts([["evaluation", {"text": evaluation, "seq": source["seq"], "hash": source["hash"]}]]),
                table("Overall metrics, value [95% bootstrap interval]", ["metric", "value", "n"], rows)]

    def _features(self, intersections: bool | None = None) -> list[str]:
        features = sorted({r["feature"] for r in self._records().values() if r["family"] == "fairness"
                           and r["feature"] is not None})
        if intersections is None:
            return features
        return [f for f in features if ("*" in f) == intersections]

    def fairness(self, intersections: bool | None = None) -> list[Block]:
        evaluation = self.evaluation()
        if evaluation is None:
            return []
        records = self._records()
        blocks = []
        for feature in self._features(intersections):
            parity = [[plain(metric), self.ev.record(evaluation, records[("fairness", metric, feature, None)])]
                      for metric in PARITY if ("fairness", metric, feature, None) in records]
            groups = sorted({g for (fam, _, f, g) in records if fam == "fairness" and f == feature and g is not None})
            rows = [[plain(group)] + [self._cell(evaluation, records, metric, feature, group)
                                      for metric in GROUP_METRICS] for group in groups]
            kind = "intersection" if "*" in feature else "sensitive column"
            blocks.append(table(f"{feature} ({kind}): between groups", ["metric", "value"], parity))
            counts = [records[("fairness", "count", feature, g)].get("value") for g in groups
                      if ("fairness", "count", feature, g) in records]
            smallest = min((c for c in counts if isinstance(c, (int, float))), default=None)
            floor, pack = self._parity_floor()
            if parity and smallest is not None and smallest < floor:  # a new user saw race 0.117 here, 0.08 gated
                blocks.append(text(f"These gaps are over every group of {feature}, the smallest of {smallest:,.0f} "
                                   f"rows. A gate's parity rule judges the groups its min_samples admits ({floor:,} "
                                   f"rows in {pack}), so its judged gap (in the gate section) can be smaller."))
            blocks.append(self._chart(evaluation, records, feature, groups, "selection_rate"))
            blocks.append(table(f"{feature}: per group", ["group", *GROUP_METRICS], rows))
        return blocks

    def _parity_floor(self) -> tuple[int, str]:
        """The smallest group (rows) the latest gate's parity rules judge, and that gate's pack: the pack that
        bound the version (a strict pack's 100 had been reported as the default pack's 50)."""
        from policies import PolicyInvalid, parse_policy
        from policies.schema import MetricRule
        for event in reversed(self.ev.where(action="gate.decide", entity=self.entity)):
            body = self.ev.payload(event)
            policy_text = self.src.gates.get(body.get("gate"), {}).get("policy_text")
            if policy_text is None:
                continue
            try:
                rules = parse_policy(policy_text).policy.rules
            except PolicyInvalid:  # a pack this installation no longer reads: the default's floor, named so
                break
            floors = [rule.min_samples for rule in rules if isinstance(rule, MetricRule) and rule.min_samples
                      and rule.metric.removeprefix("fairness.") in PARITY]
            if floors:
                return min(floors), f"{body.get('policy')} v{body.get('policy_version')}, its latest gate's pack"
            break
        return SMALL_GROUP, "the default pack"

    def _cell(self, evaluation: str, records: dict[tuple[Any, ...], dict[str, Any]], metric: str, feature: str,
              group: str, interval: bool = True) -> Figure:
        found = records.get(("fairness", metric, feature, group))
        if found is None:
            return plain("—")
        return self.ev.record(evaluation, found, interval=interval and metric != "count")

    def _chart(self, evaluation: str, records: dict[tuple[Any, ...], dict[str, Any]], feature: str,
               groups: list[str], metric: str) -> Block:
        """A chart of `metric` per group of `feature` (drawn when the dossier is written)."""
        rows = [{"group": g, "value": r["value"], "low": r.get("ci_low"), "high": r.get("ci_high")}
                for g in groups if (r := records.get(("fairness", metric, feature, g))) is not None
                and r["value"] is not None]
        source = self.ev.evaluations[evaluation]
        return {"type": "chart", "feature": feature, "metric": metric, "rows": rows,
                "caption": f"{metric.replace('_', ' ')} per group of {feature}"
                           + (" with its 95% interval" if any(r["low"] is not None for r in rows) else ""),
                "figure": {"text": f"evaluation {evaluation}", "seq": source["seq"], "hash": source["hash"]}}

    def metrics_and_fairness(self) -> list[Block]:
        return self.metrics() + self.fairness()

    def outcomes(self) -> list[Block]:
        blocks = self.metrics()
        challengers = self._evaluate_events("challenger")
        if challengers:
            event = challengers[-1]
            evaluation = self.ev.evaluation(event, self.src.records[self.ev.payload(event)["evaluation"]])
            records = records_by_key(self.ev.evaluations[evaluation]["records"])
            rows = [[plain(f"{family}.{metric}"), self.ev.record(evaluation, found)]
                    for metric in OVERALL for family in ("performance", "calibration")
                    if (found := records.get((family, metric, None, None))) is not None]
            blocks.append(table(f"Challenger (benchmark model) on the same rows, evaluation {evaluation}",
                                ["metric", "value"], rows))
        return blocks + self.fairness()

    # -- recomputation -----------------------------------------------------------------------------------

    def recomputation(self) -> list[Block]:
        found = self.ev.where(action="version.recompute", entity=self.entity)
        if not found:
            return [text("Not independently recomputed yet: `govern recompute "
                         f"{self.model} {self.version}` recomputes every record with scikit-learn, torchmetrics, "
                         "fairlearn and Evidently and logs the agreement.")]
        event = found[-1]
        body = self.ev.payload(event)
        verdict = (f"independently recomputed: agrees to {body['tolerance']:g}" if body["agrees"] else
                   f"independently recomputed: {body.get('mismatch_count', len(body['mismatches']))} records differ")
        rows = [["verdict", self.ev.field(event, "agrees", verdict)],
                ["evaluation", self.ev.field(event, "evaluation")],
                ["records sha256", self.ev.field(event, "records_sha256")],
                ["libraries", self.ev.field(event, "libraries", ", ".join(f"{k} {v}" for k, v in
                                                                           body["libraries"].items()))],
                ["recomputed by", self.ev.field(event, "auth.method", f"{event.actor} at {event.ts}")]]
        families = [[self.ev.field(event, f"families.{i}.family"), self.ev.field(event, f"families.{i}.compared"),
                     self.ev.field(event, f"families.{i}.max_relative_difference", _difference(f)),
                     self.ev.field(event, f"families.{i}.not_recomputed")]
                    for i, f in enumerate(body["families"])]
        blocks = [facts(rows), table("Agreement per family", ["family", "records compared", "max relative difference",
                                                              "not recomputed"], families)]
        if body["mismatches"]:
            blocks.append(table("Records that differ", ["record", "stored", "reference"], [
                [plain(f"{m['family']}.{m['metric']} {m['feature'] or ''} {m['group'] or ''}".strip()),
                 self.ev.field(event, f"mismatches.{i}.stored"), self.ev.field(event, f"mismatches.{i}.reference")]
                for i, m in enumerate(body["mismatches"])]))
        return blocks

    # -- decisions ---------------------------------------------------------------------------------------

    def gates(self) -> list[Block]:
        blocks = []
        for event in self.ev.where(action="gate.decide", entity=self.entity):
            body = self.ev.payload(event)
            gate = self.src.gates.get(body.get("gate"), {})
            rows = [["gate decision", self.ev.field(event, "gate")], ["verdict", self.ev.field(event, "verdict")],
                    ["policy", self.ev.field(event, "policy", f"{body.get('policy')} v{body.get('policy_version')}")],
                    ["evaluation judged", self.ev.field(event, "evaluation")],
                    # what recall, selection rates and parity depend on: a verdict can flip with it alone
                    *([["decision threshold", self.ev.field(event, "decision_threshold")],
                       ["eval rows", self.ev.field(event, "rows")]] if "decision_threshold" in body else []),
                    ["metrics sha256", self.ev.field(event, "metrics_sha256")],
                    ["failed rules", self.ev.field(event, "failed_rules", ", ".join(body.get("failed_rules") or [])
                                                   or "none")]]
            if gate.get("policy_text") is not None:
                rows.append(["policy text sha256 (text embedded)", self.ev.policy_text(event, gate["policy_text"])])
            else:
                rows.append(["policy text sha256", self.ev.field(event, "policy_sha256")])
            blocks.append(facts(rows))
            results = gate.get("results") or []
            if results:
                blocks.append(table(f"Rule results of {body.get('gate')} (as stored with the decision)",
                                    ["rule", "severity", "status", "reason"],
                                    [[plain(r.get("rule_id")), plain(r.get("severity")), plain(r.get("status")),
                                      plain(r.get("reason"))] for r in results]))
        return blocks

    def signoffs(self) -> list[Block]:
        rows = []
        for event in self.ev.where(prefix="signoff.", entity=self.entity):
            body = self.ev.payload(event)
            rows.append([{"text": event.action.removeprefix("signoff."), "seq": event.seq, "hash": event.hash},
                         plain(event.actor or "—"), plain(event.ts),
                         self.ev.field(event, "artifact_sha256") if "artifact_sha256" in body else plain("—"),
                         self.ev.field(event, "gate") if "gate" in body else plain("—"),
                         self.ev.field(event, "comment") if "comment" in body else plain("—")])
        if not rows:
            return [text("No sign-offs are recorded for this version.")]
        return [table("Sign-offs (binding to the artifact and the gate they judged)",
                      ["decision", "reviewer", "time", "artifact sha256", "gate", "comment"], rows)]

    def _alias_moves(self) -> list[tuple[Any, Figure]]:
        moves = []
        for event in self.ev.where(prefix="alias.", entity=f"model:{self.model}"):
            if self.ev.payload(event).get("version") == self.version:
                moves.append((event, self.ev.field(event, "version", f"yes, since {event.ts} ({event.action})")))
        return moves

    def releases(self) -> list[Block]:
        rows = []
        for event in self.ev.where(prefix="alias.", entity=f"model:{self.model}"):
            body = self.ev.payload(event)
            if body.get("version") != self.version and body.get("previous") != self.version:
                continue
            rows.append([{"text": event.action, "seq": event.seq, "hash": event.hash}, plain(event.actor or "—"),
                         plain(event.ts), self.ev.field(event, "version"), self.ev.field(event, "previous"),
                         self.ev.field(event, "override", "OVERRIDE" if body.get("override") else "no"),
                         self.ev.field(event, "reason"), self.ev.field(event, "expires")])
        if not rows:
            return [text("The production alias never pointed at this version.")]
        return [table("Releases, rollbacks and overrides", ["action", "by", "time", "version", "previous", "override",
                                                            "reason", "expires"], rows)]

    def decisions(self) -> list[Block]:
        return self.gates() + self.signoffs() + self.releases()

    def findings(self) -> list[Block]:
        return self.gates() + self.releases()

    # -- human review ------------------------------------------------------------------------------------

    def reviews(self) -> list[Block]:
        items = {f"review_item:{item['id']}" for item in self.src.review_items}
        judged = [e for e in self.ev.where(action="review.judge") if e.entity in items]
        open_items = [i for i in self.src.review_items if i["status"] in ("open", "claimed")]
        rows = [["review items filed for this version", plain(number(len(items)))],
                ["judgments", self.ev.count(judged)],
                ["verdicts", self.ev.derived(verdict_counts([self.ev.payload(e) for e in judged]), judged)],
                ["label corrections", self.ev.count([e for e in judged
                                                     if self.ev.payload(e).get("label") is not None])],
                ["items still open", plain(number(len(open_items)))]]
        blocks = [facts(rows)]
        agreement = self.src.agreement
        if agreement:
            of_model = {f"review_item:{item}" for item in self.src.model_review_items}
            all_judged = [e for e in self.ev.where(action="review.judge") if e.entity in of_model]
            alpha = agreement.get("krippendorff_alpha")
            blocks.append(facts([["Krippendorff's alpha (items with two or more judgments, this model)",
                                  self.ev.derived(f"{number(alpha, 3)} over {agreement.get('items', 0)} items",
                                                  all_judged)]]))
            pairs = [[plain(" & ".join(p["reviewers"])), plain(number(p["cohens_kappa"], 3)), plain(number(p["items"]))]
                     for p in agreement.get("pairs", [])]
            if pairs:
                blocks.append(table("Cohen's kappa per reviewer pair", ["reviewers", "kappa", "items"], pairs))
            gold = [[plain(r["reviewer"]), plain(number(r["gold_judged"])), plain(number(r["gold_accuracy"], 3)),
                     plain("FLAGGED" if r["flagged"] else "no")] for r in agreement.get("reviewers", [])]
            if gold:
                blocks.append(table("Reviewer accuracy on gold items", ["reviewer", "gold judged", "accuracy",
                                                                         "flagged"], gold))
        return blocks

    def oversight(self) -> list[Block]:
        return self.gates() + self.reviews() + self.signoffs() + self.releases()

    def challenge(self) -> list[Block]:
        return self.recomputation() + self.reviews()

    # -- lineage -----------------------------------------------------------------------------------------

    def lineage(self) -> list[Block]:
        rows, version, seen = [], self.version, set()
        while version is not None and version not in seen:
            seen.add(version)
            event = self._version_event(version)
            if event is None:
                break
            body = self.ev.payload(event)
            lineage = body.get("lineage") or {}
            feedback = lineage.get("feedback") or {}
            rows.append([self.ev.field(event, "version"), self.ev.field(event, "parent_version"),
                         self.ev.field(event, "training_data_sha256"),
                         self.ev.field(event, "lineage.job") if lineage.get("job") else plain("—"),
                         self.ev.field(event, "lineage.gate") if lineage.get("gate") else plain("—"),
                         self.ev.field(event, "lineage.failing_rules", ", ".join(lineage["failing_rules"]))
                         if lineage.get("failing_rules") else plain("—"),
                         self.ev.field(event, "lineage.feedback.sha256") if feedback.get("sha256") else plain("—"),
                         self.ev.field(event, "lineage.corrections_applied")
                         if "corrections_applied" in lineage else plain("—"),
                         self.ev.field(event, "lineage.strategies", ", ".join(lineage["strategies"]))
                         if lineage.get("strategies") else plain("—")])
            version = body.get("parent_version")
        blocks = [table("Lineage, newest first: each retrain's job, the gate and failing rules it answered, and the "
                        "reviewers' feedback it trained on", ["version", "parent", "training data sha256", "job",
                                                              "gate answered", "failing rules", "feedback sha256",
                                                              "corrections", "strategies"], rows)] if rows else []
        feedback_rows = [[self.ev.field(e, "version"), self.ev.field(e, "corrections"), self.ev.field(e, "sha256")]
                         for e in self.ev.where(action="feedback.build", entity=f"model:{self.model}")]
        if feedback_rows:
            blocks.append(table("Feedback datasets built from reviewers' corrections",
                                ["feedback version", "corrections", "sha256"], feedback_rows))
        return blocks

    # -- risk, monitoring, change log ------------------------------------------------------------------------

    def risk(self) -> list[Block]:
        rows = []
        for label, name in (("risk tier", "risk_tier"), ("approval floor set by an admin", "min_approvals")):
            found = self._model_field(name)
            if found is not None:
                rows.append([label, found])
        gates = self.ev.where(action="gate.decide", entity=self.entity)
        if gates:
            rows.append(["latest gate verdict", self.ev.field(gates[-1], "verdict")])
            rows.append(["policy judged under", self.ev.field(gates[-1], "policy_sha256")])
        open_items = [i for i in self.src.review_items if i["status"] in ("open", "claimed")]
        rows.append(["open review items", plain(number(len(open_items)))])
        blocks = [facts(rows)]
        failed = [r for gate in self.src.gates.values() for r in gate.get("results", []) if r.get("status") != "passed"]
        if failed:
            blocks.append(table("Risks identified by the gate (rules not passed)", ["rule", "status", "reason"],
                                [[plain(r.get("rule_id")), plain(r.get("status")), plain(r.get("reason"))]
                                 for r in failed]))
        return blocks + self.recomputation()

    def monitoring(self) -> list[Block]:
        rows, monitored = [], set()
        for event in self._evaluate_events("production"):
            evaluation = self.ev.evaluation(event, self.src.records[self.ev.payload(event)["evaluation"]])
            monitored.add(evaluation)
            records = records_by_key(self.ev.evaluations[evaluation]["records"])
            cells = []
            for key in (("drift", "share_of_drifted_columns", None, None), ("drift", "dataset_drift", None, None),
                        ("performance", "accuracy", None, None), ("calibration", "ece", None, None)):
                found = records.get(key)
                cells.append(self.ev.record(evaluation, found, interval=False) if found else plain("—"))
            rows.append([self.ev.field(event, "prediction_set"), plain(event.ts), *cells])
        alerts = [e for e in self.ev.where(action="review.drift_alert")
                  if self.ev.payload(e).get("evaluation") in monitored]
        plan = text("Plan: every production batch is ingested with `--split production` and evaluated with `govern "
                    "monitor` against the version's reference set; dataset drift (a share of drifted columns of 0.5 "
                    "or more) files a drift_alert review item, and the release gate runs again on retraining.")
        if not rows:
            return [plan, text("No production batch of this version has been monitored yet.")]
        return [plan, table("Monitored production batches", ["prediction set", "evaluated at", "share of drifted "
                                                                                                "columns",
                                                              "dataset drift", "accuracy", "ece"], rows),
                facts([["drift alerts filed", self.ev.count(alerts)]])]

    def changelog(self) -> list[Block]:
        sets = {f"prediction_set:{e.entity.split(':', 1)[1]}" for e in self.ev.where(action="predictions.ingest",
                                                                                  model=self.model)}
        items = {f"review_item:{i['id']}" for i in self.src.review_items}
        mine = [e for e in self.ev.events if e.entity in (f"model:{self.model}", self.entity) or e.entity in sets
                or e.entity in items]
        rows = [[{"text": str(e.seq), "seq": e.seq, "hash": e.hash}, plain(e.ts), plain(e.actor or "—"),
                 plain(e.action), plain(e.entity)] for e in mine[-400:]]
        for e in mine[-400:]:
            self.ev.cited[e.seq] = e
        note = f" (the latest 400 of {len(mine)})" if len(mine) > 400 else ""
        return [table(f"Every logged change to the model and this version{note}", ["seq", "time", "actor", "action",
                                                                                    "entity"], rows)]

    # -- bias audit --------------------------------------------------------------------------------------

    def audit_summary(self) -> list[Block]:
        evaluation = self.evaluation()
        rows: list[list[Any]] = [["audit date", plain(self.src.generated_at[:10])]]
        if evaluation:
            source = self.ev.evaluations[evaluation]
            event = self.ev.cited[source["seq"]]
            rows += [["evaluation", {"text": evaluation, "seq": source["seq"], "hash": source["hash"]}],
                     ["evaluated at", plain(event.ts)],
                     ["prediction set", self.ev.field(event, "prediction_set")],
                     ["selection", plain("a prediction counts as selected when its score is at least the threshold "
                                         "of the evaluation; scoring rate: share of a category scoring above the "
                                         "whole sample's median score")]]
        return [facts(rows)] + self.recomputation()[:1]

    def _rates(self, rate: str, ratio: str, intersections: bool) -> list[Block]:
        evaluation = self.evaluation()
        if evaluation is None:
            return []
        records = self._records()
        blocks = []
        for feature in self._features(intersections):
            groups = sorted({g for (fam, m, f, g) in records if fam == "fairness" and f == feature and g is not None})
            rows = [[plain(group), self._cell(evaluation, records, "count", feature, group),
                     self._cell(evaluation, records, rate, feature, group, interval=False),
                     self._cell(evaluation, records, ratio, feature, group, interval=False)] for group in groups]
            blocks.append(table(f"{feature}", ["category", "applicants", rate.replace("_", " "),
                                               ratio.replace("_", " ")], rows))
            blocks.append(self._chart(evaluation, records, feature, groups, ratio))
        return blocks

    def selection_rates(self) -> list[Block]:
        return self._rates("selection_rate", "impact_ratio", False)

    def scoring_rates(self) -> list[Block]:
        return self._rates("scoring_rate", "scoring_impact_ratio", False)

    def intersections(self) -> list[Block]:
        if not self._features(True):
            return [text("No intersection of sensitive columns was evaluated for this version (ingest with "
                         "`--intersections sex*race` to judge categories together).")]
        return self._rates("selection_rate", "impact_ratio", True) + self._rates("scoring_rate",
                                                                                 "scoring_impact_ratio", True)

    def excluded(self) -> list[Block]:
        evaluation = self.evaluation()
        if evaluation is None:
            return []
        records = self._records()
        ratios = {(f, g): r["value"] for (fam, m, f, g), r in records.items() if m == "impact_ratio"}
        rows = [[plain(f"{f}={g}"), self.ev.record(evaluation, r, interval=False)]
                for (fam, m, f, g), r in records.items()
                if fam == "fairness" and m == "count" and g is not None and (f, g) in ratios and ratios[(f, g)] is None]
        if not rows:
            return [text("No category was left out: every category holds at least 2% of the rows.")]
        return [text("Categories under 2% of the rows may be left out of the impact ratios (NYC LL144 rules)."),
                table("Left out", ["category", "applicants"], rows)]


def build(kind: str, ev: Evidence, src: Sources) -> tuple[str, list[dict[str, Any]]]:
    """(title, sections) of the document `kind`: each section {"id", "heading", "blocks"}."""
    title, layout = KINDS[kind]
    builder = Builder(ev, src)
    return title, [{"id": sid, "heading": heading, "blocks": builder.section(name)} for sid, heading, name in layout]


def plain(value: Any) -> Figure:
    return {"text": value if isinstance(value, str) else number(value)}


SMALL_GROUP = 50  # rows: the default pack's parity floor, under which a group's rate is mostly noise


def text(value: str) -> Block:
    return {"type": "text", "text": value}


def facts(rows: list[list[Any]]) -> Block:
    return {"type": "facts", "rows": [[label, value if isinstance(value, dict) else plain(value)]
                                      for label, value in rows]}


def table(caption: str, columns: list[str], rows: list[list[Any]]) -> Block:
    return {"type": "table", "caption": caption, "columns": columns,
            "rows": [[c if isinstance(c, dict) else plain(c) for c in row] for row in rows]}


def _difference(family: dict[str, Any]) -> str:
    value = family.get("max_relative_difference")
    return "a value missing on one side" if value is None else f"{value:.2g}"


Render = Callable[..., str]
