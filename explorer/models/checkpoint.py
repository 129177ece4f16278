"""Extractor checkpoints: one safetensors file whose header carries everything needed to use the model again.

The header holds the architecture, preset, feature size, normalisation, pooling, image config (so transforms are
restored), training settings and metrics at save time. Files are written to a temporary name and renamed, so a crash
or a full disk never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import json
import numbers
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from explorer.errors import InputError

FORMAT_NAME = "metric-learning-explorer/extractor"
FORMAT_VERSION = 2  # 2: `pooling` (GeM after fine-tuning); version 1 files read as before
CHECKPOINT_SUFFIX = ".safetensors"
WEIGHT_FILE_SUFFIXES = (CHECKPOINT_SUFFIX, ".ckpt", ".pth", ".pt", ".bin")
_FORMAT_KEY, _VERSION_KEY, _METADATA_KEY = "format", "format_version", "metadata"


class CheckpointError(InputError):
    """A file that cannot be loaded as an extractor checkpoint; the message says why and what to do."""


@dataclass
class CheckpointMetadata:
    arch: str  # timm architecture
    feat_dim: int
    normalise_features: bool
    image_config: dict[str, Any]  # ImageConfig.to_dict()
    preset: str | None = None  # the preset the weights started from, if any
    pooling: str | None = None  # "gem" when fine-tuning switched the backbone to GeM pooling, else its own
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def is_checkpoint_path(name: str | Path) -> bool:
    """Whether `name` means a file (an existing one, or one with a weights suffix) rather than a model name."""
    path = Path(name)
    return path.suffix.lower() in WEIGHT_FILE_SUFFIXES or path.is_file()


def save_checkpoint_file(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: CheckpointMetadata) -> Path:
    """Write tensors + metadata atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    if path.suffix.lower() != CHECKPOINT_SUFFIX:
        raise CheckpointError(f"Checkpoint path {path} must end with {CHECKPOINT_SUFFIX}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state_dict.items()}
    header = {
        _FORMAT_KEY: FORMAT_NAME,
        _VERSION_KEY: str(FORMAT_VERSION),
        _METADATA_KEY: json.dumps(asdict(metadata), default=_json_fallback),
    }
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        save_file(tensors, str(temporary), metadata=header)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _json_fallback(value: Any) -> Any:
    """What JSON cannot write as is: numbers (numpy, 0-d tensors) stay numbers, anything else becomes its text."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy scalars, 0-d arrays and tensors -> bool, int or float
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def read_checkpoint_metadata(path: str | Path) -> CheckpointMetadata:
    """Metadata only (cheap: reads the header, not the tensors)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as opened:
            header = opened.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path} is not a metric-learning-explorer checkpoint: it is not a safetensors file ({error}). "
            "Lightning .ckpt and torch .pth files are not read directly: save the extractor with "
            "explorer.models.save_checkpoint(extractor, 'model.safetensors'), or load plain timm weights with "
            "ViTExtractor.from_pretrained_file(arch, path)."
        ) from error
    if header.get(_FORMAT_KEY) != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not a metric-learning-explorer checkpoint (its header has no "
            f"'{_FORMAT_KEY}: {FORMAT_NAME}'). If it holds plain timm weights, load it with "
            "ViTExtractor.from_pretrained_file(arch, path)."
        )
    version = int(header.get(_VERSION_KEY, "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer version (checkpoint format {version}, this one reads up to "
            f"{FORMAT_VERSION}): upgrade metric-learning-explorer."
        )
    try:
        return CheckpointMetadata(**json.loads(header[_METADATA_KEY]))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} has a damaged checkpoint header ({error}).") from error


def load_checkpoint_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint whose header `read_checkpoint_metadata` has already accepted."""
    return load_file(str(path), device="cpu")
