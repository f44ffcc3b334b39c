"""An MLP for tabular data: an embedding per categorical column, concatenated with the numbers."""

from __future__ import annotations

import torch
from torch import nn


class TabularMLP(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], hidden: tuple[int, ...] = (64, 32),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(card, min(16, (card + 1) // 2)) for card in cardinalities)
        width = n_numeric + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, numbers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Logits, shape [n]."""
        parts = [numbers] + [embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings)]
        return self.body(torch.cat(parts, dim=1)).squeeze(1)
