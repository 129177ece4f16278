"""Retrieval + metrics at 20k x 20k (D=384, top_k 1/5/10) against one float32 matmul of the same size (the floor)
and a naive full-matrix implementation. Each method runs in its own subprocess so peak RSS is its own.

Run: .venv/bin/python bench/bench_retrieval.py [--n 20000] [--dim 384]
Target: ours <= 1.7x the matmul time, peak memory far below the Q x G matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.metrics import evaluate_arrays  # noqa: E402  (imported before any timing: only the work is measured)

TOP_K = (1, 5, 10)


def make_data(n: int, dim: int):
    g = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)
    labels = torch.randint(0, n // 10, (n,), generator=g)
    return embeddings, labels


def run_matmul(embeddings, labels):
    return float((embeddings @ embeddings.T)[0, 0])


def run_ours(embeddings, labels):
    flags = torch.ones(len(labels), dtype=torch.bool)
    result = evaluate_arrays(
        embeddings, labels, flags, flags, cmc_top_k=TOP_K, precision_top_k=TOP_K, map_top_k=TOP_K, pcf_variance=()
    )
    return result.metrics_flat["OVERALL/map/10"]


def run_naive(embeddings, labels):
    """Full distance matrix, self masked, full argsort, metrics from the sorted relevance matrix."""
    dist = torch.cdist(embeddings, embeddings)
    dist.fill_diagonal_(float("inf"))
    order = torch.argsort(dist, dim=1, stable=True)[:, : max(TOP_K)]
    relevant = labels[order] == labels[:, None]
    hits = relevant.double().cumsum(1)
    precision_at = hits / torch.arange(1, max(TOP_K) + 1)
    k = max(TOP_K)
    return float(((precision_at[:, :k] * relevant[:, :k]).sum(1) / hits[:, k - 1].clamp(min=1)).mean())


METHODS = {"matmul": run_matmul, "ours": run_ours, "naive": run_naive}


def child(method: str, n: int, dim: int) -> None:
    embeddings, labels = make_data(n, dim)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    value = METHODS[method](embeddings, labels)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "method": method,
                "seconds": seconds,
                "peak_rss_mb": peak_mb,
                "rss_before_mb": base_rss / 1024,
                "value": value,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--child", choices=list(METHODS))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.dim)
        return
    repo = Path(__file__).resolve().parents[1]
    results = {}  # each method in a fresh process: its peak RSS is its own
    for method in METHODS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, "--n", str(args.n), "--dim", str(args.dim)],
            capture_output=True,
            text=True,
            check=True,
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
        )
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    matrix_mb = args.n * args.n * 4 / 2**20
    print(f"N = Q = G = {args.n}, D = {args.dim}, top_k = {TOP_K}; one float32 Q x G matrix = {matrix_mb:.0f} MB")
    print(f"{'method':8} {'seconds':>8} {'x matmul':>9} {'peak RSS MB':>12} {'RSS before MB':>14}")
    for method, r in results.items():
        ratio = r["seconds"] / results["matmul"]["seconds"]
        print(f"{method:8} {r['seconds']:8.2f} {ratio:9.2f} {r['peak_rss_mb']:12.0f} {r['rss_before_mb']:14.0f}")
    print(f"map@10 ours {results['ours']['value']:.6f} vs naive {results['naive']['value']:.6f}")


if __name__ == "__main__":
    main()
