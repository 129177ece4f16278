"""The Compare tab: the extractor before the last training run against the one in use (the trained one, or the
same one after Revert) on the same queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.ui.widgets import QueryChoice, query_choice
from explorer.workspace import WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class CompareTab:
    """The Compare tab's components: which queries, Compare, and the deltas and side-by-side queries."""

    choice: QueryChoice
    run: gr.Button
    deltas: gr.Dataframe
    improved_table: gr.Dataframe
    improved_grid: gr.Image
    regressed_table: gr.Dataframe
    regressed_grid: gr.Image

    def results(self) -> list[gr.components.Component]:
        """What a comparison shows (the keys of what `compare` returns)."""
        return [self.deltas, self.improved_table, self.improved_grid, self.regressed_table, self.regressed_grid]


def _side_by_side(label: str, elem_id: str) -> gr.Image:
    """A picture of queries, base (left) against the extractor in use (right)."""
    return gr.Image(type="pil", label=f"{label}: base (left) vs in use (right)", format="png", elem_id=elem_id)


def build_compare_tab(views: PageViews) -> CompareTab:
    """The tab, its controls at the metric and row length of `views`."""
    with gr.Tab("Compare", id="compare"):
        gr.Markdown(
            "The extractor before the last training run (base) against the one in use (trained, or the base again "
            "after Revert on the Train tab), on the same queries."
        )
        with gr.Row():
            choice = query_choice(views, "per-query metric", n_queries=3)
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
        deltas = gr.Dataframe(label="Metric deltas (in use − base)", interactive=False, elem_id="compare-deltas")
        improved_table = gr.Dataframe(
            label="Most improved queries", interactive=False, elem_id="compare-improved-table"
        )
        improved_grid = _side_by_side("Most improved", "compare-improved")
        regressed_table = gr.Dataframe(
            label="Most regressed queries", interactive=False, elem_id="compare-regressed-table"
        )
        regressed_grid = _side_by_side("Most regressed", "compare-regressed")
    return CompareTab(choice, run, deltas, improved_table, improved_grid, regressed_table, regressed_grid)


@user_errors
def compare(
    session: WorkspaceSession, metric_name: str, n_queries: int, n_instances: int, progress=TRACKED, *, tab: CompareTab
) -> dict[gr.components.Component, Any]:
    """Compare: the metric deltas and the most improved / regressed queries."""
    result = session.workspace.compare(metric_name, n_queries, n_instances, reporter(progress))
    return {
        tab.deltas: result.deltas,
        tab.improved_table: result.improved,
        tab.improved_grid: result.improved_grid,
        tab.regressed_table: result.regressed,
        tab.regressed_grid: result.regressed_grid,
    }
