"""Ingest throughput: N prediction rows with 10 columns, from CSV and from Parquet.

Each ingest runs as a whole `govern ingest` process (start-up, validation, Parquet
normalisation, the store transaction), the way CI and users call it; the in-process service
time is reported too. Prints one line per format and, with --json, a JSON object.

    python benchmarks/ingest_throughput.py [--rows 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import bench_store, cli_env, predictions

from governance.ingest import ColumnRoles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        frame = predictions(args.rows).rename_axis("id").reset_index()
        files = {"csv": tmp_path / "preds.csv", "parquet": tmp_path / "preds.parquet"}
        frame.to_csv(files["csv"], index=False)
        frame.to_parquet(files["parquet"], index=False)
        home, admin = bench_store(tmp_path)

        results = {}
        for fmt, path in files.items():
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "governance.cli", "--home", str(home), "--as", "bench", "ingest", "bench",
                 "1", str(path), "--split", "eval", "--id", "id", "--sensitive", "sex,race,age_band"],
                check=True, stdout=subprocess.DEVNULL, env=cli_env(admin),
            )
            process_s = time.perf_counter() - started
            started = time.perf_counter()
            admin.ingest(model="bench", version="1", file=path, split="eval",
                         roles=ColumnRoles(id="id", sensitive=("sex", "race", "age_band")))
            service_s = time.perf_counter() - started
            results[fmt] = {
                "rows": args.rows, "file_mb": round(path.stat().st_size / 2**20, 1),
                "process_seconds": round(process_s, 2), "rows_per_second": round(args.rows / process_s),
                "service_seconds": round(service_s, 2),
                "service_rows_per_second": round(args.rows / service_s),
            }

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for fmt, r in results.items():
            print(f"{fmt:8} {r['rows']:>10,} rows {r['file_mb']:>7} MB  whole process {r['process_seconds']:>6} s "
                  f"= {r['rows_per_second']:>10,} rows/s   (service call {r['service_seconds']} s "
                  f"= {r['service_rows_per_second']:,} rows/s)")


if __name__ == "__main__":
    main()
