"""`ViTExtractor`: images -> embeddings, with OML's constructor, over any timm backbone.

`weights` decides where the weights come from: a preset name (pretrained), None (random init of `arch`), or a
checkpoint path written by `save`. The name is OML's; the class works for every timm architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from explorer.errors import InputError
from explorer.models.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    is_checkpoint_path,
    load_checkpoint_file,
    save_checkpoint_file,
)
from explorer.models.hub import load_hub_backbone
from explorer.models.lite0 import load_lite0_backbone
from explorer.models.registry import PRESETS, Preset, create_backbone, resolve_arch
from explorer.models.transforms import ImageConfig, Transform, eval_transform, image_config_for_timm, train_transform


class ViTExtractor(nn.Module):
    """Feature extractor: `forward(images [B, 3, H, W]) -> embeddings [B, feat_dim]`, L2-normalised when asked.

    Args:
        weights: preset name (see `explorer.models.PRESETS`), a timm pretrained name ('arch.tag'), a checkpoint
            path, or None for random initialisation of `arch`.
        arch: OML alias ('vits16', 'resnet50', ...) or timm architecture; must agree with the preset or checkpoint.
        normalise_features: L2-normalise embeddings; None keeps a checkpoint's setting (False otherwise).
    """

    def __init__(
        self, weights: str | Path | None, arch: str | None = None, normalise_features: bool | None = None
    ) -> None:
        super().__init__()
        self.preset: str | None = None
        self.checkpoint_metadata: CheckpointMetadata | None = None
        if weights is None:
            if arch is None:
                raise InputError("ViTExtractor(weights=None) builds a random model and needs `arch`, e.g. 'vits16'.")
            self.arch = resolve_arch(arch)
            self.model = create_backbone(self.arch)
            self.image_config = image_config_for_timm(self.arch)
        elif is_checkpoint_path(weights):
            state_dict, metadata = load_checkpoint_file(weights)
            self._check_arch(arch, metadata.arch, f"checkpoint {weights}")
            self.arch, self.preset, self.checkpoint_metadata = metadata.arch, metadata.preset, metadata
            self.model = create_backbone(self.arch)
            self._load_checkpoint_weights(state_dict, weights)
            self.image_config = ImageConfig.from_dict(metadata.image_config)
            if normalise_features is None:
                normalise_features = metadata.normalise_features
        elif str(weights) in PRESETS:
            preset = PRESETS[str(weights)]
            self._check_arch(arch, preset.timm_arch, f"preset {preset.name!r}")
            self.arch, self.preset = preset.timm_arch, preset.name
            self.model = _preset_backbone(preset)
            self.image_config = image_config_for_timm(preset.timm_name)
        elif "." in str(weights) and timm.models.get_pretrained_cfg(str(weights)) is not None:
            self.arch = resolve_arch(str(weights))
            self._check_arch(arch, self.arch, f"timm weights {weights!r}")
            self.preset = str(weights)
            self.model = load_hub_backbone(str(weights), str(weights))
            self.image_config = image_config_for_timm(str(weights))
        else:
            raise InputError(
                f"Unknown weights {weights!r}: use a preset ({', '.join(PRESETS)}), a timm pretrained name "
                "('arch.tag', see timm.list_pretrained()), a checkpoint path ending in .safetensors, "
                "or None with `arch` for random initialisation."
            )
        self.normalise_features = bool(normalise_features)

    @classmethod
    def from_pretrained_file(
        cls, name: str, weights_file: str | Path, normalise_features: bool = False
    ) -> ViTExtractor:
        """Preset / timm name + a local timm weight file (e.g. a downloaded hub `model.safetensors`): no network."""
        timm_name = PRESETS[name].timm_name if name in PRESETS else name
        extractor = cls(None, arch=timm_name.split(".", 1)[0], normalise_features=normalise_features)
        extractor.model = create_backbone(extractor.arch, pretrained_file=weights_file)
        extractor.preset = name
        if timm.models.get_pretrained_cfg(timm_name) is not None:
            extractor.image_config = image_config_for_timm(timm_name)
        return extractor

    @staticmethod
    def _check_arch(requested: str | None, actual: str, origin: str) -> None:
        if requested is not None and resolve_arch(requested) != actual:
            raise InputError(f"arch={requested!r} does not match {origin}, which is {actual!r}; drop `arch` or fix it.")

    def _load_checkpoint_weights(self, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
        try:
            self.model.load_state_dict(state_dict)
        except RuntimeError as error:
            raise CheckpointError(f"Weights in {path} do not fit {self.arch}: {error}") from error

    @property
    def feat_dim(self) -> int:
        return int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
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
            training=dict(training or {}),
            metrics=dict(metrics or {}),
        )
        return save_checkpoint_file(path, self.model.state_dict(), metadata)

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, preset={self.preset!r}, feat_dim={self.feat_dim}, normalise={self.normalise_features}"
        )


def _preset_backbone(preset: Preset) -> nn.Module:
    if preset.source == "package":
        return load_lite0_backbone()
    return load_hub_backbone(preset.name, preset.timm_name)


def save_checkpoint(extractor: ViTExtractor, path: str | Path, **kwargs: Any) -> Path:
    """Function form of `ViTExtractor.save` (the name the error messages point to)."""
    return extractor.save(path, **kwargs)
