"""The Search tab: an uploaded image's nearest gallery items; `/search` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.widgets import instances_slider, undecoded_image_upload
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class SearchTab:
    """The Search tab's components: the image, the row length, Search, and the nearest items."""

    image: gr.Image
    instances: gr.Slider
    run: gr.Button
    result: gr.Image
    table: gr.Dataframe


def build_search_tab(views: PageViews) -> SearchTab:
    """The tab, its slider at the row length of `views`."""
    with gr.Tab("Search", id="search"):
        with gr.Row():
            image = undecoded_image_upload(  # no copy per search: the workspace reads Gradio's upload in place
                label="Image to search with",
                sources=["upload", "clipboard"],
                elem_id="search-image",
            )
            with gr.Column():
                instances = instances_slider(views.n_instances)
                run = gr.Button("Search", variant="primary", elem_id="search-run")
        result = gr.Image(type="pil", label="Nearest gallery items", format="png", elem_id="search-result")
        table = gr.Dataframe(label="Nearest gallery items", interactive=False, elem_id="search-table")
    return SearchTab(image, instances, run, result, table)


@user_errors
def search(session: WorkspaceSession, image: str | None, n_instances: int) -> tuple[str, pd.DataFrame]:
    """Search (and `/search`): the picture and the table of the nearest gallery items, in the API's order."""
    picture, table = session.workspace.search(image, n_instances)
    return picture_file(session, picture), table
