"""Plain timm weight files (a hub `model.safetensors`, a torch `.pth`/`.bin`) loaded strictly into a backbone.

timm's own `pretrained=True` path loads with `strict=False` whenever `num_classes` differs from the pretrained
config, which is always the case for a headless backbone: a partial or foreign file would then leave layers at
random init without a word. Here only the classifier keys the headless model has no place for are dropped; every
other key must match, or the file is refused with the missing / unexpected keys named.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import timm
import torch
from safetensors import SafetensorError
from torch import nn

from explorer.models.checkpoint import CheckpointError

SHOWN_KEYS = 5  # how many missing / unexpected keys an error message lists


def read_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch file (nested 'state_dict' / 'model' and 'module.' prefixes unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Weight file not found: {path}")
    try:
        return timm.models.load_state_dict(str(path), weights_only=True)
    except (OSError, RuntimeError, ValueError, SafetensorError, pickle.UnpicklingError, EOFError) as error:
        raise CheckpointError(
            f"Cannot read weights from {path}: it is neither a safetensors file nor a torch state dict ({error})."
        ) from error


def load_weight_file_strictly(model: nn.Module, timm_arch: str, path: str | Path) -> None:
    """Fill every parameter and buffer of `model` from `path`, or raise `CheckpointError` naming what does not fit."""
    state_dict = _adapted(read_weight_file(path), model, timm_arch, path)
    expected = model.state_dict()
    classifier_prefixes = _classifier_prefixes(model)
    state_dict = {
        key: value
        for key, value in state_dict.items()
        if key in expected or not key.startswith(classifier_prefixes)  # drop only the head a backbone lacks
    }
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [
        f"{key} {tuple(value.shape)} vs {tuple(expected[key].shape)}"
        for key, value in state_dict.items()
        if key in expected and value.shape != expected[key].shape
    ]
    problems = [
        _listed(f"{len(keys)} {what}", keys)
        for what, keys in (
            ("missing key(s)", missing),
            ("unexpected key(s)", unexpected),
            ("tensor(s) of the wrong shape (file vs model)", mismatched),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"Weights in {path} do not fit timm's {timm_arch!r}: {'; '.join(problems)}. "
            "Use the weight file made for this architecture (e.g. the model.safetensors of its hub repository)."
        )
    model.load_state_dict(state_dict, strict=True)


def _adapted(
    state_dict: dict[str, torch.Tensor], model: nn.Module, timm_arch: str, path: str | Path
) -> dict[str, torch.Tensor]:
    """timm's per-family adapter (e.g. ViT position-embedding resampling), as its own pretrained loading applies."""
    module = sys.modules[timm.models.model_entrypoint(timm_arch).__module__]
    adapter = getattr(module, "checkpoint_filter_fn", None)
    if adapter is None:
        return state_dict
    try:
        return adapter(state_dict, model)
    except (RuntimeError, ValueError, KeyError, IndexError) as error:  # a foreign file the adapter cannot read
        raise CheckpointError(
            f"Weights in {path} do not fit timm's {timm_arch!r}: its weight adapter failed ({error})."
        ) from error


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Key prefixes of the classifier layer(s) named by the model's pretrained config ('head', 'fc', ...)."""
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    return tuple(f"{name}." for name in names)


def _listed(title: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return f"{title} ({shown}{', ...' if len(keys) > SHOWN_KEYS else ''})"
