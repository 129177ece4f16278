"""The Worst queries tab: the lowest-scoring queries by a metric, as a grid (a page at a time) and a table whose
rows, like the grid's tiles, open that item's row in this tab; `/worst_queries` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.widgets import (
    ItemPanel,
    Pager,
    QueryChoice,
    clicked_item,
    grid_image,
    item_panel,
    open_in_panel,
    pager,
    query_choice,
)
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews

DEFAULT_WORST_COUNT = 4


@dataclass(frozen=True)
class WorstTab:
    """The Worst queries tab's components: which queries, Show, their table and grid, and an opened item's row."""

    choice: QueryChoice
    show: gr.Button
    pages: Pager
    table: gr.Dataframe
    grid: gr.Image
    item: ItemPanel


def build_worst_tab(views: PageViews) -> WorstTab:
    """The tab, showing the worst queries of `views`."""
    with gr.Tab("Worst queries", id="worst"):
        with gr.Row():
            choice = query_choice(views, "metric", DEFAULT_WORST_COUNT, elem_id="worst-count")
            show = gr.Button("Show", variant="primary", elem_id="worst-show")
        table = gr.Dataframe(
            views.worst_table,
            label="Worst queries (click a row to open it below)",
            interactive=False,
            elem_id="worst-table",
        )
        with gr.Row():
            pages = pager("worst-page")
        grid = grid_image(views.worst_grid, elem_id="worst-grid")
        gr.Markdown("**Click a table row or a tile** to open that item's own row here:")
        item = item_panel("worst-item-row")
    return WorstTab(choice, show, pages, table, grid, item)


@user_errors
def worst_queries(
    session: WorkspaceSession, metric_name: str, n_queries: int, n_instances: int, page: int = 1
) -> tuple[str, pd.DataFrame]:
    """Show (and `/worst_queries`): one page of the grid and the table of item ids and values, in the API's order."""
    grid, table = session.workspace.worst_queries(metric_name, n_queries, n_instances, page)
    return picture_file(session, grid), table


@user_errors
def open_worst_row(session: WorkspaceSession, n_instances: int, scope: str, event: gr.SelectData):
    """A clicked table row: (its item id, its retrieval row) in this tab's panel, at this tab's n_instances.

    A tuple, not `{component: value}`: Gradio finds the `SelectData` parameter by its type hint, which binding
    the output components (`with_outputs`) would hide.
    """
    item_id = int(event.row_value[0])  # the clicked row's own "item id", also after the user sorts
    return open_in_panel(session, item_id, n_instances, scope)


@user_errors
def open_grid_tile(
    session: WorkspaceSession,
    metric_name: str,
    n_queries: int,
    n_instances: int,
    page: int,
    scope: str,
    event: gr.SelectData,
):
    """A tile clicked in the grid: its item's row in the panel below."""
    layout = session.workspace.worst_queries_layout(metric_name, n_queries, n_instances, page)
    return open_in_panel(session, clicked_item(layout, event), n_instances, scope)
