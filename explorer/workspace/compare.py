"""Compare: the extractor before the last training run (base) against the trained one, on the same queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from explorer.checks import check_count
from explorer.progress import Progress
from explorer.workspace.inputs import (
    DEFAULT_WORST_METRIC,
    MAX_QUERIES_PER_GRID,
    InputError,
    check_metric,
)
from explorer.workspace.pictures import render_rows, side_by_side

if TYPE_CHECKING:
    from explorer.workspace.workspace import Workspace


@dataclass
class CompareResult:
    deltas: pd.DataFrame
    improved: pd.DataFrame
    regressed: pd.DataFrame
    improved_grid: Image.Image | None
    regressed_grid: Image.Image | None


def compare_with_base(
    trained: Workspace,
    metric_name: str = DEFAULT_WORST_METRIC,
    n_queries: int = 3,
    n_instances: int = 5,
    progress: Progress | None = None,
) -> CompareResult:
    """Base vs trained extractor on the same queries: metric deltas and the most improved/regressed queries."""
    base = trained.base
    if base is None:
        raise InputError(
            "Nothing to compare yet: train the extractor on the Train tab first; Compare then shows the model "
            "before training (base) against the trained one."
        )
    check_metric(metric_name, trained.metric_names())
    n_queries = check_count("n_queries", n_queries, 1, min(MAX_QUERIES_PER_GRID, trained.n_queries))
    n_instances = check_count("n_instances", n_instances, 1, trained.max_instances())
    base_evaluation = base.evaluation(progress, top_k=trained.metric_top_k)
    base_flat, trained_flat = base_evaluation.metrics_flat, trained.evaluation().metrics_flat
    deltas = pd.DataFrame(
        [(k, base_flat[k], trained_flat[k], trained_flat[k] - base_flat[k]) for k in trained_flat if k in base_flat],
        columns=["metric", "base", "trained", "delta"],
    ).round(4)
    before = trained.per_query_values(metric_name, base_evaluation)
    after = trained.per_query_values(metric_name)
    change = np.nan_to_num(after - before, nan=0.0)
    order = np.lexsort((np.arange(len(change)), -change))
    improved = [int(i) for i in order[:n_queries] if change[i] > 0]
    regressed = [int(i) for i in order[::-1][:n_queries] if change[i] < 0]

    def table(ids: list[int]) -> pd.DataFrame:
        values = {"base": before[ids], "trained": after[ids], "delta": change[ids]}
        return trained.query_table(ids).assign(**{k: np.round(v, 4) for k, v in values.items()})

    def grids(ids: list[int]) -> Image.Image | None:
        if not ids:
            return None
        return side_by_side(render_rows(base, ids, n_instances), render_rows(trained, ids, n_instances))

    return CompareResult(deltas, table(improved), table(regressed), grids(improved), grids(regressed))
