"""TensorFlow-style "same" convolutions without a padded copy of their whole input, for inference.

timm's `Conv2dSame` (the strided convolutions of EfficientNet-Lite and of other TensorFlow ports) pads its input
with one more row and column at the bottom and right than at the top and left, then convolves: every call writes a
zero-filled, padded copy of the activation first. On the CPU that copy is a full memory pass over the largest
activations of the network. `EdgePaddedConv2d` gives the same outputs without it: the convolution with the
symmetric part of the padding gives every output but the last row and column, and those come from convolving the
last input rows / columns, padded alone. Each output is the same sum of the same products as before.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame
from timm.layers.padding import get_same_padding
from torch import Tensor, nn


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding of one spatial side as timm's `Conv2dSame` pads it (the odd one goes after)."""
    total = get_same_padding(size, kernel, stride, dilation)
    return total // 2, total - total // 2


class EdgePaddedConv2d(nn.Module):
    """`conv` (a `Conv2dSame`) computed without padding its whole input; other paddings call `conv` as it is."""

    def __init__(self, conv: Conv2dSame) -> None:
        super().__init__()
        self.conv = conv

    def _convolve(self, x: Tensor, padding: tuple[int, int] = (0, 0)) -> Tensor:
        conv = self.conv
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, padding, conv.dilation, conv.groups)

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        (height, width), (stride_h, stride_w) = x.shape[-2:], conv.stride
        top, bottom = same_padding(height, conv.kernel_size[0], stride_h, conv.dilation[0])
        left, right = same_padding(width, conv.kernel_size[1], stride_w, conv.dilation[1])
        if (top, left) == (bottom, right):
            return self._convolve(x, (top, left))
        out_h, out_w = math.ceil(height / stride_h), math.ceil(width / stride_w)
        if (bottom - top, right - left) != (1, 1) or min(out_h, out_w) < 2:
            return conv(x)
        inner = self._convolve(x, (top, left))  # every output row and column but the last
        first_row = (out_h - 1) * stride_h - top  # the input rows (columns) that the last output row (column) sees
        first_col = (out_w - 1) * stride_w - left
        last_row = self._convolve(F.pad(x[:, :, first_row:], (left, right, 0, bottom)))
        last_col = self._convolve(F.pad(x[:, :, :, first_col:], (0, right, top, bottom)))
        layout = (
            torch.channels_last if inner.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        )
        out = torch.empty(
            (len(inner), inner.shape[1], out_h, out_w), dtype=inner.dtype, device=inner.device, memory_format=layout
        )
        out[:, :, : out_h - 1, : out_w - 1] = inner
        out[:, :, out_h - 1 :] = last_row
        out[:, :, :, out_w - 1 :] = last_col
        return out


def without_padded_copies(model: nn.Module) -> int:
    """Swap every `Conv2dSame` of `model` (in place) for an `EdgePaddedConv2d` around it; returns how many were
    swapped (those already inside one are left)."""
    swapped = 0
    for parent in list(model.modules()):
        if isinstance(parent, EdgePaddedConv2d):
            continue
        for name, child in parent.named_children():
            if isinstance(child, Conv2dSame):
                setattr(parent, name, EdgePaddedConv2d(child))
                swapped += 1
    return swapped
