"""An MLP for tabular data: an embedding per categorical column, concatenated with the numbers.

The column embeddings live in one table (each column's rows one after the other, padded to the
widest embedding), so a batch costs one lookup and one backward instead of one per column. The
state dict still names each column's embedding (`embeddings.{i}.weight`, as `nn.Embedding` would) and
the layers keep their places in `body`: stored artifacts load unchanged and score the same.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def embedding_width(cardinality: int) -> int:
    return min(16, (cardinality + 1) // 2)


class _Lookup(torch.autograd.Function):
    """Each row's embeddings side by side: for codes [n, columns] (already offset to their column's
    rows of the table), the table rows, of each only the `used` (unpadded) positions. The backward adds
    into the table with one index_add: several times cheaper on the CPU than torch's embedding backward."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, codes: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        index = codes.reshape(-1)
        ctx.save_for_backward(index, used)
        ctx.shapes = (table.shape, codes.shape)
        return table.index_select(0, index).view(codes.shape[0], -1).index_select(1, used)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        index, used = ctx.saved_tensors
        (rows, widest), (n, columns) = ctx.shapes
        padded = grad.new_zeros(n, columns * widest).index_copy_(1, used, grad)
        return grad.new_zeros(rows, widest).index_add_(0, index, padded.view(-1, widest)), None, None


class TabularMLP(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], hidden: tuple[int, ...] = (64, 32),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.cardinalities = list(cardinalities)
        self.widths = [embedding_width(card) for card in cardinalities]
        self.dropout = dropout
        widest = max(self.widths, default=0)
        starts = [sum(self.cardinalities[:i]) for i in range(len(cardinalities))]
        self.table = nn.Parameter(torch.zeros(sum(self.cardinalities), widest))
        with torch.no_grad():  # N(0, 1) per column, drawn in the order (and shape) nn.Embedding draws it
            for start, card, width in zip(starts, self.cardinalities, self.widths):
                self.table[start:start + card, :width] = torch.empty(card, width).normal_()
        self._starts = starts
        self.register_buffer("row_start", torch.tensor(starts, dtype=torch.long), persistent=False)
        self.register_buffer("used", torch.tensor([i * widest + j for i, width in enumerate(self.widths)
                                                   for j in range(width)], dtype=torch.long), persistent=False)
        width = n_numeric + sum(self.widths)
        layers: list[nn.Module] = []
        for size in hidden:  # ReLU and Dropout hold the places earlier artifacts' keys count on
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)
        self.linears = [layer for layer in layers if isinstance(layer, nn.Linear)]

    @property
    def hidden_widths(self) -> list[int]:
        return [layer.out_features for layer in self.linears[:-1]]

    def forward(self, numbers: torch.Tensor, codes: torch.Tensor,
                masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits, shape [n]. In training mode `masks` (one per hidden layer, 0 or 1/(1 - dropout)) are
        the dropout; without them dropout draws its own."""
        x = numbers
        if self.cardinalities:
            x = torch.cat([numbers, _Lookup.apply(self.table, codes + self.row_start, self.used)], dim=1)
        for i, linear in enumerate(self.linears[:-1]):
            x = torch.relu(linear(x))
            if self.training:
                x = x * masks[i] if masks is not None else F.dropout(x, self.dropout, training=True)
        return self.linears[-1](x).squeeze(1)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for i, (start, card, width) in enumerate(zip(self._starts, self.cardinalities, self.widths)):
            part = self.table[start:start + card, :width]
            destination[f"{prefix}embeddings.{i}.weight"] = part if keep_vars else part.detach().clone()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for i, (start, card, width) in enumerate(zip(self._starts, self.cardinalities, self.widths)):
            key = f"{prefix}embeddings.{i}.weight"
            if key not in state_dict:
                missing_keys.append(key)
            elif tuple(state_dict[key].shape) != (card, width):
                error_msgs.append(f"{key}: shape {tuple(state_dict[key].shape)}, the model has {(card, width)}")
            else:
                with torch.no_grad():
                    self.table[start:start + card, :width] = state_dict[key]
        known = {f"{prefix}embeddings.{i}.weight" for i in range(len(self.cardinalities))}
        unexpected_keys.extend(k for k in state_dict if k.startswith(prefix) and k not in known
                               and not k[len(prefix):].startswith("body."))
