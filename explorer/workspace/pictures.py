"""Pillow pictures the app shows: evaluation rows of queries, gallery-search rows, base | trained side by side.

Each takes the values it draws (an evaluation or search result and the dataset's item index), never the
workspace that owns them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from explorer.data.items import ItemIndex
from explorer.metrics.evaluation import EvaluationResult
from explorer.retrieval.results import RetrievalResults
from explorer.viz.retrieval_layout import Tile, build_retrieval_layout, build_search_layout
from explorer.viz.retrieval_render import render_pillow


def render_rows(
    evaluation: EvaluationResult, items: ItemIndex, query_ids: Sequence[int], n_instances: int
) -> Image.Image:
    """The evaluation's retrieval rows of `query_ids` as one Pillow image."""
    retrieval = evaluation.retrieval_for_queries(query_ids, n_instances)
    layout = build_retrieval_layout(
        retrieval, items.validation_paths(), items.validation_bboxes(), n_instances, query_positions=query_ids
    )
    return render_pillow(layout)


def render_search(
    query: Tile, retrieval: RetrievalResults, items: ItemIndex, n_instances: int, judged: bool
) -> Image.Image:
    """One row: the query tile, then its nearest gallery items (green/red when `judged`, else grey)."""
    return render_pillow(
        build_search_layout(query, retrieval, items.paths, items.bboxes, items.labels, n_instances, judged)
    )


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 16) -> Image.Image:
    """Base grid left, trained grid right, for Compare."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas
