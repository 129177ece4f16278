"""The app's backend at scale: N items (default 100k) from the shapes generator at a small size, with embeddings
brought in (BYO, D=384, clustered by label), on the path `python app.py --data ... --embeddings ...` takes.

    python bench/bench_scale_app.py [--items 100000] [--dim 384] [--skip-umap]

Reports the time until the app is ready (load + metrics + PCA), the server time of a query grid, worst queries and
the PCA figure, the background UMAP (exact kNN, no pynndescent), and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.data.shapes import CSV_NAME, generate_shapes_dataset  # noqa: E402
from explorer.workspace import Workspace  # noqa: E402

N_CLASSES = 48  # all the generator's figure x pattern classes
IMAGE_SIZE = 24


def clustered_embeddings(labels: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """One random centre per label plus noise, L2-normalised: retrieval that is neither trivial nor random."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels.max() + 1, dim)).astype(np.float32)
    vectors = centres[labels] + 1.2 * rng.normal(size=(len(labels), dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def seconds(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--skip-umap", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:  # the generated images go afterwards
        measure(Path(scratch), args)


def measure(folder: Path, args: argparse.Namespace) -> None:
    """Generate the data in `folder`, build the app's workspace on it and print the figures."""
    per_class = args.items // N_CLASSES
    took, df = seconds(lambda: generate_shapes_dataset(folder / "data", N_CLASSES, per_class, image_size=IMAGE_SIZE))
    print(f"generated {len(df):,} images ({N_CLASSES} classes, {IMAGE_SIZE} px) in {took:.0f} s (not part of the app)")
    np.save(folder / "emb.npy", clustered_embeddings(df["label"].to_numpy(), args.dim))
    took, workspace = seconds(
        lambda: Workspace.build(
            str(folder / "data" / CSV_NAME), embeddings=folder / "emb.npy", cache_dir=folder / "cache"
        )
    )
    print(f"| app ready from precomputed embeddings (load, metrics, PCA) | {took:.1f} s | target <= 90 s |")
    print(f"| queries | {workspace.n_queries:,} | |")
    timings = {
        "query grid, 3 queries x 5 (server)": lambda: workspace.query_grid(workspace.items.query_items[:3].tolist(), 5),
        "worst queries, map@5, 4 x 5 (server)": lambda: workspace.worst_queries("OVERALL/map/5", 4, 5),
        "PCA figure (server)": lambda: workspace.projection("pca", "label"),
    }
    targets = {"PCA figure (server)": "<= 2 s"}
    for name, action in timings.items():
        first, _ = seconds(action)
        second, _ = seconds(action)
        print(f"| {name} | {first:.3f} s / {second:.3f} s | target {targets.get(name, '<= 0.3 s')} |")
    if not args.skip_umap:
        took, _ = seconds(lambda: workspace.projection_coords("umap"))
        print(f"| UMAP in the background (exact kNN + layout) | {took:.0f} s | target <= 180 s |")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| peak RSS | {peak_mb:,.0f} MB | target <= 4096 MB |")


if __name__ == "__main__":
    main()
