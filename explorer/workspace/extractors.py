"""The extractor a workspace uses: what the user picked on the Model tab, and loading it ready for inference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer import const as C
from explorer.errors import InputError
from explorer.models import OFFLINE_PRESET, PRESETS, CheckpointError, ViTExtractor
from explorer.models.checkpoint import is_checkpoint_path
from explorer.models.spec import ModelSpec, parse_model_spec

DEFAULT_MODEL = C.DEFAULT_MODEL


@dataclass(frozen=True)
class ModelChoice:
    """What the user picked on the Model tab: a preset or timm name plus where the weights come from.

    The input size is not part of it: the loaded extractor's `image_config` is the one place that holds it.
    """

    name: str = DEFAULT_MODEL
    weights: str = "pretrained"  # one of WEIGHT_CHOICES
    checkpoint: str | None = None

    def spec(self) -> ModelSpec:
        """The one parse of this choice; 'pretrained' must name pretrained weights, 'checkpoint' a file."""
        name = self.name.strip()
        if self.weights == "checkpoint":
            if not self.checkpoint or not is_checkpoint_path(self.checkpoint):
                raise InputError(f"Weights 'checkpoint' needs a checkpoint file, got {self.checkpoint!r}.")
            return parse_model_spec(self.checkpoint)
        if not name:
            raise InputError("No model given: pick a preset or type a timm name such as 'resnet18'.")
        if self.weights == "random":
            return parse_model_spec(None, arch=name)
        spec = parse_model_spec(name)
        if spec.kind == "checkpoint":
            raise InputError(f"{name!r} is a file: choose weights 'checkpoint' to load it.")
        return spec

    def describe(self, model: ViTExtractor | None = None) -> str:
        """What was picked; with the loaded `model`, the input size it is fed at too."""
        source = (
            f"checkpoint {Path(str(self.checkpoint)).name}"
            if self.weights == "checkpoint"
            else f"{self.weights} weights"
        )
        size = f", {model.image_config.input_size} px" if model is not None else ""
        # Random weights of a preset are its architecture's random init: name the architecture, not the preset's
        # pretrained weights.
        name = self.spec().timm_arch if self.weights == "random" else self.name
        return f"{name} ({source}{size})"


@dataclass
class Extractor:
    """A loaded extractor: the module in eval mode plus the transform its inputs need."""

    model: ViTExtractor
    transform: Callable[[Image.Image], torch.Tensor]
    choice: ModelChoice
    description: str


def available_models() -> list[str]:
    """Presets first (the offline one on top); any timm name can be typed in as well."""
    return [OFFLINE_PRESET, *(name for name in PRESETS if name != OFFLINE_PRESET)]


def load_extractor(
    choice: ModelChoice, image_size: int | None = None, allow: Callable[[ModelSpec], None] | None = None
) -> Extractor:
    """Build the extractor a `ModelChoice` names, in eval mode, fed at `image_size` (None: the model's own).

    `allow` sees the parsed spec before anything is built or downloaded and raises to refuse it (the serving
    policy's size budget)."""
    try:
        spec = choice.spec()
        if allow is not None:
            allow(spec)
        model = ViTExtractor(spec)
    except CheckpointError as error:  # name the user's file, not the server folder its upload landed in
        message = str(error)
        if choice.checkpoint:
            message = message.replace(str(choice.checkpoint), Path(choice.checkpoint).name)
        raise InputError(message) from error
    if choice.weights == "checkpoint":  # the checkpoint, not the name field, says what the model is
        choice = replace(choice, name=model.preset or model.arch)
    model.set_input_size(image_size)
    return Extractor(model.eval(), model.get_transforms(train=False), choice, choice.describe(model))


def embed_image(extractor: Extractor, image: Image.Image) -> np.ndarray:
    """Embedding `[D]` of one in-memory image (an upload), pre-processed like the dataset's images."""
    with torch.inference_mode():
        return extractor.model(extractor.transform(image)[None]).float()[0].numpy()
