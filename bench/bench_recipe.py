"""Fine-tuning recipes for the pretrained extractor on real photos (issue #11): per-epoch validation cmc@1 / map@5.

Each recipe (RECIPES below) fine-tunes `efficientnet_lite0_imagenet` (normalised embeddings) on the train classes of
a dataset and validates on its unseen validation classes after every `--eval-every` epochs; epoch 0 is the
pretrained model at the same image size. It prints one row per validation, seconds of training per epoch (measured in
the same run) and the best epoch.

Speed (the machine is a shared 2-core CPU): the recipes freeze the first stages of the backbone and run BatchNorm in
eval mode, so the frozen prefix is a fixed function of the image. Its output for every validation image (and every
un-augmented train image) is computed once per dataset / size / depth and kept in /tmp; validation and un-augmented
training then run only the trainable tail. This is exact (checked against the full forward at start), not an
approximation. Augmented training runs the frozen prefix on every augmented batch (no gradient), and that time is
counted in the seconds per epoch; un-augmented training reports the tail time plus the prefix time the same
images would cost without the cache ("s/epoch incl. prefix").

Measured (shared 2-core CPU at load 9-13, 1 torch thread; seconds are training only, validation excluded):
- shapes, 96 px, tail3_ld (the proposed default: stem + blocks 0-2 frozen, BatchNorm statistics frozen, AdamW
  lr 3e-4 on the head with layer decay 0.7, 10% warm-up + cosine to 0.1, augmentation, margin 0.2, 6x4): cmc@1
  0.492 -> 0.542 (1 epoch), 0.622 (3), 0.682 (10), 0.781 (30, 422 s); +0.2 after ~6-9 epochs.
- birds50, 224 px (pretrained, normalised: 0.933): tail3_ld 0.931 (3), 0.925 (6), 0.937 (9), 0.931 (12);
  tail3_ld with lr=1e-4: 0.935 (3), 0.937 (6), 0.937 (9, 198 s); tail5_ld_noaug 0.936 (2), 0.930 (6);
  tail5_ld_hi (lr 1e-3) 0.898 (3), 0.901 (12). Nothing here reaches +0.02.
- digits, 224 px, tail3_ld: 0.842 -> 0.872 (5), 0.877 (10), 0.879 (20), 0.876 (30).

Run: nice -n 10 .venv/bin/python bench/bench_recipe.py --data birds50 --recipes baseline_ft tail_bn --epochs 20
     nice -n 10 .venv/bin/python bench/bench_recipe.py --data shapes --image-size 96 --recipes default ...
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from explorer import const as C  # noqa: E402
from explorer.data import DatasetQueryGallery, DatasetWithLabels, load_dataset  # noqa: E402
from explorer.metrics.evaluation import evaluate_embeddings  # noqa: E402
from explorer.models import OFFLINE_PRESET, ViTExtractor  # noqa: E402
from explorer.training.losses import TripletLossWithMiner  # noqa: E402
from explorer.training.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner  # noqa: E402
from explorer.training.recipe import (  # noqa: E402
    AppliedRecipe,
    FineTuneRecipe,
    backbone_stages,
    set_batchnorm_eval,
    stages_to_freeze,
)
from explorer.training.sampler import BalanceSampler  # noqa: E402
from explorer.training.train import VAL_CMC_1, VAL_MAP_5  # noqa: E402

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds50"
CACHE = Path("/tmp/explorer_bench_recipe")
EFFICIENTNET_LEADING_STAGES = 2  # conv_stem, bn1 come before blocks.0 in `backbone_stages`
CACHE_STAGES = 5  # the cached prefix: conv_stem, bn1, blocks.0-2 (every recipe here freezes at least these)


@dataclass(frozen=True)
class BenchRecipe:
    fine_tune: FineTuneRecipe = field(default_factory=FineTuneRecipe)
    margin: float | None = 0.2
    miner: str = "all"
    n_labels: int = 6
    n_instances: int = 4
    augment: bool = True


# frozen_fraction for EfficientNet-Lite0: 0.02 freezes stem + blocks 0-2 ("tail3": blocks 3-6 train), 0.25 up to
# blocks 4 ("tail5"), 0.75 up to blocks 5 ("tail6")
_TAIL = FineTuneRecipe(lr=3e-4, fine_tune=True, frozen_fraction=0.25, layer_decay=0.7)
RECIPES: dict[str, BenchRecipe] = {
    # the last stages + head at one lr, BatchNorm in eval mode (frozen statistics), no schedule
    "tail5_bn": BenchRecipe(
        dataclasses.replace(_TAIL, lr=1e-4, layer_decay=1.0, warmup_fraction=0.0, final_lr_fraction=1.0)
    ),
    # the candidate: layer-wise lr, warm-up + cosine
    "tail5_ld": BenchRecipe(_TAIL),
    "tail5_ld_noaug": BenchRecipe(_TAIL, augment=False),
    "tail5_ld_m01": BenchRecipe(_TAIL, margin=0.1),
    "tail5_ld_hard": BenchRecipe(_TAIL, miner="n_hard"),
    "tail5_ld_8x4": BenchRecipe(_TAIL, n_labels=8),
    "tail5_ld_4x8": BenchRecipe(_TAIL, n_labels=4, n_instances=8),
    "tail5_ld_hi": BenchRecipe(dataclasses.replace(_TAIL, lr=1e-3)),
    "tail5_ld_lo": BenchRecipe(dataclasses.replace(_TAIL, lr=1e-4)),
    "tail6_ld": BenchRecipe(dataclasses.replace(_TAIL, frozen_fraction=0.75)),
    "tail3_ld": BenchRecipe(dataclasses.replace(_TAIL, frozen_fraction=0.02)),
}


def with_overrides(recipe: BenchRecipe, overrides: list[str]) -> BenchRecipe:
    """`lr=1e-3 augment=False ...`: fields of BenchRecipe or of its FineTuneRecipe, values as Python literals."""
    tune, outer = {}, {}
    for text in overrides:
        key, _, value = text.partition("=")
        parsed = ast.literal_eval(value)
        if key in {f.name for f in dataclasses.fields(FineTuneRecipe)}:
            tune[key] = parsed
        elif key in {f.name for f in dataclasses.fields(BenchRecipe)}:
            outer[key] = parsed
        else:
            raise SystemExit(f"unknown recipe field {key!r}")
    return dataclasses.replace(recipe, fine_tune=dataclasses.replace(recipe.fine_tune, **tune), **outer)


def make_miner(name: str) -> nn.Module:
    if name == "hard":
        return HardTripletsMiner()
    if name == "n_hard":
        return NHardTripletsMiner(2, 2)
    return AllTripletsMiner(max_output_triplets=5000)


class SplitEfficientNet:
    """The timm EfficientNet of an extractor as prefix (stages[:k]) and tail (the rest + pooling + normalisation)."""

    def __init__(self, extractor: ViTExtractor) -> None:
        self.extractor = extractor
        self.backbone = extractor.model
        names = [name for name, _ in backbone_stages(extractor)]
        if names[:3] != ["conv_stem", "bn1", "blocks.0"]:
            raise SystemExit(f"bench_recipe splits timm EfficientNets only, got stages {names}")

    def prefix(self, images: Tensor, start: int, stop: int) -> Tensor:
        """Stages start..stop-1 (stage indices of `backbone_stages`); start=0 takes images."""
        h = images
        if start == 0:
            h = self.backbone.bn1(self.backbone.conv_stem(h))
            start = EFFICIENTNET_LEADING_STAGES
        for block in self.backbone.blocks[start - EFFICIENTNET_LEADING_STAGES : stop - EFFICIENTNET_LEADING_STAGES]:
            h = block(h)
        return h

    def tail(self, h: Tensor, start: int) -> Tensor:
        h = self.prefix(h, start, EFFICIENTNET_LEADING_STAGES + len(self.backbone.blocks))
        features = self.backbone.forward_head(self.backbone.bn2(self.backbone.conv_head(h)))
        return F.normalize(features, dim=1) if self.extractor.normalise_features else features


def cached_prefix(split: SplitEfficientNet, dataset: DatasetWithLabels, key: str, batch_size: int = 32) -> Tensor:
    """The prefix's output (stages[:CACHE_STAGES], eval mode) for every item of `dataset`, cached under /tmp."""
    path = CACHE / f"{key}.pt"
    if path.is_file():
        return torch.load(path)
    started = time.perf_counter()
    split.extractor.eval()
    chunks = []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=0)
    with torch.inference_mode():
        for batch in loader:
            chunks.append(split.prefix(batch[C.INPUT_TENSORS_KEY], 0, CACHE_STAGES))
    features = torch.cat(chunks)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(features, path)
    print(f"cached {key}: {tuple(features.shape)} in {time.perf_counter() - started:.0f} s", flush=True)
    return features


def deepen(split: SplitEfficientNet, features: Tensor, stop: int, batch_size: int = 128) -> Tensor:
    """Run cached prefix features on through the frozen stages CACHE_STAGES..stop-1."""
    if stop == CACHE_STAGES:
        return features
    with torch.inference_mode():
        return torch.cat(
            [
                split.prefix(features[i : i + batch_size], CACHE_STAGES, stop)
                for i in range(0, len(features), batch_size)
            ]
        )


def prefix_seconds(split: SplitEfficientNet, dataset: DatasetWithLabels, frozen: int, n_images: int = 24) -> float:
    """Seconds per image to read, transform and run the frozen stages (what training without the cache pays)."""
    split.extractor.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        images = torch.stack([dataset[i][C.INPUT_TENSORS_KEY] for i in range(min(n_images, len(dataset)))])
        split.prefix(images, 0, frozen)
    return (time.perf_counter() - started) / len(images)


def validate(split: SplitEfficientNet, val_features: Tensor, start: int, df, batch_size: int = 128) -> dict[str, float]:
    split.extractor.eval()
    with torch.inference_mode():
        embeddings = torch.cat(
            [split.tail(val_features[i : i + batch_size], start) for i in range(0, len(val_features), batch_size)]
        )
    metrics = evaluate_embeddings(embeddings, df, cmc_top_k=(1, 5), map_top_k=(5,)).metrics_flat
    return {"cmc1": metrics[VAL_CMC_1], "map5": metrics[VAL_MAP_5]}


def check_split(extractor: ViTExtractor, dataset: DatasetWithLabels, cache: Tensor, frozen: int) -> None:
    """The cached prefix + tail equals the extractor's own forward (the bench measures the real model)."""
    split = SplitEfficientNet(extractor)
    extractor.eval()
    images = torch.stack([dataset[i][C.INPUT_TENSORS_KEY] for i in range(4)])
    with torch.inference_mode():
        full = extractor(images)
        via_cache = split.tail(deepen(split, cache[:4], frozen), frozen)
    error = float((full - via_cache).abs().max())
    if error > 1e-4:
        raise SystemExit(f"cached prefix differs from the full forward by {error}")


def run_recipe(name: str, recipe: BenchRecipe, data, image_size: int, epochs: int, eval_every: int, budget: float):
    torch.manual_seed(0)
    extractor = ViTExtractor(OFFLINE_PRESET, normalise_features=True)
    extractor.set_input_size(image_size)
    split = SplitEfficientNet(extractor)
    frozen = stages_to_freeze(extractor, recipe.fine_tune.frozen_fraction)
    if frozen < CACHE_STAGES:
        raise SystemExit(f"{name}: the bench caches {CACHE_STAGES} stages; recipes must freeze at least that many")
    key = f"{data.name}_{image_size}"
    val_set = DatasetQueryGallery(data.validation_df, data.root, transform=extractor.get_transforms())
    plain_train = DatasetWithLabels(data.train_df, data.root, transform=extractor.get_transforms())
    val_cache = cached_prefix(split, val_set, f"{key}_val")
    check_split(extractor, val_set, val_cache, frozen)
    val_features = deepen(split, val_cache, frozen)
    train_features = None
    prefix_seconds_per_image = None
    if not recipe.augment:
        train_features = deepen(split, cached_prefix(split, plain_train, f"{key}_train"), frozen)
        prefix_seconds_per_image = prefix_seconds(split, plain_train, frozen)
    train_set = DatasetWithLabels(data.train_df, data.root, transform=extractor.get_transforms(train=True))
    n_labels = min(recipe.n_labels, len(np.unique(train_set.get_labels())))  # digits has 5 train labels
    sampler = BalanceSampler(train_set.get_labels(), n_labels, recipe.n_instances, seed=0)
    criterion = TripletLossWithMiner(margin=recipe.margin, miner=make_miner(recipe.miner), need_logs=True)
    applied = AppliedRecipe(extractor, recipe.fine_tune, total_steps=epochs * len(sampler))
    optimizer, scheduler = applied.optimizer, applied.scheduler
    labels = torch.as_tensor(train_set.get_labels())
    print(f"\n## {name} on {data.name} at {image_size} px: {recipe}", flush=True)
    print(f"{len(sampler)} batches of {sampler.batch_size} per epoch; load {os.getloadavg()[0]:.1f}", flush=True)
    rows = [{"epoch": 0, **validate(split, val_features, frozen, data.validation_df), "s/epoch": 0.0}]
    print(f"epoch 0: cmc@1 {rows[0]['cmc1']:.4f} map@5 {rows[0]['map5']:.4f}", flush=True)
    best_state, trained_seconds = copy.deepcopy(extractor.state_dict()), 0.0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        extractor.train()
        set_batchnorm_eval(extractor)  # the tail is called directly, not through the extractor's pre-hook
        losses, active = [], []
        for batch_indices in sampler:
            if train_features is None:
                items = [train_set[i] for i in batch_indices]
                images = torch.stack([item[C.INPUT_TENSORS_KEY] for item in items])
                with torch.no_grad():
                    h = split.prefix(images, 0, frozen)
            else:
                h = train_features[batch_indices]
            loss = criterion(split.tail(h, frozen), labels[batch_indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            active.append(criterion.last_logs["active_tri"])
        seconds = time.perf_counter() - started
        if prefix_seconds_per_image is not None:
            seconds += prefix_seconds_per_image * len(sampler) * sampler.batch_size
        trained_seconds += seconds
        if epoch % eval_every == 0 or epoch == epochs or trained_seconds > budget:
            row = {"epoch": epoch, **validate(split, val_features, frozen, data.validation_df), "s/epoch": seconds}
            rows.append(row)
            if row["cmc1"] > max(r["cmc1"] for r in rows[:-1]):
                best_state = copy.deepcopy(extractor.state_dict())
            print(
                f"epoch {epoch}: cmc@1 {row['cmc1']:.4f} map@5 {row['map5']:.4f} loss {np.mean(losses):.4f} "
                f"active {np.mean(active):.2f} lr {scheduler.get_last_lr()[0]:.2e} {seconds:.1f} s/epoch "
                f"(trained {trained_seconds:.0f} s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        if trained_seconds > budget:
            print(f"stopped: training time budget of {budget:.0f} s spent", flush=True)
            break
    del best_state
    best = max(rows, key=lambda r: r["cmc1"])
    final = rows[-1]
    print(
        f"SUMMARY {name} {data.name} {image_size}px: cmc@1 {rows[0]['cmc1']:.4f} -> {final['cmc1']:.4f} "
        f"(best {best['cmc1']:.4f} at epoch {best['epoch']}), map@5 {rows[0]['map5']:.4f} -> {final['map5']:.4f}, "
        f"median {np.median([r['s/epoch'] for r in rows[1:]]):.1f} s/epoch, trained {trained_seconds:.0f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default="birds50", help="birds50, shapes, digits, or any load_dataset source")
    parser.add_argument("--recipes", nargs="+", choices=tuple(RECIPES), default=["tail5_ld"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=None, help="train and embed size (default: 224; 96 shapes)")
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], help="override recipe fields, e.g. lr=1e-3 augment=False")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads: on a shared 2-core machine 1 is ~8x faster than 2"
    )
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per recipe")
    args = parser.parse_args()
    data = load_dataset(str(BIRDS) if args.data == "birds50" else args.data)
    image_size = args.image_size or (96 if args.data == "shapes" else 224)
    torch.set_num_threads(args.threads)
    for name in args.recipes:
        run_recipe(
            name, with_overrides(RECIPES[name], args.set), data, image_size, args.epochs, args.eval_every, args.budget
        )


if __name__ == "__main__":
    main()
