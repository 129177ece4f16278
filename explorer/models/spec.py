"""What a model string means, decided once: `parse_model_spec(weights, arch)` -> `ModelSpec`.

A weights string is a preset name, timm's pretrained 'arch.tag', a checkpoint path, or None with an architecture
for random initialisation. The extractor, the transforms helpers and the app all read the same `ModelSpec`, so
they never disagree on which architecture, which pretrained config (image size, mean/std) or which file is meant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import timm

from explorer.errors import InputError
from explorer.models.checkpoint import CheckpointMetadata, is_checkpoint_path, read_checkpoint_metadata
from explorer.models.registry import OFFLINE_PRESET, PRESETS, resolve_arch

ModelKind = Literal["preset", "timm_pretrained", "random", "checkpoint"]
SHOWN_TAGS = 3  # how many of timm's pretrained tags a message suggests


@dataclass(frozen=True)
class ModelSpec:
    """One parsed model string: where the weights come from and which timm model they fill.

    `pretrained_name` is the name the weights go by (what `ViTExtractor.preset` holds): the preset, timm's
    'arch.tag', the preset a checkpoint started from, or None for random initialisation.
    """

    kind: ModelKind
    timm_arch: str  # timm architecture, tag dropped
    config_name: str | None = None  # timm name whose pretrained config gives the image config; None: the checkpoint's
    pretrained_name: str | None = None
    checkpoint: Path | None = None
    checkpoint_metadata: CheckpointMetadata | None = field(default=None, repr=False, compare=False)

    @property
    def preset(self) -> str | None:
        """The preset name when the weights are a preset's, else None."""
        return self.pretrained_name if self.kind == "preset" else None

    def as_random(self) -> ModelSpec:
        """Random initialisation of the same architecture, keeping this spec's image config (for weight files)."""
        return ModelSpec("random", self.timm_arch, config_name=self.config_name or self.timm_arch)

    def describe(self) -> str:
        """Where the weights come from, for messages ('preset 'x'', 'checkpoint path', ...)."""
        if self.kind == "checkpoint":
            return f"checkpoint {self.checkpoint}"
        if self.kind == "random":
            return f"random initialisation of {self.timm_arch!r}"
        return f"{'preset' if self.kind == 'preset' else 'timm weights'} {self.pretrained_name!r}"


def parse_model_spec(weights: str | Path | ModelSpec | None, arch: str | None = None) -> ModelSpec:
    """Decide what `weights` names; `arch`, when given, must agree with it (for None it is what to build).

    `arch` is an OML alias ('vits16'), a timm architecture or a preset name (its architecture). Anything that is
    not a preset, timm 'arch.tag', checkpoint path or None raises `InputError` saying which forms are accepted.
    """
    if weights is None:
        if arch is None:
            raise InputError("ViTExtractor(weights=None) builds a random model and needs `arch`, e.g. 'vits16'.")
        timm_arch = architecture_of(arch)
        return ModelSpec("random", timm_arch, config_name=timm_arch)
    spec = weights if isinstance(weights, ModelSpec) else _parse_weights(weights)
    if arch is not None and architecture_of(arch) != spec.timm_arch:
        raise InputError(
            f"arch={arch!r} does not match {spec.describe()}, which is {spec.timm_arch!r}; drop `arch` or fix it."
        )
    return spec


def parse_model_name(name: str | Path) -> ModelSpec:
    """Like `parse_model_spec(name)`, but a bare architecture ('resnet18', 'vits16') means its random init.

    For helpers that need only an architecture and its default image config (transforms, weight files).
    """
    return parse_model_spec(None, arch=str(name)) if _is_bare_architecture(name) else parse_model_spec(name)


def architecture_of(arch: str) -> str:
    """OML alias, timm name or preset name -> timm architecture (tag dropped)."""
    return PRESETS[arch].timm_arch if arch in PRESETS else resolve_arch(arch)


def _parse_weights(weights: str | Path) -> ModelSpec:
    if is_checkpoint_path(weights):
        metadata = read_checkpoint_metadata(weights)
        return ModelSpec(
            "checkpoint",
            metadata.arch,
            pretrained_name=metadata.preset,
            checkpoint=Path(weights),
            checkpoint_metadata=metadata,
        )
    name = str(weights)
    if name in PRESETS:
        preset = PRESETS[name]
        return ModelSpec("preset", preset.timm_arch, config_name=preset.timm_name, pretrained_name=name)
    if "." in name and _has_pretrained_config(name):
        return ModelSpec("timm_pretrained", resolve_arch(name), config_name=name, pretrained_name=name)
    raise InputError(_unknown_weights_message(name))


def _has_pretrained_config(timm_name: str) -> bool:
    try:
        return timm.models.get_pretrained_cfg(timm_name) is not None
    except RuntimeError:  # timm's answer for a known architecture with an unknown tag
        return False


def _is_bare_architecture(name: str | Path) -> bool:
    text = str(name)
    return "." not in text and text not in PRESETS and not is_checkpoint_path(name) and _is_architecture(text)


def _is_architecture(name: str) -> bool:
    try:
        resolve_arch(name)
    except InputError:
        return False
    return True


def _unknown_weights_message(name: str) -> str:
    base = name.split(".", 1)[0]
    if _is_architecture(base):
        timm_arch = resolve_arch(base)
        tags = timm.list_pretrained(f"{timm_arch}.*")
        weights = f"e.g. {', '.join(repr(t) for t in tags[:SHOWN_TAGS])}" if tags else "timm has none for it"
        problem = f"timm has no pretrained weights {name!r}" if "." in name else f"{name!r} is an architecture"
        return (
            f"{problem}: give timm's 'arch.tag' form ({weights}; downloaded from the Hugging Face hub), or random "
            f"initialisation (ViTExtractor(None, arch={base!r}); the CLI's --arch {base}; the app's weights "
            f"'random'). Offline, use the preset {OFFLINE_PRESET!r}."
        )
    return (
        f"Unknown weights {name!r}: use a preset ({', '.join(PRESETS)}), a timm pretrained name "
        "('arch.tag', see timm.list_pretrained()), a checkpoint path ending in .safetensors, "
        "or None with `arch` for random initialisation."
    )
