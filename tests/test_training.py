"""The torch trainer: reproducible, and each strategy does what it claims on data built to need it."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from tests.support.frames import biased
from training.trainer import TrainConfig, TrainedModel, group_shift, train

FEATURES = ["x", "z", "sex", "c"]


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


def test_the_adult_data_loads_whole():
    from governance.demo import load_adult

    frame = load_adult()
    assert len(frame) == 48_842 and set(frame["income"].unique()) == {0, 1}
    assert frame["income"].mean() == pytest.approx(0.239, abs=0.002)


def test_group_offsets_narrow_the_spread_of_selection_rates_at_the_least_expected_cost(data, plain):
    from training.search import fit_offsets

    logits = plain.calibrated_logits(data)
    groups = data["sex"].to_numpy()
    rates = lambda z: {g: float(np.mean(z[groups == g] > 0)) for g in ("f", "m")}  # noqa: E731
    before = rates(logits)
    spread = abs(before["f"] - before["m"])
    overall = float(np.mean(logits > 0))
    p = 1 / (1 + np.exp(-logits))

    def expected_accuracy(z: np.ndarray) -> float:  # what the calibrated scores expect of the decisions
        return float(np.mean(np.where(z > 0, p, 1 - p)))

    for strength in (0.5, 1.0):
        offsets = fit_offsets(logits, data, ["sex"], strength)
        shifted = logits + group_shift(data, offsets)
        after = rates(shifted)
        # the spread shrinks to (1 - strength) of what it was (within a few rows' share)
        assert abs(after["f"] - after["m"]) == pytest.approx((1 - strength) * spread, abs=0.01)
        # no cheaper than moving both groups that share of the way to the overall rate: the old rule
        proportional = {g: before[g] + strength * (overall - before[g]) for g in before}
        old = logits + group_shift(data, {"sex": {g: -float(np.quantile(logits[groups == g], 1 - proportional[g]))
                                                  for g in proportional}})
        # (the band is placed on a grid of BAND_STEPS positions: to within about a row per group)
        assert expected_accuracy(shifted) >= expected_accuracy(old) - 2 / len(data)
    assert spread > 0.1  # the fixture is unfair enough for this to mean something
    assert fit_offsets(logits, data, ["sex"], 0.0) == {}  # strength 0 moves no group


def test_the_band_moves_only_groups_outside_it_and_places_it_where_most_decisions_hold():
    from training.search import _band

    rng = np.random.default_rng(0)
    # three groups' calibrated scores in decision order; their rates are the share of scores over 0.5
    scored = {g: np.sort(rng.beta(a, b, size=n))[::-1] for g, (a, b, n) in
              {"low": (2, 5, 400), "mid": (4, 4, 3000), "high": (5, 2, 600)}.items()}
    groups = {g: (float(np.mean(s > 0.5)), s) for g, s in scored.items()}
    targets = _band(groups, 0.5)
    rate = {g: r for g, (r, _) in groups.items()}
    width = 0.5 * (rate["high"] - rate["low"])
    final = {g: targets.get(g, rate[g]) for g in rate}
    assert max(final.values()) - min(final.values()) == pytest.approx(width, abs=1e-9)
    assert "mid" not in targets  # the big middle group sits inside the band: it keeps its decisions

    def gain(g: str, t: float) -> float:
        k = int(round(t * len(scored[g])))
        return float(scored[g][:k].sum() + (1 - scored[g][k:]).sum())

    chosen = sum(gain(g, final[g]) for g in rate)
    for start in np.linspace(rate["low"], rate["high"] - width, 50):  # no other placement does better
        assert chosen >= sum(gain(g, min(max(rate[g], start), start + width)) for g in rate) - 1.0
    assert _band({"only": groups["mid"]}, 1.0) == {}


def test_at_a_low_threshold_the_band_weighs_errors_as_the_threshold_does_and_does_not_level_down():
    from training.search import _band

    rng = np.random.default_rng(1)
    # a rare label decided at 0.15: the groups' calibrated scores in decision order, rates 11 % and 54 %
    scored = {g: np.sort(rng.beta(a, b, size=2000))[::-1] for g, (a, b) in {"low": (1, 14), "high": (2, 9)}.items()}
    groups = {g: (float(np.mean(s > 0.15)), s) for g, s in scored.items()}
    rate = {g: r for g, (r, _) in groups.items()}
    assert rate["low"] < 0.15 < 0.5 < rate["high"]

    def value(final: dict[str, float], threshold: float) -> float:  # expected weighted accuracy, up to a constant
        return sum(float(np.sum(2 * (scored[g][:int(round(t * len(scored[g])))] - threshold)))
                   for g, t in final.items())

    common = {t: {g: _band(groups, 1.0, t).get(g, rate[g]) for g in rate} for t in (0.15, 0.5)}
    assert len({round(r, 9) for r in common[0.15].values()}) == 1  # strength 1: one rate for both
    for start in np.linspace(rate["low"], rate["high"], 60):  # no other common rate does better at 0.15
        assert value(common[0.15], 0.15) >= value({g: start for g in rate}, 0.15) - 0.5
    # counted as plain accuracy (every selection below 0.5 a loss) the band sank to the lower group's rate
    assert common[0.5]["high"] == pytest.approx(rate["low"], abs=0.01)
    assert common[0.15]["high"] > rate["low"] + 0.15


def test_weighted_accuracy_is_accuracy_at_one_half_and_weighs_errors_by_the_threshold_elsewhere():
    from sklearn.metrics import accuracy_score, confusion_matrix

    from governance.aim import weighted_accuracy

    rng = np.random.default_rng(2)
    labels, scores = (rng.random(5000) < 0.07).astype(int), rng.random(5000) ** 3
    assert weighted_accuracy(labels, scores, 0.5) == pytest.approx(accuracy_score(labels, scores >= 0.5), abs=1e-12)
    for threshold in (0.05, 0.15, 0.8):
        _, fp, fn, _ = confusion_matrix(labels, scores >= threshold).ravel()
        assert weighted_accuracy(labels, scores, threshold) == pytest.approx(
            1 - 2 * (threshold * fp + (1 - threshold) * fn) / len(labels), abs=1e-12)
    # calibrated scores of a rare label: deciding at 0.15 is less accurate than selecting nobody, and better
    # weighted (what choosing 0.15 says a missed positive costs)
    calibrated = rng.beta(1, 14, size=20_000)
    outcome = (rng.random(20_000) < calibrated).astype(int)
    nobody = np.zeros(20_000)
    assert accuracy_score(outcome, calibrated >= 0.15) < accuracy_score(outcome, nobody >= 0.15)
    assert weighted_accuracy(outcome, calibrated, 0.15) > weighted_accuracy(outcome, nobody, 0.15)
    assert weighted_accuracy(labels[:0], scores[:0], 0.15) is None


def test_the_search_judges_cross_fitted_offsets_on_every_held_out_row(data):
    from training.search import Verdict, fit_offsets, search
    from training.trainer import split_indices

    frame = data.assign(row=np.arange(len(data)))
    config = TrainConfig(epochs=2, strategies=("recalibrate",), sensitive=("sex",))
    judged: list[tuple[pd.DataFrame, np.ndarray]] = []
    references: list[np.ndarray] = []

    def judge(rows: pd.DataFrame, scores: np.ndarray, reference: np.ndarray) -> Verdict:
        judged.append((rows, scores))
        references.append(reference)
        return Verdict(False, 1.0 / len(judged), {"accuracy": 0.5})  # each closer to passing: the last is kept

    found = search(frame, label="y", features=FEATURES, config=config, judge=judge, offsets_for=("sex",))
    splits = split_indices(len(frame), config)
    validation, calibration = frame.iloc[splits["validation"]], frame.iloc[splits["calibration"]]
    # every candidate is judged on the validation and calibration rows together, none it trained on
    assert all(list(rows["row"]) == [*validation["row"], *calibration["row"]] for rows, _ in judged)
    # beside the first candidate's scores there (no offsets): what regression rules compare with, like for like
    assert all(reference is references[0] for reference in references)
    np.testing.assert_array_equal(references[0], judged[0][1])
    model = found.model
    val_logits, cal_logits = model.calibrated_logits(validation), model.calibrated_logits(calibration)
    strength = found.candidates[-1].offset_strength
    assert strength > 0
    # the validation rows are judged with offsets fitted on the calibration rows only, and the other way round
    from_calibration = fit_offsets(cal_logits, calibration, ["sex"], strength)
    from_validation = fit_offsets(val_logits, validation, ["sex"], strength)
    expected = 1 / (1 + np.exp(-np.concatenate([val_logits + group_shift(validation, from_calibration),
                                                cal_logits + group_shift(calibration, from_validation)])))
    np.testing.assert_allclose(judged[-1][1], expected, rtol=1e-9)
    # the candidate kept shifts by offsets fitted on both
    assert found.chosen is found.candidates[-1]
    both = pd.concat([validation, calibration])
    assert model.offsets == fit_offsets(np.concatenate([val_logits, cal_logits]), both, ["sex"], strength)


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


class _PerColumnMLP(torch.nn.Module):
    """The model as it was before the embeddings shared one table: one nn.Embedding per column, the
    layers in a Sequential. The reference the fast model must equal, and the layout of stored artifacts."""

    def __init__(self, n_numeric, cardinalities, hidden=(64, 32)):
        super().__init__()
        self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(c, min(16, (c + 1) // 2)) for c in cardinalities)
        width, layers = n_numeric + sum(e.embedding_dim for e in self.embeddings), []
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU(), torch.nn.Dropout(0.1)]
            width = size
        self.body = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))

    def forward(self, numbers, codes):
        parts = [numbers] + [e(codes[:, i]) for i, e in enumerate(self.embeddings)]
        return self.body(torch.cat(parts, dim=1)).squeeze(1)


def _inputs(cardinalities, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.stack([torch.randint(0, c, (n,), generator=g) for c in cardinalities], dim=1)
    return torch.randn(n, 4, generator=g), codes


def test_the_shared_embedding_table_equals_per_column_embeddings_forward_and_backward():
    from training.model import TabularMLP
    cards = [3, 40, 2, 9, 201]
    torch.manual_seed(1)
    reference = _PerColumnMLP(4, cards).eval()
    fast = TabularMLP(4, cards).eval()
    fast.load_state_dict(reference.state_dict())  # an artifact written before the table loads as it was
    assert set(fast.state_dict()) == set(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(fast.state_dict()[key], value), key
    numbers, codes = _inputs(cards)
    assert torch.equal(fast(numbers, codes), reference(numbers, codes))
    with torch.no_grad():  # as a stored model scores
        assert torch.equal(fast(numbers, codes), reference(numbers, codes))
    weights = torch.rand(len(numbers))
    (fast(numbers, codes) * weights).sum().backward()
    (reference(numbers, codes) * weights).sum().backward()
    for i, embedding in enumerate(reference.embeddings):  # the custom backward's gradient, per column
        start = sum(cards[:i])
        assert torch.allclose(fast.table.grad[start:start + cards[i], :embedding.embedding_dim],
                              embedding.weight.grad, atol=1e-6)
    padding = torch.ones_like(fast.table, dtype=torch.bool)
    for i, card in enumerate(cards):
        padding[sum(cards[:i]):sum(cards[:i]) + card, :min(16, (card + 1) // 2)] = False
    assert not fast.table.grad[padding].any()  # the padding never learns


def test_a_state_dict_of_the_wrong_shape_is_refused():
    from training.model import TabularMLP
    with pytest.raises(RuntimeError, match="embeddings.1.weight"):
        TabularMLP(4, [3, 40]).load_state_dict(_PerColumnMLP(4, [3, 41]).state_dict())


def test_one_flat_adamw_step_is_the_per_parameter_adamw_step():
    from training.model import TabularMLP
    from training.trainer import _flatten, _optimizer
    cards = [5, 12]
    torch.manual_seed(2)
    flat_model, plain_model = TabularMLP(4, cards), TabularMLP(4, cards)
    plain_model.load_state_dict(flat_model.state_dict())
    flat = _flatten(flat_model)
    config = TrainConfig(learning_rate=0.01, weight_decay=0.1)
    flat_optimizer = _optimizer(flat, config)
    plain_optimizer = torch.optim.AdamW(plain_model.parameters(), lr=0.01, weight_decay=0.1)
    for step in range(5):
        numbers, codes = _inputs(cards, n=64, seed=step)
        flat.grad.zero_()
        plain_optimizer.zero_grad()
        flat_model.eval()(numbers, codes).square().mean().backward()
        plain_model.eval()(numbers, codes).square().mean().backward()
        flat_optimizer.step()
        plain_optimizer.step()
    for key, value in plain_model.state_dict().items():
        assert torch.allclose(flat_model.state_dict()[key], value, atol=1e-6), key


def test_dropout_masks_drop_the_configured_share_and_keep_the_expected_value():
    from training.trainer import _DropoutMasks
    chunks = list(_DropoutMasks([64, 32], 0.25, seed=3, device="cpu").chunks(70_000, 512))
    # chunks of whole batches that tile the epoch
    assert [(begin, end) for begin, end, _ in chunks] == [(0, 65_536), (65_536, 70_000)]
    first, second = chunks[0][2]
    assert first.shape == (65_536, 64) and second.shape == (65_536, 32)
    drawn = torch.cat([torch.cat(m, dim=1) for _, _, m in chunks])
    assert drawn.shape == (70_000, 96)
    assert abs(float((drawn == 0).float().mean()) - 0.25) < 0.005
    assert abs(float(drawn.mean()) - 1.0) < 0.01  # inverted dropout: the expected activation is unchanged
    again = torch.cat([torch.cat(m, dim=1) for _, _, m in _DropoutMasks([64, 32], 0.25, 3, "cpu").chunks(70_000, 512)])
    assert torch.equal(drawn, again)
    assert [(begin, end) for begin, end, _ in _DropoutMasks([64, 32], 0.25, 3, "cpu").chunks(1000, 300)] == \
        [(0, 1000)]  # 65,536 // 300 whole batches of 300 a chunk
    assert all(m is None for _, _, m in _DropoutMasks([64], 0.0, 3, "cpu").chunks(1000, 512))


def test_dropout_masks_drawn_ahead_are_the_masks_drawn_in_place():
    from training.trainer import _DropoutMasks

    def epochs(masks, plan):
        return [torch.cat([torch.cat(m, dim=1) for _, _, m in masks.chunks(rows, 512)]) for rows in plan]

    plan = [70_000, 70_000, 30_000, 140_000]  # several chunks an epoch, and epochs of other sizes (curriculum)
    in_place = epochs(_DropoutMasks([64, 32], 0.25, 3, "cpu"), plan)
    ahead = _DropoutMasks([64, 32], 0.25, 3, "cpu")
    with ahead.drawn_ahead(plan, 512):
        drawn = epochs(ahead, plan)
    assert all(torch.equal(a, b) for a, b in zip(in_place, drawn))
    # leaving early (early stopping) stops the thread, and masks are then drawn in place again
    early = _DropoutMasks([64, 32], 0.25, 3, "cpu")
    with early.drawn_ahead(plan, 512):
        first = epochs(early, plan[:1])
    assert torch.equal(first[0], in_place[0]) and early._ahead is None
    assert not any(t.name == "govern-dropout-masks" for t in threading.enumerate())
    # asked for rows the plan does not hold: an error, not masks drawn for other rows
    wrong = _DropoutMasks([64], 0.25, 3, "cpu")
    with wrong.drawn_ahead([1_000], 512), pytest.raises(RuntimeError, match="drawn for rows"):
        epochs(wrong, [2_000])
    beyond = _DropoutMasks([64], 0.25, 3, "cpu")
    with beyond.drawn_ahead([1_000], 512), pytest.raises(RuntimeError, match="beyond the epochs planned"):
        epochs(beyond, [1_000, 1_000])


def test_an_error_drawing_masks_ahead_reaches_the_training_thread(monkeypatch):
    from training.trainer import _DropoutMasks
    masks = _DropoutMasks([64], 0.25, 3, "cpu")
    monkeypatch.setattr(masks, "_keep", lambda rows, width: (_ for _ in ()).throw(MemoryError("no room")))
    with masks.drawn_ahead([1_000], 512), pytest.raises(MemoryError, match="no room"):
        list(masks.chunks(1_000, 512))


def test_fit_encode_equals_fit_spec_then_encode():
    from training.data import encode, fit_encode, fit_spec
    rng = np.random.default_rng(4)
    n = 2000
    frame = pd.DataFrame({
        "age": rng.integers(18, 90, n).astype(float), "flag": rng.random(n) > 0.5,
        "city": rng.choice(["a", "b", None, "c"], n),
        "mixed": rng.choice(np.array([1, "1", 2.5, "x"], dtype=object), n),
        "wide": [f"id{i}" for i in range(n)], "count": rng.integers(0, 5, n)})
    frame.loc[::7, "age"] = np.nan
    rows = rng.permutation(n)[:1200]
    outside = np.setdiff1d(np.arange(n), rows)
    frame["rare"] = "common"
    frame.loc[outside[:3], "rare"] = "only outside the fitted rows"
    frame.loc[rows[:2], "rare"] = "fitted"
    features = list(frame.columns)
    spec, numbers, codes = fit_encode(frame, features, rows)
    expected = fit_spec(frame.iloc[rows], features)
    assert spec == expected
    assert spec.vocab["rare"] == ["common", "fitted"]
    assert "wide" not in spec.categorical  # too many levels: left out, as fit_spec does
    expected_numbers, expected_codes = encode(frame, expected)
    assert torch.equal(numbers, expected_numbers) and torch.equal(codes, expected_codes)


def test_sensitive_group_codes_number_the_values_text_in_sorted_order():
    from training.trainer import _column_codes
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "int": rng.choice([9, 10, -3, 2**62, 0], 500), "small": rng.choice([1, 2, 10], 500).astype(np.int8),
        "unsigned": rng.choice([3, 2**63 + 5], 500).astype(np.uint64),
        "text": rng.choice(["b", "a", "10", "9"], 500), "float": rng.choice([1.0, -0.0, 0.0, np.nan], 500),
        "nullable": pd.array(rng.choice([1, 2, None], 500), dtype="Int64"),
        "mixed": rng.choice(np.array([1, 1.0, True, "1", None], dtype=object), 500)})
    codes = _column_codes(frame, list(frame.columns))
    for j, column in enumerate(frame.columns):  # the oracle: every row made text, then factorised sorted
        assert np.array_equal(codes[:, j], pd.factorize(frame[column].astype(str), sort=True)[0]), column


def test_training_runs_on_one_cpu_thread_and_restores_torch_setting(data):
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(data, label="y", features=FEATURES, config=TrainConfig(epochs=1),
              on_epoch=lambda *_: seen.append(torch.get_num_threads()), device="cpu")
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_the_written_out_gradients_equal_autograd_through_the_model_the_loss_and_the_penalty(dropout):
    from training.model import TabularMLP
    from training.steps import score_gap_gradient
    from training.trainer import _DropoutMasks, _numbered_across, _score_gap
    cards = [3, 40, 2, 9]
    torch.manual_seed(5)
    model = TabularMLP(4, cards, hidden=(16, 8, 4), dropout=dropout).train()
    numbers, codes = _inputs(cards, n=257)
    masks = next(iter(_DropoutMasks(model.hidden_widths, dropout, 0, "cpu").chunks(257, 257)))[2]
    g = torch.Generator().manual_seed(6)
    y, w = (torch.rand(257, generator=g) > 0.6).float(), torch.rand(257, generator=g)
    # three groups in one column, one in the other (a gap of 0): both ends of max and min exercised
    groups = torch.stack([torch.randint(0, 3, (257,), generator=g), torch.zeros(257, dtype=torch.long)], dim=1)
    logits = model(numbers, codes, masks)
    loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).sum() / w.sum()
    (loss + 0.7 * _score_gap(logits, groups, 3.0, [4, 2])).backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad.fill_(float("nan"))  # every gradient must be written, none left from autograd's pass
    with torch.no_grad():
        written, saved = model.forward_saving(numbers, codes, masks)
        assert torch.allclose(written, logits, atol=1e-6)
        across, column_of_group = (torch.from_numpy(a) for a in _numbered_across(groups.numpy(), [4, 2]))
        grad = (torch.sigmoid(written) - y) * w / w.sum() + 0.7 * score_gap_gradient(written, across,
                                                                                        column_of_group, 3.0)
        model.backward_into(saved, grad)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, expected[name], atol=1e-6), name


def test_the_search_keeps_the_best_calibrated_of_the_candidates_as_accurate_within_a_standard_error():
    from training.search import Candidate, _choose

    def candidate(name: str, accuracy: float, ece: float, robust: bool = True) -> Candidate:
        return Candidate(name, 0.0, False, 0.0, True, 0.0, {"accuracy": accuracy, "ece": ece}, [], robust)

    tried = [candidate("sharp", 0.660, 0.072), candidate("calibrated", 0.652, 0.045),
             candidate("poor", 0.600, 0.010), candidate("lucky but fragile", 0.700, 0.001, robust=False)]
    # 900 rows judged: a standard error of accuracy is 0.016, so 0.652 ties with 0.660 and its ECE decides
    assert _choose(tried, 900).strategy == "calibrated"
    # 12,000 rows: the error is 0.004 and the most accurate is kept; a pass without margin never beats one with
    assert _choose(tried, 12_000).strategy == "sharp"


def test_the_search_keeps_the_candidate_whose_errors_cost_least_at_the_threshold_not_the_most_accurate():
    from training.search import Candidate, _choose

    def candidate(name: str, accuracy: float, weighted: float | None) -> Candidate:
        metrics = {"accuracy": accuracy, "ece": 0.02} | ({} if weighted is None else {"weighted_accuracy": weighted})
        return Candidate(name, 0.0, False, 0.0, True, 0.0, metrics, [], True, margin=2.0)

    # a rare label decided at 0.15: selecting almost no one is the most accurate and misses most positives
    tried = [candidate("selects almost no one", 0.922, 0.835), candidate("keeps its recall", 0.863, 0.871)]
    assert _choose(tried, 5000).strategy == "keeps its recall"
    # candidates recorded before the weighing are chosen on accuracy, as they were
    assert _choose([candidate("a", 0.922, None), candidate("b", 0.863, None)], 5000).strategy == "a"


def test_with_no_candidate_two_standard_errors_clear_the_search_prefers_one_over_a_pass_on_the_bound():
    from training.search import Candidate, _choose

    def candidate(name: str, accuracy: float, margin: float | None) -> Candidate:
        return Candidate(name, 0.0, False, 0.0, margin is not None, 0.0, {"accuracy": accuracy, "ece": 0.02}, [],
                         margin == 2.0, margin=margin)

    tried = [candidate("on the bound", 0.80, 0.0), candidate("one error clear", 0.78, 1.0),
             candidate("fails", 0.90, None)]
    assert _choose(tried, 12_000).strategy == "one error clear"
    assert _choose([*tried, candidate("two errors clear", 0.70, 2.0)], 12_000).strategy == "two errors clear"
    assert _choose(tried[:1] + tried[2:], 12_000).strategy == "on the bound"


def test_the_compiled_step_and_the_same_step_run_as_python_train_the_same_weights(data, monkeypatch):
    from training import steps
    config = TrainConfig(epochs=3, batch_size=100, dropout=0.2, strategies=("fairness_penalty",), sensitive=("sex",))
    compiled = train(data, label="y", features=FEATURES, config=config)
    assert isinstance(steps.compiled_chunk(), torch.jit.ScriptFunction)  # the suite's torch compiles it
    monkeypatch.setitem(steps._compiled, "chunk", steps.chunk)
    as_python = train(data, label="y", features=FEATURES, config=config)
    assert all(torch.equal(compiled.state[k], as_python.state[k]) for k in compiled.state)


def test_an_optimizer_without_the_fused_kernel_takes_the_same_steps(data, monkeypatch):
    import training.trainer as trainer
    config = TrainConfig(epochs=3, batch_size=100, strategies=("fairness_penalty",), sensitive=("sex",))
    fused = train(data, label="y", features=FEATURES, config=config)
    monkeypatch.setattr(trainer, "_optimizer", lambda flat, config: torch.optim.AdamW(
        [flat], lr=config.learning_rate, weight_decay=config.weight_decay, foreach=False))
    stepwise = train(data, label="y", features=FEATURES, config=config)
    assert all(torch.allclose(fused.state[k], stepwise.state[k], atol=1e-5) for k in fused.state)
    assert not all(torch.equal(fused.state[k], stepwise.state[k]) for k in fused.state)  # it did take the other path


def test_whole_number_codes_stored_as_floats_are_noted_like_integer_ones():
    # A new user's trial: statsmodels ships occupation codes as 1.0 to 6.0, and `train` said nothing of them.
    from governance.service.training import _codes_taken_as_amounts

    rng = np.random.default_rng(0)
    codes = rng.integers(1, 7, 300).astype(float)
    frame = pd.DataFrame({"occupation": np.where(rng.random(300) < 0.1, np.nan, codes),  # gaps allowed
                          "rate": codes + 0.5,  # not whole: an amount
                          "age": rng.normal(40, 10, 300).round(1), "flag": codes > 3})
    notes = _codes_taken_as_amounts(frame, ["occupation", "rate", "age", "flag"], [])
    assert len(notes) == 1 and notes[0].startswith("whole-number column 'occupation' (6 values) was trained as amounts")
    assert _codes_taken_as_amounts(frame, ["occupation"], ["occupation"]) == []
