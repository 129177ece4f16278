"""Pillow pictures Compare shows: evaluation rows of queries, base | trained side by side.

Each takes the values it draws (an evaluation or search result and the dataset's item index), never the
workspace that owns them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from explorer.data.items import ItemIndex
from explorer.metrics.evaluation import EvaluationResult
from explorer.viz.retrieval_render import render_pillow
from explorer.workspace.exploration import rows_layout


def render_rows(
    evaluation: EvaluationResult, items: ItemIndex, query_ids: Sequence[int], n_instances: int
) -> Image.Image:
    """The evaluation's retrieval rows of `query_ids` (query positions) as one Pillow image, titled by item ids."""
    return render_pillow(rows_layout(evaluation, items, query_ids, n_instances))


def stacked(images: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Pictures one below the other (left-aligned), e.g. several items' neighbour rows for review."""
    width = max(image.width for image in images)
    canvas = Image.new("RGB", (width, sum(image.height for image in images) + gap * (len(images) - 1)), "white")
    top = 0
    for image in images:
        canvas.paste(image, (0, top))
        top += image.height + gap
    return canvas


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 16) -> Image.Image:
    """Base grid left, trained grid right, for Compare."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas
