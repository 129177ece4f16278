"""What the app's Train tab gives with its defaults: the README's training figure, measured on the user's path.

Builds the app's default workspace (`Workspace.build()`: built-in shapes data, the offline pretrained extractor as
the app loads it), trains it with `explorer.workspace.inputs.TRAIN_DEFAULTS` through `Workspace.train` (the call the
Train tab makes), and prints the validation cmc@1 / map@5 the training curves show (at the training image size)
and the ones the Metrics tab shows before and after (at the extractor's input size: the preset's before training,
the training image size after, since training keeps the extractor at that size).

Run: nice .venv/bin/python bench/bench_train_tab.py [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.training.train import VAL_CMC_1, VAL_MAP_5  # noqa: E402
from explorer.workspace.inputs import TRAIN_DEFAULTS  # noqa: E402
from explorer.workspace.workspace import Workspace  # noqa: E402


def train_tab_run(cache_dir: Path) -> None:
    workspace = Workspace.build(cache_dir=cache_dir)
    before = workspace.evaluation().metrics_flat
    size_before = workspace.extractor.model.image_config.input_size
    started = time.perf_counter()
    result = workspace.train(TRAIN_DEFAULTS)
    seconds = time.perf_counter() - started
    after = workspace.evaluation().metrics_flat
    size_after = workspace.extractor.model.image_config.input_size
    print(f"\n## Train tab defaults on the default workspace ({workspace.describe()})")
    print(f"settings: {TRAIN_DEFAULTS}")
    print(result.history_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"training curves (validation at {TRAIN_DEFAULTS.image_size} px): cmc@1 "
        f"{result.initial_metrics[VAL_CMC_1]:.4f} -> {result.final_metrics[VAL_CMC_1]:.4f}, map@5 "
        f"{result.initial_metrics[VAL_MAP_5]:.4f} -> {result.final_metrics[VAL_MAP_5]:.4f}"
    )
    print(
        f"Metrics tab ({size_before} px before, {size_after} px after): cmc@1 {before[VAL_CMC_1]:.4f} -> "
        f"{after[VAL_CMC_1]:.4f}, map@5 {before[VAL_MAP_5]:.4f} -> {after[VAL_MAP_5]:.4f}; training took {seconds:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat the run to see how much the figures vary")
    args = parser.parse_args()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            train_tab_run(Path(folder))


if __name__ == "__main__":
    main()
