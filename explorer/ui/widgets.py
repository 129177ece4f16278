"""Small component factories that several tabs use, so each control looks and limits the same everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from explorer.workspace.inputs import MAX_INSTANCES, MAX_QUERIES_PER_GRID
from explorer.workspace.views import PageViews

DEFAULT_INSTANCES = 5  # gallery items per retrieval row on a fresh page


def undecoded_image_upload(**kwargs: Any) -> gr.Image:
    """An image upload passed to the handler as the uploaded file's path, never decoded by Gradio first.

    `gr.Image` opens and converts every upload before the handler runs: a small PNG of 12000 x 12000 grey pixels
    costs seconds and hundreds of MB before anything can refuse it, and a file that is not an image fails with
    Gradio's raw message. Here the backend's `read_image` checks the size from the header and names the problem.
    (The instance's `preprocess` is replaced rather than subclassing `gr.Image`: Gradio writes a `.pyi` stub next
    to the source of every component subclass at import time.)
    """
    upload = gr.Image(type="filepath", **kwargs)
    decode = upload.preprocess

    def path_only(payload: Any) -> str | None:
        if payload is not None and getattr(payload, "path", None):
            return str(payload.path)
        return decode(payload)

    upload.preprocess = path_only
    return upload


def instances_slider(value: int, **kwargs: Any) -> gr.Slider:
    """How many gallery items a retrieval row shows."""
    return gr.Slider(1, MAX_INSTANCES, value, step=1, label="n_instances", **kwargs)


@dataclass(frozen=True)
class QueryChoice:
    """Which queries a view picks by a per-query metric, how many, and how long their retrieval rows are."""

    metric: gr.Dropdown
    count: gr.Slider
    instances: gr.Slider


def query_choice(views: PageViews, metric_label: str, n_queries: int, **count_kwargs: Any) -> QueryChoice:
    """The three controls, side by side in the current row, at the metric and row length of `views`
    (a typed metric name is checked by the backend)."""
    return QueryChoice(
        metric=gr.Dropdown(views.metric_names, value=views.metric, label=metric_label, allow_custom_value=True),
        count=gr.Slider(1, MAX_QUERIES_PER_GRID, n_queries, step=1, label="number of queries", **count_kwargs),
        instances=instances_slider(views.n_instances),
    )
