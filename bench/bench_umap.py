"""UMAP to 2-D in a fresh process, with and without reusing our exact kNN graph (not a test).

Each measurement runs in its own Python process, as the app's first UMAP does: imports, numba's kernels (read
back from numba's disk cache after the first process on the machine), the kNN graph, the layout. Data: random
clustered embeddings (50 clusters, D=384, L2-normalised). "pynndescent" is `compute_projection(emb, "umap")`
(a distance matrix below 4,096 items, pynndescent above); "exact kNN" is `knn_graph` + `compute_projection(...,
knn=graph)`. CPU seconds are reported next to wall seconds: UMAP's layout is single-threaded (seeded), so on a
shared machine its CPU time is what an idle machine's wall time would be.

    python bench/bench_umap.py [--sizes 3000 10000] [--with-100k]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

START = time.perf_counter()  # before numpy, torch and umap are imported: a fresh process's whole cost counts

DIM = 384
N_CLUSTERS = 50
MODES = ("pynndescent", "exact kNN")


def clustered_embeddings(n_items: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_CLUSTERS, DIM)).astype(np.float32)
    points = centres[rng.integers(0, N_CLUSTERS, n_items)] + 0.5 * rng.normal(size=(n_items, DIM)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def measure(n_items: int, mode: str) -> dict[str, float]:
    """One fresh-process UMAP; seconds of each stage (wall, and CPU of this process)."""
    embeddings = clustered_embeddings(n_items)
    wall, cpu = time.perf_counter(), time.process_time()
    from explorer.retrieval.search import knn_graph
    from explorer.viz.projection import UMAP_N_NEIGHBORS, compute_projection

    stages = {"import_s": time.perf_counter() - wall}
    knn = None
    if mode == "exact kNN":
        started = time.perf_counter()
        knn = knn_graph(embeddings, UMAP_N_NEIGHBORS)
        stages["knn_s"] = time.perf_counter() - started
    started = time.perf_counter()
    coords = compute_projection(embeddings, "umap", knn=knn)
    assert coords.shape == (n_items, 2)
    stages["umap_s"] = time.perf_counter() - started
    stages["total_s"] = time.perf_counter() - wall
    stages["total_cpu_s"] = time.process_time() - cpu
    stages["process_s"] = time.perf_counter() - START
    return stages


def run_fresh(n_items: int, mode: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", str(n_items), mode]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["subprocess_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--with-100k", action="store_true", help="also 100,000 items (minutes), once per mode")
    parser.add_argument("--worker", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(int(args.worker[0]), args.worker[1])))
        return
    sizes = args.sizes + ([100_000] if args.with_100k else [])
    warm_up = run_fresh(200, "exact kNN")  # fills numba's disk cache, as the machine's first UMAP would
    print(
        f"first process (numba compile unless already cached): {warm_up['subprocess_s']:.1f} s; load {os.getloadavg()}"
    )
    print(f"{'items':>7} {'mode':>11} {'process s':>9} {'kNN s':>6} {'UMAP s':>7} {'CPU s':>6} {'load':>5}")
    for n_items in sizes:
        for mode in MODES:
            result = run_fresh(n_items, mode)
            print(
                f"{n_items:>7} {mode:>11} {result['subprocess_s']:>9.1f} {result.get('knn_s', 0):>6.1f} "
                f"{result['umap_s']:>7.1f} {result['total_cpu_s']:>6.1f} {os.getloadavg()[0]:>5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
