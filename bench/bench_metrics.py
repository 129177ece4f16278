"""`EmbeddingMetrics` on 20k x 20k items (D=384) against one float32 matmul of that size (not a test).

Every item is a query and a gallery item (1-vs-rest), 1,000 labels of 20 items; the seed's loop (setup,
update_data in batches of 1,000, compute_metrics) with cmc / precision / map at one k, pcf@0.5. Each measurement
runs in its own process; times are the median of `--repeats` inside it, and ratios to the matmul (the product
every exact search must do) are printed, of wall seconds and of CPU seconds (all threads; on a shared machine
CPU time moves less with the other processes' load than wall time does). The issue's targets: <= 1.5x one matmul, <= 0.3x OML's time. OML 4.x
is not measured: `pip install --no-deps open-metric-learning` imports omegaconf, gdown, bs4, validators and
albumentations (OpenCV), so it does not install cleanly next to this project's pins.

    python bench/bench_metrics.py [--items 20000] [--repeats 3]
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


def run_fresh(what: str, n_items: int, repeats: int) -> tuple[float, float]:
    command = [sys.executable, __file__, "--worker", what, "--items", str(n_items), "--repeats", str(repeats)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result["wall_s"], result["cpu_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measure = time_matmul if args.worker == "matmul" else lambda n: time_embedding_metrics(n, int(args.worker))
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
        wall, cpu = run_fresh(str(k), args.items, args.repeats)
        print(
            f"EmbeddingMetrics k={k:>2}: {wall:6.2f} s wall = {wall / matmul_wall:.2f}x matmul, {cpu:6.2f} s CPU = "
            f"{cpu / matmul_cpu:.2f}x matmul (load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
