"""Triplet miners: which (anchor, positive, negative) index triplets of a batch the loss looks at.

Every miner returns three equally long LongTensors of batch positions. Distances for hard mining are computed on
detached features: mining chooses triplets, it does not take part in the gradient.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from explorer.errors import InputError

Triplets = tuple[Tensor, Tensor, Tensor]


def as_label_tensor(labels: Tensor | Sequence[int], device: torch.device) -> Tensor:
    return torch.as_tensor(labels, device=device).reshape(-1)


def positive_negative_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """[B, B] masks: same label and not the same position; different label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


class TripletsMiner(ABC):
    @abstractmethod
    def sample(self, features: Tensor, labels: Tensor | Sequence[int]) -> Triplets:
        """(anchor, positive, negative) batch positions."""


class AllTripletsMiner(TripletsMiner):
    """Every valid triplet of the batch; a uniformly random subset of `max_output_triplets` when there are more."""

    def __init__(self, max_output_triplets: int = sys.maxsize) -> None:
        if max_output_triplets < 1:
            raise InputError(f"max_output_triplets must be positive, got {max_output_triplets}.")
        self.max_output_triplets = max_output_triplets

    def sample(self, features: Tensor, labels: Tensor | Sequence[int]) -> Triplets:
        positives, negatives = positive_negative_masks(as_label_tensor(labels, features.device))
        anchor, positive, negative = torch.nonzero(positives[:, :, None] & negatives[:, None, :], as_tuple=True)
        if len(anchor) > self.max_output_triplets:
            keep = torch.randperm(len(anchor), device=anchor.device)[: self.max_output_triplets]
            anchor, positive, negative = anchor[keep], positive[keep], negative[keep]
        return anchor, positive, negative

    def __repr__(self) -> str:
        return f"AllTripletsMiner(max_output_triplets={self.max_output_triplets})"


class NHardTripletsMiner(TripletsMiner):
    """Per anchor its `n_positive` farthest positives x `n_negative` nearest negatives (fewer when not available)."""

    def __init__(self, n_positive: int = 1, n_negative: int = 1) -> None:
        if n_positive < 1 or n_negative < 1:
            raise InputError(f"n_positive and n_negative must be positive, got {n_positive} and {n_negative}.")
        self.n_positive = n_positive
        self.n_negative = n_negative

    def sample(self, features: Tensor, labels: Tensor | Sequence[int]) -> Triplets:
        positives, negatives = positive_negative_masks(as_label_tensor(labels, features.device))
        distances = torch.cdist(features.detach(), features.detach())
        batch = len(distances)
        far = distances.masked_fill(~positives, -torch.inf).topk(min(self.n_positive, batch), dim=1)
        near = distances.masked_fill(~negatives, torch.inf).topk(min(self.n_negative, batch), dim=1, largest=False)
        valid = far.values.isfinite()[:, :, None] & near.values.isfinite()[:, None, :]
        shape = valid.shape
        anchor = torch.arange(batch, device=distances.device)[:, None, None].expand(shape)
        positive = far.indices[:, :, None].expand(shape)
        negative = near.indices[:, None, :].expand(shape)
        return anchor[valid], positive[valid], negative[valid]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_positive={self.n_positive}, n_negative={self.n_negative})"


class HardTripletsMiner(NHardTripletsMiner):
    """Per anchor the farthest positive and the nearest negative: one triplet per anchor."""

    def __init__(self) -> None:
        super().__init__(n_positive=1, n_negative=1)

    def __repr__(self) -> str:
        return "HardTripletsMiner()"


MINERS = {"all": AllTripletsMiner, "hard": HardTripletsMiner, "n_hard": NHardTripletsMiner}
