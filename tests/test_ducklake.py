"""The service on DuckLake (PostgreSQL catalog + Parquet files): the same operations as on the embedded
file, uniqueness kept without constraints, and one linear audit chain under concurrent writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from governance.errors import Conflict
from governance.service import Service
from tests.conftest import ACS_ROLES, USERS
from tests.postgres import Cluster
from tests.test_reviews import QUEUE_POLICY


@pytest.fixture(scope="module")
def cluster():
    started = Cluster()
    yield started
    started.stop()


@pytest.fixture
def lake(cluster, tmp_path, monkeypatch):
    """A new DuckLake store (its own PostgreSQL database and data folder) with one user per role."""
    monkeypatch.setenv("GOVERN_STORE", f"ducklake:postgres:{cluster.new_database()}")
    monkeypatch.setenv("GOVERN_DATA_PATH", str(tmp_path / "lake"))
    home = tmp_path / "home"
    Service.open(home=home).init(admin="ada")
    for user, role in USERS.items():
        if role != "admin":
            Service.open(home=home, actor="ada").add_user(name=user, role=role)
    Service.open(home=home, actor="eng").register_model(name="credit", risk_tier="high")
    (tmp_path / "model.bin").write_bytes(b"weights")
    return home, tmp_path


def test_the_loop_runs_on_ducklake(lake, acs_files):
    home, tmp_path = lake
    engineer = Service.open(home=home, actor="eng")
    status = engineer.status()
    assert status.database.startswith("ducklake:postgres:") and "m008_audit_head" in status.migrations
    engineer.register_version(model="credit", version="1", artifact=tmp_path / "model.bin")
    with pytest.raises(Conflict, match="already registered"):
        engineer.register_version(model="credit", version="1", artifact=tmp_path / "model.bin")
    current, reference = acs_files
    engineer.ingest(model="credit", version="1", file=current, split="eval", roles=ACS_ROLES)
    engineer.ingest(model="credit", version="1", file=reference, split="reference", roles=ACS_ROLES)
    _, records = engineer.evaluate(model="credit", version="1", resamples=10)
    (tmp_path / "queue.yaml").write_text(QUEUE_POLICY)
    outcome = engineer.gate(model="credit", version="1", policy=tmp_path / "queue.yaml")
    assert outcome.decision.verdict == "blocked" and outcome.review_items and outcome.jobs
    again = engineer.gate(model="credit", version="1", policy=tmp_path / "queue.yaml")
    assert again.review_items == outcome.review_items and again.jobs == outcome.jobs  # deduplicated
    reviewer = Service.open(home=home, actor="rey")
    item = outcome.review_items[0]
    reviewer.claim_review_item(item_id=item)
    reviewer.judge_review_item(item_id=item, verdict="model_wrong", comment="confirmed")
    assert reviewer.show_review_item(item_id=item).item.status in ("resolved", "open")
    stored = engineer.latest_evaluation(model="credit", version="1")[1]
    assert stored.sha256() == records.sha256()
    report = Service.open(home=home, actor="aud").verify_audit()
    assert report.ok and report.event_count > 10


def _register(home: str, store: str, data: str, worker: int, count: int, artifact: str, queue) -> None:
    import os

    os.environ["GOVERN_STORE"], os.environ["GOVERN_DATA_PATH"] = store, data
    service = Service.open(home=home, actor="eng", lock_timeout_s=120)
    outcomes = []
    for i in range(count):
        # every worker also tries one version all of them register: exactly one may win it
        for version in (f"w{worker}-{i}", "shared"):
            try:
                service.register_version(model="credit", version=version, artifact=Path(artifact))
                outcomes.append(("ok", version))
            except Conflict:
                outcomes.append(("conflict", version))
    queue.put(outcomes)


@pytest.mark.slow
def test_concurrent_writers_keep_one_linear_chain_and_unique_versions(lake, monkeypatch):
    import os

    home, tmp_path = lake
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_register, args=(str(home), os.environ["GOVERN_STORE"],
                                                   os.environ["GOVERN_DATA_PATH"], w, 5,
                                                   str(tmp_path / "model.bin"), queue)) for w in range(4)]
    for process in workers:
        process.start()
    results = [outcome for _ in workers for outcome in queue.get(timeout=600)]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    wins = [v for status, v in results if status == "ok"]
    assert sorted(v for v in wins if v != "shared") == sorted(f"w{w}-{i}" for w in range(4) for i in range(5))
    assert wins.count("shared") == 1  # one winner; every other attempt was refused in words
    versions = [v.version for v in Service.open(home=home, actor="vic").list_versions(model="credit")]
    assert sorted(versions) == sorted(set(versions)) and len(versions) == 21
    report = Service.open(home=home, actor="aud").verify_audit()
    assert report.ok, report.problem
    _, events = Service.open(home=home, actor="aud").audit_events(limit=10_000)
    assert len({e.prev_hash for e in events}) == len(events)  # no two events share a predecessor: no fork
    assert sum(1 for e in events if e.action == "version.register") == 21


def test_a_bad_store_setting_is_refused_in_a_sentence(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("GOVERN_STORE", "ducklake:mysql:db=x")
    result = run_cli(tmp_path / "home", "status", as_="ada")
    assert result.exit_code == 2 and "GOVERN_STORE must be empty" in result.output
