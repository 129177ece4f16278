"""What the app's Train tab gives with its defaults: the README's training figure, measured on the user's path.

Builds the app's workspace (`Workspace.build(data)`: the default built-in shapes data unless --data names another
source, the offline pretrained extractor as the app loads it), trains it with
`explorer.workspace.inputs.TRAIN_DEFAULTS` (with --epochs) through `Workspace.train` (the call the Train tab makes),
and prints the per-epoch table the training curves show (validation at the training image size, epoch 0 first) and
the cmc@1 / map@5 the Metrics tab shows before and after (at the extractor's input size).

Run: nice .venv/bin/python bench/bench_train_tab.py [--data ../shared/data/birds50] [--epochs 1 3 10 30] [--runs 1]
     [--set lr=1e-4 n_labels=8]  (other settings than the tab's, to compare recipes on the same path)
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.training.train import (  # noqa: E402
    VAL_CMC_1,
    VAL_MAP_5,
    EpochRecord,  # noqa: E402
    TrainingSettings,
)
from explorer.workspace.inputs import TRAIN_DEFAULTS  # noqa: E402
from explorer.workspace.workspace import Workspace  # noqa: E402


def print_live(record: EpochRecord) -> None:
    """One line per validated epoch as it ends (a long run shows its progress; the table follows at the end)."""
    print(f"  epoch {record.epoch}: cmc@1 {record.val_cmc_1:.3f}, {record.seconds:.0f} s", flush=True)


def train_tab_run(cache_dir: Path, data: str | None, epochs: int, overrides: dict[str, object]) -> None:
    workspace = Workspace.build(data, cache_dir=cache_dir) if data else Workspace.build(cache_dir=cache_dir)
    before = workspace.evaluation().metrics_flat
    size_before = workspace.extractor.model.image_config.input_size
    settings = replace(TRAIN_DEFAULTS, epochs=epochs, **overrides)
    started = time.perf_counter()
    result = workspace.train(settings, on_epoch=print_live)
    seconds = time.perf_counter() - started
    after = workspace.evaluation().metrics_flat
    size_after = workspace.extractor.model.image_config.input_size
    used = result.settings
    print(f"\n## Train tab defaults, {epochs} epoch(s), on {workspace.describe()}")
    print(
        f"used: {used.image_size} px, {used.n_labels} x {used.n_instances}, lr {used.lr:g}, margin {used.margin}"
        f"{' (relative)' if used.relative_margin else ''}, miner {used.miner}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    frame = result.history_frame()
    frame["elapsed"] = frame["seconds"].cumsum()  # epoch 0: the validation before training; then train + validate
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"training curves: cmc@1 {result.initial_metrics[VAL_CMC_1]:.4f} -> {result.final_metrics[VAL_CMC_1]:.4f}, "
        f"map@5 {result.initial_metrics[VAL_MAP_5]:.4f} -> {result.final_metrics[VAL_MAP_5]:.4f} "
        f"(epoch {result.kept_epoch} kept)"
    )
    print(
        f"Metrics tab ({size_before} px before, {size_after} px after): cmc@1 {before[VAL_CMC_1]:.4f} -> "
        f"{after[VAL_CMC_1]:.4f}, map@5 {before[VAL_MAP_5]:.4f} -> {after[VAL_MAP_5]:.4f}; training took {seconds:.0f} s"
    )


def _override(text: str) -> tuple[str, object]:
    """`name=value` of a TrainingSettings field, the value as a Python literal (`lr=1e-4`, `miner='hard'`)."""
    name, _, value = text.partition("=")
    if name not in TrainingSettings.__dataclass_fields__:
        raise SystemExit(f"--set: {name!r} is not a TrainingSettings field")
    return name, ast.literal_eval(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", help="a data source as the app takes it (default: the app's default data)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[TRAIN_DEFAULTS.epochs], help="one run per count")
    parser.add_argument("--runs", type=int, default=1, help="repeat each run to see how much the figures vary")
    parser.add_argument("--set", nargs="*", default=[], help="other settings than the tab's, e.g. lr=1e-4")
    args = parser.parse_args()
    overrides = dict(_override(text) for text in args.set)
    for epochs in args.epochs:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                train_tab_run(Path(folder), args.data, epochs, overrides)


if __name__ == "__main__":
    main()
