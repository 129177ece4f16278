"""`BalanceSampler`: batches of n_labels x n_instances, so every batch holds positives and negatives for triplets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from explorer.errors import InputError


class BalanceSampler(Sampler[list[int]]):
    """Batch sampler (pass as `batch_sampler=`): each batch has `n_labels` distinct labels x `n_instances` items.

    One epoch is floor(#labels / n_labels) batches; every label appears at most once per epoch. A label with fewer
    than `n_instances` items contributes all of them plus repeats drawn at random.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        n_labels: int,
        n_instances: int,
        seed: int | None = None,
    ) -> None:
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if n_labels < 2:
            raise InputError(f"n_labels must be at least 2 (a batch needs negatives), got {n_labels}.")
        if n_instances < 2:
            raise InputError(f"n_instances must be at least 2 (a batch needs positives), got {n_instances}.")
        unique, counts = np.unique(labels, return_counts=True)
        if len(unique) < n_labels:
            raise InputError(
                f"n_labels={n_labels} but the data has only {len(unique)} distinct labels; lower n_labels."
            )
        singles = unique[counts < 2]
        if len(singles):
            shown = ", ".join(str(label) for label in singles[:10])
            raise InputError(
                f"{len(singles)} label(s) have a single item ({shown}{', ...' if len(singles) > 10 else ''}): "
                "they can form no positive pair; drop them from the training data."
            )
        self.n_labels = n_labels
        self.n_instances = n_instances
        self.lbl2idx: dict[int, list[int]] = {
            label.item(): np.flatnonzero(labels == label).tolist() for label in unique
        }
        self._rng = np.random.default_rng(seed)

    @property
    def batch_size(self) -> int:
        return self.n_labels * self.n_instances

    def __len__(self) -> int:
        return len(self.lbl2idx) // self.n_labels

    def _instances(self, indices: list[int]) -> list[int]:
        if len(indices) >= self.n_instances:
            return self._rng.choice(indices, self.n_instances, replace=False).tolist()
        repeats = self._rng.choice(indices, self.n_instances - len(indices), replace=True).tolist()
        return self._rng.permutation(indices + repeats).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        labels = list(self.lbl2idx)
        chosen = self._rng.choice(len(labels), len(self) * self.n_labels, replace=False)
        for batch_labels in chosen.reshape(len(self), self.n_labels):
            yield [index for position in batch_labels for index in self._instances(self.lbl2idx[labels[position]])]
