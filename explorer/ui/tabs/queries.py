"""The Queries tab: the retrieval rows of typed queries (their item ids) or of a label's queries, a page at a time,
each tile opening its item's row below; `/query_grid` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.widgets import (
    ItemPanel,
    Pager,
    clicked_item,
    grid_image,
    instances_slider,
    item_panel,
    open_in_panel,
    pager,
)
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class QueriesTab:
    """The Queries tab's components: which queries, Show, their grid (a page of it) and a clicked item's row."""

    ids: gr.Textbox
    instances: gr.Slider
    label: gr.Dropdown
    show: gr.Button
    pages: Pager
    grid: gr.Image
    item: ItemPanel


def build_queries_tab(views: PageViews) -> QueriesTab:
    """The tab, showing the query grid of `views`."""
    with gr.Tab("Queries", id="queries"):
        with gr.Row():
            ids = gr.Textbox(views.query_ids, label=views.query_ids_label, scale=3, elem_id="query-ids")
            label = gr.Dropdown(
                views.label_choices, value=None, label="…or the queries of a label", scale=2, elem_id="query-label"
            )
            instances = instances_slider(views.n_instances, elem_id="query-instances")
            show = gr.Button("Show", variant="primary", elem_id="query-show")
        with gr.Row():
            pages = pager("query-page")
        grid = grid_image(views.query_grid, elem_id="query-grid")
        gr.Markdown("**Click a tile** to open that item's own row here:")
        item = item_panel("query-item-row")
    return QueriesTab(ids, instances, label, show, pages, grid, item)


@user_errors
def query_grid(session: WorkspaceSession, query_ids: str, n_instances: int, page: int = 1) -> str:
    """Show (and `/query_grid`): one page (default the first) of the retrieval rows of `query_ids`, item ids of
    queries."""
    return picture_file(session, session.workspace.query_grid(query_ids, n_instances, page))


@user_errors
def label_queries(session: WorkspaceSession, label: str | None):
    """A label picked: its queries' item ids in the ids field, from the first page (then Show draws them)."""
    if not label:
        return gr.skip(), gr.skip()
    return session.workspace.label_queries_text(label), 1


@user_errors
def open_grid_tile(
    session: WorkspaceSession, query_ids: str, n_instances: int, page: int, scope: str, event: gr.SelectData
):
    """A tile clicked in the grid: its item's row in the panel below."""
    layout = session.workspace.query_grid_layout(query_ids, n_instances, page)
    return open_in_panel(session, clicked_item(layout, event), n_instances, scope)
