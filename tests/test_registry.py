"""Models, versions, artifacts by sha256, training datasets and lineage."""

from __future__ import annotations

import hashlib
import json

import pytest

from governance.errors import Conflict, InvalidInput, NotFound
from tests.support.frames import german_frame
from tests.support.stores import snapshot


def test_version_stores_artifact_and_training_data_by_content(store, tmp_path):
    training = tmp_path / "train.csv"
    training.write_text("age,income,label\n30,1.5,0\n41,2.5,1\n52,,1\n")
    version = store.as_("eng").register_version(model="credit", version="2", artifact=store.artifact,
                                                 training_data=training, parent="1")
    artifact_sha = hashlib.sha256(store.artifact.read_bytes()).hexdigest()
    assert version.artifact_sha256 == artifact_sha
    assert (store.home / "artifacts" / "sha256" / artifact_sha[:2] / artifact_sha).read_bytes() == \
        store.artifact.read_bytes()

    detail = store.as_("vic").show_version(model="credit", version="2")
    assert detail.version.parent_version == "1" and detail.version.created_by == "eng"
    assert detail.training_data.sha256 == hashlib.sha256(training.read_bytes()).hexdigest()
    assert detail.training_data.row_count == 3
    assert detail.training_data.columns == {"age": "BIGINT", "income": "DOUBLE", "label": "BIGINT"}


def test_real_training_data_is_profiled(store, tmp_path):
    training = tmp_path / "german.csv"
    german_frame().to_csv(training, index=False)
    store.as_("eng").register_version(model="credit", version="g", artifact=store.artifact, training_data=training)
    detail = store.as_("vic").show_version(model="credit", version="g")
    assert detail.training_data.row_count == 1000
    assert len(detail.training_data.columns) == 21
    assert detail.training_data.columns["a02"] == "BIGINT" and detail.training_data.columns["a01"] == "VARCHAR"


def test_same_version_number_twice_is_a_conflict(store, tmp_path):
    new = tmp_path / "new.bin"
    new.write_bytes(b"an artifact the store has never seen")
    before = snapshot(store.home)
    with pytest.raises(Conflict, match="^version '1' of model 'credit' is already registered.$"):
        store.as_("eng").register_version(model="credit", version="1", artifact=new)
    with pytest.raises(NotFound, match="parent version '99'"):
        store.as_("eng").register_version(model="credit", version="7", artifact=new, parent="99")
    assert snapshot(store.home) == before  # the refused artifact was not left among the stored files


def test_unknown_parent_model_and_artifact_are_reported(unchanged_store, tmp_path):
    store = unchanged_store
    before = snapshot(store.home)
    engineer = store.as_("eng")
    with pytest.raises(NotFound, match="^parent version '7' of model 'credit' is not registered.$"):
        engineer.register_version(model="credit", version="2", artifact=store.artifact, parent="7")
    with pytest.raises(NotFound, match="^model 'nope' is not registered"):
        engineer.register_version(model="nope", version="1", artifact=store.artifact)
    # a slip of case or a letter is pointed at the model there is, not at registering a second one
    for slip in ("Credit", "credt"):
        with pytest.raises(NotFound, match=f"^model '{slip}' is not registered; did you mean 'credit'\\?"):
            engineer.register_version(model=slip, version="1", artifact=store.artifact)
    with pytest.raises(NotFound, match="does not exist"):
        engineer.register_version(model="credit", version="3", artifact=tmp_path / "missing.bin")
    assert snapshot(store.home) == before


@pytest.mark.parametrize("bad", ["", "has space", "../escape", "-dash-first", "x" * 129, "y" * 5_000])
def test_names_are_validated(unchanged_store, bad):
    store = unchanged_store
    before = snapshot(store.home)
    with pytest.raises(InvalidInput, match="is not a valid name") as caught:
        store.as_("eng").register_model(name=bad)
    assert snapshot(store.home) == before
    assert len(str(caught.value)) < 250  # a 5,000-character name was echoed whole


def test_duplicate_model_and_bad_risk_tier(unchanged_store):
    store = unchanged_store
    before = snapshot(store.home)
    with pytest.raises(Conflict, match="^model 'credit' is already registered; an admin changes its risk tier or "
                       "details with `govern model edit credit`.$"):
        store.as_("eng").register_model(name="credit")
    with pytest.raises(InvalidInput, match="^risk tier 'extreme' is not one of low, medium, high.$"):
        store.as_("eng").register_model(name="m", risk_tier="extreme")
    assert snapshot(store.home) == before


def test_cli_register_and_show_json(store, run_cli, tmp_path):
    result = run_cli(store.home, "model", "register", "fraud", "--description", "card fraud", "--risk-tier", "low",
                     "--owner", "rey", "--json", as_="eng")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owner"] == "rey"
    result = run_cli(store.home, "version", "register", "fraud", "1", "--artifact", store.artifact, as_="eng")
    assert result.exit_code == 0, result.output
    shown = json.loads(run_cli(store.home, "version", "show", "fraud", "1", "--json", as_="vic").stdout)
    assert shown["version"]["version"] == "1" and shown["prediction_sets"] == []
    listed = json.loads(run_cli(store.home, "version", "list", "fraud", "--json", as_="vic").stdout)
    assert [v["version"] for v in listed] == ["1"]


def test_cli_duplicate_version_exits_2(unchanged_store, run_cli):
    store = unchanged_store
    before = snapshot(store.home)
    result = run_cli(store.home, "version", "register", "credit", "1", "--artifact", store.artifact, as_="eng")
    assert result.exit_code == 2
    assert result.stderr == "error: version '1' of model 'credit' is already registered.\n"
    assert snapshot(store.home) == before
