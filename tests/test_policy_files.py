"""Policy packs on disk: shipped packs, the published schema, and a corpus of malformed policies."""

from __future__ import annotations

import json

import pytest

from policies import SCHEMA_PATH, PolicyInvalid, load_policy, parse_policy, shipped_packs
from policies.schema import RULE_KINDS, json_schema


@pytest.mark.parametrize("name", ["default", "strict"])
def test_shipped_packs_are_valid(name, run_cli, tmp_path):
    loaded = load_policy(shipped_packs()[name])
    assert loaded.policy.rules
    result = run_cli(tmp_path, "policy", "validate", name)
    assert result.exit_code == 0 and result.stdout.startswith(f"valid: {loaded.policy.name} v{loaded.policy.version}")
    # the name a gate prints (strict-high-risk) is a reference to the same pack: a new user passed it back and
    # was told there is no such pack
    again = run_cli(tmp_path, "policy", "validate", loaded.policy.name)
    assert again.exit_code == 0 and again.stdout == result.stdout


def test_strict_pack_says_which_regulation_each_rule_serves():
    for rule in load_policy(shipped_packs()["strict"]).policy.rules:
        assert rule.serves and all(("EU AI Act" in s) or ("SR 11-7" in s) for s in rule.serves), rule.id


def test_published_schema_is_current_and_documents_every_rule_kind():
    published = json.loads(SCHEMA_PATH.read_text())
    assert published == json.loads(json.dumps(json_schema())), "run `python -m policies` to regenerate schema.json"
    for kind, cls in RULE_KINDS.items():
        assert cls.__name__ in published["$defs"], kind
        assert published["$defs"][cls.__name__]["properties"]["kind"]


HEAD = "name: p\nversion: 1\nrules:\n"
MALFORMED = {
    "unknown_metric": (HEAD + "  - {id: a, metric: calibration.eec, max: 0.1}",
                       "rule 'a' (line 4): metric: unknown metric 'calibration.eec'; known: calibration.brier_score, "
                       "calibration.ece, calibration.mce"),
    "unknown_key": (HEAD + "  - id: a\n    metric: calibration.ece\n    max: 0.1\n    maximum: 0.2",
                    "rule 'a' (line 7): unknown key 'maximum'"),
    "unknown_operator": (HEAD + "  - id: a\n    metric: calibration.ece\n    lt: 0.1",
                         "rule 'a' (line 6): unknown key 'lt'"),
    "kind_not_a_name": (HEAD + "  - {id: l, kind: [leakage]}",
                        "rule 'l' (line 4): unknown kind ['leakage'] (known: metric, approvals, open_reviews, "
                        "leakage, degenerate)"),
    "nan_bound": (HEAD + "  - {id: a, metric: calibration.ece, max: .nan}",
                  "rule 'a' (line 4): max: Input should be a finite number"),
    "favourable_bound": (HEAD + "  - {id: a, metric: performance.accuracy, min: 0.7, judge: ci_upper}",
                         "rule 'a' (line 4): judge: ci_upper on a min rule judges the favourable bound, which is "
                         "looser than the point estimate; use judge: ci_lower (or point)"),
    # the gate prints the version and the log keeps it: a U+202E had shown it backwards
    "reversed_version": (HEAD.replace("version: 1", "version: \"v1\u202ed\"") + "  - {id: a, metric: calibration.ece, "
                         "max: 0.1}", "line 2: version: give a whole number, or a label of up to 64 letters, digits "
                         "and . _ - starting with a letter or digit"),
    # the gate judges no estimated.* rule: such a pack passed every release with nothing judged
    "monitoring_only": (HEAD + "  - {id: a, metric: estimated.accuracy, min: 0.8}",
                        "every rule is a monitoring rule (estimated.*, judged on production batches), so a release "
                        "gate under this pack would judge nothing and pass; add a rule on the eval evidence (for "
                        "example calibration.ece)"),
    # bounds no value meets: a typo that blocks every release
    "accuracy_above_one": (HEAD + "  - {id: a, metric: performance.accuracy, min: 2}",
                           "rule 'a' (line 4): min 2 can never be met: performance.accuracy is never above 1"),
    "negative_maximum": (HEAD + "  - {id: a, metric: calibration.ece, max: -5}",
                         "rule 'a' (line 4): max -5 can never be met: calibration.ece is never below 0"),
    "unknown_kind": (HEAD + "  - {id: a, kind: approval, min: 2}",
                     "rule 'a' (line 4): unknown kind 'approval' (known: metric, approvals, open_reviews, "
                     "leakage, degenerate)"),
    "no_comparison": (HEAD + "  - {id: a, metric: calibration.ece}",
                      "rule 'a' (line 4): give exactly one of max, min or max_regression"),
    "two_comparisons": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, min: 0.0}",
                        "rule 'a' (line 4): give exactly one of max, min or max_regression"),
    "missing_feature": (HEAD + "  - {id: a, metric: fairness.demographic_parity_difference, max: 0.1}",
                        "rule 'a' (line 4): fairness.demographic_parity_difference is reported per feature: "
                        "name the feature"),
    "missing_group": (HEAD + "  - {id: a, metric: fairness.accuracy, feature: sex, min: 0.7}",
                      "rule 'a' (line 4): fairness.accuracy is reported per group: "
                      "give group (a value, every or worst)"),
    "group_on_feature_metric": (HEAD + "  - {id: a, metric: fairness.demographic_parity_difference, feature: sex, "
                                       "group: f, max: 0.1}",
                                "rule 'a' (line 4): fairness.demographic_parity_difference is not reported per group: "
                                "remove group"),
    "judge_without_interval": (HEAD + "  - {id: a, metric: drift.share_of_drifted_columns, max: 0.3, judge: ci_upper}",
                               "rule 'a' (line 4): drift.share_of_drifted_columns has no confidence interval: "
                               "judge must be point"),
    "bad_severity": (HEAD + "  - id: a\n    metric: calibration.ece\n    max: 0.1\n    severity: fatal",
                     "rule 'a' (line 7): severity: Input should be 'block' or 'warn'"),
    "bad_review_strategy": (HEAD + "  - id: a\n    metric: calibration.ece\n    max: 0.1\n    on_fail:\n"
                                   "      review: {strategy: random}",
                            "rule 'a' (line 7): on_fail.review.strategy: Input should be 'high_confidence_errors', "
                            "'uncertain' or 'worst_group'"),
    "bad_retrain_strategy": (HEAD + "  - id: a\n    metric: calibration.ece\n    max: 0.1\n    on_fail:\n"
                                    "      retrain: {strategy: dropout}",
                             "rule 'a' (line 7): on_fail.retrain.strategy.0: Input should be 'recalibrate', "
                             "'reweight', 'curriculum' or 'fairness_penalty'"),
    "negative_min_samples": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, min_samples: -5}",
                             "rule 'a' (line 4): min_samples: Input should be greater than or equal to 0"),
    # a hostile trial: a rule that can never judge (always insufficient, counted as its pack says) vanished
    "unreachable_min_samples": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, "
                                "min_samples: 9223372036854775807}",
                                "rule 'a' (line 4): min_samples: Input should be less than or equal to 1000000000"),
    "duplicate_ids": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1}\n  - {id: a, kind: approvals, min: 1}",
                      "rule 'a' (line 5): the id is used twice (first on line 4)"),
    "repeated_key": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, max: 0.9}",
                     "line 4: key 'max' is given twice in one mapping (first on line 4); give it once"),
    "repeated_top_key": ("name: p\nversion: 1\nversion: 2\nrules:\n  - {id: a, kind: approvals, min: 1}",
                         "line 3: key 'version' is given twice in one mapping (first on line 2); give it once"),
    "top_level_key": ("name: p\nversion: 1\nowner: me\nrules:\n  - {id: a, kind: approvals, min: 1}",
                      "line 3: unknown key 'owner' (allowed: description, name, rules, version)"),
    "unreachable_approvals": (HEAD + "  - {id: a, kind: approvals, min: 9223372036854775807}",
                              "rule 'a' (line 4): min: Input should be less than or equal to 1000"),
    "empty_rules": ("name: p\nversion: 1\nrules: []", "rules: give a non-empty list of rules"),
    # strict types: these were read as 0, 0.05 and 1
    "false_bound": (HEAD + "  - {id: a, metric: calibration.ece, max: false}",
                    "rule 'a' (line 4): max: Input should be a valid number"),
    "quoted_bound": (HEAD + "  - {id: a, metric: calibration.ece, max: '0.05'}",
                     "rule 'a' (line 4): max: Input should be a valid number"),
    "true_min_samples": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, min_samples: true}",
                         "rule 'a' (line 4): min_samples: Input should be a valid integer"),
    # a second, longer `rules:` list ended in IndexError, a scalar first one in AttributeError
    "repeated_rules": ("name: p\nversion: 1\nrules: 5\nrules:\n  - {id: a, kind: approvals, min: 1}\n"
                       "  - {id: b, kind: approvals, min: 1}",
                       "line 4: key 'rules' is given twice in one mapping (first on line 3); give it once"),
    # 4,000 hex digits validated, was assigned, and then every gate of the model failed
    "huge_hex": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, min_samples: 0x" + "f" * 4000 + "}",
                 "line 4: the number 0xffffffffffffffffffffff… is larger than any policy needs (at most "
                 "9,223,372,036,854,775,807)"),
    "huge_version": ("name: p\nversion: " + "1" + "0" * 41 + "\nrules:\n  - {id: a, kind: approvals, min: 1}",
                     "line 2: the number 100000000000000000000000… is larger than any policy needs (at most "
                     "9,223,372,036,854,775,807)"),
    "too_many_digits": (HEAD + "  - {id: a, metric: calibration.ece, max: 0.1, min_samples: " + "9" * 4400 + "}", None),
    "not_yaml": ("name: p\nrules: [\n", None),
    "not_a_mapping": ("- just\n- a list\n", None),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_policies_are_refused_naming_rule_and_line(case):
    text, problem = MALFORMED[case]
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(text, source="bad.yaml")
    message = str(caught.value)
    if problem is None:
        assert message.startswith("bad.yaml")
    else:
        assert message == f"bad.yaml is not a valid policy (1 problem):\n  - {problem}"


def test_merge_keys_may_be_overridden_and_anchors_reused_without_a_repeated_key():
    text = (HEAD + "  - &base {id: a, metric: calibration.ece, max: 0.1}\n"
            "  - <<: *base\n    id: b\n    max: 0.2\n")
    loaded = parse_policy(text, source="ok.yaml")
    assert [(r.id, r.max) for r in loaded.policy.rules] == [("a", 0.1), ("b", 0.2)]


def test_every_problem_is_reported_at_once():
    text = (HEAD + "  - {id: a, metric: nope.x, max: 1}\n  - {id: b, kind: approvals}\n"
            "  - {id: c, kind: open_reviews, max: -1}")
    with pytest.raises(PolicyInvalid, match=r"^bad.yaml is not a valid policy \(3 problems\)"):
        parse_policy(text, source="bad.yaml")


def test_a_bad_header_is_reported_with_the_bad_rules():
    # An outside trial: a pack with a bad name and a bad rule heard of its name only once the rule was fixed.
    text = 'name: ""\nversion: 0\nrules:\n  - {id: a, metric: nope.x, max: 1}\n'
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(text, source="bad.yaml")
    problems = str(raised.value).splitlines()[1:]
    assert problems[0].startswith("  - line 1: name: String should match pattern")
    assert problems[1].startswith("  - line 2: version")
    assert problems[-1].startswith("  - rule 'a' (line 4): metric: unknown metric 'nope.x'")
    with pytest.raises(PolicyInvalid, match=r"\(1 problem\):\n  - line 1: name: Field required$"):
        parse_policy("version: 1\nrules:\n  - {id: a, metric: calibration.ece, max: 0.1}\n", source="x.yaml")


def test_cli_validate_says_a_missing_file_does_not_exist(tmp_path, run_cli):
    result = run_cli(tmp_path, "policy", "validate", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and result.stderr == f"error: policy {tmp_path / 'missing.yaml'} does not exist.\n"


def test_cli_validate_exits_2_with_the_problems(tmp_path, run_cli):
    path = tmp_path / "bad.yaml"
    path.write_text(MALFORMED["unknown_operator"][0])
    result = run_cli(tmp_path, "policy", "validate", path)
    assert result.exit_code == 2
    assert result.stderr == ("error: bad.yaml is not a valid policy (1 problem):\n"
                             "  - rule 'a' (line 6): unknown key 'lt'\n")
