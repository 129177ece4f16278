"""The Worst queries tab: the lowest-scoring queries by a metric, as a grid and a table whose rows open the query;
`/worst_queries` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.widgets import QueryChoice, query_choice
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews

DEFAULT_WORST_COUNT = 4


@dataclass(frozen=True)
class WorstTab:
    """The Worst queries tab's components: which queries, Show, and their table and grid."""

    choice: QueryChoice
    show: gr.Button
    table: gr.Dataframe
    grid: gr.Image


def build_worst_tab(views: PageViews) -> WorstTab:
    """The tab, showing the worst queries of `views`."""
    with gr.Tab("Worst queries", id="worst"):
        with gr.Row():
            choice = query_choice(views, "metric", DEFAULT_WORST_COUNT, elem_id="worst-count")
            show = gr.Button("Show", variant="primary", elem_id="worst-show")
        table = gr.Dataframe(
            views.worst_table, label="Worst queries (click a row to open it)", interactive=False, elem_id="worst-table"
        )
        grid = gr.Image(views.worst_grid, type="pil", label="Worst queries", format="png", elem_id="worst-grid")
    return WorstTab(choice, show, table, grid)


@user_errors
def worst_queries(
    session: WorkspaceSession, metric_name: str, n_queries: int, n_instances: int
) -> tuple[str, pd.DataFrame]:
    """Show (and `/worst_queries`): the grid and the table of ids and values, in the API's order."""
    grid, table = session.workspace.worst_queries(metric_name, n_queries, n_instances)
    return picture_file(session, grid), table


@user_errors
def open_worst_row(session: WorkspaceSession, n_instances: int, event: gr.SelectData):
    """A clicked table row: (the Queries tab selected, its query id, its retrieval row).

    A tuple, not `{component: value}`: Gradio finds the `SelectData` parameter by its type hint, which binding
    the output components (`with_outputs`) would hide.
    """
    query_id = int(event.row_value[0])  # the clicked row's own "query id", also after the user sorts
    grid = session.workspace.query_grid([query_id], n_instances)
    return gr.Tabs(selected="queries"), str(query_id), picture_file(session, grid)
