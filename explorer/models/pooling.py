"""Generalised-mean (GeM) pooling for convnet backbones: the pooling that fine-tuning for retrieval switches to.

GeM pools each channel as (mean over positions of x^p)^(1/p): p = 1 is average pooling, p -> infinity max pooling.
With p = 3 (Radenovic et al., "Fine-tuning CNN image retrieval with no human annotation", 2018) a channel is
described by its strong responses rather than by their spatial average, which the background around a small object
dilutes. On the offline preset's own features (birds50 validation, `bench/bench_pooling.py`) average pooling gives
cmc@1 0.926, GeM with p = 3 0.936, and with it the Train tab's defaults gain +0.02 there instead of +0.005 (README,
Benchmarks > Train tab).

timm's convnets pool with a `SelectAdaptivePool2d` (`model.global_pool`, or `model.head.global_pool`); GeM takes
the place of its inner `pool`, so the module's flatten and every caller stay as they are. ViTs pool tokens and
are left alone, and so are convnets whose pooled maps are signed (ConvNeXt): GeM is for activations.
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
# Below the minimum of every common activation (SiLU -0.28, hard-swish -0.375, GELU -0.17; ReLU and ReLU6 0):
# pooled maps that go lower are signed, not activations (`pools_activations`).
ACTIVATION_FLOOR = -0.5


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
    """timm's NCHW global average (`pool_type='avg'`: an `AdaptiveAvgPool2d(1)`, flattened after it or not)."""
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


def pools_activations(backbone: nn.Module) -> bool:
    """Whether the maps the backbone pools are the output of a bounded-below activation, GeM's domain: their minimum
    on one probe image (random pixels, at the model's input size up to 224 px) is above `ACTIVATION_FLOOR`.

    Why: GeM clamps its input at eps, which is harmless after ReLU, SiLU or hard-swish (EfficientNet, ResNet,
    MobileNet, RegNet) but would throw away the negative half of signed maps, such as ConvNeXt's, pooled before its
    head's LayerNorm. The probe runs in eval mode without gradient; every module's mode is restored after it.
    """
    channels, height, width = getattr(backbone, "pretrained_cfg", {}).get("input_size", (3, 224, 224))
    pixels = torch.rand(1, channels, min(height, 224), min(width, 224), generator=torch.Generator().manual_seed(0))
    probe = pixels.to(_device_of(backbone))  # its own generator: a run's seeded randomness stays as it was
    modes = [(module, module.training) for module in backbone.modules()]
    backbone.eval()
    try:
        with torch.no_grad():
            features = backbone.forward_features(probe)
    finally:
        for module, training in modes:
            module.training = training
    return float(features.min()) > ACTIVATION_FLOOR


def use_gem_pooling(backbone: nn.Module, p: float = GEM_P) -> bool:
    """Replace the backbone's global average pooling by GeM with exponent `p`; True when it now pools with GeM.

    A backbone that already pools with GeM keeps its own p (a fine-tuned checkpoint trained further); one without
    timm's NCHW global average (ViTs, max or 'fast' pooling) or whose pooled maps are signed (`pools_activations`:
    ConvNeXt) is left as it is and gives False.
    """
    if pooling_of(backbone) == GEM:
        return True
    averages = [pool for pool in _global_pools(backbone) if _is_global_average(pool)]
    if not averages or not pools_activations(backbone):
        return False
    _switch_to_gem(backbone, averages, p)
    return True


def _switch_to_gem(backbone: nn.Module, pools: list[SelectAdaptivePool2d], p: float = GEM_P) -> None:
    for pool in pools:
        pool.pool = GeneralizedMeanPooling(p).to(_device_of(backbone))  # a fit may have moved the model already
        pool.pool_type = GEM


def set_pooling(backbone: nn.Module, pooling: str | None) -> None:
    """Pool as `pooling_of` said: `GEM`, or None for the backbone's own pooling (a GeM layer back to average).

    Why: a checkpoint and a kept epoch record the pooling with the weights; restoring them restores it too.
    """
    if pooling == GEM:  # recorded with the weights: no second decision, only the layer
        averages = [pool for pool in _global_pools(backbone) if _is_global_average(pool)]
        if pooling_of(backbone) != GEM and not averages:
            raise ValueError(f"{type(backbone).__name__} has no global average pooling to replace by GeM.")
        _switch_to_gem(backbone, averages)
        return
    for pool in _global_pools(backbone):
        if isinstance(pool.pool, GeneralizedMeanPooling):
            pool.pool = nn.AdaptiveAvgPool2d(1)
            pool.pool_type = "avg"
