"""The torch trainer: reproducible, and each strategy does what it claims on data built to need it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from training.trainer import TrainConfig, TrainedModel, train

FEATURES = ["x", "z", "sex", "c"]


def biased(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Labels depend on x and z, and on sex through a biased labelling process."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "sex": rng.choice(["f", "m"], n),
                          "c": rng.choice(list("abc"), n)})
    logit = 1.5 * frame["x"] - frame["z"] + np.where(frame["sex"] == "m", 1.0, -0.8)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def gap(model: TrainedModel, frame: pd.DataFrame) -> float:
    scores = model.predict(frame)
    return abs(scores[frame["sex"] == "m"].mean() - scores[frame["sex"] == "f"].mean())


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return biased()


@pytest.fixture(scope="module")
def plain(data) -> TrainedModel:
    return train(data, label="y", features=FEATURES, config=TrainConfig(epochs=8))


def test_same_data_config_and_seed_give_the_same_weights(data, plain):
    again = train(data, label="y", features=FEATURES, config=TrainConfig(epochs=8))
    assert all(torch.equal(plain.state[k], again.state[k]) for k in plain.state)
    other = train(data, label="y", features=FEATURES, config=TrainConfig(epochs=8, seed=1))
    assert not all(torch.equal(plain.state[k], other.state[k]) for k in plain.state)


def test_a_model_survives_serialisation(data, plain):
    restored = TrainedModel.from_bytes(plain.to_bytes())
    np.testing.assert_array_equal(restored.predict(data), plain.predict(data))


def test_recalibrate_lowers_ece():
    # Few rows, a wide net and no early stop: an overconfident model that temperature scaling fixes.
    frame = biased(n=1500, seed=3)
    holdout = biased(n=4000, seed=4)
    config = TrainConfig(epochs=60, hidden=(256, 256), dropout=0.0, weight_decay=0.0, patience=1000,
                         learning_rate=3e-3, strategies=("recalibrate",))
    model = train(frame, label="y", features=FEATURES, config=config)
    assert model.temperature > 1  # it was overconfident
    logits = model.logits(holdout)
    target = torch.tensor(holdout["y"].to_numpy())
    before = binary_calibration_error(torch.sigmoid(logits), target, n_bins=15)
    after = binary_calibration_error(torch.from_numpy(model.predict(holdout)), target, n_bins=15)
    assert after < before


@pytest.mark.parametrize("strategy", ["reweight", "fairness_penalty"])
def test_fairness_strategies_shrink_the_parity_gap(data, plain, strategy):
    model = train(data, label="y", features=FEATURES,
                  config=TrainConfig(epochs=8, strategies=(strategy,), sensitive=("sex",), fairness_weight=2.0))
    assert gap(model, data) < 0.6 * gap(plain, data)


def test_curriculum_runs_its_stages_in_order_from_the_easiest(data):
    model = train(data, label="y", features=FEATURES,
                  config=TrainConfig(epochs=9, strategies=("curriculum",), curriculum_stages=3, curriculum_start=0.4))
    stages = [(h["stage"], h["stage_rows"]) for h in model.history if "stage" in h]
    assert [s for s, _ in stages] == sorted(s for s, _ in stages) and {s for s, _ in stages} == {0, 1, 2}
    sizes = [rows for _, rows in dict(stages).items()]
    assert sizes == sorted(sizes) and sizes[0] == round(0.4 * 2400) and sizes[-1] == 2400


def test_early_stopping_and_cancel(data):
    stopped = train(data, label="y", features=FEATURES, config=TrainConfig(epochs=200, patience=1))
    assert stopped.history[-1]["stopped"] == "early stopping" and len(stopped.history) < 100
    cancelled = train(data, label="y", features=FEATURES, config=TrainConfig(epochs=50),
                      on_epoch=lambda epoch, total, record: epoch < 2)
    assert cancelled.history[-1] == {"epoch": 2, "stopped": "cancelled"}


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="unknown strategies"):
        TrainConfig(strategies=("dropout",))
    with pytest.raises(ValueError, match="need the sensitive columns"):
        TrainConfig(strategies=("reweight",))


def test_the_adult_benchmark_data_loads_whole():
    from benchmarks.adult import load_adult

    frame = load_adult()
    assert len(frame) == 48_842 and set(frame["income"].unique()) == {0, 1}
    assert frame["income"].mean() == pytest.approx(0.239, abs=0.002)


def test_group_offsets_move_selection_rates_toward_the_overall_rate(data, plain):
    from training.search import fit_offsets, group_shift

    logits = plain.calibrated_logits(data)
    rates = lambda z: {g: float(np.mean(z[data["sex"] == g] > 0)) for g in ("f", "m")}  # noqa: E731
    before = rates(logits)
    overall = float(np.mean(logits > 0))
    for strength in (0.5, 1.0):
        offsets = fit_offsets(logits, data, ["sex"], strength)
        after = rates(logits + group_shift(data, offsets))
        for group in ("f", "m"):  # each group's rate moved `strength` of the way (within a row's share)
            assert after[group] == pytest.approx(before[group] + strength * (overall - before[group]), abs=0.01)
    assert abs(after["f"] - after["m"]) < 0.02 < abs(before["f"] - before["m"])


def test_offsets_travel_with_the_model_and_need_their_columns(data, plain):
    from dataclasses import replace

    shifted = replace(plain, offsets={"sex": {"f": 0.7, "m": -0.2}})
    restored = TrainedModel.from_bytes(shifted.to_bytes())
    assert restored.offsets == shifted.offsets
    np.testing.assert_allclose(restored.predict(data), shifted.predict(data))
    base = plain.predict(data)
    assert (restored.predict(data)[data["sex"].to_numpy() == "f"] > base[data["sex"].to_numpy() == "f"]).all()
    with pytest.raises(ValueError, match="shifts scores per group of sex"):
        restored.predict(data.drop(columns=["sex"]))


def test_an_artifact_cannot_carry_code(tmp_path):
    import io
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    buffer = io.BytesIO()
    torch.save({"state": {}, "body": Boom()}, buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(pickle.UnpicklingError):
        TrainedModel.from_bytes(buffer.getvalue())
