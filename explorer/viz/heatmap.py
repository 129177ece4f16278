"""The heat map of confused labels: how often the queries of label i retrieve label j among their first results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go


def confusion_heatmap(matrix: np.ndarray, names: Sequence[str], top_k: int) -> go.Figure:
    """Rows: query label, columns: retrieved label (most confused labels first); the diagonal is not drawn."""
    counts = np.asarray(matrix, dtype=float)
    shown = np.where(np.eye(len(counts), dtype=bool), np.nan, counts) if len(counts) else counts
    figure = go.Figure(
        go.Heatmap(
            z=shown,
            x=list(names),
            y=list(names),
            colorscale="Reds",
            colorbar={"title": {"text": "count"}},
            hovertemplate="queries of %{y} retrieve %{x}: %{z:.0f}×<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Confused labels among the first {top_k} results",
        template="plotly_white",
        height=560,
        xaxis={"title": "retrieved label", "tickangle": -45},
        yaxis={"title": "query label", "autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure
