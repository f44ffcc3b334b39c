"""Train the tabular MLP, seeded and reproducible, with the retraining strategies a job asks for.

Strategies (combinable): reweight (Kamiran-Calders reweighing of sensitive group × label cells),
fairness_penalty (per sensitive column, the gap in mean score between its groups, added to the loss and
to the validation objective that picks the epoch), curriculum (easy → hard by a reference model's loss,
growing the training set over stages) and recalibrate (temperature scaling on a held-out calibration
split, with an intercept too where the validation split says it calibrates better).
"""

from __future__ import annotations

import io
import json
import queue
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from training import steps
from training.data import TabularSpec, encode, fit_encode
from training.model import TabularMLP

STRATEGIES = ("recalibrate", "reweight", "curriculum", "fairness_penalty")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    patience: int = 5
    validation_fraction: float = 0.2
    calibration_fraction: float = 0.2
    seed: int = 0
    strategies: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    fairness_weight: float = 1.0
    fairness_sharpness: float = 3.0  # the penalty compares sigmoid(sharpness × logit): near the 0.5 decision
    curriculum_stages: int = 3
    curriculum_start: float = 0.4
    categorical: tuple[str, ...] = ()  # columns of numbers taken as category codes (RAC1P 1..9), not amounts

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}.")
        if {"reweight", "fairness_penalty"} & set(self.strategies) and not self.sensitive:
            raise ValueError("reweight and fairness_penalty need the sensitive columns.")


@dataclass
class TrainedModel:
    spec: TabularSpec
    config: TrainConfig
    state: dict[str, torch.Tensor]
    temperature: float = 1.0
    history: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # label, features, sensitive, split: how to retrain it alike
    bias: float = 0.0  # recalibration: probability = sigmoid(logit / temperature + bias)
    # post-processing (a retraining search's group offsets): column → group value → added to the logit
    offsets: dict[str, dict[str, float]] = field(default_factory=dict)

    def network(self) -> TabularMLP:
        model = TabularMLP(len(self.spec.numeric), self.spec.cardinalities(), self.config.hidden, self.config.dropout)
        model.load_state_dict(self.state)
        return model.eval()

    def logits(self, frame: pd.DataFrame) -> torch.Tensor:
        numbers, codes = encode(frame, self.spec)
        with torch.no_grad():
            return _eval_logits(self.network(), numbers, codes=codes)

    def calibrated_logits(self, frame: pd.DataFrame) -> np.ndarray:
        """The recalibrated logit per row, before any group offsets."""
        return (self.logits(frame) / self.temperature + self.bias).numpy().astype(np.float64)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class per row (group offsets added where the model
        has them: then the frame must carry the sensitive columns they name)."""
        if not self.offsets:
            return torch.sigmoid(self.logits(frame) / self.temperature + self.bias).numpy().astype(np.float64)
        missing = [c for c in self.offsets if c not in frame]
        if missing:
            raise ValueError(f"this model shifts scores per group of {', '.join(missing)}; "
                             "the rows to score must have those columns.")
        z = self.calibrated_logits(frame) + group_shift(frame, self.offsets)
        with np.errstate(over="ignore"):  # exp(-z) overflowing to inf for z far below 0 is a score of 0
            return 1.0 / (1.0 + np.exp(-z))

    def to_bytes(self) -> bytes:
        """The weights and, as canonical JSON, everything else: equal models give equal bytes (a retrain
        that changed nothing is recognised by its sha256)."""
        body = {"spec": self.spec.to_dict(), "config": asdict(self.config), "temperature": self.temperature,
                "bias": self.bias, "history": self.history, "meta": self.meta, "offsets": self.offsets}
        buffer = io.BytesIO()
        torch.save({"state": dict(sorted(self.state.items())),
                    "body": json.dumps(body, sort_keys=True, default=str)}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainedModel":
        """Load with torch's weights-only unpickler: an artifact can hold tensors and plain values, never code."""
        saved = torch.load(io.BytesIO(data), weights_only=True)
        body = json.loads(saved["body"]) if "body" in saved else saved  # earlier artifacts: a plain dict
        config = dict(body["config"])
        config.update(hidden=tuple(config["hidden"]), strategies=tuple(config["strategies"]),
                      sensitive=tuple(config["sensitive"]), categorical=tuple(config.get("categorical", ())))
        return cls(TabularSpec.from_dict(body["spec"]), TrainConfig(**config), saved["state"], body["temperature"],
                   body["history"], body.get("meta", {}), body.get("bias", 0.0), body.get("offsets", {}))


def group_shift(frame: pd.DataFrame, offsets: dict[str, dict[str, float]]) -> np.ndarray:
    """The summed logit offset of each row's groups (0 for groups, or columns, without one)."""
    shift = np.zeros(len(frame))
    for column, by_group in offsets.items():
        if column in frame:
            shift += frame[column].astype(str).map(by_group).fillna(0.0).to_numpy(dtype=float)
    return shift


def split_indices(n: int, config: TrainConfig) -> dict[str, np.ndarray]:
    """The validation, calibration and training rows `train` uses for `n` rows and `config`."""
    return _splits(n, config, np.random.default_rng(config.seed))


def _splits(n: int, config: TrainConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(n)
    n_val = int(n * config.validation_fraction)
    n_cal = int(n * config.calibration_fraction) if "recalibrate" in config.strategies else 0
    return {"validation": order[:n_val], "calibration": order[n_val:n_val + n_cal], "train": order[n_val + n_cal:]}


def _combined(codes: np.ndarray) -> np.ndarray:
    """One code per distinct row of per-column codes (mixed radix, then renumbered 0..k-1)."""
    combined = np.zeros(len(codes), dtype=np.int64)
    for column in codes.T:  # mixed radix: each column's codes are < its number of values
        combined = combined * (int(column.max()) + 1 if len(column) else 1) + column
    return np.unique(combined, return_inverse=True)[1].reshape(-1).astype(np.int64)


def reweighing(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Kamiran & Calders: w(g, y) = P(g) P(y) / P(g, y), so group and label look independent."""
    y = (np.asarray(labels) > 0.5).astype(np.int64)
    cells = np.asarray(groups, dtype=np.int64) * 2 + y
    n = len(y)
    cell_counts = np.bincount(cells, minlength=2 * (int(groups.max()) + 1 if n else 1)).astype(float)
    group_share = np.bincount(groups).astype(float)[groups] / n if n else np.ones(0)
    label_share = np.bincount(y, minlength=2).astype(float)[y] / n if n else np.ones(0)
    return group_share * label_share / (cell_counts[cells] / n) if n else np.ones(0)


def _column_codes(frame: pd.DataFrame, sensitive: Sequence[str]) -> np.ndarray:
    """(rows, columns) group codes, one column per sensitive column: its values' text, numbered in sorted order."""
    return np.stack([_text_codes(frame[c]) for c in sensitive], axis=1)


def _text_codes(values: pd.Series) -> np.ndarray:
    """pd.factorize(values.astype(str), sort=True)'s codes. A column of integers is factorised first and only
    its distinct values made text: 30x faster at a million rows than making every row a string."""
    if not pd.api.types.is_integer_dtype(values.dtype) or isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return pd.factorize(values.astype(str), sort=True)[0]
    found, uniques = pd.factorize(values)
    text_order = np.unique(np.array([str(u) for u in uniques], dtype=object), return_inverse=True)[1]
    return text_order.reshape(-1).astype(np.int64)[found]


def _score_gap(logits: torch.Tensor, codes: torch.Tensor, sharpness: float = 1.0,
               sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Sum over the sensitive columns of the largest difference in mean soft decision between that
    column's groups present (differentiable). With `sharpness` > 1, sigmoid(sharpness × logit) is a
    closer stand-in for the thresholded decision whose rate demographic parity compares. Group means
    come from one scatter-add per column (`sizes`: each column's number of codes), not a loop per group."""
    scores = torch.sigmoid(logits * sharpness)
    total = scores.sum() * 0.0
    for j in range(codes.shape[1]):
        column = codes[:, j]
        size = int(sizes[j]) if sizes is not None else int(column.max()) + 1
        sums = torch.zeros(size, dtype=scores.dtype, device=scores.device).index_add(0, column, scores)
        counts = torch.zeros(size, dtype=scores.dtype, device=scores.device).index_add(
            0, column, torch.ones_like(scores))
        present = counts > 0
        means = sums / counts.clamp(min=1)  # no host sync: absent groups are masked, one group gives 0
        highest = torch.where(present, means, torch.full_like(means, -torch.inf)).max()
        lowest = torch.where(present, means, torch.full_like(means, torch.inf)).min()
        total = total + (highest - lowest)
    return total


def _numbered_across(codes: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column group codes renumbered across the columns (column j's after column j-1's), and the
    column of each number."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(sizes) else np.zeros(0, np.int64)
    return codes + starts, np.repeat(np.arange(len(sizes)), sizes)


def recalibrate(trained: "TrainedModel", frame: pd.DataFrame, y: torch.Tensor, cal: np.ndarray,
                val: np.ndarray) -> tuple[float, float]:
    """Temperature scaling, or Platt scaling (temperature and intercept) where that calibrates the
    validation split better: both fitted on the calibration split. The intercept corrects a shifted
    base rate (reweighing, a fairness penalty, an unconverged model); where there is none to correct it
    would only fit the calibration split's noise, and the validation split says so."""
    cal_logits, cal_y = trained.logits(frame.iloc[cal]), y[torch.from_numpy(cal)]
    fits = [fit_temperature(cal_logits, cal_y), fit_temperature(cal_logits, cal_y, with_bias=True)]
    if not len(val):
        return fits[0]
    val_logits, val_y = trained.logits(frame.iloc[val]), y[torch.from_numpy(val)]
    losses = [float(nn.functional.binary_cross_entropy_with_logits(val_logits / t + b, val_y)) for t, b in fits]
    return fits[int(np.argmin(losses))]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, with_bias: bool = False) -> tuple[float, float]:
    """Temperature (and with `with_bias` an intercept) minimising the log loss of `logits`: Guo et al.
    2017's temperature scaling, or Platt scaling of the logits."""
    log_t = torch.zeros(1, requires_grad=True)
    bias = torch.zeros(1, requires_grad=with_bias)
    optimizer = torch.optim.LBFGS([log_t, bias] if with_bias else [log_t], lr=0.1, max_iter=200,
                                  line_search_fn="strong_wolfe")
    loss_fn = nn.BCEWithLogitsLoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(logits / log_t.exp() + bias, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0)), float(bias.detach().clamp(-10.0, 10.0))


def train(frame: pd.DataFrame, *, label: str, features: Sequence[str], config: TrainConfig = TrainConfig(),
          sample_weights: np.ndarray | None = None, device: str | None = None,
          on_epoch: Callable[[int, int, dict], bool] | None = None) -> TrainedModel:
    """Train on `frame` and return the model with its history.

    `sample_weights` (e.g. judged examples upweighted) multiply the strategy's weights. `on_epoch`
    is called after each epoch with (epoch, total epochs, metrics) and may return False to stop
    (a cancelled job). Same data, config and seed give the same weights on the CPU.

    On the CPU torch's arithmetic runs on one thread (torch's setting is restored after): a batch is a
    few hundred rows by at most a few hundred columns, too little work to share. On a 2-core machine
    shared with other processes, one thread trained Adult 1.3x (quiet) to 20x (busy) faster than two.
    A second thread draws the dropout masks ahead of the steps (`_DropoutMasks.drawn_ahead`).
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _threads(1 if device == "cpu" else torch.get_num_threads()), _no_nan_fill():
        return _train(frame, label=label, features=features, config=config, sample_weights=sample_weights,
                      device=device, on_epoch=on_epoch)


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads set to `count` inside the block, as they were after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _no_nan_fill() -> Iterator[None]:
    """Inside the block, torch's deterministic mode (which `_train` turns on) does not fill each new
    uninitialised tensor with NaN, as it does by default to expose reads of one: training's ops write
    every element they read, and the fills cost it a few percent. As it was after the block."""
    import torch.utils.deterministic

    before = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = before


def _train(frame: pd.DataFrame, *, label: str, features: Sequence[str], config: TrainConfig,
           sample_weights: np.ndarray | None, device: str,
           on_epoch: Callable[[int, int, dict], bool] | None) -> TrainedModel:
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(config.seed)
    frame = frame.reset_index(drop=True)
    labels = frame[label].to_numpy(dtype=np.float32)
    splits = _splits(len(frame), config, rng)
    train_idx = splits["train"]
    spec, numbers, codes = fit_encode(frame, features, train_idx, categorical=config.categorical)
    y = torch.from_numpy(labels)
    weights = np.ones(len(frame)) if sample_weights is None else np.asarray(sample_weights, dtype=float)
    column_codes = _column_codes(frame, config.sensitive) if config.sensitive else np.zeros((len(frame), 0), np.int64)
    if "reweight" in config.strategies:
        weights = weights.copy()
        weights[train_idx] *= reweighing(_combined(column_codes)[train_idx], labels[train_idx])
    penalised = "fairness_penalty" in config.strategies
    sizes = [int(column_codes[:, j].max()) + 1 if len(frame) else 0 for j in range(column_codes.shape[1])]
    stages = _curriculum(numbers, codes, y, train_idx, config, device) if "curriculum" in config.strategies \
        else [train_idx]
    # Everything the epochs touch lives on the device from here on: one copy, then only indexing.
    numbers, codes, y = numbers.to(device), codes.to(device), y.to(device)
    w = torch.from_numpy(weights.astype(np.float32)).to(device)
    codes_by_column = torch.from_numpy(column_codes).to(device)
    across, column_of = _numbered_across(column_codes, sizes)
    groups_across, column_of_group = torch.from_numpy(across).to(device), torch.from_numpy(column_of).to(device)

    model = TabularMLP(len(spec.numeric), spec.cardinalities(), config.hidden, config.dropout).to(device)
    flat = _flatten(model)
    optimizer = _optimizer(flat, config)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    generator = torch.Generator().manual_seed(config.seed)
    masks = _DropoutMasks(model.hidden_widths, config.dropout, config.seed, device)
    with torch.no_grad():
        bases = model.embedding_bases(codes)
    rows = _Rows(numbers, bases, y, w, groups_across if penalised else None)
    val = torch.from_numpy(splits["validation"]).to(device)
    val_groups = codes_by_column.index_select(0, val)
    val_numbers, val_bases, val_y = numbers.index_select(0, val), bases.index_select(0, val), y.index_select(0, val)
    best, best_loss, waited, history = flat.detach().clone(), float("inf"), 0, []
    epochs_per_stage = max(1, config.epochs // len(stages))
    epoch = 0
    epoch_rows = (len(stage_idx) for stage_idx in stages  # lazily: one entry per epoch planned
                  for _ in range(epochs_per_stage if len(stages) > 1 else config.epochs))
    with masks.drawn_ahead(epoch_rows, config.batch_size):
        for stage, stage_idx in enumerate(stages):
            stage_rows = torch.from_numpy(stage_idx).to(device)
            for _ in range(epochs_per_stage if len(stages) > 1 else config.epochs):
                model.train()
                order = stage_rows[torch.randperm(len(stage_idx), generator=generator).to(device)]
                with torch.inference_mode():
                    _epoch(model, optimizer, masks, rows, order, column_of_group, config)
                model.eval()
                with torch.inference_mode():  # the objective trained for: with the penalty when there is one
                    val_logits = _eval_logits(model, val_numbers, bases=val_bases)
                    val_loss = float(loss_fn(val_logits, val_y).mean()) if len(val) else 0.0
                    if penalised and len(val):
                        val_loss += config.fairness_weight * float(_score_gap(val_logits, val_groups,
                                                                                config.fairness_sharpness, sizes))
                epoch += 1
                record = {"epoch": epoch, "stage": stage, "stage_rows": len(stage_idx), "validation_loss": val_loss}
                history.append(record)
                if val_loss < best_loss - 1e-6:
                    best_loss, waited = val_loss, 0
                    with torch.no_grad():
                        best.copy_(flat)
                else:
                    waited += 1
                if on_epoch is not None and on_epoch(epoch, config.epochs, record) is False:
                    history.append({"epoch": epoch, "stopped": "cancelled"})
                    break
                if waited >= config.patience and stage == len(stages) - 1:
                    history.append({"epoch": epoch, "stopped": "early stopping"})
                    break
            else:
                continue
            break
    with torch.no_grad():
        flat.copy_(best)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    trained = TrainedModel(spec, config, state, 1.0, history)
    if "recalibrate" in config.strategies and len(splits["calibration"]):
        cal = splits["calibration"]
        trained.temperature, trained.bias = recalibrate(trained, frame, y, cal, splits["validation"])
    return trained


@dataclass(frozen=True)
class _Rows:
    """Every row the epochs read, on the device; `bases`, the rows' `TabularMLP.embedding_bases`, stand
    in for their codes (worked out once, not once per epoch)."""

    numbers: torch.Tensor
    bases: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    groups: torch.Tensor | None  # `_numbered_across` group numbers, with a fairness penalty


def _epoch(model: TabularMLP, optimizer: "_FlatAdamW | torch.optim.Optimizer", masks: "_DropoutMasks",
           rows: _Rows, order: torch.Tensor, column_of_group: torch.Tensor, config: TrainConfig) -> None:
    """One epoch of steps over the rows `order` lists, in that order (call under inference_mode)."""
    batch_size = config.batch_size
    # One gather per epoch; each batch is then a contiguous slice (a view, no copy). index_select,
    # not tensor[order]: the same rows, several times faster on the CPU.
    e_numbers, e_bases, e_y, e_w = (t.index_select(0, order) for t in (rows.numbers, rows.bases, rows.y, rows.w))
    e_groups = rows.groups.index_select(0, order) if rows.groups is not None else None
    # each row's weight over its batch's total weight: d/dlogit of the batch's weighted mean log loss is
    # (sigmoid - y) × that share
    batch_of_row = torch.arange(len(order), device=order.device) // batch_size
    totals = torch.zeros(-(-len(order) // batch_size), device=order.device).index_add_(0, batch_of_row, e_w)
    e_share = e_w / totals.index_select(0, batch_of_row)
    penalty = steps.Penalty(column_of_group, config.fairness_sharpness, config.fairness_weight) \
        if e_groups is not None else None
    net, grads = model.as_network(), model.gradients()
    for begin, end, drawn in masks.chunks(len(order), batch_size):
        part = steps.Rows(e_numbers[begin:end], e_bases[begin:end], e_y[begin:end], e_share[begin:end],
                          e_groups[begin:end] if e_groups is not None else None)
        if isinstance(optimizer, _FlatAdamW):  # the chunk's steps in one compiled call
            steps.compiled_chunk()(net, grads, optimizer.state, part, drawn, penalty, batch_size)
            continue
        for start in range(0, end - begin, batch_size):
            steps.gradients(net, grads, part, start, min(start + batch_size, end - begin), drawn, penalty)
            optimizer.step()


PREDICT_BATCH = 8_192  # a layer's output for 8k rows stays in the CPU's cache: 65k rows scored 2x to 3x slower


def _eval_logits(model: TabularMLP, numbers: torch.Tensor, *, codes: torch.Tensor | None = None,
                 bases: torch.Tensor | None = None) -> torch.Tensor:
    """Logits without dropout for rows given by their numbers and codes (or `embedding_bases`),
    PREDICT_BATCH rows at a time so a million rows never meet at once; through `forward_saving`, which
    has no autograd function to call."""
    parts = []
    for start in range(0, len(numbers), PREDICT_BATCH):
        part = slice(start, start + PREDICT_BATCH)
        parts.append(model.forward_saving(numbers[part], codes[part] if codes is not None else None, None,
                                          bases[part] if bases is not None else None)[0])
    return torch.cat(parts) if parts else torch.zeros(0, device=numbers.device)


def _flatten(model: nn.Module) -> nn.Parameter:
    """One flat parameter whose slices are the model's parameters, and one flat gradient whose slices
    are their gradients (autograd adds into them in place). AdamW is elementwise, so stepping the flat
    tensor is the same arithmetic as stepping each parameter, in one call instead of one per tensor;
    zeroing the gradients and keeping the best epoch's weights are one copy each."""
    params = list(model.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        p.data = flat.data[offset:offset + p.numel()].view_as(p)
        p.grad = flat.grad[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


def _optimizer(flat: nn.Parameter, config: TrainConfig) -> "_FlatAdamW | torch.optim.Optimizer":
    """AdamW on the flat parameter: its fused kernel called directly where this torch build has it."""
    if hasattr(torch, "_fused_adamw_") and flat.device.type in ("cpu", "cuda"):
        return _FlatAdamW(flat, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW([flat], lr=config.learning_rate, weight_decay=config.weight_decay)


class _FlatAdamW:
    """torch.optim.AdamW with its defaults (betas 0.9 and 0.999, eps 1e-8) for one flat parameter: the
    same fused kernel, with the same arguments, that AdamW(fused=True) calls. Without the optimizer's
    per-step Python around it (hooks, profiler records, state lookups), which on the CPU cost three
    times the kernel for this model's few thousand weights."""

    def __init__(self, flat: nn.Parameter, *, lr: float, weight_decay: float) -> None:
        assert flat.grad is not None
        zeros = [torch.zeros_like(flat.detach()) for _ in range(2)]
        step = torch.zeros((), dtype=torch.float32, device=flat.device)  # a tensor: where the kernel reads it
        self.state = steps.AdamW([flat.detach()], [flat.grad], zeros[:1], zeros[1:], [step], lr, weight_decay)

    def step(self) -> None:
        steps.adamw_step(self.state)


CHUNK_ROWS = 65_536  # rows whose dropout masks and embedding index are made at once


class _DropoutMasks:
    """Inverted-dropout masks (0 or 1/(1 - p)) for each batch's hidden layers, drawn from a seeded
    generator a chunk of about 65k rows at a time: one draw per chunk and layer rather than a Bernoulli
    draw per batch and layer, which on the CPU cost more than the layers themselves. Each layer's chunk
    is its own tensor, so a batch's mask is a contiguous slice.

    Inside `drawn_ahead`, on the CPU, a thread draws them while the steps run (the compiled steps and
    numpy's draws both let go of the GIL): the same draws from the same generator in the same order,
    off the training thread's path, where they were a tenth of a run's time."""

    def __init__(self, widths: Sequence[int], p: float, seed: int, device: str) -> None:
        self.widths, self.p, self.device = list(widths), float(p), device
        self.numpy = np.random.default_rng(seed) if device == "cpu" else None
        self.torch = None if device == "cpu" else torch.Generator(device=device).manual_seed(seed)
        self._ahead: queue.Queue | None = None

    @property
    def dropping(self) -> bool:
        return bool(self.widths) and self.p > 0

    def chunks(self, rows: int, batch_size: int) -> Iterator[tuple[int, int, list[torch.Tensor] | None]]:
        """An epoch of `rows` rows in chunks of whole batches: each chunk's first and end row and its
        masks, one per hidden layer (None when there is no dropout)."""
        for begin, end in _spans(rows, batch_size):
            if self._ahead is None:
                yield begin, end, [self._keep(end - begin, width) for width in self.widths] if self.dropping else None
                continue
            item = self._ahead.get()
            if isinstance(item, BaseException):
                raise item
            if item[0] != (rows, begin, end):
                raise RuntimeError(f"dropout masks were drawn for rows {item[0]}, asked for {(rows, begin, end)}")
            yield begin, end, item[1]

    @contextmanager
    def drawn_ahead(self, epoch_rows: Iterable[int], batch_size: int) -> Iterator[None]:
        """Inside the block, `chunks` hands out masks a thread drew for epochs of `epoch_rows` rows (in
        that order), at most one chunk ahead. Leaving early (early stopping, a cancel, an error) stops it."""
        if self.numpy is None or not self.dropping:
            yield
            return
        ready: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: object) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def drawn() -> Iterator[object]:
            """Each chunk's masks in the order `chunks` asks for them; an error drawing them, as an item."""
            try:
                for rows in epoch_rows:
                    for begin, end in _spans(rows, batch_size):
                        yield (rows, begin, end), [self._keep(end - begin, w) for w in self.widths]
                yield RuntimeError("dropout masks asked for beyond the epochs planned")
            except GeneratorExit:
                raise
            except BaseException as error:  # handed to the training thread, which raises it
                yield error

        def draw() -> None:
            for item in plan:
                if not hand_over(item):
                    return

        # The first chunk is drawn here: the first epoch would otherwise wait for the thread to start,
        # which took 6 to 30 ms on a 2-core machine (drawing takes 3 ms), a tenth of an Adult run.
        plan = drawn()
        ready.put(next(plan))
        thread = threading.Thread(target=draw, name="govern-dropout-masks", daemon=True)
        self._ahead = ready
        thread.start()
        try:
            yield
        finally:
            stop.set()
            self._ahead = None
            thread.join()

    def _keep(self, rows: int, width: int) -> torch.Tensor:
        if self.numpy is not None:  # 16-bit draws: p to within 1/65536, the scale exact for the p drawn
            dropped = round(self.p * 65_536)
            if dropped >= 65_536:
                return torch.zeros(rows, width)
            # four 16-bit draws from each of the generator's raw 64-bit outputs: twice as fast as integers()
            bits = self.numpy.bit_generator.random_raw(-(-rows * width // 4)).view(np.uint16)[:rows * width]
            keep = (bits.reshape(rows, width) >= dropped).astype(np.float32)
            keep *= np.float32(65_536 / (65_536 - dropped))
            return torch.from_numpy(keep)
        scale = 1.0 / (1.0 - self.p) if self.p < 1 else 0.0
        return (torch.rand(rows, width, generator=self.torch, device=self.device) >= self.p) * scale


def _spans(rows: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """An epoch of `rows` rows in chunks of whole batches of about CHUNK_ROWS rows: first and end row."""
    chunk = max(1, CHUNK_ROWS // batch_size) * batch_size
    for begin in range(0, rows, chunk):
        yield begin, min(rows, begin + chunk)


def _curriculum(numbers, codes, y, train_idx: np.ndarray, config: TrainConfig, device: str) -> list[np.ndarray]:
    """Stages of growing size, easiest first by a reference (logistic) model's loss on each row."""
    torch.manual_seed(config.seed)
    reference = nn.Linear(numbers.shape[1] + codes.shape[1], 1).to(device)
    inputs = torch.cat([numbers, codes.float()], dim=1)[torch.from_numpy(train_idx)].to(device)
    target = y[torch.from_numpy(train_idx)].to(device)
    optimizer = torch.optim.LBFGS(reference.parameters(), max_iter=50)
    loss_fn = nn.BCEWithLogitsLoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(reference(inputs).squeeze(1), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        difficulty = nn.BCEWithLogitsLoss(reduction="none")(reference(inputs).squeeze(1), target).cpu().numpy()
    ordered = train_idx[np.argsort(difficulty, kind="stable")]
    stages = max(1, config.curriculum_stages)
    shares = [config.curriculum_start + (1 - config.curriculum_start) * s / max(1, stages - 1) for s in range(stages)]
    return [ordered[:max(1, int(round(share * len(ordered))))] for share in shares]
