"""Fine-tuning recipe pieces that keep a pretrained extractor's knowledge while it adapts to new classes.

A pretrained backbone on a small retrieval set loses accuracy with plain full fine-tuning: small balanced batches
(e.g. 6 labels x 4 images) re-estimate BatchNorm statistics from a few correlated images and a single learning rate
rewrites the generic early filters. These functions fix that and stay model-agnostic (any timm backbone):

- `freeze_batchnorm(model)`: BatchNorm layers stay in eval mode (running statistics frozen) even under
  `model.train()`; optionally their affine weights are frozen too.
- `backbone_stages(model)`: the backbone's parameter-holding stages in input -> output order.
- `freeze_early_stages(model, n)`: no gradient for the first `n` stages (generic, low-level filters).
- `parameter_groups(model, lr, ...)`: optimizer groups with a layer-wise decayed learning rate, top stage highest.
- `warmup_cosine_lambda` / `warmup_cosine_scheduler`: linear warm-up, then cosine decay to a floor, so the first
  steps (large, noisy gradients of a loss that is new to the network) do not wreck the pretrained features and the
  last epochs of any run length end at a small learning rate.
- `FineTuneRecipe` + `AppliedRecipe` / `fine_tuning`: these pieces as one recipe, applied for a run and undone
  after it, shared by `train_extractor` and the Lightning `ExtractorModule`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from explorer.checks import check_choice, check_number
from explorer.errors import InputError
from explorer.models.pooling import GEM, POOLING_CHOICES, use_gem_pooling

BATCHNORM_TYPES = (nn.modules.batchnorm._BatchNorm,)
STAGE_CONTAINER_NAMES = ("blocks", "layers", "stages", "features")  # timm's names for the sequence of stages
OWN_PARAMETERS = "(own parameters)"  # the stage name of parameters held by the backbone itself, not a child


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm layer of `model` (timm's BatchNormAct2d included: it subclasses BatchNorm2d)."""
    return [module for module in model.modules() if isinstance(module, BATCHNORM_TYPES)]


def set_batchnorm_eval(model: nn.Module) -> None:
    """Every BatchNorm layer of `model` to eval mode (the rest keeps its mode): call after `model.train()`."""
    for layer in batchnorm_layers(model):
        layer.eval()


def _batchnorm_eval_hook(module: nn.Module, _inputs: object) -> None:
    if module.training:
        set_batchnorm_eval(module)


def freeze_batchnorm(model: nn.Module, freeze_affine: bool = False) -> RemovableHandle:
    """Normalise with the pretrained running statistics during training too, whatever `model.train()` says.

    Why: a batch of n_labels x n_instances images is small and far from the pretraining distribution, so batch
    statistics are noisy and the running averages drift away from what the later layers were trained on. A forward
    pre-hook puts every BatchNorm layer back in eval mode before each training forward, so it survives the
    `model.train()` a training loop calls every epoch. `freeze_affine` also stops the gradient of their scale and
    shift. Returns the hook's handle (`handle.remove()` restores ordinary BatchNorm behaviour).
    """
    set_batchnorm_eval(model)
    for layer in batchnorm_layers(model):
        if freeze_affine:
            for parameter in layer.parameters(recurse=False):
                parameter.requires_grad_(False)
    return model.register_forward_pre_hook(_batchnorm_eval_hook)


def backbone_of(model: nn.Module) -> nn.Module:
    """The timm backbone inside a `ViTExtractor` (its `.model`), or `model` itself."""
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, nn.Module) else model


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def backbone_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's stages that hold parameters, input side first: (qualified name, module).

    Top-level children are stages, except a container of blocks (`blocks`, `layers`, `stages`, `features`: timm's
    EfficientNet / MobileNet, ViT, ConvNeXt, ...) whose children are each a stage. ResNet's layer1..layer4 are
    top-level children already. Order is the registration order, which timm keeps as the forward order; parameters
    of the backbone itself (a ViT's position embedding) come first, as stage `OWN_PARAMETERS`.
    """
    backbone = backbone_of(model)
    stages: list[tuple[str, nn.Module]] = []
    own = list(backbone.parameters(recurse=False))  # e.g. a ViT's cls_token and pos_embed: input side
    if own:
        stages.append((OWN_PARAMETERS, nn.ParameterList(own)))
    for name, child in backbone.named_children():
        children = list(child.named_children())
        if name in STAGE_CONTAINER_NAMES and len(children) > 1:
            stages.extend((f"{name}.{sub}", module) for sub, module in children if _has_parameters(module))
        elif _has_parameters(child):
            stages.append((name, child))
    if not stages:
        raise InputError(f"{type(backbone).__name__} has no parameters to group into stages.")
    return stages


def freeze_early_stages(model: nn.Module, n_stages: int) -> list[str]:
    """Stop the gradient of the first `n_stages` stages (`backbone_stages` order); returns their names.

    Why: early filters (edges, textures) are generic and well trained on ImageNet; a few hundred retrieval images
    cannot improve them but can damage them. Freezing also saves their backward pass (most of the compute of a
    convnet is at high resolution, early), which matters on a CPU.
    """
    stages = backbone_stages(model)
    if not 0 <= n_stages < len(stages):
        raise InputError(f"n_stages must be in 0..{len(stages) - 1} (the model has {len(stages)} stages).")
    for _, module in stages[:n_stages]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return [name for name, _ in stages[:n_stages]]


def stages_to_freeze(model: nn.Module, parameter_fraction: float = 0.02) -> int:
    """How many leading stages hold at most `parameter_fraction` of the backbone's parameters: a size-free rule for
    `freeze_early_stages` that freezes the stem and the high-resolution stages (few parameters, most of the compute).
    With 0.02: EfficientNet-Lite0 stem + blocks 0-2 (1.7%), ResNet-18 conv1 + layer1, ConvNeXt-T stem + stages.0,
    ViT-S the position and patch embeddings. With 0.25: Lite0 up to blocks 4 (21%), training blocks 5-6 and head."""
    if not 0 <= parameter_fraction < 1:
        raise InputError(f"parameter_fraction must be in [0, 1), got {parameter_fraction}.")
    stages = backbone_stages(model)
    sizes = [sum(p.numel() for p in module.parameters()) for _, module in stages]
    budget, frozen, cumulative = parameter_fraction * sum(sizes), 0, 0
    for size in sizes[:-1]:  # the last stage always trains
        cumulative += size
        if cumulative > budget:
            break
        frozen += 1
    return frozen


def parameter_groups(model: nn.Module, lr: float, layer_decay: float = 1.0, weight_decay: float = 0.0) -> list[dict]:
    """Optimizer parameter groups, one per stage: the last stage gets `lr`, each earlier one `layer_decay` times less.

    Why: the last stages hold the task-specific, high-level features that must move to separate new classes; the
    earlier ones should only be nudged. `layer_decay=1.0` is a single learning rate. Parameters without gradient
    (frozen stages, frozen BatchNorm affine) are left out; BatchNorm / bias parameters get no weight decay.
    """
    if lr <= 0:
        raise InputError(f"lr must be positive, got {lr}.")
    if not 0 < layer_decay <= 1:
        raise InputError(f"layer_decay must be in (0, 1], got {layer_decay}.")
    stages = backbone_stages(model)
    groups = []
    for depth, (name, module) in enumerate(reversed(stages)):
        trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not trainable:
            continue
        stage_lr = lr * layer_decay**depth
        decayed = [p for n, p in trainable if p.ndim > 1]
        not_decayed = [p for n, p in trainable if p.ndim <= 1]
        for params, decay in ((decayed, weight_decay), (not_decayed, 0.0)):
            if params:
                groups.append({"params": params, "lr": stage_lr, "weight_decay": decay, "name": name})
    if not groups:
        raise InputError("The model has no trainable parameter: unfreeze a stage.")
    return groups


def warmup_cosine_lambda(warmup_steps: int, total_steps: int, final_fraction: float = 0.1) -> Callable[[int], float]:
    """Learning-rate multiplier per step: linear from 1/(warmup+1) to 1 over `warmup_steps`, then cosine down to
    `final_fraction` at `total_steps` (held there afterwards)."""
    if warmup_steps < 0 or total_steps < 1:
        raise InputError(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps} and {total_steps}.")
    if not 0 <= final_fraction <= 1:
        raise InputError(f"final_fraction must be in [0, 1], got {final_fraction}.")
    warmup_steps = min(warmup_steps, total_steps - 1)

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, final_fraction: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """`LambdaLR` with `warmup_cosine_lambda`; call `scheduler.step()` after every `optimizer.step()`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine_lambda(warmup_steps, total_steps, final_fraction))


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def starts_pretrained(model: nn.Module) -> bool:
    """Whether `model` (a `ViTExtractor`) holds learned weights: a preset, timm's pretrained weights or a checkpoint."""
    return getattr(model, "preset", None) is not None or getattr(model, "checkpoint_metadata", None) is not None


def _check_fraction(name: str, value: float, lower_open: bool = False, upper_open: bool = False) -> float:
    """A number in [0, 1] (open at an end where asked), or a message saying so."""
    value = check_number(name, value, 0.0, strictly_above=lower_open)
    if value > 1 or (upper_open and value == 1):
        raise InputError(f"{name} must be {'below' if upper_open else 'at most'} 1, got {value!r}.")
    return value


@dataclass
class FineTuneRecipe:
    """How one run optimises an extractor: the one recipe of `train_extractor` (`TrainingSettings.recipe`) and of a
    Lightning `ExtractorModule`, so the app, the CLI and Lightning fine-tune alike. Checked on creation.

    `fine_tune` None: on for pretrained weights or a checkpoint, off for a random init (which has no knowledge to
    keep). On: BatchNorm statistics frozen, the first stages holding `frozen_fraction` of the parameters frozen,
    each earlier stage's learning rate `layer_decay` times the next one's, and with `pooling="gem"` a convnet's global
    average pooling replaced by GeM (p = 3; `explorer.models.pooling`), which stays with the trained weights.
    Always: `warmup_fraction` of the steps of linear warm-up, then a cosine down to `final_lr_fraction` of `lr` at
    the last step.
    """

    lr: float = 3e-4  # of the last stage
    optimizer: str = "adamw"  # one of OPTIMIZERS
    weight_decay: float = 0.0
    fine_tune: bool | None = None
    frozen_fraction: float = 0.02
    layer_decay: float = 0.7
    warmup_fraction: float = 0.1
    final_lr_fraction: float = 0.1
    pooling: str = GEM  # one of POOLING_CHOICES: "gem", or "keep" the backbone's own pooling

    def __post_init__(self) -> None:
        self.lr = check_number("learning rate (lr)", self.lr, 0.0, strictly_above=True)
        self.optimizer = check_choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        self.weight_decay = check_number("weight decay", self.weight_decay, 0.0)
        if self.fine_tune is not None and not isinstance(self.fine_tune, bool):
            raise InputError(f"fine_tune must be True, False or None (automatic), got {self.fine_tune!r}.")
        self.frozen_fraction = _check_fraction("frozen_fraction", self.frozen_fraction, upper_open=True)
        self.layer_decay = _check_fraction("layer_decay", self.layer_decay, lower_open=True)
        self.warmup_fraction = _check_fraction("warmup_fraction", self.warmup_fraction)
        self.final_lr_fraction = _check_fraction("final_lr_fraction", self.final_lr_fraction)
        self.pooling = check_choice("pooling", self.pooling, POOLING_CHOICES)

    def fine_tunes(self, model: nn.Module) -> bool:
        """Whether the freezing and per-stage learning rates apply to `model` (`fine_tune` None: pretrained)."""
        return starts_pretrained(model) if self.fine_tune is None else self.fine_tune


class AppliedRecipe:
    """`recipe` in force on `model` for a run of `total_steps` optimizer steps: its optimizer and per-step scheduler
    (call `scheduler.step()` after every `optimizer.step()`); `undo()` gives back ordinary BatchNorm behaviour and
    the parameters' own `requires_grad`, so the model in use afterwards behaves like any other. A switch to GeM
    pooling is not undone: the trained weights were learned with it (checkpoints record it)."""

    def __init__(self, model: nn.Module, recipe: FineTuneRecipe, total_steps: int) -> None:
        self.model = model
        self._requires_grad = [p.requires_grad for p in model.parameters()]
        self._hook: RemovableHandle | None = None
        if recipe.fine_tunes(model):
            if recipe.pooling == GEM:
                use_gem_pooling(backbone_of(model))
            self._hook = freeze_batchnorm(model)
            freeze_early_stages(model, stages_to_freeze(model, recipe.frozen_fraction))
            groups = parameter_groups(model, recipe.lr, recipe.layer_decay, recipe.weight_decay)
        else:
            groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        extra = {"momentum": 0.9} if recipe.optimizer == "sgd" else {}
        self.optimizer = OPTIMIZERS[recipe.optimizer](groups, lr=recipe.lr, weight_decay=recipe.weight_decay, **extra)
        total_steps = max(1, total_steps)
        self.scheduler = warmup_cosine_scheduler(
            self.optimizer, round(recipe.warmup_fraction * total_steps), total_steps, recipe.final_lr_fraction
        )

    def undo(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        for parameter, requires_grad in zip(self.model.parameters(), self._requires_grad, strict=True):
            parameter.requires_grad_(requires_grad)


@contextlib.contextmanager
def fine_tuning(model: nn.Module, recipe: FineTuneRecipe, total_steps: int) -> Iterator[AppliedRecipe]:
    """`AppliedRecipe` for the duration of a `with` block, undone however the block ends."""
    applied = AppliedRecipe(model, recipe, total_steps)
    try:
        yield applied
    finally:
        applied.undo()
