"""Compare: the evaluation before the last training run (base) against the trained one, on the same queries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from explorer.data.items import ItemIndex
from explorer.metrics.evaluation import EvaluationResult
from explorer.workspace.pictures import render_rows, side_by_side
from explorer.workspace.tables import query_table


@dataclass
class CompareResult:
    deltas: pd.DataFrame
    improved: pd.DataFrame
    regressed: pd.DataFrame
    improved_grid: Image.Image | None
    regressed_grid: Image.Image | None


def compare_evaluations(
    base: EvaluationResult,
    trained: EvaluationResult,
    items: ItemIndex,
    metric_name: str,
    n_queries: int,
    n_instances: int,
) -> CompareResult:
    """Metric deltas, and the `n_queries` queries whose `metric_name` improved / regressed most, side by side."""
    base_flat, trained_flat = base.metrics_flat, trained.metrics_flat
    deltas = pd.DataFrame(
        [(k, base_flat[k], trained_flat[k], trained_flat[k] - base_flat[k]) for k in trained_flat if k in base_flat],
        columns=["metric", "base", "trained", "delta"],
    ).round(4)
    before, after = base.per_query_values(metric_name), trained.per_query_values(metric_name)
    change = np.nan_to_num(after - before, nan=0.0)
    order = np.lexsort((np.arange(len(change)), -change))
    improved = [int(i) for i in order[:n_queries] if change[i] > 0]
    regressed = [int(i) for i in order[::-1][:n_queries] if change[i] < 0]

    def table(ids: list[int]) -> pd.DataFrame:
        values = {"base": before[ids], "trained": after[ids], "delta": change[ids]}
        return query_table(items, ids).assign(**{k: np.round(v, 4) for k, v in values.items()})

    def grids(ids: list[int]) -> Image.Image | None:
        if not ids:
            return None
        return side_by_side(render_rows(base, items, ids, n_instances), render_rows(trained, items, ids, n_instances))

    return CompareResult(deltas, table(improved), table(regressed), grids(improved), grids(regressed))
