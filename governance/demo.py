"""`govern demo`: the whole loop on real data, in a fresh store.

UCI Adult (income > 50K; fairness by sex and race, calibration). The historical labels the first
version learns from carry a documented bias: a share (`flip_rate`, 50 % by default) of the women whose
income is above 50K are recorded as below it, as a biased labelling process would (the census truth is
kept aside to play the reviewers' knowledge and to check the results). Then:

1. train version 1 on those labels (and its challenger, a logistic regression on the same rows), evaluate
   both, gate it with the shipped `default` pack: blocked;
2. the gate queues review items (sampled rows) and a retraining job with the strategies the failing
   rules ask for; gold items with known answers measure the reviewers;
3. a simulated reviewer panel (each reviewer right with a configurable probability, so agreement is not
   perfect) claims and judges every item, correcting labels it finds wrong;
4. a worker runs the job: corrections folded in, strategies applied; version 2 is evaluated and gated
   with the same policy; two reviewers sign it off; it is released;
5. a control trained exactly like version 1 but with another seed (no feedback, no strategies) shows
   that the change comes from the loop, not from chance.

ACS Massachusetts employment (a shipped model's scores, always the whole extract: it is small): version 1
evaluated on 2015 and gated; released when it passes, else kept in service on an admin's override with a
reason and a 30-day expiry (a shipped model already in use, while the finding is reviewed); and
the 2016–2018 batches arrive without labels and are monitored by year against the 2015 reference (a
batch with dataset drift files a review item) with their performance estimated (CBPE); then their outcomes
arrive by person id (2017's in two parts) and the realised metrics are recorded beside the estimates.

Everything goes through the service, so it lands in the store and the audit log, which is verified
at the end.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from governance.errors import InvalidInput
from governance.ingest import ColumnRoles
from governance.service.evaluations import HEADLINE as HEADLINE_METRICS

DATA = Path(__file__).resolve().parent / "data"
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
                 "income"]
PASSWORD = "govern-demo"
USERS = {"erin": "engineer", "rosa": "reviewer", "ravi": "reviewer", "remy": "reviewer", "audrey": "auditor",
         "victor": "viewer"}
ACS_SENSITIVE = ("SEX", "RAC1P")
ACS_FEATURES = ("AGEP", "SCHL", "MAR", "DIS", "CIT", "MIG", "NATIVITY")
EVAL_FRACTION = 0.25
OVERRIDE_DAYS = timedelta(days=30)


@dataclass(frozen=True)
class DemoConfig:
    flip_rate: float = 0.5  # share of women's positive labels recorded as negative in the history
    sample: float = 1.0  # share of Adult's rows used (the reduced demo in the tests uses less; ACS is always whole)
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 3e-3
    max_rounds: int = 3  # review → retrain → gate rounds before the demo gives up
    resamples: int = 200
    gold_items: int = 12
    reviewers: dict[str, float] = field(default_factory=lambda: {"rosa": 0.95, "ravi": 0.9, "remy": 0.8})
    seed: int = 0

    def check(self) -> None:
        if not 0 <= self.flip_rate <= 1:
            raise InvalidInput(f"the flip rate must lie between 0 and 1, not {self.flip_rate}.")
        if not 0 < self.sample <= 1:
            raise InvalidInput(f"the sample must be a share of the rows in (0, 1], not {self.sample}.")
        if self.epochs < 1 or self.max_rounds < 1 or self.resamples < 0 or self.gold_items < 0:
            raise InvalidInput("epochs and rounds must be at least 1, resamples and gold items at least 0.")
        unknown = set(self.reviewers) - {n for n, r in USERS.items() if r == "reviewer"}
        if unknown or not self.reviewers or not all(0 <= a <= 1 for a in self.reviewers.values()):
            raise InvalidInput("reviewer accuracies are shares in [0, 1] for the demo reviewers rosa, ravi, remy.")


def load_adult() -> pd.DataFrame:
    """Adult's training and test files as one frame with a 0/1 `income` label."""
    parts = [pd.read_csv(DATA / name, header=None, names=ADULT_COLUMNS, skipinitialspace=True, skiprows=skip,
                         na_values="?") for name, skip in (("adult.data.gz", 0), ("adult.test.gz", 1))]
    frame = pd.concat(parts, ignore_index=True).dropna(subset=["income"])
    frame["income"] = frame["income"].str.rstrip(".").eq(">50K").astype(int)
    return frame


def load_acs() -> pd.DataFrame:
    return pd.read_csv(DATA / "acs_employment_ma_every20th.csv.gz")


def biased_history(frame: pd.DataFrame, flip_rate: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame with `flip_rate` of women's positive labels recorded as 0, and the true labels."""
    truth = frame["income"].to_numpy().copy()
    flip = (frame["sex"].to_numpy() == "Female") & (truth == 1) & \
        (np.random.default_rng(seed).random(len(frame)) < flip_rate)
    return frame.assign(income=np.where(flip, 0, truth)), truth


_sessions: dict[tuple[str, str], str] = {}


def _as(home: Path, name: str):
    """A service for a demo user, who signs in with their password like anyone else (the audit log
    records a password session), once per run."""
    from governance.service import Service

    key = (str(Path(home).resolve()), name)
    if key not in _sessions:
        _sessions[key] = Service.open(home=home).sign_in(name=name, password=PASSWORD, client="demo",
                                                         kind="session").secret
    return Service.open(home=home, token=_sessions[key])


def run_demo(home: Path, config: DemoConfig = DemoConfig(), report: Callable[[str], None] = lambda line: None,
             ) -> dict[str, Any]:
    """Run the loop in a new store at `home`; return the summary (also what `--json` prints)."""
    from governance.service import Service

    config.check()
    home = Path(home)
    from governance.config import resolve_settings

    if resolve_settings(home=home).database().exists():
        raise InvalidInput(f"{home} already holds a govern store; give the demo a new --home (or remove that one).")
    started = time.perf_counter()
    Service.open(home=home).init(admin="admin", password=PASSWORD)
    admin = _as(home, "admin")
    for name, role in USERS.items():
        admin.add_user(name=name, role=role, password=PASSWORD)
    with tempfile.TemporaryDirectory() as tmp:
        income = _adult_loop(home, Path(tmp), config, report)
        employment = _acs_monitoring(home, Path(tmp), config, report)
    chain = _as(home, "audrey").verify_audit()  # the summary reports it
    return {"home": str(home), "seconds": round(time.perf_counter() - started, 1), "config": asdict(config),
            "income": income, "employment": employment,
            "audit": {"ok": chain.ok, "events": chain.event_count, "head": chain.head_hash},
            "users": {"admin": "admin", **USERS}, "password": PASSWORD}


def _adult_loop(home: Path, tmp: Path, config: DemoConfig, report) -> dict[str, Any]:
    from evaluation import evaluate
    from governance.service.training import split_rows
    from policies import resolve
    from training.trainer import TrainConfig, train

    engineer = _as(home, "erin")
    admin = _as(home, "admin")
    frame = load_adult()
    if config.sample < 1:
        frame = frame.sample(frac=config.sample, random_state=config.seed)
    frame = frame.reset_index(drop=True)
    history, truth = biased_history(frame, config.flip_rate, config.seed)
    data = tmp / "adult-history.csv"
    history.to_csv(data, index=False)
    flipped = int((history["income"].to_numpy() != truth).sum())
    report(f"Adult: {len(frame):,} rows; the history records {flipped:,} women earning >50K as <=50K "
           f"({config.flip_rate:.0%} of them)")
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate, seed=config.seed, sensitive=("sex", "race"))
    first = engineer.train_version(model="income", data=data, label="income", sensitive=["sex", "race"],
                                   config=train_config, version="1", eval_fraction=EVAL_FRACTION)
    report(f"income v1 trained ({first.epochs} epochs); evaluating with {config.resamples} bootstrap resamples")
    engineer.evaluate(model="income", version="1", resamples=config.resamples, seed=config.seed)
    policy = resolve("default")
    gate1 = engineer.gate(model="income", version="1", policy=policy)
    blocked_by = [r.rule_id for r in gate1.decision.results if r.blocking]
    report(f"gate v1 under default: {gate1.decision.verdict.upper()}"
           + (f" by {', '.join(blocked_by)}" if blocked_by else "")
           + f"; {len(gate1.review_items)} review items and {len(gate1.jobs)} retraining job queued")

    summary: dict[str, Any] = {"rows": len(frame), "flipped_labels": flipped,
                               "gold_items": _add_gold_items(admin, first.eval_set, history, truth, config),
                               "rounds": []}
    version, gate = "1", engineer.latest_gate(model="income", version="1")
    for round_number in range(1, config.max_rounds + 1):
        if gate is None or gate.verdict == "passed":
            break
        panel = _judge_everything(home, "income", truth, config, report)
        done = engineer.run_worker(once=True, report=report)
        succeeded = [d for d in done if d.status == "succeeded"]
        summary["rounds"].append({"round": round_number, "version_gated": version, "panel": panel,
                                  "jobs": [d.to_dict() for d in done]})
        if not succeeded:
            report("the retraining job did not succeed: " + "; ".join(str(d) for d in done))
            break
        version = succeeded[-1].version
        gate = engineer.latest_gate(model="income", version=version)
        report(f"income v{version}: gate {gate.verdict.upper() if gate else 'not run'}"
               + (f" by {', '.join(_blocking(gate))}" if gate and _blocking(gate) else ""))
    agreement = engineer.agreement(model="income")
    report(f"reviewers: Krippendorff's alpha "
           f"{'n/a' if agreement.alpha is None else round(agreement.alpha, 3)} on {agreement.items} shared items; "
           + ", ".join(f"{r['reviewer']} {r['gold_accuracy']:.0%} on gold" for r in agreement.reviewers))
    summary["agreement"] = {"krippendorff_alpha": agreement.alpha, "items": agreement.items, "pairs": agreement.pairs,
                            "reviewers": agreement.reviewers}
    if version != "1" and gate is not None and gate.verdict == "passed":
        approvers = list(config.reviewers)[:2]
        for reviewer in approvers:
            _as(home, reviewer).sign_off(
                model="income", version=version, decision="approve",
                comment="parity and calibration within the default policy; corrections reviewed")
        move = engineer.release(model="income", version=version)
        summary["release"] = {"version": move.version, "approvals": approvers}
        report(f"income v{version} signed off by {' and '.join(approvers)} and released to production")
    versions = [v.version for v in engineer.list_versions(model="income")]
    summary["versions"] = {}
    for number in versions:
        stored = engineer.latest_gate(model="income", version=number)
        challenger = engineer.challenger_evaluation(model="income", version=number)
        summary["versions"][f"v{number}"] = {
            "gate": stored.verdict if stored else None, "blocked_by": _blocking(stored) if stored else [],
            "metrics": _headline(engineer.latest_evaluation(model="income", version=number)[1]),
            "challenger": {"label": challenger[0], "metrics": _headline(challenger[2])} if challenger else None}
    summary["final_version"] = version

    # What the gate saw (the recorded labels) and what is true (the census labels), per version, on the
    # first version's eval rows; and the control: trained like v1 with another seed, no loop.
    eval_rows = _eval_rows(engineer, first.eval_set)
    train_rows, _ = split_rows(len(history), EVAL_FRACTION, config.seed)  # v1's training rows
    control = train(history.iloc[train_rows], label="income",
                    features=[c for c in history.columns if c != "income"],
                    config=TrainConfig(**{**asdict(train_config), "seed": config.seed + 1,
                                          "hidden": train_config.hidden}))
    scored = {f"v{v}": engineer.load_trained(model="income", version=v).predict(history.iloc[eval_rows])
              for v in dict.fromkeys(["1", version])}
    scored["control (no loop, other seed)"] = control.predict(history.iloc[eval_rows])
    table = {}
    for name, scores in scored.items():
        table[name] = {}
        for labels_name, labels in (("recorded labels", history["income"].to_numpy()[eval_rows]),
                                    ("true labels", truth[eval_rows])):
            rows = history.iloc[eval_rows][["sex", "race"]].assign(y=labels, p=scores)
            table[name][labels_name] = _headline(evaluate(current=rows, label="y", score="p",
                                                          sensitive=["sex", "race"], resamples=config.resamples,
                                                          seed=config.seed))
    summary["comparison"] = table
    return summary


def _blocking(gate) -> list[str]:
    return [r.rule_id for r in gate.decision.results if r.blocking]


def _add_gold_items(admin, eval_set, history: pd.DataFrame, truth: np.ndarray, config: DemoConfig) -> int:
    """Gold items: eval rows whose right answer is known (the census label), judged by every reviewer."""
    rng = np.random.default_rng(config.seed + 7)
    eval_rows = np.asarray(_eval_rows(admin, eval_set))
    wrong = eval_rows[history["income"].to_numpy()[eval_rows] != truth[eval_rows]]
    right = eval_rows[history["income"].to_numpy()[eval_rows] == truth[eval_rows]]
    half = config.gold_items // 2
    chosen = [*rng.choice(wrong, min(half, len(wrong)), replace=False),
              *rng.choice(right, config.gold_items - min(half, len(wrong)), replace=False)]
    # The evidence is what a sampled example carries (the eval row as the gate's sampling writes it, with the
    # examples' strategy and ranks after theirs), so a reviewer cannot tell a gold item from the others; the
    # service gives it their rule, gate and priority.
    scored = pd.read_parquet(admin.prediction_set_path(eval_set)).set_index(eval_set.id_column, drop=False)
    sampled = [i.evidence for i in admin.list_review_items(model="income", version="1", kind="example")]
    strategy = sampled[0].get("strategy", "random") if sampled else "random"
    first_rank = max((int(e.get("rank", 0)) for e in sampled), default=0) + 1
    for rank, row in enumerate(chosen, start=first_rank):
        recorded, true = int(history["income"].iloc[row]), int(truth[row])
        answer = {"verdict": "label_correct"} if recorded == true else {"verdict": "label_wrong", "label": true}
        values = {k: _plain(v) for k, v in scored.loc[row].items()}
        score = float(values[eval_set.score_column])
        admin.add_review_item(model="income", version="1", judgments=len(config.reviewers), gold=answer, evidence={
            "row": int(scored.index.get_loc(row)) + 1, "id": int(row), "label": recorded, "score": score,
            "prediction": int(score >= 0.5), "groups": {c: str(values[c]) for c in eval_set.sensitive},
            "features": {k: v for k, v in values.items()
                         if k not in (eval_set.label_column, eval_set.score_column, eval_set.id_column)},
            "strategy": strategy, "rank": rank, "prediction_set": eval_set.id})
    return len(chosen)


def _judge_everything(home: Path, model: str, truth: np.ndarray, config: DemoConfig, report) -> dict[str, Any]:
    """Each open item: the reviewers it needs claim it in turn and judge. A reviewer knows the true label
    with probability `accuracy` (else believes the opposite); a recorded label that differs from what
    they believe is corrected."""

    rng = random.Random(config.seed)
    names = list(config.reviewers)
    judgments = corrections = 0
    viewer = _as(home, "victor")
    # escalations are the engineers' (the loop stopped), not something a reviewer can claim
    items = [i for i in viewer.list_review_items(model=model, status="open") if i.kind != "escalation"]
    for index, item in enumerate(items):
        for turn in range(item.judgments_required):
            name = names[(index + turn) % len(names)]
            reviewer = _as(home, name)
            reviewer.claim_review_item(item_id=item.id)
            accuracy = config.reviewers[name]
            if item.kind == "rule_failure":
                reviewer.judge_review_item(item_id=item.id, verdict="model_wrong",
                                           comment=f"confirmed: {item.rule_id} fails; the examples show where")
            else:
                row = int(item.evidence["id"])
                believed = int(truth[row]) if rng.random() < accuracy else 1 - int(truth[row])
                recorded = int(item.evidence["label"])
                if believed != recorded:
                    reviewer.judge_review_item(
                        item_id=item.id, verdict="label_wrong", label=believed,
                        comment=f"simulated reviewer (accuracy {accuracy:.0%}): label is {believed}")
                    corrections += 1
                else:
                    reviewer.judge_review_item(item_id=item.id, verdict="label_correct",
                                               comment=f"simulated reviewer (accuracy {accuracy:.0%}): label stands")
            judgments += 1
    report(f"{len(items)} review items judged by {', '.join(names)}")
    return {"items": len(items), "judgments": judgments, "corrections": corrections,
            "reviewer_accuracy": dict(config.reviewers)}


def _eval_rows(service, eval_set) -> list[int]:
    """Positions in the training file of a trained version's eval predictions (their row ids)."""
    frame = pd.read_parquet(service.prediction_set_path(eval_set), columns=[eval_set.id_column])
    return frame[eval_set.id_column].astype(int).tolist()


def _headline(metric_set) -> dict[str, Any]:
    out = {}
    for record in metric_set.records:
        if record.metric in HEADLINE_METRICS and record.group is None and record.family != "drift":
            key = record.metric if record.feature is None else f"{record.metric}[{record.feature}]"
            out[key] = {"value": record.value, "ci_low": record.ci_low, "ci_high": record.ci_high}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    return None if isinstance(value, float) and np.isnan(value) else value


def _acs_monitoring(home: Path, tmp: Path, config: DemoConfig, report) -> dict[str, Any]:
    from policies import resolve

    engineer = _as(home, "erin")
    frame = load_acs()
    artifact = tmp / "acs-shipped-model.txt"
    artifact.write_text("The employment model shipped with the nannyml ACS extract; its scores are the "
                        "predicted_probability column of acs_employment_ma_every20th.csv.gz.\n")
    engineer.register_model(name="employment", description="ACS Massachusetts employment (shipped model)",
                            risk_tier="medium")
    engineer.register_version(model="employment", version="1", artifact=artifact)
    roles = ColumnRoles(label="employed", score="predicted_probability", sensitive=ACS_SENSITIVE,
                        features=ACS_FEATURES, intersections=(ACS_SENSITIVE,))  # also SEX*RAC1P
    base = frame[frame["year"] == 2015].reset_index(drop=True)
    for split, part in (("reference", base.iloc[::2]), ("eval", base.iloc[1::2])):
        path = tmp / f"acs-2015-{split}.parquet"
        part.to_parquet(path, index=False)
        engineer.ingest(model="employment", version="1", file=path, split=split, roles=roles)
    engineer.evaluate(model="employment", version="1", resamples=config.resamples, seed=config.seed)
    gate = engineer.gate(model="employment", version="1", policy=resolve("default"))
    blocked_by = [r.rule_id for r in gate.decision.results if r.blocking]
    report(f"employment v1 (ACS 2015): gate {gate.decision.verdict.upper()}"
           + (f" by {', '.join(blocked_by)}" if blocked_by else ""))
    for result in gate.decision.results:  # what the gate found, intersections (SEX*RAC1P) included
        if result.status != "passed":
            report(f"  {result.rule_id} {result.status}: {result.reason}")
    released = override_until = None
    if gate.decision.verdict == "passed":
        for reviewer in list(config.reviewers)[:2]:
            _as(home, reviewer).sign_off(model="employment", version="1", decision="approve",
                                                             comment="2015 evaluation within the default policy")
        released = engineer.release(model="employment", version="1").version
    else:  # the shipped model is in use already: an admin keeps it in service, marked, for 30 days
        override = _as(home, "admin").release(
            model="employment", version="1", override=True, expires=datetime.now(UTC) + OVERRIDE_DAYS,
            reason=f"shipped model already in service; {', '.join(blocked_by)} finding under review")
        released, override_until = override.version, f"{override.override_expires:%Y-%m-%d}"
        report(f"employment v1 kept in production on an admin override until "
               f"{override.override_expires:%Y-%m-%d} (reason: {override.override_reason})")
    batches = _acs_batches(engineer, frame, roles, tmp, report)
    return {"gate": {"verdict": gate.decision.verdict, "blocked_by": blocked_by,
                     "findings": [f"{r.rule_id} {r.status}: {r.reason}" for r in gate.decision.results
                                  if r.status != "passed" and r.rule_id not in LET_PASS]},
            "released": released, "override_until": override_until,
            "version": _headline(engineer.latest_evaluation(model="employment", version="1")[1]), "batches": batches}


LET_PASS = ("no-auc-regression", "retrain-auc-cost")  # a first version has nothing to compare with: not a finding


def _acs_batches(engineer, frame, roles: ColumnRoles, tmp: Path, report) -> list[dict[str, Any]]:
    """2016-2018 arrive as production batches without labels: monitored (drift, label-free fairness) with
    their performance estimated (CBPE); then the outcomes arrive by person id (2017's in two parts) and the
    realised metrics are recorded beside the estimates."""
    batches, ids = [], {}
    unlabelled = replace(roles, label=None, id="id")
    for year in (2016, 2017, 2018):
        rows = frame[frame["year"] == year]
        path = tmp / f"acs-{year}.parquet"
        rows.drop(columns=[roles.label or "employed"]).to_parquet(path, index=False)
        batch = engineer.ingest(model="employment", version="1", file=path, split="production", roles=unlabelled,
                                batch_time=f"{year}-07-01")  # mid-year: the year the batch stands for
        _, records, alert = engineer.monitor(model="employment", version="1", batch=batch.id)
        share = records.find("drift", "share_of_drifted_columns")
        drifted = share.detail.get("drifted_columns", []) if share else []
        estimated = records.find("estimated", "accuracy")
        ids[year] = batch.id
        batches.append({"year": year, "rows": batch.row_count, "batch": batch.id,
                        "share_of_drifted_columns": share.value if share else None,
                        "drifted_columns": drifted, "alert": alert,
                        "estimated_accuracy": estimated.value if estimated else None,
                        "estimated_band": [estimated.ci_low, estimated.ci_high] if estimated else None,
                        "estimation": records.params.get("estimation", {})})
        band = f" [{estimated.ci_low:.3f}, {estimated.ci_high:.3f}]" if estimated and estimated.ci_low else ""
        report(f"  batch {year}: {batch.row_count:,} rows without labels, drifted columns "
               f"{', '.join(drifted) or 'none'}"
               + (f" → drift alert {alert}" if alert else "")
               + (f"; estimated accuracy {estimated.value:.3f}{band}" if estimated else "; not estimated"))
    for entry in batches:  # the outcomes arrive
        year = entry["year"]
        outcomes = frame[frame["year"] == year][["id", roles.label or "employed"]]
        parts = [outcomes.iloc[: len(outcomes) // 2], outcomes.iloc[len(outcomes) // 2:]] if year == 2017 \
            else [outcomes]
        for number, part in enumerate(parts, 1):
            path = tmp / f"acs-{year}-outcomes-{number}.csv"
            part.to_csv(path, index=False)
            arrived = engineer.labels(model="employment", version="1", file=path, batch=ids[year], id_column="id",
                                      label=roles.label or "employed")
            records = arrived.metrics
            report(f"  labels {year} ({number}/{len(parts)}): {arrived.arrival.labelled_total:,} of "
                   f"{arrived.batch_rows:,} rows labelled; realised accuracy "
                   f"{_value(records, 'performance', 'accuracy'):.3f} vs estimated "
                   f"{entry['estimated_accuracy']:.3f}")
        entry.update(labelled=arrived.arrival.labelled_total, arrivals=len(parts),
                     accuracy=_value(records, "performance", "accuracy"), ece=_value(records, "calibration", "ece"))
    return batches


def _value(records, family: str, metric: str) -> float | None:
    found = records.find(family, metric)
    return found.value if found else None


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as text: per version the headline metrics with intervals and the gate verdict."""
    income = summary["income"]
    columns = [("accuracy", "accuracy"), ("ROC AUC", "roc_auc"), ("ECE", "ece"),
               ("parity gap sex", "demographic_parity_difference[sex]"),
               ("parity gap race", "demographic_parity_difference[race]"),
               ("eq. odds gap sex", "equalized_odds_difference[sex]")]

    def cell(metrics: dict, key: str, interval: bool = True) -> str:
        found = metrics.get(key)
        if not found or found["value"] is None:
            return "n/a"
        if interval and found["ci_low"] is not None:
            return f"{found['value']:.3f} [{found['ci_low']:.3f}, {found['ci_high']:.3f}]"
        return f"{found['value']:.3f}"

    lines = [f"govern demo: {summary['seconds']:.0f} s; store {summary['home']}", "",
             f"income (UCI Adult, {income['rows']:,} rows; the history records {income['flipped_labels']:,} women "
             f"earning >50K as <=50K). Each version's stored evaluation, 95% bootstrap intervals:"]
    header = f"  {'version':<8}{'gate':<9}{'blocked by':<16}" + "".join(f"{name:<24}" for name, _ in columns[:5])
    lines.append(header)
    for name, version in income["versions"].items():
        lines.append(f"  {name:<8}{version['gate'] or '-':<9}{', '.join(version['blocked_by']) or '-':<16}"
                     + "".join(f"{cell(version['metrics'], key):<24}" for _, key in columns[:5]))
        if version.get("challenger"):
            lines.append(f"  {'':<8}{'its challenger (LR)':<25}"
                         + "".join(f"{cell(version['challenger']['metrics'], key):<24}" for _, key in columns[:5]))
    if any(v.get("challenger") for v in income["versions"].values()):
        lines.append("  challenger (LR): the logistic regression `govern train` fits on the version's training rows, "
                     "scored on its eval rows; challenger-auc warns when a version is more than 0.02 ROC AUC below it")
    lines += ["", "  On the first version's eval rows, against the recorded and the true (census) labels:",
              f"  {'model':<32}{'labels':<17}" + "".join(f"{name:<18}" for name, _ in columns)]
    for model, by_labels in income["comparison"].items():
        for labels, metrics in by_labels.items():
            lines.append(f"  {model:<32}{labels:<17}"
                         + "".join(f"{cell(metrics, key, False):<18}" for _, key in columns))
    for round_ in income["rounds"]:
        panel = round_["panel"]
        jobs = ", ".join(f"{j['job']} {j['status']}" + (f" → v{j['version']}" if j.get("version") else "")
                         for j in round_["jobs"]) or "no job ran"
        lines.append(f"  round {round_['round']}: v{round_['version_gated']} blocked → {panel['items']} review items, "
                     f"{panel['judgments']} judgments, {panel['corrections']} label corrections; {jobs}")
    agreement = income["agreement"]
    alpha = agreement["krippendorff_alpha"]
    lines.append(f"  reviewers: Krippendorff's alpha {'n/a' if alpha is None else f'{alpha:.3f}'} on "
                 f"{agreement['items']} items judged by several; gold accuracy "
                 + ", ".join(f"{r['reviewer']} {r['gold_accuracy']:.0%}" for r in agreement["reviewers"]))
    if income.get("release"):
        lines.append(f"  released: income v{income['release']['version']}, approved by "
                     f"{' and '.join(income['release']['approvals'])}")
    else:
        lines.append("  not released: the loop did not reach a passing gate")
    employment = summary["employment"]
    lines += ["", f"employment (ACS Massachusetts, a shipped model): v1 on 2015 gate {employment['gate']['verdict']}"
              + (f", in production on an admin override until {employment['override_until']}"
                 if employment.get("override_until") else ", released" if employment["released"] else "")
              + "; production batches against 2015:",
              *(f"  {finding}" for finding in employment["gate"].get("findings", [])),
              "  (ingested without labels: accuracy estimated (CBPE, ±3 sampling errors), then realised once the "
              "outcomes arrived)",
              f"  {'year':<6}{'rows':>7}  {'drifted share':<15}{'estimated accuracy':<24}{'realised':<10}{'ECE':<8}"
              f"{'alert':<18}drifted columns"]
    for batch in employment["batches"]:
        share = batch["share_of_drifted_columns"]
        band = batch.get("estimated_band") or [None, None]
        estimated = "n/a" if batch.get("estimated_accuracy") is None else (
            f"{batch['estimated_accuracy']:.3f}" + (f" [{band[0]:.3f}, {band[1]:.3f}]" if band[0] is not None else ""))
        lines.append(f"  {batch['year']:<6}{batch['rows']:>7,}  {'n/a' if share is None else f'{share:.2f}':<15}"
                     f"{estimated:<24}{batch['accuracy']:<10.3f}{batch['ece']:<8.3f}{batch['alert'] or '-':<18}"
                     f"{', '.join(batch['drifted_columns']) or '-'}")
    audit = summary["audit"]
    lines += ["", f"audit chain {'intact' if audit['ok'] else 'BROKEN'}: {audit['events']} events, "
                  f"head {audit['head'][:16]}…",
              f"dashboard: govern --home {summary['home']} dashboard   (http://localhost:8501)",
              f"  sign in as rosa or ravi (reviewers), erin (engineer), audrey (auditor), victor (viewer) or admin; "
              f"password {summary['password']}"]
    return "\n".join(lines)
