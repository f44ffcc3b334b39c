"""The embedded DuckDB file against DuckLake (a private PostgreSQL 15 cluster + local Parquet files):
concurrent ingest throughput and metric computation, at 1M and 10M predictions.

Per store and size: 4 processes each ingest a quarter of the rows (as Parquet) into versions of their
own, at once; then one version holding all the rows in one eval set is evaluated (200 bootstrap
resamples, drift against a 100k-row reference). Needs PostgreSQL's binaries (Debian's postgresql).

    python benchmarks/store_compare.py [--sizes 1000000,10000000] [--processes 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from synthetic import FEATURES, SENSITIVE, predictions

from governance.ingest import ColumnRoles
from governance.service import Service

ROLES = ColumnRoles(sensitive=tuple(SENSITIVE), features=tuple(FEATURES))


def _ingest(home: str, env: dict, version: str, path: str, start, done) -> None:
    os.environ.update(env)
    service = Service.open(home=home, actor="bench", lock_timeout_s=600)
    service.status()  # connect (and load DuckLake's extensions) before the clock starts
    start.wait()
    service.ingest(model="bench", version=version, file=Path(path), split="eval", roles=ROLES)
    done.put(time.perf_counter())


def run(kind: str, rows: int, processes: int, folder: Path, env: dict, files: list[Path], whole: Path,
        reference: Path) -> dict:
    home = folder / f"{kind}-{rows}"
    os.environ.update(env)
    for key in ("GOVERN_STORE", "GOVERN_DATA_PATH"):
        if key not in env:
            os.environ.pop(key, None)
    Service.open(home=home).init(admin="bench")
    service = Service.open(home=home, actor="bench", lock_timeout_s=600)
    service.register_model(name="bench")
    artifact = folder / "model.bin"
    artifact.write_bytes(b"model")
    for p in range(processes):
        service.register_version(model="bench", version=f"p{p}", artifact=artifact)
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_ingest, args=(str(home), env, f"p{p}", str(files[p]), start, done))
               for p in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(15 if kind == "ducklake" else 5)  # every worker connected and waiting
    began = time.perf_counter()
    start.set()
    finished = max(done.get(timeout=3600) for _ in workers)
    for worker in workers:
        worker.join()
    ingest_s = finished - began
    service.register_version(model="bench", version="all", artifact=artifact)
    service.ingest(model="bench", version="all", file=whole, split="eval", roles=ROLES)
    service.ingest(model="bench", version="all", file=reference, split="reference", roles=ROLES)
    began = time.perf_counter()
    service.evaluate(model="bench", version="all")
    evaluate_s = time.perf_counter() - began
    return {"store": kind, "rows": rows, "ingest_s": ingest_s, "rows_per_s": rows / ingest_s, "evaluate_s": evaluate_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    from governance.local_postgres import Cluster

    cluster = Cluster()
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            reference = folder / "reference.parquet"
            predictions(100_000, seed=99).to_parquet(reference, index=False)
            for rows in (int(s) for s in args.sizes.split(",")):
                print(f"generating {rows:,} rows…", file=sys.stderr)
                files = []
                for p in range(args.processes):
                    path = folder / f"part{p}.parquet"
                    predictions(rows // args.processes, seed=p, shift=0.05).to_parquet(path, index=False)
                    files.append(path)
                whole = folder / "whole.parquet"
                import pyarrow.parquet as pq

                pq.write_table(pq.ParquetDataset([str(f) for f in files]).read(), whole)
                for kind in ("file", "ducklake"):
                    env = ({"GOVERN_STORE": f"ducklake:postgres:{cluster.new_database()}",
                            "GOVERN_DATA_PATH": str(folder / f"lake-{rows}")} if kind == "ducklake" else {})
                    print(f"  {kind}…", file=sys.stderr)
                    results.append(run(kind, rows, args.processes, folder, env, files, whole, reference))
                for path in [*files, whole]:
                    path.unlink()
    finally:
        cluster.stop()
    print(f"{'store':<10}{'predictions':>12}  {'concurrent ingest':>18}  {'rows/s':>10}  {'evaluate':>9}")
    for r in results:
        print(f"{r['store']:<10}{r['rows']:>12,}  {r['ingest_s']:>17.2f}s  {r['rows_per_s']:>10,.0f}  "
              f"{r['evaluate_s']:>8.2f}s")


if __name__ == "__main__":
    main()
