"""`EmbeddingMetrics` on 20k x 20k items (D=384) against one float32 matmul of that size (not a test).

Every item is a query and a gallery item (1-vs-rest), 1,000 labels of 20 items; the seed's loop (setup,
update_data in batches of 1,000, compute_metrics) with cmc / precision / map at one k, pcf@0.5. Each measurement
runs in its own process; times are the median of `--repeats` inside it, and ratios to the matmul (the product
every exact search must do) are printed, of wall seconds and of CPU seconds (all threads; on a shared machine
CPU time moves less with the other processes' load than wall time does). The issue's targets: <= 1.5x one matmul,
<= 0.3x OML's time.

OML 4.0 does not install next to this project's pins (it asks for numpy < 2 and imports albumentations and OpenCV
for its transforms), so `--oml-python` names the interpreter of a separate virtual environment that sees this
project's packages (torch, numpy) through a .pth file and holds OML and what its import needs, for example:

    python -m venv /tmp/omlenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/omlenv/lib/python3.11/site-packages/main.pth
    /tmp/omlenv/bin/pip install --no-deps open-metric-learning==4.0.0 albumentations==1.3.1 \
        opencv-python-headless scikit-image qudida lazy_loader imageio tifffile
    /tmp/omlenv/bin/pip install omegaconf gdown beautifulsoup4 validators

OML gets the same embeddings, its own `EmbeddingMetrics` with the same k and pcf, and the same seed loop.

    python bench/bench_metrics.py [--items 20000] [--repeats 3] [--oml-python /tmp/omlenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DIM = 384
ITEMS_PER_LABEL = 20
BATCH = 1000
TOP_K = (1, 5, 10)


def embeddings_and_labels(n_items: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n_items) // ITEMS_PER_LABEL
    centres = torch.randn(int(labels.max()) + 1, DIM, generator=generator)
    points = centres[labels] + torch.randn(n_items, DIM, generator=generator)
    return torch.nn.functional.normalize(points, dim=1), labels


def time_matmul(n_items: int) -> tuple[float, float]:
    embeddings, _ = embeddings_and_labels(n_items)
    wall, cpu = time.perf_counter(), time.process_time()
    embeddings @ embeddings.T
    return time.perf_counter() - wall, time.process_time() - cpu


def time_embedding_metrics(n_items: int, k: int) -> tuple[float, float]:
    import torch

    from explorer import EmbeddingMetrics

    embeddings, labels = embeddings_and_labels(n_items)
    flags = torch.ones(n_items, dtype=torch.bool)
    wall, cpu = time.perf_counter(), time.process_time()
    calculator = EmbeddingMetrics(cmc_top_k=(k,), precision_top_k=(k,), map_top_k=(k,), verbose=False)
    calculator.setup(num_samples=n_items)
    for start in range(0, n_items, BATCH):
        batch = slice(start, start + BATCH)
        calculator.update_data(
            {
                "embeddings": embeddings[batch],
                "labels": labels[batch],
                "is_query": flags[batch],
                "is_gallery": flags[batch],
            }
        )
    calculator.compute_metrics()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_oml_metrics(n_items: int, k: int) -> tuple[float, float]:
    """OML 4.0's `EmbeddingMetrics` on the same inputs: its dataset only has to name labels and the split."""
    import numpy as np
    import torch
    from oml.interfaces.datasets import IQueryGalleryLabeledDataset
    from oml.metrics import EmbeddingMetrics as OmlEmbeddingMetrics

    embeddings, labels = embeddings_and_labels(n_items)

    class EveryItemQueryAndGallery(IQueryGalleryLabeledDataset):
        extra_data: dict = {}

        def __len__(self) -> int:
            return n_items

        def __getitem__(self, item: int) -> dict:
            raise NotImplementedError("metrics read labels and ids only")

        def get_labels(self) -> np.ndarray:
            return labels.numpy()

        def get_query_ids(self) -> torch.LongTensor:
            return torch.arange(n_items)

        def get_gallery_ids(self) -> torch.LongTensor:
            return torch.arange(n_items)

    wall, cpu = time.perf_counter(), time.process_time()
    calculator = OmlEmbeddingMetrics(
        EveryItemQueryAndGallery(), cmc_top_k=(k,), precision_top_k=(k,), map_top_k=(k,), verbose=False
    )
    calculator.setup(num_samples=n_items)
    for start in range(0, n_items, BATCH):
        calculator.update(embeddings[start : start + BATCH], list(range(start, min(start + BATCH, n_items))))
    calculator.compute_metrics()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_fresh(what: str, n_items: int, repeats: int, python: str = sys.executable) -> tuple[float, float]:
    command = [python, __file__, "--worker", what, "--items", str(n_items), "--repeats", str(repeats)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result["wall_s"], result["cpu_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oml-python", help="interpreter of an environment with OML 4.0 (see the docstring)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        what, _, k = args.worker.partition(":")
        measure = {
            "matmul": time_matmul,
            "ours": lambda n: time_embedding_metrics(n, int(k)),
            "oml": lambda n: time_oml_metrics(n, int(k)),
        }[what]
        measure(min(args.items, 2000))  # warm-up: first-call costs (allocator, thread pool) are not the method's
        walls, cpus = zip(*(measure(args.items) for _ in range(args.repeats)), strict=True)
        print(json.dumps({"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}))
        return
    matmul_wall, matmul_cpu = run_fresh("matmul", args.items, args.repeats)
    print(
        f"{args.items} x {args.items}, D={DIM}: one float32 matmul {matmul_wall:.2f} s wall, {matmul_cpu:.2f} s CPU "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    for k in TOP_K:
        wall, cpu = run_fresh(f"ours:{k}", args.items, args.repeats)
        line = (
            f"EmbeddingMetrics k={k:>2}: {wall:6.2f} s wall = {wall / matmul_wall:.2f}x matmul, {cpu:6.2f} s CPU = "
            f"{cpu / matmul_cpu:.2f}x matmul"
        )
        if args.oml_python:
            oml_wall, oml_cpu = run_fresh(f"oml:{k}", args.items, args.repeats, args.oml_python)
            line += f"; OML 4.0 {oml_wall:6.2f} s wall: ours = {wall / oml_wall:.2f}x OML ({cpu / oml_cpu:.2f}x CPU)"
        print(f"{line} (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
