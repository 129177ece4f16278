"""Small component factories that several tabs use, so each control looks and limits the same everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from explorer.errors import InputError
from explorer.ui.handlers import picture_file, user_errors
from explorer.viz.retrieval_layout import RetrievalLayout
from explorer.viz.retrieval_render import GridGeometry, tile_at
from explorer.workspace import WorkspaceSession
from explorer.workspace.exploration import NEIGHBOUR_SCOPES
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

    def inputs(self) -> list[gr.components.Component]:
        """The three, in the order handlers take them: metric, count, n_instances."""
        return [self.metric, self.count, self.instances]


def query_choice(views: PageViews, metric_label: str, n_queries: int, **count_kwargs: Any) -> QueryChoice:
    """The three controls, side by side in the current row, at the metric and row length of `views`
    (a typed metric name is checked by the backend)."""
    return QueryChoice(
        metric=gr.Dropdown(views.metric_names, value=views.metric, label=metric_label, allow_custom_value=True),
        count=gr.Slider(1, MAX_QUERIES_PER_GRID, n_queries, step=1, label="number of queries", **count_kwargs),
        instances=instances_slider(views.n_instances),
    )


def grid_image(value: Any = None, **kwargs: Any) -> gr.Image:
    """A rendered grid of tiles: no label badge over its first captions (the picture carries its own heading), and
    a click on a tile reaches its `select` listeners with the clicked pixel."""
    return gr.Image(value, type="pil", format="png", show_label=False, interactive=False, **kwargs)


@dataclass(frozen=True)
class Pager:
    """Previous / next buttons around a page number: pictures of long lists come one page at a time."""

    previous: gr.Button
    page: gr.Number
    next: gr.Button

    def on_turn(self, fn: Any, inputs: list, outputs: Any, **listener_kwargs: Any) -> None:
        """Turn the page in the browser, then call `fn` (whose inputs hold `self.page`) to draw it."""
        for button, step in ((self.previous, -1), (self.next, 1)):
            turned = button.click(None, self.page, self.page, js=f"(page) => Math.max(1, (page || 1) + {step})")
            turned.then(fn, inputs, outputs, **listener_kwargs)


def pager(elem_id: str) -> Pager:
    """The page controls in the current row; `elem_id` names the page number box."""
    return Pager(
        previous=gr.Button("◀ previous", size="sm", min_width=80, elem_id=f"{elem_id}-previous"),
        page=gr.Number(1, precision=0, minimum=1, label="page", min_width=80, elem_id=elem_id),
        next=gr.Button("next ▶", size="sm", min_width=80, elem_id=f"{elem_id}-next"),
    )


@dataclass(frozen=True)
class ItemPanel:
    """One item's retrieval row: which item (typed, or a clicked point or tile), where its neighbours come from."""

    item_id: gr.Number
    scope: gr.Radio
    row: gr.Image


def item_panel(elem_id: str) -> ItemPanel:
    """The panel: the item id box and the neighbours scope side by side, its row below (tiles clickable)."""
    with gr.Row():
        item_id = gr.Number(
            None, precision=0, minimum=0, label="item id (a row of the dataset table)", scale=1, elem_id=f"{elem_id}-id"
        )
        scope = gr.Radio(list(NEIGHBOUR_SCOPES), value=NEIGHBOUR_SCOPES[0], label="neighbours among", scale=2)
    row = grid_image(elem_id=elem_id)
    return ItemPanel(item_id, scope, row)


def clicked_item(layout: tuple[RetrievalLayout, str], event: gr.SelectData) -> int:
    """The item id of the tile under a click on the picture drawn from `layout` (layout, heading)."""
    x, y = event.index
    tile = tile_at(GridGeometry(layout[0]), x, y)
    if tile is None or tile.item_id is None:
        raise InputError("That click hit no tile of a dataset item: click on a picture or its caption.")
    return tile.item_id


@user_errors
def show_item(session: WorkspaceSession, item_id: float | None, n_instances: int, scope: str) -> str | None:
    """An item panel's row for a typed item id or a changed scope (nothing while the box is empty)."""
    if item_id is None:
        return None
    return picture_file(session, session.workspace.item_row(item_id, n_instances, scope))


@user_errors
def open_row_tile(session: WorkspaceSession, item_id: float | None, n_instances: int, scope: str, event: gr.SelectData):
    """A tile clicked in an item panel's row: that item's row, in the same panel (a path through the data)."""
    if item_id is None:
        raise InputError("Open an item first: click a point or a tile, or type an item id.")
    clicked = clicked_item(session.workspace.item_row_layout(item_id, n_instances, scope), event)
    return clicked, picture_file(session, session.workspace.item_row(clicked, n_instances, scope))


def open_in_panel(session: WorkspaceSession, item_id: int, n_instances: int, scope: str) -> tuple[int, str]:
    """(the item id box, the row picture) of a panel opening `item_id`: what a tile or point click returns."""
    return item_id, picture_file(session, session.workspace.item_row(item_id, n_instances, scope))


def wire_item_panel(panel: ItemPanel, session: gr.State, instances: gr.Slider) -> None:
    """A typed id or a new scope redraws the panel; a click on one of its tiles opens that tile's item there."""
    inputs = [session, panel.item_id, instances, panel.scope]
    gr.on([panel.item_id.submit, panel.scope.input], show_item, inputs, panel.row, api_visibility="private")
    panel.row.select(open_row_tile, inputs, [panel.item_id, panel.row], api_visibility="private")
