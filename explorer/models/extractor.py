"""`ViTExtractor`: images -> embeddings, with OML's constructor, over any timm backbone.

`weights` decides where the weights come from: a preset name or timm 'arch.tag' (pretrained), None (random init of
`arch`), or a checkpoint path written by `save`; `explorer.models.spec` reads it. The name is OML's; the class
works for every timm architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explorer.errors import InputError
from explorer.models.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint_weights,
    save_checkpoint_file,
)
from explorer.models.hub import load_hub_backbone
from explorer.models.lite0 import load_lite0_backbone
from explorer.models.pooling import pooling_of, set_pooling
from explorer.models.registry import PRESETS, create_backbone
from explorer.models.spec import ModelSpec, parse_model_name, parse_model_spec
from explorer.models.transforms import Transform, eval_transform, image_config_of, train_transform
from explorer.models.weight_files import load_weight_file_strictly


class ViTExtractor(nn.Module):
    """Feature extractor: `forward(images [B, 3, H, W]) -> embeddings [B, feat_dim]`, L2-normalised when asked.

    Args:
        weights: preset name (see `explorer.models.PRESETS`), a timm pretrained name ('arch.tag'), a checkpoint
            path, None for random initialisation of `arch`, or a `ModelSpec` already parsed.
        arch: OML alias ('vits16', 'resnet50', ...) or timm architecture; must agree with the preset or checkpoint.
        normalise_features: L2-normalise embeddings; None keeps a checkpoint's setting (False otherwise).
    """

    def __init__(
        self, weights: str | Path | ModelSpec | None, arch: str | None = None, normalise_features: bool | None = None
    ) -> None:
        super().__init__()
        spec = parse_model_spec(weights, arch)
        self.arch = spec.timm_arch
        self.preset: str | None = spec.pretrained_name
        self.checkpoint_metadata: CheckpointMetadata | None = spec.checkpoint_metadata
        self.model = _backbone(spec)
        self.image_config = image_config_of(spec)
        if normalise_features is None and spec.checkpoint_metadata is not None:
            normalise_features = spec.checkpoint_metadata.normalise_features
        self.normalise_features = bool(normalise_features)

    @classmethod
    def from_pretrained_file(
        cls, name: str, weights_file: str | Path, normalise_features: bool = False
    ) -> ViTExtractor:
        """Preset / timm name / architecture + a local timm weight file (e.g. a downloaded hub `model.safetensors`):
        no network. The name gives the architecture and the image config, the file every weight."""
        spec = parse_model_name(name)
        if spec.kind == "checkpoint":
            raise InputError(f"{name} is a checkpoint: load it with ViTExtractor({str(name)!r}).")
        extractor = cls(spec.as_random(), normalise_features=normalise_features)  # every weight filled below
        load_weight_file_strictly(extractor.model, extractor.arch, weights_file)
        extractor.preset = name
        return extractor

    @property
    def feat_dim(self) -> int:
        return int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of images [B, 3, H, W], taken channels-last with denormal floats flushed to zero on the CPU.

        oneDNN's convolutions run faster on that layout (EfficientNet-Lite0 at 224 px: a training step 2.0 -> 1.3 s),
        and on photos its inference only gains once denormals stop taking the slow path (a batch of 32: 0.82 ->
        0.50 s). Features differ by rounding only (~1e-6). Flushing denormals holds for the calling thread from
        then on (as TensorFlow does by default): values below 1e-38 become 0.
        """
        if images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        if images.device.type == "cpu":
            torch.set_flush_denormal(True)
        features = self.model(images)
        return F.normalize(features, dim=1) if self.normalise_features else features

    def set_input_size(self, input_size: int | None) -> None:
        """Train and embed at another image size from now on (kept in checkpoints)."""
        self.image_config = self.image_config.with_size(input_size)

    def get_transforms(self, train: bool = False) -> Transform:
        """Pre-processing for this model: augmentations when `train`, resize + centre crop otherwise."""
        return train_transform(self.image_config) if train else eval_transform(self.image_config)

    def save(
        self, path: str | Path, training: dict[str, Any] | None = None, metrics: dict[str, float] | None = None
    ) -> Path:
        """Write a checkpoint (atomically); `ViTExtractor(path)` restores model, normalisation and transforms."""
        metadata = CheckpointMetadata(
            arch=self.arch,
            feat_dim=self.feat_dim,
            normalise_features=self.normalise_features,
            image_config=self.image_config.to_dict(),
            preset=self.preset,
            pooling=pooling_of(self.model),
            training=dict(training or {}),
            metrics=dict(metrics or {}),
        )
        return save_checkpoint_file(path, self.model.state_dict(), metadata)

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, preset={self.preset!r}, feat_dim={self.feat_dim}, normalise={self.normalise_features}"
        )


def _backbone(spec: ModelSpec) -> nn.Module:
    """The backbone `spec` names, with its weights: random, the offline package's, the hub's or a checkpoint's."""
    if spec.kind == "random":
        return create_backbone(spec.timm_arch)
    if spec.kind == "checkpoint":
        model = create_backbone(spec.timm_arch)
        try:
            set_pooling(model, spec.checkpoint_metadata.pooling)
            model.load_state_dict(load_checkpoint_weights(spec.checkpoint))
        except (RuntimeError, ValueError) as error:
            raise CheckpointError(f"Weights in {spec.checkpoint} do not fit {spec.timm_arch}: {error}") from error
        return model
    if spec.kind == "preset" and PRESETS[spec.pretrained_name].source == "package":
        return load_lite0_backbone()
    return load_hub_backbone(spec.pretrained_name, spec.config_name)


def save_checkpoint(extractor: ViTExtractor, path: str | Path, **kwargs: Any) -> Path:
    """Function form of `ViTExtractor.save` (the name the error messages point to)."""
    return extractor.save(path, **kwargs)
