"""How long the release gate takes beyond the evaluation, on a version with N eval predictions.

Ingests N synthetic predictions (and a reference set), evaluates once, then times the gate with a
policy that fails, so the gate also samples example rows from the N predictions and queues review
items and a job: in process (the service call) and as a whole `govern gate` process.

    python benchmarks/gate_speed.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import FEATURES, SENSITIVE, bench_store, cli_env, predictions

from governance.ingest import ColumnRoles

POLICY = """name: bench
version: 1
rules:
  - id: ece
    metric: calibration.ece
    max: 0.0001
    judge: ci_upper
    on_fail:
      review: {sample: 50, strategy: high_confidence_errors}
      retrain: {strategy: recalibrate}
  - id: parity
    metric: fairness.demographic_parity_difference
    feature: every
    max: 0.0001
    on_fail:
      review: {sample: 50, strategy: worst_group}
      retrain: {strategy: [reweight, fairness_penalty]}
  - {id: accuracy, metric: fairness.accuracy, feature: every, group: every, min: 0.5, min_samples: 100}
  - {id: drift, metric: drift.share_of_drifted_columns, max: 0.3}
  - {id: open, kind: open_reviews, max: 0}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        home, service = bench_store(tmp_path)
        roles = ColumnRoles(sensitive=tuple(SENSITIVE), features=tuple(FEATURES))
        for split, seed, shift in (("eval", 1, 0.1), ("reference", 2, 0.0)):
            path = tmp_path / f"{split}.parquet"
            predictions(args.rows, seed=seed, shift=shift).to_parquet(path, index=False)
            service.ingest(model="bench", version="1", file=path, split=split, roles=roles)
        started = time.perf_counter()
        service.evaluate(model="bench", version="1")
        evaluate_s = time.perf_counter() - started
        policy = tmp_path / "failing.yaml"
        policy.write_text(POLICY)
        service.assign_policy(policy=service.register_policy(file=policy).name, model="bench")  # binding gates run it
        started = time.perf_counter()
        outcome = service.gate(model="bench", version="1", policy=policy)
        gate_s = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "governance.cli", "--home", str(home), "--as", "bench", "gate", "bench",
                        "1", "--policy", str(policy)], stdout=subprocess.DEVNULL, env=cli_env(service))
        process_s = time.perf_counter() - started
    print(f"{args.rows:,} eval predictions: evaluate {evaluate_s:.2f} s; gate ({outcome.decision.verdict}, "
          f"{len(outcome.review_items)} review items, {len(outcome.jobs)} job) {gate_s:.3f} s in process, "
          f"{process_s:.2f} s as a whole `govern gate` process")


if __name__ == "__main__":
    main()
