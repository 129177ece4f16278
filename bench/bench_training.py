"""Training-from-scratch, inference and birds50 training benchmark (figures for the README's Benchmarks section).

1. scratch: a randomly initialised resnet18 trained with `train_extractor` on the generated shapes data at 64 px
   (settings below): validation cmc@1 before and after. The Train tab's figure is bench/bench_train_tab.py's.
2. inference: `inference_on_images` (decode + transform + forward) in images/s against the bare model
   forward on ready tensors, in the same process, so the ratio is meaningful even on a noisy machine.
3. birds: the Train tab's defaults (`TRAIN_DEFAULTS`, one run per --birds-epochs count) on ../shared/data/birds50
   (train half -> validation half) through `train_extractor`, the routine `Workspace.train` calls with these
   settings, from the offline preset loaded as the app loads it (unnormalised); prints the per-epoch table, epoch 0
   (the pretrained model as it is used) first. Skipped when the folder is absent. (bench_train_tab.py runs the same
   through the workspace, which also embeds every image before and after; on a 2-core CPU that doubles the time.)

Run: nice .venv/bin/python bench/bench_training.py [--parts scratch inference birds] [--epochs 60]
     [--birds-epochs 1 3 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from explorer import const as C  # noqa: E402
from explorer.data import generate_shapes_dataset, load_dataset, read_image  # noqa: E402
from explorer.inference import inference_on_images  # noqa: E402
from explorer.inference.embed import INFERENCE_BATCH_SIZE  # noqa: E402
from explorer.inference.folding import fold_batch_norms  # noqa: E402
from explorer.inference.same_padding import EdgePaddedConv2d  # noqa: E402
from explorer.models import OFFLINE_PRESET, ViTExtractor  # noqa: E402
from explorer.training import TrainingSettings, train_extractor  # noqa: E402
from explorer.training.train import VAL_CMC_1, VAL_MAP_5  # noqa: E402
from explorer.workspace.inputs import TRAIN_DEFAULTS  # noqa: E402

PARTS = ("scratch", "inference", "birds")
BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds50"


def bench_scratch(root: Path, epochs: int) -> None:
    df = generate_shapes_dataset(root, image_size=96)
    train_df = df[df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT].reset_index(drop=True)
    val_df = df[df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT].reset_index(drop=True)
    settings = TrainingSettings(
        epochs=epochs, lr=1e-3, image_size=64, n_labels=8, n_instances=4, margin=0.2, augment=False
    )
    extractor = ViTExtractor(None, arch="resnet18", normalise_features=True)
    result = train_extractor(extractor, train_df, val_df, dataset_root=root, settings=settings)
    print(f"\n## resnet18 from scratch on shapes: {settings}")
    print(
        f"val cmc@1 {result.initial_metrics[VAL_CMC_1]:.3f} -> {result.final_metrics[VAL_CMC_1]:.3f}, "
        f"map@5 {result.initial_metrics[VAL_MAP_5]:.3f} -> {result.final_metrics[VAL_MAP_5]:.3f}, "
        f"median {result.history_frame()['seconds'].median():.2f} s/epoch"
    )


def with_padded_copies(model: nn.Module) -> nn.Module:
    """A copy of `model` whose `EdgePaddedConv2d`s are timm's `Conv2dSame` again (pad the input, then convolve)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, EdgePaddedConv2d):
                setattr(parent, name, child.conv)
    return model


def _images_per_second(model: nn.Module, ready: torch.Tensor, batch_size: int) -> float:
    with torch.inference_mode():
        model(ready[:batch_size])  # warm-up
        started = time.perf_counter()
        for start in range(0, len(ready), batch_size):
            model(ready[start : start + batch_size])
        return len(ready) / (time.perf_counter() - started)


def bench_inference(root: Path, batch_size: int = INFERENCE_BATCH_SIZE, rounds: int = 4) -> None:
    generate_shapes_dataset(root, image_size=96)
    df = load_dataset(str(root / "df.csv")).df
    paths = [str(root / p) for p in df[C.PATHS_COLUMN]]
    extractor = ViTExtractor(OFFLINE_PRESET).eval()
    transform = extractor.get_transforms()
    ready = torch.stack([transform(read_image(p)) for p in paths])
    print(
        f"\n## Inference: {OFFLINE_PRESET}, {len(paths)} images, 224 px, batch {batch_size}, "
        f"{torch.get_num_threads()} torch threads"
    )
    folded = fold_batch_norms(extractor, ready[:2])  # what inference_on_images runs: also without padded copies
    variants = {
        "as loaded": extractor,
        "BatchNorms folded, padded copies kept": with_padded_copies(folded),
        "BatchNorms folded": folded,
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(rounds):  # the variants alternate, in turned order each round: a drifting machine hits all
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            runs[name].append(_images_per_second(variants[name], ready, batch_size))
    rates = {name: float(np.median(values)) for name, values in runs.items()}
    for name, rate in rates.items():
        shown = ", ".join(f"{value:.1f}" for value in runs[name])
        print(f"bare forward on ready tensors, {name}: {rate:.1f} images/s (median of {shown})")
    for workers in (0, 2):
        started = time.perf_counter()
        inference_on_images(extractor, paths, transform, num_workers=workers, batch_size=batch_size)
        rate = len(paths) / (time.perf_counter() - started)
        print(
            f"inference_on_images, num_workers={workers}: {rate:.1f} images/s "
            f"({rate / rates['BatchNorms folded']:.2f} x the folded bare forward)"
        )


def bench_birds(epoch_counts: list[int]) -> None:
    if not BIRDS.is_dir():
        print(f"\n## birds50: skipped ({BIRDS} not found)")
        return
    data = load_dataset(str(BIRDS))
    for epochs in epoch_counts:
        settings = replace(TRAIN_DEFAULTS, epochs=epochs)
        result = train_extractor(
            ViTExtractor(OFFLINE_PRESET),
            data.train_df,
            data.validation_df,
            dataset_root=data.root,
            settings=settings,
            on_epoch_end=lambda r: print(f"  epoch {r.epoch}: cmc@1 {r.val_cmc_1:.3f}, {r.seconds:.0f} s", flush=True),
        )
        used = result.settings
        print(
            f"\n## birds50, Train tab defaults, {epochs} epoch(s): {used.image_size} px, {used.n_labels} x "
            f"{used.n_instances}, lr {used.lr:g}, margin {used.margin}{' (relative)' if used.relative_margin else ''}; "
            f"{len(data.validation_df)} validation images; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
        )
        frame = result.history_frame()
        frame["elapsed"] = frame["seconds"].cumsum()
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
        print(
            f"cmc@1 {result.initial_metrics[VAL_CMC_1]:.4f} -> {result.final_metrics[VAL_CMC_1]:.4f}, map@5 "
            f"{result.initial_metrics[VAL_MAP_5]:.4f} -> {result.final_metrics[VAL_MAP_5]:.4f} "
            f"({result.kept_summary()})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", nargs="+", choices=("scratch", "inference", "birds"), default=PARTS)
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the from-scratch run")
    parser.add_argument("--birds-epochs", type=int, nargs="+", default=[1, 3, 10], help="one birds run per count")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "shapes"
        if "scratch" in args.parts:
            bench_scratch(root, args.epochs)
        if "inference" in args.parts:
            bench_inference(root)
    if "birds" in args.parts:
        bench_birds(args.birds_epochs)


if __name__ == "__main__":
    main()
