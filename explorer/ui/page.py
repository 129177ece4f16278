"""The page as a whole: its header and tabs, the views a fresh session sees, and the refresh that redraws every
view after the data, the model or the training run changed (one `page_views` call, shown by component)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import gradio as gr
from PIL import Image

from explorer.ui.handlers import picture_file, user_errors
from explorer.ui.tabs.analysis import ConfusionsTab, LabelErrorsTab
from explorer.ui.tabs.compare import CompareTab
from explorer.ui.tabs.data import DataTab
from explorer.ui.tabs.embeddings import DEFAULT_COLOR_BY, DEFAULT_METHOD, EmbeddingsTab
from explorer.ui.tabs.export import ExportTab
from explorer.ui.tabs.metrics import MetricsTab
from explorer.ui.tabs.model import ModelTab
from explorer.ui.tabs.queries import QueriesTab
from explorer.ui.tabs.search import SearchTab
from explorer.ui.tabs.train import TrainTab
from explorer.ui.tabs.worst import DEFAULT_WORST_COUNT, WorstTab
from explorer.ui.widgets import DEFAULT_INSTANCES, ItemPanel
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.inputs import DEFAULT_WORST_METRIC
from explorer.workspace.views import PageViews, page_views

Component = gr.components.Component


@dataclass(frozen=True)
class Page:
    """The page's header and the components of every tab, as `build_demo` assembled them."""

    header: gr.Markdown
    data: DataTab
    model: ModelTab
    train: TrainTab
    metrics: MetricsTab
    queries: QueriesTab
    worst: WorstTab
    embeddings: EmbeddingsTab
    search: SearchTab
    compare: CompareTab
    export: ExportTab
    confusions: ConfusionsTab
    label_errors: LabelErrorsTab

    def view_choices(self) -> dict[str, Component]:
        """The inputs of a refresh besides the session, keyed by `page_views`' parameters: the user's choices it
        keeps where they are still valid."""
        return {
            "query_ids": self.queries.ids,
            "n_instances": self.queries.instances,
            "metric": self.worst.choice.metric,
            "n_worst": self.worst.choice.count,
            "method": self.embeddings.method,
            "color_by": self.embeddings.color_by,
        }

    def _item_panels(self) -> tuple[ItemPanel, ...]:
        return self.queries.item, self.worst.item, self.embeddings.item

    def shown_views(self) -> dict[Component, Callable[[PageViews], Any]]:
        """Each component a refresh redraws, and what it shows of the `PageViews`: the outputs of a refresh."""
        return {
            self.header: attrgetter("header"),
            self.data.source: attrgetter("data_source"),
            self.data.warnings: attrgetter("warnings"),
            self.data.summary: attrgetter("summary"),
            self.data.preview: attrgetter("preview"),
            self.metrics.note: attrgetter("metrics_note"),
            self.metrics.table: attrgetter("metrics_table"),
            self.queries.ids: lambda views: gr.Textbox(value=views.query_ids, label=views.query_ids_label),
            self.queries.grid: attrgetter("query_grid"),
            self.worst.choice.metric: _metric_choice,
            self.worst.grid: attrgetter("worst_grid"),
            self.worst.table: attrgetter("worst_table"),
            self.embeddings.plot: attrgetter("projection"),
            self.embeddings.label: lambda views: gr.Dropdown(choices=["", *views.label_choices], value=""),
            self.embeddings.label_list: attrgetter("label_table"),
            self.embeddings.selection.item_ids: lambda views: [],  # the selected items may not exist any more
            self.embeddings.selection.grid: lambda views: None,
            self.queries.label: _label_choice,
            self.compare.choice.metric: _metric_choice,
            **{panel.row: (lambda views: None) for panel in self._item_panels()},  # nor the opened items
            self.confusions.table: lambda views: None,  # analyses of the old data or model: shown again on Show
            self.confusions.queries: lambda views: None,
            self.label_errors.table: lambda views: None,
            self.label_errors.rows: lambda views: None,
            self.model.name: attrgetter("model_name"),
            self.model.weights: attrgetter("model_weights"),
        }


def _label_choice(views: PageViews) -> gr.Dropdown:
    """A label filter after a change: this dataset's labels, none chosen."""
    return gr.Dropdown(choices=views.label_choices, value=None)


def _metric_choice(views: PageViews) -> gr.Dropdown:
    """A metric dropdown after a change: this evaluation's metrics, the user's one kept where it still exists."""
    return gr.Dropdown(choices=views.metric_names, value=views.metric)


def first_views(workspace: Workspace) -> PageViews:
    """The page a fresh session sees: the first queries, the default metric, PCA coloured by label."""
    return page_views(
        workspace,
        query_ids="",
        n_instances=DEFAULT_INSTANCES,
        metric=DEFAULT_WORST_METRIC,
        n_worst=DEFAULT_WORST_COUNT,
        method=DEFAULT_METHOD,
        color_by=DEFAULT_COLOR_BY,
    )


@user_errors
def refresh(session: WorkspaceSession, *, page: Page, **choices: Any) -> dict[Component, Any]:
    """Every view after the data, the model or the training run changed (`choices`: `Page.view_choices`)."""
    views = page_views(session.workspace, **choices)
    shown = {component: show(views) for component, show in page.shown_views().items()}
    return {c: picture_file(session, v) if isinstance(v, Image.Image) else v for c, v in shown.items()}
