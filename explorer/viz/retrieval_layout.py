"""What a retrieval picture shows, independent of how it is drawn (Pillow for the app, matplotlib elsewhere).

Per query, one row: the query (blue frame), its top `n_instances` gallery items (green = relevant, red = not),
titled with gallery position and distance, then up to `n_gt_to_show` ground-truth items the row did not show
(grey, titled "GT"): the answers the model missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer import const as C
from explorer.retrieval.results import RetrievalResults

BBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class Tile:
    """One framed image with its title lines."""

    path: str
    bbox: BBox | None
    color: tuple[int, int, int]
    lines: tuple[str, ...]


@dataclass(frozen=True)
class RetrievalLayout:
    rows: tuple[tuple[Tile, ...], ...]

    @property
    def n_columns(self) -> int:
        return max((len(row) for row in self.rows), default=0)

    @property
    def n_lines(self) -> int:
        """Most title lines of any tile: renderers reserve that much space above every image."""
        return max((len(tile.lines) for row in self.rows for tile in row), default=0)


def build_retrieval_layout(
    retrieval: RetrievalResults,
    paths: Sequence[str],
    bboxes: Sequence[BBox | None] | None = None,
    n_instances: int = 5,
    verbose: bool = False,
    query_positions: Sequence[int] | None = None,
    n_gt_to_show: int = 2,
) -> RetrievalLayout:
    """A row for every row of `retrieval`; `paths`/`bboxes` are indexed by dataset row (as `query_ids` are).

    `query_positions` are the numbers shown in the query titles (default: row numbers of `retrieval`).
    """
    if len(paths) <= int(max(retrieval.query_ids.max(), retrieval.gallery_ids.max())):
        raise ValueError(f"Got {len(paths)} paths, fewer than the dataset rows the retrieval results refer to.")
    query_positions = list(range(len(retrieval))) if query_positions is None else list(query_positions)

    def tile(dataset_row: int, color: tuple[int, int, int], title: str) -> Tile:
        path = str(paths[dataset_row])
        lines = (title, Path(path).name) if verbose else (title,)
        return Tile(path, None if bboxes is None else bboxes[dataset_row], color, lines)

    rows = []
    for row, query_position in enumerate(query_positions):
        tiles = [tile(int(retrieval.query_ids[row]), C.QUERY_COLOR, f"Query #{query_position}")]
        retrieved, distances, relevant = retrieval.row(row)
        shown = retrieved[:n_instances].tolist()
        for position, distance, is_hit in zip(shown, distances.tolist(), relevant.tolist(), strict=False):
            color = C.HIT_COLOR if is_hit else C.MISS_COLOR
            tiles.append(tile(int(retrieval.gallery_ids[position]), color, f"#{position} · {distance:.3f}"))
        shown_set = set(shown)
        missed = [g for g in retrieval.gt_positions(row).tolist() if g not in shown_set]
        for position in missed[:n_gt_to_show]:
            tiles.append(tile(int(retrieval.gallery_ids[position]), C.GT_COLOR, "GT"))
        rows.append(tuple(tiles))
    return RetrievalLayout(tuple(rows))


def build_search_layout(
    query: Tile,
    retrieval: RetrievalResults,
    paths: Sequence[str],
    bboxes: Sequence[BBox | None],
    labels: Sequence,
    n_instances: int,
    judged: bool,
) -> RetrievalLayout:
    """One row: `query`, then the first row of `retrieval` (a gallery search), titled with item id, distance and
    label; framed green / red when the query's label is known (`judged`), grey when it is not (an upload).

    `paths`, `bboxes` and `labels` are indexed by the ids that `retrieval.gallery_ids` hold (dataset rows).
    """
    retrieved, distances, relevant = retrieval.row(0)
    tiles = [query]
    for position, distance, is_hit in zip(
        retrieved[:n_instances].tolist(), distances.tolist(), relevant.tolist(), strict=False
    ):
        item = int(retrieval.gallery_ids[position])
        color = (C.HIT_COLOR if is_hit else C.MISS_COLOR) if judged else C.GT_COLOR
        tiles.append(
            Tile(str(paths[item]), bboxes[item], color, (f"id {item} · {distance:.3f}", f"label {labels[item]}"))
        )
    return RetrievalLayout((tuple(tiles),))
