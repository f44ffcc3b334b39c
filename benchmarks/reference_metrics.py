"""The reference libraries doing what `govern metrics` does, for benchmarks/metrics_vs_reference.py.

scikit-learn (performance), torchmetrics (ECE, MCE), fairlearn (MetricFrame per sensitive column
plus the parity metrics) and Evidently 0.7 (ValueDrift per column with its default test and with
psi, DriftedColumnsCount). Prints a JSON object {key: value} keyed like govern's records.

    python benchmarks/reference_metrics.py CURRENT REFERENCE --label L --score S --sensitive A,B --features X,Y
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.simplefilter("ignore")  # before the imports: the reference libraries warn as they load

import pandas as pd  # noqa: E402

from evaluation import reference as oracles  # noqa: E402  (the same oracles the test suite trusts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("current")
    parser.add_argument("reference")
    parser.add_argument("--label", required=True)
    parser.add_argument("--score", required=True)
    parser.add_argument("--sensitive", default="")
    parser.add_argument("--features", default="")
    args = parser.parse_args()
    sensitive = [c for c in args.sensitive.split(",") if c]
    features = [c for c in args.features.split(",") if c]
    started = time.perf_counter()
    current, reference = pd.read_parquet(args.current), pd.read_parquet(args.reference)
    y, p = current[args.label].to_numpy(), current[args.score].to_numpy(dtype=float)
    timings, values = {}, {}

    t = time.perf_counter()
    values.update(oracles.classification_oracle(y, p, 0.5))
    timings["scikit-learn + torchmetrics"] = time.perf_counter() - t
    t = time.perf_counter()
    for feature in sensitive:
        values.update(oracles.fairness_oracle(y, p, current[feature], feature, 0.5))
    timings["fairlearn"] = time.perf_counter() - t
    t = time.perf_counter()
    columns = features + sensitive
    both = columns + [args.label, args.score]
    values.update(oracles.drift_oracle(current[both], reference[both], columns + [args.score, args.label], columns))
    timings["evidently"] = time.perf_counter() - t
    timings["total in process"] = time.perf_counter() - started
    print(json.dumps({"timings": timings, "values": {"|".join(map(str, k)): v for k, v in values.items()}},
                     default=float))


if __name__ == "__main__":
    main()
