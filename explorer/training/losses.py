"""Triplet losses with OML's semantics: hard margin relu(m + d(a,p) - d(a,n)), or soft log(1 + exp(d(a,p) - d(a,n))).

Distances are exact Euclidean norms: an anchor and a positive that are the same item (BalanceSampler repeats items
of small classes) are at distance 0, not at `pairwise_distance`'s eps * sqrt(D), and the gradient there stays finite
(0). The hard-margin loss equals `torch.nn.TripletMarginLoss` on the same triplets up to that eps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.errors import InputError
from explorer.training.miners import AllTripletsMiner, TripletsMiner

TRIPLET_LOG_KEYS = ("active_tri", "pos_dist", "neg_dist")


def euclidean_distance(x1: Tensor, x2: Tensor) -> Tensor:
    """Row-wise ||x1 - x2||_2, exactly 0 for equal rows; its gradient at 0 is 0 (vector_norm's subgradient)."""
    return torch.linalg.vector_norm(x1 - x2, dim=-1)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the weights before that step are still the last good ones."""


def check_finite_loss(loss: Tensor, where: str) -> None:
    if not torch.isfinite(loss.detach()).all():
        raise NonFiniteLossError(
            f"The loss became {loss.item()} at {where}: training stopped before applying that step. Lower the "
            "learning rate, use a margin, or check the data; the last saved checkpoint is still valid."
        )


class TripletLoss(nn.Module):
    """Mean over triplets of relu(margin + d(a,p) - d(a,n)); `margin=None` gives the soft-margin version.

    With `relative_margin`, the margin is a fraction of the triplets' mean distance (over d(a,p) and d(a,n), no
    gradient): one value then means the same for L2-normalised embeddings (distances about 1) and unnormalised
    ones (a pretrained CNN's: tens), where an absolute 0.2 is a fraction of a percent of the distances.
    """

    def __init__(self, margin: float | None = 0.1, need_logs: bool = False, relative_margin: bool = False) -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise InputError(f"margin must be non-negative or None (soft margin), got {margin}.")
        self.margin = margin
        self.need_logs = need_logs
        self.relative_margin = relative_margin
        self.last_logs: dict[str, float] = {}

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        pos_dist = euclidean_distance(anchor, positive)
        neg_dist = euclidean_distance(anchor, negative)
        difference = pos_dist - neg_dist
        if self.margin is None:
            losses = F.softplus(difference)
        else:
            scale = torch.cat([pos_dist, neg_dist]).detach().mean() if self.relative_margin else 1.0
            losses = F.relu(self.margin * scale + difference)
        if self.need_logs:
            self.last_logs = {
                "active_tri": float((losses.detach() > 0).float().mean()),
                "pos_dist": float(pos_dist.detach().mean()),
                "neg_dist": float(neg_dist.detach().mean()),
            }
        return losses.mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, relative_margin={self.relative_margin}"


class TripletLossWithMiner(nn.Module):
    """Mines triplets in a batch of embeddings, then applies `TripletLoss`: `loss = criterion(embeddings, labels)`.

    With `need_logs=True`, `last_logs` holds `active_tri` (fraction of triplets with positive loss) and the mean
    positive / negative distances of the last call.
    """

    def __init__(
        self,
        margin: float | None = 0.1,
        miner: TripletsMiner | None = None,
        need_logs: bool = False,
        relative_margin: bool = False,
    ) -> None:
        super().__init__()
        self.miner = miner if miner is not None else AllTripletsMiner()
        self.triplet_loss = TripletLoss(margin=margin, need_logs=need_logs, relative_margin=relative_margin)

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
            raise InputError(
                "The batch holds no triplet (it needs two items of one label and one of another): "
                "build batches with BalanceSampler(labels, n_labels, n_instances)."
            )
        return self.triplet_loss(features[anchor], features[positive], features[negative])

    def extra_repr(self) -> str:
        return f"margin={self.margin}, miner={self.miner!r}, need_logs={self.need_logs}"
