"""`evaluate` on wide files: seconds against the number of feature columns, every feature drifted and probed.

Writes current and reference Parquet files of ROWS rows and N float features (plus label, score and a
sensitive column, the reference shifted by 0.1 standard deviations), then times `evaluation.evaluate` with
every feature drifted and probed for leakage, as `govern evaluate` does for a version's features. Ingest
accepts up to 10,000 columns: the time should grow in proportion to the width, not with its square.

    python benchmarks/evaluate_width.py [--columns 1000 3000 10000] [--rows 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import evaluate


def _write(path: Path, rows: int, columns: int, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.normal(shift, 1, rows) for i in range(columns)}
    data.update(y=rng.integers(0, 2, rows), p=rng.random(rows), g=rng.choice(["a", "b"], rows))
    pd.DataFrame(data).to_parquet(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[1_000, 3_000, 10_000])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for columns in args.columns:
            current, reference = Path(tmp) / f"cur{columns}.parquet", Path(tmp) / f"ref{columns}.parquet"
            _write(current, args.rows, columns, 0.1, 1)
            _write(reference, args.rows, columns, 0.0, 2)
            features = [f"f{i}" for i in range(columns)]
            started = time.perf_counter()
            found = evaluate(current=current, reference=reference, label="y", score="p", sensitive=["g"],
                             features=features, probe=features, resamples=5)
            seconds = time.perf_counter() - started
            results.append({"columns": columns, "rows": args.rows, "seconds": round(seconds, 2),
                            "ms_per_column": round(1000 * seconds / columns, 2), "records": len(found.records)})
            if not args.json:
                print(f"{columns:>6,} columns × {args.rows:,} rows: {seconds:6.1f} s "
                      f"({results[-1]['ms_per_column']} ms a column), {len(found.records):,} records", flush=True)
    load = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"results": results, "load_average": load}, indent=2))
    else:
        print(f"load average after: {', '.join(map(str, load))}")


if __name__ == "__main__":
    main()
