"""The Embeddings tab: a UMAP / PCA plot whose clicked point shows its retrieval row; `/projection` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import TRACKED, picture_file, reporter, user_errors
from explorer.ui.plotly_click import plotly_click
from explorer.viz.projection import PROJECTION_METHODS
from explorer.workspace import WorkspaceSession
from explorer.workspace.inputs import COLOR_BY_CHOICES
from explorer.workspace.views import PageViews

DEFAULT_METHOD = "pca"  # instant, unlike UMAP
DEFAULT_COLOR_BY = "label"


@dataclass(frozen=True)
class EmbeddingsTab:
    """The Embeddings tab's components: the projection choice, Show, the plot and the clicked row."""

    method: gr.Radio
    color_by: gr.Dropdown
    show: gr.Button
    plot: gr.HTML
    clicked_row: gr.Image


def build_embeddings_tab(views: PageViews) -> EmbeddingsTab:
    """The tab, showing the projection of `views`."""
    with gr.Tab("Embeddings", id="embeddings"):
        with gr.Row():
            method = gr.Radio(list(PROJECTION_METHODS), value=DEFAULT_METHOD, label="method")
            color_by = gr.Dropdown(list(COLOR_BY_CHOICES), value=DEFAULT_COLOR_BY, label="colour by")
            show = gr.Button("Show", variant="primary")
        gr.Markdown("Hover a point for its label, id and file; **click it** to see its retrieval row below.")
        plot = plotly_click(views.projection, elem_id="projection-plot")
        clicked_row = gr.Image(
            type="pil", label="Retrieval row of the clicked item", format="png", elem_id="clicked-row"
        )
    return EmbeddingsTab(method, color_by, show, plot, clicked_row)


@user_errors
def projection(session: WorkspaceSession, method: str, color_by: str, progress=TRACKED):
    """Show (and `/projection`): the plotly figure."""
    return session.workspace.projection(method, color_by, reporter(progress))


@user_errors
def open_clicked(item_id: int, session: WorkspaceSession, n_instances: int) -> str:
    """A clicked point: the item's retrieval row."""
    return picture_file(session, session.workspace.item_row(item_id, n_instances))
