"""A store with a model trained through the service: the start of every retraining-loop test."""

from __future__ import annotations

from pathlib import Path

from governance.service import Service
from tests.support.frames import biased
from training.trainer import TrainConfig


def trained_store(tmp_path: Path, policy: str, *, rows: int, config: TrainConfig, resamples: int):
    """A store (users ada, eng, rey) with model m version 1 trained on biased data and evaluated, and
    `policy` registered and assigned to it; returns (home, data, train result, the policy file)."""
    home = tmp_path / "home"
    Service.open(home=home).init(admin="ada")
    admin = Service.open(home=home, actor="ada")
    admin.add_user(name="eng", role="engineer")
    admin.add_user(name="rey", role="reviewer")
    data = tmp_path / "biased.csv"
    biased(rows).to_csv(data, index=False)
    engineer = Service.open(home=home, actor="eng")
    result = engineer.train_version(model="m", data=data, label="y", sensitive=["sex"], config=config)
    engineer.evaluate(model="m", version="1", resamples=resamples)
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    admin.assign_policy(policy=admin.register_policy(file=path).name, model="m")
    return home, data, result, path
