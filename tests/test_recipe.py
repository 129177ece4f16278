"""Fine-tuning recipe pieces on tiny random models: BatchNorm freezing, stages, parameter groups, warm-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.errors import InputError
from explorer.training.recipe import (
    OWN_PARAMETERS,
    AppliedRecipe,
    FineTuneRecipe,
    backbone_stages,
    batchnorm_layers,
    fine_tuning,
    freeze_batchnorm,
    freeze_early_stages,
    parameter_groups,
    stages_to_freeze,
    warmup_cosine_lambda,
)


class TinyNet(nn.Module):
    """timm-like layout: a stem, a `blocks` container of stages, a head conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        )
        self.conv_head = nn.Conv2d(8, 6, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.act(self.bn1(self.conv_stem(x))))
        return self.pool(self.conv_head(x)).flatten(1)


class Wrapper(nn.Module):
    """Like `ViTExtractor`: the backbone is `.model`."""

    def __init__(self) -> None:
        super().__init__()
        self.model = TinyNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def test_stages_in_forward_order_and_through_the_wrapper() -> None:
    names = [name for name, _ in backbone_stages(Wrapper())]
    assert names == ["conv_stem", "bn1", "blocks.0", "blocks.1", "conv_head"]  # act and pool hold no parameters


def test_stages_of_a_timm_resnet() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert [name for name, _ in backbone_stages(model)] == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]


def test_stages_to_freeze_by_parameter_fraction() -> None:
    model = Wrapper()
    sizes = [sum(p.numel() for p in module.parameters()) for _, module in backbone_stages(model)]
    total = sum(sizes)
    assert stages_to_freeze(model, 0.0) == 0
    assert stages_to_freeze(model, (sizes[0] + sizes[1]) / total) == 2
    assert stages_to_freeze(model, 0.999) == len(sizes) - 1  # the last stage always trains


def test_backbone_own_parameters_are_a_stage() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, depth=2, img_size=32)
    stages = backbone_stages(model)
    assert stages[0][0] == OWN_PARAMETERS
    staged = {id(p) for _, module in stages for p in module.parameters()}
    assert staged == {id(p) for p in model.parameters()}  # every parameter in exactly one stage
    groups = parameter_groups(model, lr=1e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_batchnorm_statistics_stay_frozen_through_train_calls() -> None:
    torch.manual_seed(0)
    model = Wrapper()
    freeze_batchnorm(model)
    before = [layer.running_mean.clone() for layer in batchnorm_layers(model)]
    model.train()  # what a training loop calls every epoch
    model(torch.randn(4, 3, 8, 8) * 5 + 3)
    assert all(torch.equal(b, layer.running_mean) for b, layer in zip(before, batchnorm_layers(model), strict=True))
    assert not any(layer.training for layer in batchnorm_layers(model))
    assert model.model.conv_stem.training  # the rest follows model.train()
    assert all(p.requires_grad for p in model.parameters())  # affine still trainable by default


def test_batchnorm_eval_output_matches_eval_mode_and_hook_removes() -> None:
    torch.manual_seed(0)
    model = Wrapper()
    images = torch.randn(4, 3, 8, 8)
    expected = model.eval()(images)
    handle = freeze_batchnorm(model)
    assert torch.allclose(model.train()(images), expected)
    handle.remove()
    model.train()
    model(images)
    assert all(layer.training for layer in batchnorm_layers(model))


def test_freeze_affine_stops_batchnorm_gradients() -> None:
    model = Wrapper()
    freeze_batchnorm(model, freeze_affine=True)
    assert not any(p.requires_grad for layer in batchnorm_layers(model) for p in layer.parameters())
    assert model.model.conv_head.weight.requires_grad


def test_freeze_early_stages() -> None:
    model = Wrapper()
    assert freeze_early_stages(model, 3) == ["conv_stem", "bn1", "blocks.0"]
    assert not any(p.requires_grad for p in model.model.blocks[0].parameters())
    assert all(p.requires_grad for p in model.model.blocks[1].parameters())
    with pytest.raises(InputError, match="n_stages"):
        freeze_early_stages(model, 5)  # all stages: nothing left to train


def test_parameter_groups_decay_the_lr_towards_the_input() -> None:
    model = Wrapper()
    freeze_early_stages(model, 2)
    groups = parameter_groups(model, lr=1e-3, layer_decay=0.5, weight_decay=0.01)
    lrs = {group["name"]: group["lr"] for group in groups}
    assert lrs == pytest.approx({"conv_head": 1e-3, "blocks.1": 5e-4, "blocks.0": 2.5e-4})
    grouped = [p for group in groups for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped})  # no parameter twice
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters() if p.requires_grad}
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim <= 1 for p in g["params"]))
    with pytest.raises(InputError, match="layer_decay"):
        parameter_groups(model, lr=1e-3, layer_decay=0.0)


def test_warmup_cosine_multiplier() -> None:
    multiplier = warmup_cosine_lambda(warmup_steps=4, total_steps=14, final_fraction=0.1)
    values = [multiplier(step) for step in range(20)]
    assert values[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(values[4:], values[5:], strict=False))  # non-increasing after warm-up
    assert values[14] == pytest.approx(0.1) and values[19] == pytest.approx(0.1)
    assert warmup_cosine_lambda(0, 1)(0) == pytest.approx(1.0)


def _pretrained() -> Wrapper:
    torch.manual_seed(0)
    model = Wrapper()
    model.preset = "pretrained somewhere"  # what `starts_pretrained` looks for, as on a ViTExtractor
    return model


def test_the_recipe_trains_only_the_tail_and_keeps_statistics_then_undoes_itself() -> None:
    model = _pretrained()
    model.model.conv_head.bias.requires_grad_(False)  # the caller's own choice, which undo must keep
    recipe = FineTuneRecipe(lr=1e-2, layer_decay=0.5, frozen_fraction=0.5, warmup_fraction=0.5, final_lr_fraction=0.1)
    applied = AppliedRecipe(model, recipe, total_steps=4)
    stem = model.model.conv_stem.weight.clone()
    head = model.model.conv_head.weight.clone()
    statistics = model.model.blocks[1][1].running_mean.clone()
    model.train()
    for _ in range(4):
        loss = model(torch.randn(4, 3, 8, 8)).pow(2).sum()
        applied.optimizer.zero_grad()
        loss.backward()
        applied.optimizer.step()
        applied.scheduler.step()
    assert torch.equal(stem, model.model.conv_stem.weight)  # a frozen first stage
    assert not torch.equal(head, model.model.conv_head.weight)
    assert torch.equal(statistics, model.model.blocks[1][1].running_mean)
    assert applied.scheduler.get_last_lr()[0] == pytest.approx(1e-3)  # cosine reached the floor
    applied.undo()
    model.train()
    model(torch.randn(4, 3, 8, 8))
    assert all(layer.training for layer in batchnorm_layers(model))
    assert not torch.equal(statistics, model.model.blocks[1][1].running_mean)  # ordinary BatchNorm again
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == ["model.conv_head.bias"]


def test_a_random_init_trains_every_layer_at_one_learning_rate_unless_asked() -> None:
    model = Wrapper()
    with fine_tuning(model, FineTuneRecipe(lr=1e-3), total_steps=10) as applied:
        assert len(applied.optimizer.param_groups) == 1
        assert len(applied.optimizer.param_groups[0]["params"]) == len(list(model.parameters()))
    with fine_tuning(model, FineTuneRecipe(lr=1e-3, fine_tune=True, frozen_fraction=0.5), total_steps=10) as applied:
        assert len({group["lr"] for group in applied.optimizer.param_groups}) > 1
        assert not all(p.requires_grad for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_the_recipe_is_undone_when_the_run_fails() -> None:
    model = _pretrained()
    with pytest.raises(RuntimeError, match="interrupted"), fine_tuning(model, FineTuneRecipe(), total_steps=3):
        raise RuntimeError("interrupted")
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    model(torch.randn(2, 3, 8, 8))
    assert all(layer.training for layer in batchnorm_layers(model))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lr", 0.0, "learning rate \\(lr\\) must be above 0"),
        ("optimizer", "lbfgs", "optimizer must be one of adamw, adam, sgd"),
        ("fine_tune", "yes", "fine_tune must be True, False or None"),
        ("layer_decay", 0.0, "layer_decay must be above 0"),
        ("frozen_fraction", 1.0, "frozen_fraction must be below 1"),
        ("warmup_fraction", 1.5, "warmup_fraction must be at most 1"),
        ("final_lr_fraction", -0.1, "final_lr_fraction must be 0 or more"),
    ],
)
def test_recipe_fields_are_checked_naming_the_field(field, value, message) -> None:
    with pytest.raises(InputError, match=message):
        FineTuneRecipe(**{field: value})
