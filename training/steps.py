"""The training step written out: forward, the gradient of the loss (and of the fairness penalty), backward
and AdamW, for the batches of a chunk of rows, in one call compiled by TorchScript.

`TabularMLP.forward_saving` / `backward_into` and the trainer's epochs call the same functions; compiled,
a chunk's batches run their few dozen small tensor operations without going back to Python between them,
which on the CPU was a sixth of a batch's time. Where TorchScript cannot compile them (a torch without
it, an install without the .py sources), the same functions run as Python: the same operations, in the
same order, on the same values.

No `from __future__ import annotations` here: TorchScript reads the annotations.
"""

import threading
import warnings
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor


class Network(NamedTuple):
    """A `TabularMLP`'s tensors as the step reads them (`TabularMLP.as_network`): the flat embedding
    table, where each row's embedding values sit in it (`used_column`, `used_offset`), the linear layers."""

    table: Tensor
    used_column: Tensor
    used_offset: Tensor
    weights: List[Tensor]
    biases: List[Tensor]


class Gradients(NamedTuple):
    """Where the step writes the gradients of a `Network`'s table, weights and biases
    (`TabularMLP.gradients`)."""

    table: Tensor
    weights: List[Tensor]
    biases: List[Tensor]


class Rows(NamedTuple):
    """A chunk's rows, in the order the batches take them: numbers, `TabularMLP.embedding_bases`, labels,
    each row's share of its batch's weight, and with a fairness penalty the rows' group numbers across the
    sensitive columns (`trainer._numbered_across`)."""

    numbers: Tensor
    bases: Tensor
    y: Tensor
    share: Tensor
    groups: Optional[Tensor]


class Penalty(NamedTuple):
    """The fairness penalty: each group number's column, the sharpness of the soft decision, the weight."""

    column_of_group: Tensor
    sharpness: float
    weight: float


class AdamW(NamedTuple):
    """torch.optim.AdamW's state for one flat parameter (its defaults: betas 0.9 and 0.999, eps 1e-8)."""

    params: List[Tensor]
    grads: List[Tensor]
    exp_avgs: List[Tensor]
    exp_avg_sqs: List[Tensor]
    steps: List[Tensor]
    lr: float
    weight_decay: float


def flat_index(bases: Tensor, used_column: Tensor, used_offset: Tensor) -> Tensor:
    """For rows' `embedding_bases` [n, columns], where each of a row's embedding values sits in the flat
    table [n, used positions]: a gather and a flat index_select, several times faster on the CPU than
    looking whole table rows up and dropping the padding."""
    return torch.gather(bases, 1, used_column.expand(bases.shape[0], -1)).add_(used_offset).long()


def forward(net: Network, numbers: Tensor, index: Optional[Tensor],
            masks: Optional[List[Tensor]]) -> Tuple[Tensor, List[Tensor]]:
    """Logits [n], and each layer's input (what `backward` needs). `masks` (one per hidden layer, 0 or
    1/(1 - dropout)) are the dropout; None, none."""
    x = numbers
    if index is not None:
        embedded = net.table.view(-1).index_select(0, index.view(-1)).view(index.shape)
        x = torch.cat([numbers, embedded], 1)
    activations = [x]
    last = len(net.weights) - 1
    for i in range(last):
        x = torch.addmm(net.biases[i], x, net.weights[i].t()).relu_()
        if masks is not None:
            x.mul_(masks[i])
        activations.append(x)
    return torch.addmm(net.biases[last], x, net.weights[last].t()).view(-1), activations


def backward(net: Network, grads: Gradients, grad_logits: Tensor, index: Optional[Tensor],
             activations: List[Tensor], masks: Optional[List[Tensor]]) -> None:
    """Every gradient in `grads` overwritten with that of sum(grad_logits × logits) for the batch `forward`
    ran: the table's only at the positions the batch used (zero elsewhere)."""
    grad = grad_logits.view(-1, 1)
    i = len(net.weights) - 1
    while True:
        torch.mm(grad.t(), activations[i], out=grads.weights[i])
        torch.sum(grad, 0, out=grads.biases[i])
        if i == 0:
            break
        grad = torch.mm(grad, net.weights[i])
        if masks is not None:
            grad.mul_(masks[i - 1])
        # ReLU's backward (x > 0 exactly where ReLU passed and dropout kept); masked_fill_ is 8x slower
        grad = torch.ops.aten.threshold_backward(grad, activations[i], 0.0)
        i -= 1
    grads.table.zero_()
    if index is not None:
        first = net.weights[0]
        grad_embedded = torch.mm(grad, first[:, first.shape[1] - index.shape[1]:])
        grads.table.view(-1).scatter_add_(0, index.view(-1), grad_embedded.view(-1))


def score_gap_gradient(logits: Tensor, groups: Tensor, column_of_group: Tensor, sharpness: float) -> Tensor:
    """The gradient of `trainer._score_gap` with respect to `logits`, as autograd gives it: each row's
    share of its group's mean, +1/count in a column's highest group and -1/count in its lowest (a tie
    shares the step evenly, as torch's max does). `groups` [n, columns] numbers each row's group across
    the columns (`trainer._numbered_across`); `column_of_group` is each number's column. All columns at
    once: the same few operations for two sensitive columns as for one."""
    scores = torch.sigmoid(logits * sharpness)
    columns, total = groups.shape[1], column_of_group.shape[0]
    index = groups.reshape(-1)
    counts = torch.bincount(index, minlength=total).to(scores.dtype)
    sums = torch.zeros_like(counts).index_add_(0, index, scores.repeat_interleave(columns))
    present = counts > 0
    means = sums / counts.clamp_(min=1)
    highest = _ends(means, present, column_of_group, columns, float("-inf"), "amax")
    lowest = _ends(means, present, column_of_group, columns, float("inf"), "amin")
    per_group = (highest - lowest) / counts
    per_row = per_group.index_select(0, index).view(-1, columns).sum(1)
    return per_row.mul_(scores * (1 - scores)).mul_(sharpness)


def _ends(means: Tensor, present: Tensor, column_of_group: Tensor, columns: int, fill: float, reduce: str) -> Tensor:
    """Per group number, 1/(number of its column's groups at the extreme `reduce` picks) where it is one
    of them, else 0."""
    masked = torch.where(present, means, torch.full_like(means, fill))
    extreme = torch.full([columns], fill, dtype=means.dtype, device=means.device).scatter_reduce(
        0, column_of_group, masked, reduce)
    at = (masked == extreme.index_select(0, column_of_group)).to(means.dtype)
    return at / torch.zeros_like(extreme).index_add_(0, column_of_group, at).index_select(0, column_of_group)


def gradients(net: Network, grads: Gradients, rows: Rows, start: int, end: int, masks: Optional[List[Tensor]],
              penalty: Optional[Penalty]) -> None:
    """The gradients of rows[start:end]'s weighted mean log loss (plus the penalty) written into `grads`;
    `masks` are the chunk's (sliced here)."""
    index: Optional[Tensor] = None
    if net.used_column.shape[0] > 0:
        index = flat_index(rows.bases[start:end], net.used_column, net.used_offset)
    batch_masks: Optional[List[Tensor]] = None
    if masks is not None:
        batch_masks = [mask[start:end] for mask in masks]
    logits, activations = forward(net, rows.numbers[start:end], index, batch_masks)
    # d/dlogit of the batch's weighted mean log loss: (sigmoid - y) × the row's share of the batch's weight
    grad = torch.sigmoid(logits).sub_(rows.y[start:end]).mul_(rows.share[start:end])
    groups = rows.groups
    if groups is not None and penalty is not None:
        grad.add_(score_gap_gradient(logits, groups[start:end], penalty.column_of_group, penalty.sharpness),
                  alpha=penalty.weight)
    backward(net, grads, grad, index, activations, batch_masks)


def adamw_step(state: AdamW) -> None:
    """One AdamW step: the fused kernel torch.optim.AdamW(fused=True) calls, with the same arguments."""
    torch._foreach_add_(state.steps, 1)
    empty: List[Tensor] = []
    torch._fused_adamw_(state.params, state.grads, state.exp_avgs, state.exp_avg_sqs, empty, state.steps,
                        lr=state.lr, beta1=0.9, beta2=0.999, weight_decay=state.weight_decay, eps=1e-8,
                        amsgrad=False, maximize=False)


def chunk(net: Network, grads: Gradients, state: AdamW, rows: Rows, masks: Optional[List[Tensor]],
          penalty: Optional[Penalty], batch_size: int) -> None:
    """A step per batch of `batch_size` consecutive rows of the chunk `rows`."""
    n = rows.y.shape[0]
    for start in range(0, n, batch_size):
        gradients(net, grads, rows, start, min(start + batch_size, n), masks, penalty)
        adamw_step(state)


_compiled: dict[str, Callable[..., None]] = {}
_compiling = threading.Lock()


def compiled_chunk() -> Callable[..., None]:
    """`chunk` compiled by TorchScript (once per process), or `chunk` itself where it cannot be."""
    with _compiling:
        if "chunk" not in _compiled:
            try:
                with warnings.catch_warnings():  # deprecated in favour of torch.compile, which needs a compiler
                    warnings.simplefilter("ignore", DeprecationWarning)
                    _compiled["chunk"] = torch.jit.script(chunk)
            except Exception:  # no TorchScript, or no source to compile: the same steps, as Python
                _compiled["chunk"] = chunk
        return _compiled["chunk"]
