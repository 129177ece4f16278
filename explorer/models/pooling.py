"""Generalised-mean (GeM) pooling for convnet backbones: the pooling that fine-tuning for retrieval switches to.

GeM pools each channel as (mean over positions of x^p)^(1/p): p = 1 is average pooling, p -> infinity max pooling.
With p = 3 (Radenovic et al., "Fine-tuning CNN image retrieval with no human annotation", 2018) a channel is
described by its strong responses rather than by their spatial average, which the background around a small object
dilutes. On the offline preset's own features (birds50 validation, `bench/bench_pooling.py`) average pooling gives
cmc@1 0.926, GeM with p = 3 0.936, and the Train tab's defaults gain about twice as much with it (README,
Benchmarks > Train tab).

timm's convnets pool with a `SelectAdaptivePool2d` (`model.global_pool`, or `model.head.global_pool`); GeM takes
the place of its inner `pool`, so the module's flatten and every caller stay as they are. ViTs pool tokens and
are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from timm.layers import SelectAdaptivePool2d
from torch import nn

GEM = "gem"
GEM_P = 3.0
POOLING_CHOICES = (GEM, "keep")  # what fine-tuning does to the backbone's pooling
GEM_STATE_KEY = "global_pool.pool.p"  # GeM's exponent in a timm backbone's state_dict


class GeneralizedMeanPooling(nn.Module):
    """[B, C, H, W] -> [B, C, 1, 1]: (mean_hw clamp(x, eps)^p)^(1/p). `p` is a buffer, saved with the weights and
    fixed during training: 3 is the paper's value for any backbone, and a learned p would need a learning rate of
    its own, outside the recipe's per-stage groups."""

    def __init__(self, p: float = GEM_P, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1), keepdim=True)
        return pooled.pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={float(self.p):g}, eps={self.eps:g}"


def _global_pools(backbone: nn.Module) -> list[SelectAdaptivePool2d]:
    """The backbone's global pooling layers (`global_pool`, or a head's `global_pool`)."""
    candidates = (getattr(backbone, "global_pool", None), getattr(getattr(backbone, "head", None), "global_pool", None))
    return [pool for pool in candidates if isinstance(pool, SelectAdaptivePool2d)]


def _is_global_average(pool: SelectAdaptivePool2d) -> bool:
    """timm's NCHW global average (`pool_type='avg'`: an `AdaptiveAvgPool2d(1)`, flattened after it)."""
    return isinstance(pool.pool, nn.AdaptiveAvgPool2d) and pool.pool.output_size in (1, (1, 1))


def _device_of(module: nn.Module) -> torch.device:
    return next((tensor.device for tensor in module.parameters()), torch.device("cpu"))


def state_pools_with_gem(state_dict: Mapping[str, object]) -> bool:
    """Whether saved weights (a `state_dict`, keys prefixed or not) hold a GeM exponent: the model they come from
    pooled with GeM, so the one they are loaded into must too (`set_pooling(backbone, GEM)`) before loading."""
    return any(key == GEM_STATE_KEY or key.endswith(f".{GEM_STATE_KEY}") for key in state_dict)


def pooling_of(backbone: nn.Module) -> str | None:
    """`GEM` when the backbone pools with GeM, else None (its own pooling): what a checkpoint records."""
    return GEM if any(isinstance(pool.pool, GeneralizedMeanPooling) for pool in _global_pools(backbone)) else None


def use_gem_pooling(backbone: nn.Module, p: float = GEM_P) -> bool:
    """Replace the backbone's global average pooling by GeM with exponent `p`; True when it now pools with GeM.

    A backbone that already pools with GeM keeps its own p (a fine-tuned checkpoint trained further); one without
    timm's NCHW global average (ViTs, max or 'fast' pooling) is left as it is and gives False.
    """
    switched = False
    for pool in _global_pools(backbone):
        if isinstance(pool.pool, GeneralizedMeanPooling):
            switched = True
        elif _is_global_average(pool):
            pool.pool = GeneralizedMeanPooling(p).to(_device_of(backbone))  # a fit may have moved the model already
            pool.pool_type = GEM
            switched = True
    return switched


def set_pooling(backbone: nn.Module, pooling: str | None) -> None:
    """Pool as `pooling_of` said: `GEM`, or None for the backbone's own pooling (a GeM layer back to average).

    Why: a checkpoint and a kept epoch record the pooling with the weights; restoring them restores it too.
    """
    if pooling == GEM:
        if not use_gem_pooling(backbone):
            raise ValueError(f"{type(backbone).__name__} has no global average pooling to replace by GeM.")
        return
    for pool in _global_pools(backbone):
        if isinstance(pool.pool, GeneralizedMeanPooling):
            pool.pool = nn.AdaptiveAvgPool2d(1)
            pool.pool_type = "avg"
