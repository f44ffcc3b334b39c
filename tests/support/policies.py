"""Policy files several test modules gate with."""

# Fails on calibration (no model meets ece ≤ 0.0001): queues 4 example items and a recalibration job.
QUEUE_POLICY = """name: q
version: 1
rules:
  - id: ece
    metric: calibration.ece
    max: 0.0001
    on_fail:
      review: {sample: 4, strategy: high_confidence_errors}
      retrain: {strategy: recalibrate}
"""
# Passes on any better-than-chance model and asks for two approvals before a release.
RELEASE_POLICY = """name: r
version: 1
rules:
  - {id: auc, metric: performance.roc_auc, min: 0.5}
  - {id: two, kind: approvals, min: 2}
"""
