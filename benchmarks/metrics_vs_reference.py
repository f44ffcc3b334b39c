"""`govern metrics` against the reference libraries doing the same work, as whole processes.

Generates N predictions (10 columns: label, score, 3 sensitive, 5 features) as current and
reference Parquet files, then times `govern metrics … --format json` and
benchmarks/reference_metrics.py (scikit-learn, torchmetrics, fairlearn, Evidently) on the same
files, checks every reference value against govern's record (1e-6 relative), and prints the
wall times, peak memory (max RSS) and the ratio.

    python benchmarks/metrics_vs_reference.py --rows 1000000
    python benchmarks/metrics_vs_reference.py --rows 10000000 --skip-reference
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import FEATURES, SENSITIVE, predictions


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"{command[1]} failed with status {status}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def compare(records: list[dict], reference: dict) -> tuple[int, list[str]]:
    """How many reference values govern matched, and the mismatches."""
    ours = {}
    for r in records:
        if r["metric"] == "reliability_bin":
            continue
        ours["|".join(map(str, (r["family"], r["metric"], r["feature"], r["group"])))] = r["value"]
    matched, mismatches = 0, []
    for key, value in reference.items():
        if "reliability_bin" in key:
            continue
        expected = value[0] if isinstance(value, list) else value
        got = ours.get(key)
        same = (got is None and (expected is None or math.isnan(expected))) or (
            got is not None and expected is not None and math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12))
        matched += same
        if not same:
            mismatches.append(f"{key}: govern {got} vs reference {expected}")
    return matched, mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-reference", action="store_true", help="time govern only (e.g. at 10M rows)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        current, reference = Path(tmp) / "current.parquet", Path(tmp) / "reference.parquet"
        print(f"generating {args.rows:,} rows …", file=sys.stderr)
        predictions(args.rows, seed=1, shift=0.1).to_parquet(current, index=False)
        predictions(args.rows, seed=2).to_parquet(reference, index=False)
        columns = ["--label", "label", "--score", "score", "--sensitive", ",".join(SENSITIVE),
                   "--features", ",".join(FEATURES)]
        print("timing govern metrics …", file=sys.stderr)
        govern_s, govern_mb, out = timed([sys.executable, "-m", "governance.cli", "metrics", str(current),
                                          "--reference", str(reference), *columns, "--format", "json"])
        records = json.loads(out)
        result = {"rows": args.rows, "govern_seconds": round(govern_s, 2), "govern_peak_mib": round(govern_mb),
                  "records": len(records)}
        if not args.skip_reference:
            print("timing the reference libraries (minutes) …", file=sys.stderr)
            ref_s, ref_mb, out = timed([sys.executable, str(Path(__file__).resolve().parent / "reference_metrics.py"),
                                        str(current), str(reference), *columns])
            body = json.loads(out)
            matched, mismatches = compare(records, body["values"])
            result |= {"reference_seconds": round(ref_s, 1), "reference_peak_mib": round(ref_mb),
                       "reference_breakdown_seconds": {k: round(v, 1) for k, v in body["timings"].items()},
                       "speedup": round(ref_s / govern_s, 1), "values_compared": matched + len(mismatches),
                       "values_equal": matched, "mismatches": mismatches[:10]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"rows {result['rows']:,}: govern metrics {result['govern_seconds']} s, "
          f"peak {result['govern_peak_mib']} MiB, {result['records']} records")
    if "speedup" in result:
        print(f"reference libraries {result['reference_seconds']} s, peak {result['reference_peak_mib']} MiB "
              f"({', '.join(f'{k} {v} s' for k, v in result['reference_breakdown_seconds'].items())})")
        print(f"speed-up {result['speedup']}x; values equal {result['values_equal']}/{result['values_compared']}")
        for line in result["mismatches"]:
            print("  mismatch:", line)


if __name__ == "__main__":
    main()
