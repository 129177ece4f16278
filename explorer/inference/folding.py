"""BatchNorm folding for inference: a convolution followed by its BatchNorm becomes one convolution.

In eval mode a BatchNorm is a per-channel affine map of its input, so when its input is exactly a convolution's
output it can be merged into that convolution's weights and bias. The features stay the same up to float rounding
while a full memory pass per BatchNorm disappears: on the CPU that is about a third of a CNN's time (EfficientNet,
ResNet); models without BatchNorm (ViTs) are returned as they are.
"""

from __future__ import annotations

import copy

import torch
from timm.layers import BatchNormAct2d
from torch import Tensor, nn

from explorer.inference.same_padding import without_padded_copies

AGREEMENT_TOLERANCE = 1e-4  # largest difference of the folded copy's features, relative to their largest value


def fold_batch_norms(model: nn.Module, example: Tensor) -> nn.Module:
    """An eval-mode copy of `model` whose BatchNorms that only normalise a convolution's output are folded into it,
    and whose TensorFlow-style "same" convolutions skip their padded input copy (`without_padded_copies`).

    Which BatchNorm follows which convolution is read from one forward of `example` (a batch like the real ones),
    not from module names, so any architecture works. The copy is returned only if its features on `example`
    agree with `model`'s; otherwise (a convolution's output also used elsewhere, say) `model` itself is.
    `model` is never changed.
    """
    if model.training or not any(_foldable(module) for module in model.modules()):
        return model
    pairs = _convolutions_feeding_batch_norms(model, example)
    if not pairs:
        return model
    folded = copy.deepcopy(model)
    modules = dict(folded.named_modules())
    for conv_name, norm_name in pairs:
        _fold_into(modules[conv_name], modules[norm_name])
        _replace(folded, norm_name, _what_remains_of(modules[norm_name]))
    without_padded_copies(folded)
    with torch.no_grad():
        expected, got = model(example), folded(example)
    scale = float(expected.abs().max()) or 1.0
    return folded if float((got - expected).abs().max()) <= AGREEMENT_TOLERANCE * scale else model


def _foldable(module: nn.Module) -> bool:
    """Plain BatchNorm2d and timm's BatchNorm + activation; other subclasses may do more than normalise."""
    return type(module) in (nn.BatchNorm2d, BatchNormAct2d) and module.track_running_stats


def _convolutions_feeding_batch_norms(model: nn.Module, example: Tensor) -> list[tuple[str, str]]:
    """(convolution name, BatchNorm name) where the BatchNorm's input is that convolution's output, each module
    called once in a forward of `example`."""
    outputs: dict[int, tuple[str, Tensor]] = {}  # the tensors are kept so that their ids stay unique
    calls: dict[str, int] = {}
    fed: dict[str, str] = {}
    handles = []

    def on_conv(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            calls[name] = calls.get(name, 0) + 1
            outputs[id(output)] = (name, output)

        return hook

    def on_norm(name: str):
        def hook(module: nn.Module, inputs: tuple) -> None:
            calls[name] = calls.get(name, 0) + 1
            source = outputs.get(id(inputs[0])) if inputs else None
            if source is not None and source[1] is inputs[0]:
                fed[name] = source[0]

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv(name)))
        elif _foldable(module):
            handles.append(module.register_forward_pre_hook(on_norm(name)))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    fed_by = list(fed.values())
    return [
        (conv, norm) for norm, conv in fed.items() if calls[norm] == 1 and calls[conv] == 1 and fed_by.count(conv) == 1
    ]


def _fold_into(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """conv <- norm(conv): weights scaled per output channel, the shift moved into the bias."""
    with torch.no_grad():
        scale = norm.running_var.add(norm.eps).rsqrt()
        shift = -norm.running_mean * scale
        if norm.affine:
            scale, shift = scale * norm.weight, shift * norm.weight + norm.bias
        bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        conv.bias = nn.Parameter(bias * scale + shift, requires_grad=False)


def _what_remains_of(norm: nn.Module) -> nn.Module:
    """A folded BatchNorm leaves nothing, a timm BatchNormAct2d its dropout and activation."""
    if isinstance(norm, BatchNormAct2d):
        return nn.Sequential(norm.drop, norm.act)
    return nn.Identity()


def _replace(model: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, replacement)
