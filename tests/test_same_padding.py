"""TensorFlow-style "same" convolutions without the padded input copy: the same outputs as timm's `Conv2dSame`."""

from __future__ import annotations

import itertools

import pytest
import timm
import torch
from timm.layers import Conv2dSame

from explorer.inference.folding import fold_batch_norms
from explorer.inference.same_padding import EdgePaddedConv2d, same_padding, without_padded_copies


def test_same_padding_puts_the_odd_one_after():
    assert same_padding(224, 3, 2, 1) == (0, 1)  # EfficientNet-Lite's stem
    assert same_padding(56, 5, 2, 1) == (1, 2)
    assert same_padding(7, 3, 1, 1) == (1, 1)
    assert same_padding(7, 3, 2, 2) == (2, 2)  # dilated: reaches 5 pixels
    assert same_padding(4, 1, 2, 1) == (0, 0)


CASES = list(
    itertools.product(
        (1, 2, 3, 4, 5),  # kernel
        (1, 2, 3),  # stride
        (1, 2),  # dilation
        ((224, 224), (15, 16), (2, 3), (1, 9)),  # input height, width: even, odd, tiny, a single row
    )
)


@pytest.mark.parametrize(("kernel", "stride", "dilation", "size"), CASES)
def test_edge_padded_convolution_equals_timms_same_convolution(kernel, stride, dilation, size):
    torch.manual_seed(kernel * 100 + stride * 10 + dilation)
    groups = 4 if kernel % 2 else 1  # depthwise-style grouped and plain convolutions
    conv = Conv2dSame(8, 8, kernel, stride=stride, dilation=dilation, groups=groups).eval()
    images = torch.randn(2, 8, *size)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = images.contiguous(memory_format=layout)
        with torch.no_grad():
            expected, got = conv(x), EdgePaddedConv2d(conv)(x)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_an_odd_padding_at_the_end_never_pads_the_whole_input(monkeypatch):
    conv = Conv2dSame(8, 8, 3, stride=2, groups=8).eval()  # EfficientNet-Lite's strided depthwise convolution
    x = torch.randn(2, 8, 112, 112)
    with torch.no_grad():
        expected = conv(x)
    padded_sizes = []
    real_pad = torch.nn.functional.pad
    monkeypatch.setattr(
        torch.nn.functional, "pad", lambda t, *a, **k: padded_sizes.append(t.shape) or real_pad(t, *a, **k)
    )
    monkeypatch.setattr(conv, "forward", lambda _: pytest.fail("fell back to the padded convolution"))
    with torch.no_grad():
        got = EdgePaddedConv2d(conv)(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert padded_sizes and all(min(size[-2:]) <= 3 for size in padded_sizes)  # only the last rows / columns


def test_the_inference_copy_of_a_tensorflow_port_has_no_padded_copies_and_the_same_features():
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    example, other = torch.randn(2, 3, 96, 96), torch.randn(3, 3, 96, 96)
    inference_copy = fold_batch_norms(model, example)
    wrappers = [m for m in inference_copy.modules() if isinstance(m, EdgePaddedConv2d)]
    same = [m for m in inference_copy.modules() if isinstance(m, Conv2dSame)]
    assert len(wrappers) == 5 and same == [wrapper.conv for wrapper in wrappers]  # each one inside its wrapper
    assert sum(isinstance(m, Conv2dSame) for m in model.modules()) == 5  # the model itself is left as it was
    assert not any(isinstance(m, EdgePaddedConv2d) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(inference_copy(other), model(other), rtol=1e-4, atol=1e-4)
    assert without_padded_copies(inference_copy) == 0  # nothing left to swap
