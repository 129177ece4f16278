"""Extractors over timm: presets, model specs, the offline EfficientNet-Lite0 weights, checkpoints, transforms."""

from explorer.models.checkpoint import CheckpointError, CheckpointMetadata, read_checkpoint_metadata
from explorer.models.extractor import ViTExtractor, save_checkpoint
from explorer.models.hub import PretrainedWeightsUnavailable
from explorer.models.registry import ARCH_ALIASES, OFFLINE_PRESET, PRESETS, Preset
from explorer.models.spec import ModelSpec, parse_model_spec
from explorer.models.transforms import ImageConfig, get_transforms_for_pretrained

__all__ = [
    "ARCH_ALIASES",
    "OFFLINE_PRESET",
    "PRESETS",
    "CheckpointError",
    "CheckpointMetadata",
    "ImageConfig",
    "ModelSpec",
    "Preset",
    "PretrainedWeightsUnavailable",
    "ViTExtractor",
    "get_transforms_for_pretrained",
    "parse_model_spec",
    "read_checkpoint_metadata",
    "save_checkpoint",
]
