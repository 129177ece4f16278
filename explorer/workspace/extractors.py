"""The extractor a workspace uses: what the user picked on the Model tab, and loading it ready for inference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer.errors import InputError
from explorer.models import OFFLINE_PRESET, PRESETS, CheckpointError, PretrainedWeightsUnavailable, ViTExtractor

DEFAULT_MODEL = OFFLINE_PRESET


@dataclass(frozen=True)
class ModelChoice:
    """What the user picked on the Model tab: a preset or timm name plus where the weights come from."""

    name: str = DEFAULT_MODEL
    weights: str = "pretrained"  # one of WEIGHT_CHOICES
    checkpoint: str | None = None
    image_size: int | None = None  # None: the model's own input size

    def describe(self) -> str:
        source = (
            f"checkpoint {Path(str(self.checkpoint)).name}"
            if self.weights == "checkpoint"
            else f"{self.weights} weights"
        )
        size = f", {self.image_size} px" if self.image_size else ""
        return f"{self.name} ({source}{size})"


@dataclass
class Extractor:
    """A loaded extractor: the module in eval mode plus the transform its inputs need."""

    model: torch.nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    choice: ModelChoice
    description: str


def available_models() -> list[str]:
    """Presets first (the offline one on top); any timm name can be typed in as well."""
    return [OFFLINE_PRESET, *(name for name in PRESETS if name != OFFLINE_PRESET)]


def load_extractor(choice: ModelChoice) -> Extractor:
    """Build the extractor a `ModelChoice` names, in eval mode, with its evaluation transform."""
    name = choice.name.strip()
    if not name:
        raise InputError("No model given: pick a preset or type a timm name such as 'resnet18'.")
    try:
        if choice.weights == "checkpoint":
            model = ViTExtractor(choice.checkpoint)
        elif choice.weights == "random":
            model = ViTExtractor(None, arch=PRESETS[name].timm_arch if name in PRESETS else name)
        elif name in PRESETS or "." in name:
            model = ViTExtractor(name)
        else:
            raise InputError(
                f"{name!r} is not a preset, so 'pretrained' needs timm's 'arch.tag' form (e.g. 'resnet18.a1_in1k', "
                f"which downloads) or weights 'random'. Offline, use the preset {OFFLINE_PRESET!r}."
            )
    except PretrainedWeightsUnavailable as error:  # offline hub download: say so in the UI, not as a crash
        raise InputError(str(error)) from error
    except CheckpointError as error:  # name the user's file, not the server folder its upload landed in
        message = str(error)
        if choice.checkpoint:
            message = message.replace(str(choice.checkpoint), Path(choice.checkpoint).name)
        raise InputError(message) from error
    if choice.weights == "checkpoint":  # the checkpoint, not the name field, says what the model is
        choice = replace(choice, name=model.preset or model.arch)
    if choice.image_size:
        model.set_input_size(choice.image_size)
    return Extractor(model.eval(), model.get_transforms(train=False), choice, choice.describe())


def embed_image(extractor: Extractor, image: Image.Image) -> np.ndarray:
    """Embedding `[D]` of one in-memory image (an upload), pre-processed like the dataset's images."""
    with torch.inference_mode():
        return extractor.model(extractor.transform(image)[None]).float()[0].numpy()
