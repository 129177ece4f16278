"""BatchNorm folding: the folded copy gives the same features without its BatchNorms, and never a wrong one."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.layers import BatchNormAct2d
from torch import nn

from explorer.inference.folding import fold_batch_norms


def _with_trained_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so a wrong fold shows in the features."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator))
            module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
            if module.affine:
                module.weight.data.copy_(torch.randn(channels, generator=generator))
                module.bias.data.copy_(torch.randn(channels, generator=generator))
    return model.eval()


class SmallCNN(nn.Module):
    """Conv -> BN -> ReLU, a bias-free grouped conv -> timm's BN + activation, a residual and a pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stem_norm = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.depthwise_norm = BatchNormAct2d(8, act_layer=nn.ReLU6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_norm(self.stem(images)))
        return (x + self.depthwise_norm(self.depthwise(x))).mean((2, 3))


class ConvOutputUsedTwice(nn.Module):
    """The convolution's output goes to its BatchNorm and, unnormalised, to the sum: folding would change it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv(images)
        return (self.norm(features) + features).mean((2, 3))


def _batch_norms(model: nn.Module) -> list[nn.Module]:
    return [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


@pytest.mark.parametrize("make", [SmallCNN, lambda: timm.create_model("test_efficientnet", num_classes=0)])
def test_folded_copy_has_no_batch_norm_and_the_same_features(make):
    torch.manual_seed(0)
    model = _with_trained_statistics(make())
    example, other = torch.randn(2, 3, 32, 32), torch.randn(5, 3, 32, 32)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    folded = fold_batch_norms(model, example)
    assert folded is not model and _batch_norms(folded) == [] and _batch_norms(model) != []
    with torch.no_grad():
        torch.testing.assert_close(folded(other), model(other), rtol=1e-4, atol=1e-4)  # not just on the example
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), f"{name} of the original changed"


def test_a_convolution_output_used_beside_its_batch_norm_keeps_the_model_as_it_is():
    model = _with_trained_statistics(ConvOutputUsedTwice())
    assert fold_batch_norms(model, torch.randn(2, 3, 16, 16)) is model


def test_training_mode_and_models_without_batch_norm_are_returned_as_they_are():
    trained = SmallCNN().train()
    assert fold_batch_norms(trained, torch.randn(2, 3, 16, 16)) is trained
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval()
    assert fold_batch_norms(plain, torch.randn(2, 3, 16, 16)) is plain
