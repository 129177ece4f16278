"""The Confusions and Label errors tabs: which labels are retrieved for which (table, heat map, a pair's queries),
and the items that look mislabelled (ranked table, their neighbour rows, CSV). `/confusions` and
`/suspected_errors` in the API."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from explorer.ui.handlers import TRACKED, picture_file, reporter, user_errors
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
from explorer.workspace.files import EXPORTS
from explorer.workspace.workspace import MAX_REVIEW_ROWS

DEFAULT_PAIRS = 20
DEFAULT_SUSPECTS = 20
MAX_SHOWN_ROWS = 200


@dataclass(frozen=True)
class ConfusionsTab:
    """The Confusions tab's components: how many pairs, Show, the table, the heat map, and the clicked pair's
    queries (a page at a time)."""

    n_pairs: gr.Slider
    instances: gr.Slider
    show: gr.Button
    table: gr.Dataframe
    heatmap: gr.Plot
    pair: gr.State  # [query label, retrieved label] of the clicked row
    pages: Pager
    queries: gr.Image
    item: ItemPanel  # a clicked tile's own row


@dataclass(frozen=True)
class LabelErrorsTab:
    """The Label errors tab's components: how many, Show, the ranking, the rows to review and the CSV."""

    n: gr.Slider
    n_rows: gr.Slider
    instances: gr.Slider
    show: gr.Button
    table: gr.Dataframe
    rows: gr.Image
    download: gr.Button
    file: gr.File


def build_confusions_tab() -> ConfusionsTab:
    with gr.Tab("Confusions", id="confusions"):
        gr.Markdown(
            "Which labels the validation queries retrieve instead of their own among their first 5 results. "
            "**Click a row** to see the queries of that pair."
        )
        with gr.Row():
            n_pairs = gr.Slider(1, MAX_SHOWN_ROWS, DEFAULT_PAIRS, step=1, label="pairs", elem_id="confusions-n")
            instances = instances_slider(5)
            show = gr.Button("Show", variant="primary", elem_id="confusions-show")
        with gr.Row():
            table = gr.Dataframe(label="Confused label pairs", interactive=False, elem_id="confusions-table", scale=1)
            heatmap = gr.Plot(label="Heat map of the most confused labels", elem_id="confusions-heatmap", scale=1)
        gr.Markdown("### Queries of the clicked pair")
        pair = gr.State([])
        with gr.Row():
            pages = pager("confusion-page")
        queries = grid_image(elem_id="confusion-queries")
        gr.Markdown("**Click a tile** to open that item's own row here:")
        item = item_panel("confusion-item-row")
    return ConfusionsTab(n_pairs, instances, show, table, heatmap, pair, pages, queries, item)


def build_label_errors_tab() -> LabelErrorsTab:
    with gr.Tab("Label errors", id="label-errors"):
        gr.Markdown(
            "Items that lie closer to another label than to their own (score: how much closer; the suggested "
            "label is that other label), most suspicious first, with their nearest items for review."
        )
        with gr.Row():
            n = gr.Slider(1, MAX_SHOWN_ROWS, DEFAULT_SUSPECTS, step=1, label="items", elem_id="suspects-n")
            n_rows = gr.Slider(1, MAX_REVIEW_ROWS, 5, step=1, label="rows to review", elem_id="suspects-rows")
            instances = instances_slider(5)
            show = gr.Button("Show", variant="primary", elem_id="suspects-show")
            download = gr.Button("Download all as CSV", elem_id="suspects-download")
        table = gr.Dataframe(label="Suspected label errors", interactive=False, elem_id="suspects-table")
        gr.Markdown("### Their nearest items")
        rows = grid_image(elem_id="suspects-rows-image")
        file = gr.File(label="Suspected label errors (CSV)", interactive=False, elem_id="suspects-file")
    return LabelErrorsTab(n, n_rows, instances, show, table, rows, download, file)


@user_errors
def confusions(session: WorkspaceSession, n_pairs: int, progress=TRACKED) -> pd.DataFrame:
    """Show (and `/confusions(n_pairs)`): query label, retrieved label, count, share."""
    session.workspace.confusions(reporter(progress))
    return session.workspace.confusions_table(n_pairs)


@user_errors
def confusion_heatmap(session: WorkspaceSession):
    return session.workspace.confusion_heatmap()


@user_errors
def open_pair(session: WorkspaceSession, n_instances: int, event: gr.SelectData) -> tuple[list[str], int, str]:
    """A clicked row (its own values, also after sorting): (the pair, page 1, its queries' retrieval rows)."""
    pair = [str(event.row_value[0]), str(event.row_value[1])]
    return pair, 1, show_pair(session, pair, n_instances, 1)


@user_errors
def show_pair(session: WorkspaceSession, pair: list[str], n_instances: int, page: int) -> str | None:
    """One page of the retrieval rows of the clicked pair's queries (nothing before a row is clicked)."""
    if not pair:
        return None
    return picture_file(session, session.workspace.confusion_queries(*pair, n_instances, page))


@user_errors
def open_pair_tile(
    session: WorkspaceSession, pair: list[str], n_instances: int, page: int, scope: str, event: gr.SelectData
):
    """A tile clicked in the pair's rows: (its item id, its own row) in the panel below."""
    layout = session.workspace.confusion_queries_layout(*pair, n_instances, page)
    return open_in_panel(session, clicked_item(layout, event), n_instances, scope)


@user_errors
def suspected_errors(session: WorkspaceSession, n: int, progress=TRACKED) -> pd.DataFrame:
    """Show (and `/suspected_errors(n)`): item id, path, given label, suggested label, score, ..."""
    return session.workspace.suspected_errors(n, reporter(progress))


@user_errors
def review_rows(session: WorkspaceSession, n_rows: int, n_instances: int) -> str | None:
    return picture_file(session, session.workspace.suspected_error_rows(n_rows, n_instances))


@user_errors
def download_suspects(session: WorkspaceSession) -> str:
    return str(session.workspace.suspected_errors_csv(session.files.new_folder(EXPORTS)))
