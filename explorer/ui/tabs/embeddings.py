"""The Embeddings tab: a UMAP / PCA plot (hover shows the image, a click opens the item's row, a box / lasso
selection opens a grid of the selected items), a searchable label list and a label filter; `/projection` in the API.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import TRACKED, picture_file, reporter, user_errors
from explorer.ui.plotly_click import plotly_click
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
from explorer.viz.projection import PROJECTION_METHODS
from explorer.workspace import WorkspaceSession
from explorer.workspace.exploration import SELECTION_VIEWS, check_selection
from explorer.workspace.files import EXPORTS
from explorer.workspace.inputs import COLOR_BY_CHOICES
from explorer.workspace.views import PageViews

DEFAULT_METHOD = "pca"  # instant, unlike UMAP
DEFAULT_COLOR_BY = "label"


@dataclass(frozen=True)
class SelectionPanel:
    """A plot selection: its item ids, what its grid shows, its pages, grid, label counts and CSV download."""

    item_ids: gr.State
    view: gr.Radio
    pages: Pager
    grid: gr.Image
    labels: gr.Dataframe
    export: gr.Button
    file: gr.File


@dataclass(frozen=True)
class EmbeddingsTab:
    """The Embeddings tab's components: the projection choice, Show, the plot, the label list, the clicked item's
    row and the selection."""

    method: gr.Radio
    color_by: gr.Dropdown
    label: gr.Dropdown
    show: gr.Button
    plot: gr.HTML
    label_list: gr.Dataframe
    instances: gr.Slider
    item: ItemPanel
    selection: SelectionPanel


def build_embeddings_tab(views: PageViews) -> EmbeddingsTab:
    """The tab, showing the projection of `views`."""
    with gr.Tab("Embeddings", id="embeddings"):
        with gr.Row():
            method = gr.Radio(list(PROJECTION_METHODS), value=DEFAULT_METHOD, label="method")
            color_by = gr.Dropdown(list(COLOR_BY_CHOICES), value=DEFAULT_COLOR_BY, label="colour by")
            label = gr.Dropdown(  # "" (all labels) is the API's default of `/projection`'s label
                ["", *views.label_choices], value="", label="only this label", elem_id="embeddings-label"
            )
            show = gr.Button("Show", variant="primary")
        gr.Markdown(
            "Hover a point for its image, label, id and file; **click it** for its retrieval row below; **box or "
            "lasso select** points (plot toolbar) for a grid of them. Click a label in the list to show only it."
        )
        with gr.Row():
            with gr.Column(scale=4):
                plot = plotly_click(views.projection, elem_id="projection-plot")
            with gr.Column(scale=1, min_width=220):
                label_list = gr.Dataframe(
                    views.label_table,
                    label="Labels (click one to show only it)",
                    interactive=False,
                    show_search="search",
                    max_height=560,
                    elem_id="label-list",
                )
        instances = instances_slider(views.n_instances, elem_id="embeddings-instances")
        gr.Markdown("### Clicked item")
        item = item_panel("clicked-row")
        gr.Markdown("### Selection")
        selection = _selection_panel()
    return EmbeddingsTab(method, color_by, label, show, plot, label_list, instances, item, selection)


def _selection_panel() -> SelectionPanel:
    item_ids = gr.State([])
    with gr.Row():
        view = gr.Radio(list(SELECTION_VIEWS), value=SELECTION_VIEWS[0], label="show", scale=2)
        pages = pager("selection-page")
        export = gr.Button("Download the selection (CSV)", elem_id="selection-export")
    with gr.Row():
        with gr.Column(scale=4):
            grid = grid_image(elem_id="selection-grid")
        with gr.Column(scale=1, min_width=220):
            labels = gr.Dataframe(label="Labels in the selection", interactive=False, elem_id="selection-labels")
            file = gr.File(label="Selection", interactive=False, elem_id="selection-file")
    return SelectionPanel(item_ids, view, pages, grid, labels, export, file)


@user_errors
def projection(session: WorkspaceSession, method: str, color_by: str, label: str | None = "", progress=TRACKED):
    """Show (and `/projection`): the plotly figure, the other labels faint when `label` is given."""
    return session.workspace.projection(method, color_by, label or "", reporter(progress))


@user_errors
def open_clicked(item_id: int, session: WorkspaceSession, n_instances: int, scope: str):
    """A clicked point: (its item id, its retrieval row) in the clicked-item panel."""
    return open_in_panel(session, item_id, n_instances, scope)


@user_errors
def select_points(item_ids: list | None, session: WorkspaceSession, view: str, n_instances: int):
    """A box / lasso selection (or a picked label): the checked ids, page 1 of their grid and their label counts."""
    ids = check_selection(item_ids, session.workspace.items.n_items)
    if not ids:
        return [], 1, None, None
    return ids, 1, _selection_picture(session, ids, view, n_instances, 1), session.workspace.selection_labels(ids)


@user_errors
def select_label(session: WorkspaceSession, label: str | None, view: str, n_instances: int):
    """A label picked from the list or the filter: its items become the selection."""
    if not label:
        return [], 1, None, None
    return select_points(session.workspace.label_items(label), session, view, n_instances)


def pick_listed_label(event: gr.SelectData) -> str:
    """A clicked row of the label list: that label, for the filter."""
    return str(event.row_value[0])


@user_errors
def show_selection(session: WorkspaceSession, item_ids: list, view: str, n_instances: int, page: int) -> str:
    """Another page or view of the selection."""
    return _selection_picture(session, item_ids, view, n_instances, page)


def _selection_picture(session: WorkspaceSession, item_ids: list, view: str, n_instances: int, page: int) -> str:
    return picture_file(session, session.workspace.selection_grid(item_ids, view, n_instances, page))


@user_errors
def open_selection_tile(
    session: WorkspaceSession, item_ids: list, view: str, n_instances: int, page: int, scope: str, event: gr.SelectData
):
    """A tile clicked in the selection grid: its item's row in the clicked-item panel."""
    layout = session.workspace.selection_grid_layout(item_ids, view, n_instances, page)
    return open_in_panel(session, clicked_item(layout, event), n_instances, scope)


@user_errors
def export_selection(session: WorkspaceSession, item_ids: list) -> str:
    """The selection as a CSV download: item ids, the dataset's relative paths, labels, label names, splits."""
    return str(session.workspace.selection_csv(item_ids, session.files.new_folder(EXPORTS)))
