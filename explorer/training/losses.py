"""Triplet losses with OML's semantics: hard margin relu(m + d(a,p) - d(a,n)), or soft log(1 + exp(d(a,p) - d(a,n))).

Distances are `torch.nn.functional.pairwise_distance` (Euclidean with eps=1e-6), exactly as in
`torch.nn.TripletMarginLoss`, so the hard-margin loss equals it on the same triplets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from explorer.training.miners import AllTripletsMiner, TripletsMiner

TRIPLET_LOG_KEYS = ("active_tri", "pos_dist", "neg_dist")


class TripletLoss(nn.Module):
    """Mean over triplets of relu(margin + d(a,p) - d(a,n)); `margin=None` gives the soft-margin version."""

    def __init__(self, margin: float | None = 0.1, need_logs: bool = False) -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise ValueError(f"margin must be non-negative or None (soft margin), got {margin}.")
        self.margin = margin
        self.need_logs = need_logs
        self.last_logs: dict[str, float] = {}

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        pos_dist = F.pairwise_distance(anchor, positive)
        neg_dist = F.pairwise_distance(anchor, negative)
        difference = pos_dist - neg_dist
        losses = F.softplus(difference) if self.margin is None else F.relu(self.margin + difference)
        if self.need_logs:
            self.last_logs = {
                "active_tri": float((losses.detach() > 0).float().mean()),
                "pos_dist": float(pos_dist.detach().mean()),
                "neg_dist": float(neg_dist.detach().mean()),
            }
        return losses.mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


class TripletLossWithMiner(nn.Module):
    """Mines triplets in a batch of embeddings, then applies `TripletLoss`: `loss = criterion(embeddings, labels)`.

    With `need_logs=True`, `last_logs` holds `active_tri` (fraction of triplets with positive loss) and the mean
    positive / negative distances of the last call.
    """

    def __init__(self, margin: float | None = 0.1, miner: TripletsMiner | None = None, need_logs: bool = False) -> None:
        super().__init__()
        self.miner = miner if miner is not None else AllTripletsMiner()
        self.triplet_loss = TripletLoss(margin=margin, need_logs=need_logs)

    @property
    def margin(self) -> float | None:
        return self.triplet_loss.margin

    @property
    def need_logs(self) -> bool:
        return self.triplet_loss.need_logs

    @property
    def last_logs(self) -> dict[str, float]:
        return self.triplet_loss.last_logs

    def forward(self, features: Tensor, labels: Tensor | Sequence[int]) -> Tensor:
        anchor, positive, negative = self.miner.sample(features, labels)
        if len(anchor) == 0:
            raise ValueError(
                "The batch holds no triplet (it needs two items of one label and one of another): "
                "build batches with BalanceSampler(labels, n_labels, n_instances)."
            )
        return self.triplet_loss(features[anchor], features[positive], features[negative])

    def extra_repr(self) -> str:
        return f"margin={self.margin}, miner={self.miner!r}, need_logs={self.need_logs}"
