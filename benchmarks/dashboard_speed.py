"""How fast each dashboard page renders server-side on a large store (goal: under 1 s after first load).

Builds (or reuses, with --store) a store with 200 versions of one model holding 5M stored predictions
(25,000 eval predictions each, all evaluated with bootstrap intervals and gated with the default
pack, so there are review items and jobs), 12 monitored production batches for the newest version,
and audit events padded to 10,000. Then renders every page as an admin with Streamlit's AppTest
(the script run on the server, as a browser's request would trigger it): the first load (empty
cache) and then --repeats warm loads, and prints each page's times.

    python benchmarks/dashboard_speed.py [--versions 200] [--rows 25000] [--events 10000] [--store DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from synthetic import FEATURES, SENSITIVE, predictions

import dashboard
from governance.ingest import ColumnRoles
from governance.service import Service

APP = Path(dashboard.__file__).resolve().parent / "app.py"
ROLES = ColumnRoles(sensitive=tuple(SENSITIVE), features=tuple(FEATURES))


def build(home: Path, versions: int, rows: int, events: int) -> None:
    from policies import shipped_packs

    Service.open(home=home).init(admin="bench")
    service = Service.open(home=home, actor="bench")
    service.register_model(name="bench", description="benchmark model", risk_tier="medium")
    scratch = home.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    artifact = scratch / "model.bin"
    artifact.write_bytes(b"model")
    reference = scratch / "reference.parquet"
    predictions(rows, seed=10_000).to_parquet(reference, index=False)
    started = time.perf_counter()
    for number in range(1, versions + 1):
        version = str(number)
        service.register_version(model="bench", version=version, artifact=artifact,
                                 parent=str(number - 1) if number > 1 else None)
        path = scratch / "eval.parquet"
        predictions(rows, seed=number, shift=0.002 * number).to_parquet(path, index=False)
        service.ingest(model="bench", version=version, file=path, split="eval", roles=ROLES)
        if number == 1:
            service.ingest(model="bench", version=version, file=reference, split="reference", roles=ROLES)
        service.evaluate(model="bench", version=version, reference_version="1", resamples=50)
        service.gate(model="bench", version=version, policy=shipped_packs()["default"])
        if number % 20 == 0:
            print(f"  built {number}/{versions} versions ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    latest = str(versions)
    service.ingest(model="bench", version=latest, file=reference, split="reference", roles=ROLES)
    for month in range(1, 13):
        path = scratch / "batch.parquet"
        predictions(rows // 5, seed=50_000 + month, shift=0.05 * month).to_parquet(path, index=False)
        batch = service.ingest(model="bench", version=latest, file=path, split="production", roles=ROLES,
                               batch_time=f"2026-{month:02d}-01")
        service.monitor(model="bench", version=latest, batch=batch.id)
    pad_audit_log(service, events)


def pad_audit_log(service: Service, events: int) -> None:
    """Real chained events (action bench.note) until the log holds `events`, in units of 1,000."""
    while (count := service.verify_audit().event_count) < events:
        def unit(conn, count=count):
            for i in range(min(1000, events - count)):
                service._log(conn, "bench.note", "model:bench", {"note": count + i})

        service._run(unit)  # one witness line per 1,000 events, as a unit of work that logs them writes


def render_times(home: Path, repeats: int) -> list[tuple[str, float, list[float]]]:
    import logging

    logging.disable(logging.WARNING)  # AppTest's bare-mode warnings would bury the figures
    from streamlit.testing.v1 import AppTest

    from dashboard.app import PAGES


    os.environ["GOVERN_HOME"] = str(home)
    token = Service.open(home=home, actor="bench").create_token(user="bench", name="benchmark").secret
    results = []
    for page in PAGES:
        file, title = page.file, page.title
        times = []
        for _ in range(repeats + 1):
            at = AppTest.from_file(str(APP), default_timeout=300)
            at.session_state["govern.user"], at.session_state["govern.role"] = "bench", "admin"
            at.session_state["govern.token"] = token
            at.run()
            started = time.perf_counter()
            at.switch_page(f"views/{file}").run()
            times.append(time.perf_counter() - started)
            if at.exception:
                raise SystemExit(f"{title} raised: {at.exception[0].value}")
        results.append((title, times[0], times[1:]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--rows", type=int, default=25_000, help="Eval predictions per version.")
    parser.add_argument("--events", type=int, default=10_000, help="Audit events, at least.")
    parser.add_argument("--repeats", type=int, default=5, help="Warm renders per page.")
    parser.add_argument("--store", type=Path, help="Build the store here (or reuse it if it exists).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = (args.store or Path(tmp)) / "home"
        if not (home / "govern.duckdb").exists():
            print(f"building the store in {home}…", file=sys.stderr)
            started = time.perf_counter()
            build(home, args.versions, args.rows, args.events)
            print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        status = Service.open(home=home, actor="bench").verify_audit()
        versions = len(Service.open(home=home, actor="bench").list_versions(model="bench"))
        print(f"store: {versions} versions, {versions * args.rows:,} eval predictions "
              f"(+ reference and 12 production batches), {status.event_count:,} audit events")
        results = render_times(home, args.repeats)
    print(f"{'page':<22} {'first load':>11} {'warm median':>12} {'warm max':>9}")
    for title, first, warm in results:
        print(f"{title:<22} {first:>10.3f}s {statistics.median(warm):>11.3f}s {max(warm):>8.3f}s")
    worst = max(max(warm) for _, _, warm in results)
    print(f"slowest warm render: {worst:.3f} s — goal < 1 s: {'met' if worst < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
