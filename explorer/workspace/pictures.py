"""Pillow pictures of a workspace: retrieval rows of queries, search results, and base | trained side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from explorer.viz.retrieval_layout import RetrievalLayout, Tile, build_retrieval_layout
from explorer.viz.retrieval_render import render_pillow

if TYPE_CHECKING:
    from explorer.workspace.workspace import Workspace


def render_rows(workspace: Workspace, query_ids: list[int], n_instances: int) -> Image.Image:
    """The evaluation's retrieval rows of `query_ids` (positions among the queries) as one Pillow image."""
    retrieval = workspace.evaluation().retrieval_for_queries(query_ids, n_instances)
    rows = workspace.validation_positions
    paths, bboxes = workspace.paths, workspace.bboxes
    layout = build_retrieval_layout(
        retrieval, [paths[r] for r in rows], [bboxes[r] for r in rows], n_instances, query_positions=query_ids
    )
    return render_pillow(layout)


def render_search(query: Tile, results: list[Tile]) -> Image.Image:
    """One row: the query tile, then its results."""
    return render_pillow(RetrievalLayout(((query, *results),)))


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 16) -> Image.Image:
    """Base grid left, trained grid right, for Compare."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas
