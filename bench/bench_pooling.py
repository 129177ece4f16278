"""Validation cmc@1 / map@5 of the untrained offline preset with average pooling and with GeM at several exponents:
the descriptor the fine-tuning recipe's `pooling="gem"` starts from (`explorer.models.pooling`).

Each exponent embeds the validation split at the preset's size through `evaluate_extractor`, the Train tab's
validation; p = 1 is GeM's own average, a check that the two poolings agree there.

Run: nice .venv/bin/python bench/bench_pooling.py --data ../shared/data/birds50 --p 1 2 3 4
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
from explorer.models.pooling import set_pooling, use_gem_pooling  # noqa: E402
from explorer.training.train import VAL_CMC_1, VAL_MAP_5, evaluate_extractor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default="shapes", help="a data source as the app takes it")
    parser.add_argument("--p", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0], help="GeM exponents")
    parser.add_argument("--image-size", type=int, default=None, help="embed at this size (default: the preset's)")
    args = parser.parse_args()
    data = load_dataset(args.data)
    extractor = ViTExtractor(OFFLINE_PRESET).eval()
    extractor.set_input_size(args.image_size)
    dataset = DatasetQueryGallery(data.validation_df, data.root, transform=extractor.get_transforms())
    size = extractor.image_config.input_size
    print(f"## {OFFLINE_PRESET}, untrained, {size} px, validation split of {args.data} ({len(dataset)} images)")
    for p in [None, *args.p]:
        set_pooling(extractor.model, None)
        if p is not None:
            use_gem_pooling(extractor.model, p)
        started = time.perf_counter()
        metrics = evaluate_extractor(extractor, dataset).metrics_flat
        name = "average" if p is None else f"GeM p={p:g}"
        print(
            f"{name:>10}: cmc@1 {metrics[VAL_CMC_1]:.4f}, map@5 {metrics[VAL_MAP_5]:.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
