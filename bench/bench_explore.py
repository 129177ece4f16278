"""Server time of the exploration views on a real photo set (birds50 by default), on the path the app takes.

    python bench/bench_explore.py [--data ../shared/data/birds50] [--selection 500]

Builds the workspace as `python app.py --data ...` does (embeddings come from the on-disk cache after the first
run), then times, each first call (nothing cached) and second call: a plot selection of N points (its first
page of tiles and its label counts), the confusions table, and the suspected-label-errors list.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.workspace import Workspace  # noqa: E402
from explorer.workspace.exploration import SELECTION_VIEWS  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "birds50"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--selection", type=int, default=500, help="points in the timed plot selection")
    args = parser.parse_args()
    started = time.perf_counter()
    workspace = Workspace.build(args.data)
    print(f"workspace built in {time.perf_counter() - started:.1f} s: {workspace.describe()}")
    selection = np.random.default_rng(0).choice(len(workspace.df), args.selection, replace=False).tolist()
    views = {
        f"selection of {args.selection} points (first page + label counts)": lambda: (
            workspace.selection_grid(selection, SELECTION_VIEWS[0], 5),
            workspace.selection_labels(selection),
        ),
        "confusions table (20 pairs)": lambda: workspace.confusions_table(20),
        "suspected label errors (20 items)": lambda: workspace.suspected_errors(20),
    }
    print("| view | first call | second call |\n| --- | --- | --- |")
    for name, view in views.items():
        print(f"| {name} | {timed(view):.3f} s | {timed(view):.3f} s |")


if __name__ == "__main__":
    main()
