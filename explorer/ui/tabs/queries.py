"""The Queries tab: the retrieval rows of typed query ids; `/query_grid` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.widgets import instances_slider
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class QueriesTab:
    """The Queries tab's components: which queries, Show, and their grid."""

    ids: gr.Textbox
    instances: gr.Slider
    show: gr.Button
    grid: gr.Image


def build_queries_tab(views: PageViews) -> QueriesTab:
    """The tab, showing the query grid of `views`."""
    with gr.Tab("Queries", id="queries"):
        with gr.Row():
            ids = gr.Textbox(views.query_ids, label=views.query_ids_label, elem_id="query-ids")
            instances = instances_slider(views.n_instances, elem_id="query-instances")
            show = gr.Button("Show", variant="primary", elem_id="query-show")
        grid = gr.Image(views.query_grid, type="pil", label="Retrieval rows", format="png", elem_id="query-grid")
    return QueriesTab(ids, instances, show, grid)


@user_errors
def query_grid(session: WorkspaceSession, query_ids: str, n_instances: int) -> str:
    """Show (and `/query_grid`): the retrieval rows of `query_ids`."""
    return picture_file(session, session.workspace.query_grid(query_ids, n_instances))
