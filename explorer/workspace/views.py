"""Every value the app's page shows that depends on the data, the model or the training run, in one call.

After any such change the UI asks `page_views` once and shows the fields of the `PageViews` it gets, instead of
calling a dozen workspace methods itself. Built on `Workspace`'s public methods only; `workspace.py` never
imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from PIL import Image

from explorer.workspace.workspace import Workspace


@dataclass(frozen=True)
class PageViews:
    """What the page shows for one workspace, field by field (the UI maps each field to its component)."""

    header: str  # one Markdown line: the data and the model
    data_source: str  # the Data tab's source field: built-in name or (local mode) the loaded path
    warnings: str  # the dataset's validation warnings (Markdown)
    summary: pd.DataFrame  # counts: labels, images, splits, queries/gallery
    preview: pd.DataFrame  # the dataset's first rows
    metrics_note: str  # how many queries have no relevant gallery item
    metrics_table: pd.DataFrame
    query_ids: str  # item ids of the wanted queries when still valid, else of the first queries
    query_ids_label: str  # says the field takes item ids of queries, with examples
    n_instances: int  # gallery items per retrieval row, capped by the gallery size
    query_grid: Image.Image  # the retrieval rows of `query_ids`
    metric_names: list[str]
    metric: str  # the wanted metric when this evaluation has it, else the default one
    worst_grid: Image.Image  # the retrieval rows of the worst queries by `metric`
    worst_table: pd.DataFrame  # their ids and values
    projection: Any  # the plotly figure of the embeddings' projection
    label_table: pd.DataFrame  # the dataset's labels: name, number, items, queries
    label_choices: list[str]  # the labels as the label filters offer them
    model_name: str | None  # None (and `model_weights` too) when the embeddings came from a file, without a model
    model_weights: str | None


def query_ids_label(workspace: Workspace) -> str:
    """The query field's label: it takes item ids (rows of the dataset table) of queries, with examples."""
    examples = ", ".join(str(i) for i in workspace.items.query_items[:3])
    return f"Item ids of queries ({workspace.n_queries} queries), e.g. {examples}"


def page_views(
    workspace: Workspace,
    query_ids: str,
    n_instances: int,
    metric: str,
    n_worst: int,
    method: str,
    color_by: str,
) -> PageViews:
    """The page for `workspace`, keeping the user's choices (ids, counts, metric, projection) where still valid."""
    metric = workspace.default_metric(metric)
    n_instances = min(int(n_instances), workspace.max_instances())
    query_ids = workspace.default_query_ids(query_ids)
    worst_grid, worst_table = workspace.worst_queries(metric, min(int(n_worst), workspace.n_queries), n_instances)
    labels = workspace.label_table()
    model = workspace.extractor.choice if workspace.extractor is not None else None
    return PageViews(
        header=workspace.describe(),
        data_source=workspace.data_source_text(),
        warnings=workspace.warnings_text(),
        summary=workspace.data_summary(),
        preview=workspace.data_preview(),
        metrics_note=workspace.no_relevant_gallery_text(),
        metrics_table=workspace.metrics_table(),
        query_ids=query_ids,
        query_ids_label=query_ids_label(workspace),
        n_instances=n_instances,
        query_grid=workspace.query_grid(query_ids, n_instances),
        metric_names=workspace.metric_names(),
        metric=metric,
        worst_grid=worst_grid,
        worst_table=worst_table,
        projection=workspace.projection(method, color_by),
        label_table=labels,
        label_choices=labels["label"].tolist(),
        model_name=model.name if model else None,
        model_weights=model.weights if model else None,
    )
