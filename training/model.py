"""An MLP for tabular data: an embedding per categorical column, concatenated with the numbers.

The column embeddings live in one table (each column's rows one after the other, padded to the
widest embedding), so a batch costs one lookup and one backward instead of one per column. The
state dict still names each column's embedding (`embeddings.{i}.weight`, as `nn.Embedding` would) and
the layers keep their places in `body`: stored artifacts load unchanged and score the same.

Training takes its gradients from `forward_saving` and `backward_into`: the same arithmetic as
autograd through `forward`, written out (a few matrix products per layer, one scatter into the table)
so that a batch of a few hundred rows is not dominated by autograd's bookkeeping.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from training import steps


def embedding_width(cardinality: int) -> int:
    return min(16, (cardinality + 1) // 2)


class _Lookup(torch.autograd.Function):
    """Each row's embeddings side by side: for `flat_index` [n, used positions] (`TabularMLP._flat_index`),
    those elements of the table. The backward adds into the table with one index_add: several times
    cheaper on the CPU than torch's embedding backward."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, flat_index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat_index)
        ctx.table_shape = table.shape
        return table.reshape(-1).index_select(0, flat_index.view(-1)).view(flat_index.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat_index,) = ctx.saved_tensors
        table_grad = grad.new_zeros(ctx.table_shape)
        table_grad.view(-1).index_add_(0, flat_index.view(-1), grad.reshape(-1))
        return table_grad, None


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
        # Where a value sits in the flattened table: its column's first position (`column_base`) plus
        # code × widest plus its place within the embedding (`used_offset`, one per used position, whose
        # column `used_column` names). int32: twice as fast as int64 on the CPU.
        self._widest = widest
        self.register_buffer("column_base", torch.tensor([start * widest for start in starts], dtype=torch.int32),
                             persistent=False)
        self.register_buffer("used_column", torch.tensor([i for i, width in enumerate(self.widths)
                                                          for _ in range(width)], dtype=torch.long), persistent=False)
        self.register_buffer("used_offset", torch.tensor([j for width in self.widths for j in range(width)],
                                                         dtype=torch.int32), persistent=False)
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
            x = torch.cat([numbers, _Lookup.apply(self.table, self._flat_index(codes))], dim=1)
        for i, linear in enumerate(self.linears[:-1]):
            x = torch.relu(linear(x))
            if self.training:
                x = x * masks[i] if masks is not None else F.dropout(x, self.dropout, training=True)
        return self.linears[-1](x).squeeze(1)

    def _flat_index(self, codes: torch.Tensor | None, bases: torch.Tensor | None = None) -> torch.Tensor:
        """For codes [n, columns] (or their `embedding_bases`), where each of a row's embedding values
        sits in the flattened table [n, used positions] (`steps.flat_index`)."""
        return steps.flat_index(self.embedding_bases(codes) if bases is None else bases, self.used_column,
                                self.used_offset)

    def embedding_bases(self, codes: torch.Tensor) -> torch.Tensor:
        """Where each row's embedding of each column starts in the flattened table, [n, columns] int32:
        what `forward_saving` can take in place of the codes, worked out once for rows visited often."""
        return (codes.to(torch.int32) * self._widest).add_(self.column_base)

    def as_network(self) -> steps.Network:
        """The tensors the written-out step (`training.steps`) reads."""
        return steps.Network(self.table, self.used_column, self.used_offset,
                             [layer.weight for layer in self.linears], [layer.bias for layer in self.linears])

    def gradients(self) -> steps.Gradients:
        """Where the written-out step writes the parameters' gradients: their `.grad` (made where missing)."""
        for parameter in self.parameters():
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        return steps.Gradients(_grad(self.table), [_grad(layer.weight) for layer in self.linears],
                               [_grad(layer.bias) for layer in self.linears])

    def forward_saving(self, numbers: torch.Tensor, codes: torch.Tensor | None,
                       masks: Sequence[torch.Tensor] | None = None,
                       bases: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        """`forward` in training mode without autograd (call under no_grad or inference_mode): the
        logits, and what `backward_into` needs. `bases` (`embedding_bases(codes)`), where given, stand
        in for `codes`."""
        index = self._flat_index(codes, bases) if self.cardinalities else None
        masks = list(masks) if masks is not None else None
        logits, activations = steps.forward(self.as_network(), numbers, index, masks)
        return logits, [index, activations, masks]

    def backward_into(self, saved: list, grad_logits: torch.Tensor) -> None:
        """Every parameter's `.grad` overwritten with the gradient of sum(grad_logits × logits) for the
        batch `forward_saving` saved: the table's only at the positions the batch used (zero elsewhere)."""
        index, activations, masks = saved
        steps.backward(self.as_network(), self.gradients(), grad_logits, index, activations, masks)

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


def _grad(parameter: nn.Parameter) -> torch.Tensor:
    assert parameter.grad is not None
    return parameter.grad
