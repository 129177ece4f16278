"""Image pre-processing that matches a model: input size, mean/std, interpolation and crop from timm's config.

An extractor carries an `ImageConfig`; checkpoints store it, so a loaded model is fed exactly as it was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import timm.data
import torch
from PIL import Image
from torchvision import transforms as T

from explorer.data.images import read_image
from explorer.models.spec import ModelSpec, parse_model_name

Transform = Callable[[Image.Image], torch.Tensor]
ImageReader = Callable[..., Image.Image]
TRAIN_CROP_SCALE = (0.6, 1.0)  # random crops keep most of the object: retrieval labels depend on the whole item


@dataclass(frozen=True)
class ImageConfig:
    """What a model expects of its input images."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    def with_size(self, input_size: int | None) -> ImageConfig:
        return self if input_size is None else replace(self, input_size=int(input_size))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageConfig:
        return cls(
            input_size=int(data["input_size"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            interpolation=str(data["interpolation"]),
            crop_pct=float(data["crop_pct"]),
        )


def image_config_for_timm(timm_name: str) -> ImageConfig:
    """timm's pretrained config of `timm_name` (arch or arch.tag); the arch's default tag when none is given."""
    cfg = timm.data.resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(timm_name).to_dict())
    return ImageConfig(
        input_size=int(cfg["input_size"][-1]),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
        crop_pct=float(cfg["crop_pct"]),
    )


def eval_transform(config: ImageConfig) -> Transform:
    """Resize, centre crop (timm's `crop_pct`), to tensor, normalise."""
    return timm.data.create_transform(
        input_size=(3, config.input_size, config.input_size),
        interpolation=config.interpolation,
        mean=config.mean,
        std=config.std,
        crop_pct=config.crop_pct,
        is_training=False,
    )


def train_transform(config: ImageConfig) -> Transform:
    """Light augmentations for metric learning: random resized crop, flip, colour jitter (no hue shift)."""
    return T.Compose(
        [
            T.RandomResizedCrop(
                config.input_size, scale=TRAIN_CROP_SCALE, interpolation=T.InterpolationMode(config.interpolation)
            ),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            T.ToTensor(),
            T.Normalize(config.mean, config.std),
        ]
    )


def image_config_of(spec: ModelSpec) -> ImageConfig:
    """The image config a parsed model expects: its checkpoint's, else timm's pretrained config of `config_name`."""
    if spec.checkpoint_metadata is not None:
        return ImageConfig.from_dict(spec.checkpoint_metadata.image_config)
    return image_config_for_timm(spec.config_name)


def image_config_for(name: str | Path) -> ImageConfig:
    """Preset name, timm name (with or without tag), OML arch alias or checkpoint path -> its `ImageConfig`."""
    return image_config_of(parse_model_name(name))


def get_transforms_for_pretrained(name: str | Path) -> tuple[Transform, ImageReader]:
    """OML's helper: (evaluation transform, image reader) for a preset, timm name or checkpoint path."""
    return eval_transform(image_config_for(name)), read_image
