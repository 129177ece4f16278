"""The Metrics tab: cmc / precision / map at the chosen k, pcf, per category; `/metrics` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from explorer.ui.handlers import user_errors
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class MetricsTab:
    """The Metrics tab's components: the k to compute at, Recompute, and the metrics."""

    top_k: gr.Textbox
    recompute: gr.Button
    note: gr.Markdown
    table: gr.Dataframe


def build_metrics_tab(workspace: Workspace, views: PageViews) -> MetricsTab:
    """The tab, showing `workspace`'s k and the metrics of `views`."""
    with gr.Tab("Metrics", id="metrics"):
        with gr.Row():
            top_k = gr.Textbox(", ".join(map(str, workspace.metric_top_k)), label="k for cmc / precision / map")
            recompute = gr.Button("Recompute")
        note = gr.Markdown(views.metrics_note)
        table = gr.Dataframe(
            views.metrics_table, label="Metrics (validation)", interactive=False, elem_id="metrics-table"
        )
    return MetricsTab(top_k, recompute, note, table)


@user_errors
def set_metric_k(session: WorkspaceSession, text: str) -> None:
    """Recompute, first step: the session's own workspace evaluates at these k from now on."""
    session.edit().set_metric_top_k(text)


@user_errors
def metrics(session: WorkspaceSession) -> pd.DataFrame:
    """Recompute, second step (and `/metrics`): the metrics table."""
    return session.workspace.metrics_table()
