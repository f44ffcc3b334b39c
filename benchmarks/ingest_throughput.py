"""Ingest throughput: N prediction rows with 10 columns, from CSV and from Parquet (and with --wide, a
5-row CSV of that many columns: a hostile trial's 9,993 columns had taken over 300 s).

Each ingest runs as a whole `govern ingest` process (start-up, validation, Parquet
normalisation, the store transaction), the way CI and users call it; the in-process service
time is reported too. Prints one line per format and, with --json, a JSON object.

    python benchmarks/ingest_throughput.py [--rows 1000000] [--wide 10000] [--json]
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
    parser.add_argument("--wide", type=int, default=0,
                        help="also time a 5-row CSV with this many feature columns (at most 10,000 in all)")
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
        if args.wide:
            wide = tmp_path / "wide.csv"
            columns = [f"f{i}" for i in range(args.wide)]
            wide.write_text(",".join(["id", "label", "score", "sex", *columns]) + "\n" + "".join(
                ",".join([str(r), str(r % 2), "0.5", "ab"[r % 2], *(str((r * 7 + i) % 9) for i in range(args.wide))])
                + "\n" for r in range(5)))
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "governance.cli", "--home", str(home), "--as", "bench", "ingest", "bench",
                 "1", str(wide), "--split", "eval", "--id", "id", "--label", "label", "--score", "score",
                 "--sensitive", "sex"], check=True, stdout=subprocess.DEVNULL, env=cli_env(admin))
            results["wide_csv"] = {"rows": 5, "columns": args.wide + 4,
                                   "process_seconds": round(time.perf_counter() - started, 2)}

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for fmt, r in results.items():
            if fmt == "wide_csv":
                print(f"wide CSV {r['rows']} rows x {r['columns']:,} columns: whole process {r['process_seconds']} s")
                continue
            print(f"{fmt:8} {r['rows']:>10,} rows {r['file_mb']:>7} MB  whole process {r['process_seconds']:>6} s "
                  f"= {r['rows_per_second']:>10,} rows/s   (service call {r['service_seconds']} s "
                  f"= {r['service_rows_per_second']:,} rows/s)")


if __name__ == "__main__":
    main()
