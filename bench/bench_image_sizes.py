"""Validation cmc@1 / map@5 of the untrained offline preset at several input sizes: what `automatic_image_size`
rests on (a pretrained model's features hold from about half its size up and fall apart below).

Each size embeds the validation split with the preset's eval transform at that size (`ViTExtractor.set_input_size`)
through `evaluate_extractor`, the Train tab's validation.

Run: nice .venv/bin/python bench/bench_image_sizes.py --data digits --sizes 32 64 112 160 224
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.data import DatasetQueryGallery, load_dataset  # noqa: E402
from explorer.models import OFFLINE_PRESET, ViTExtractor  # noqa: E402
from explorer.training.train import VAL_CMC_1, VAL_MAP_5, evaluate_extractor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default="shapes", help="a data source as the app takes it")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 112, 160, 224])
    args = parser.parse_args()
    data = load_dataset(args.data)
    extractor = ViTExtractor(OFFLINE_PRESET).eval()
    print(f"## {OFFLINE_PRESET}, untrained, on the validation split of {args.data} ({len(data.validation_df)} images)")
    for size in args.sizes:
        extractor.set_input_size(size)
        started = time.perf_counter()
        dataset = DatasetQueryGallery(data.validation_df, data.root, transform=extractor.get_transforms())
        metrics = evaluate_extractor(extractor, dataset).metrics_flat
        print(
            f"{size:4d} px: cmc@1 {metrics[VAL_CMC_1]:.4f}, map@5 {metrics[VAL_MAP_5]:.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
