"""What a retrieval picture shows, independent of how it is drawn (Pillow for the app, matplotlib elsewhere).

Per query, one row: the query (blue frame), its top `n_instances` gallery items (green = relevant, red = not),
titled with their item id, rank and distance, then up to `n_gt_to_show` ground-truth items the row did not show
(grey, titled "GT" with their rank and distance when known): the answers the model missed. A row whose query has no
ground truth at all frames every item grey (neutral): nothing there could have been right, so nothing is wrong.

Every tile knows its item id, so a click on a drawn tile can open that item (`retrieval_render.tile_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer import const as C
from explorer.retrieval.results import RetrievalResults

BBox = tuple[int, int, int, int]
# (row of the retrieval, gallery positions of missed ground truth) -> their (rank, distance), rank counted from 1
TruthRanks = Callable[[int, Sequence[int]], Sequence[tuple[int, float]]]


@dataclass(frozen=True)
class Tile:
    """One framed image with its title lines and the item id it shows (None: an upload, not a dataset item)."""

    path: str
    bbox: BBox | None
    color: tuple[int, int, int]
    lines: tuple[str, ...]
    item_id: int | None = None


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
    item_ids: Sequence[int] | None = None,
    n_gt_to_show: int = 2,
    truth_ranks: TruthRanks | None = None,
    label_names: Sequence | None = None,
) -> RetrievalLayout:
    """A row for every row of `retrieval`; `paths`/`bboxes` (and `label_names`) are indexed by the rows
    `query_ids` / `gallery_ids` hold, and `item_ids` maps those rows to the item ids the titles show (default: the
    rows themselves).

    `truth_ranks` gives rank and distance of the missed ground truth (beyond the retrieved columns); with
    `label_names` every tile's last title line is its label's name, so a miss says what was retrieved instead.
    """
    if len(paths) <= int(max(retrieval.query_ids.max(), retrieval.gallery_ids.max())):
        raise ValueError(f"Got {len(paths)} paths, fewer than the dataset rows the retrieval results refer to.")

    def item_of(dataset_row: int) -> int:
        return int(dataset_row if item_ids is None else item_ids[dataset_row])

    def tile(dataset_row: int, color: tuple[int, int, int], lines: tuple[str, ...]) -> Tile:
        path = str(paths[dataset_row])
        bbox = None if bboxes is None else bboxes[dataset_row]
        if verbose:
            lines = (*lines, Path(path).name)
        if label_names is not None:
            lines = (*lines, str(label_names[dataset_row]))
        return Tile(path, bbox, color, lines, item_of(dataset_row))

    rows = []
    for row in range(len(retrieval)):
        query_row = int(retrieval.query_ids[row])
        has_truth = int(retrieval.n_gt[row]) > 0
        tiles = [tile(query_row, C.QUERY_COLOR, (f"query id {item_of(query_row)}", "the query"))]
        retrieved, distances, relevant = retrieval.row(row)
        shown = retrieved[:n_instances].tolist()
        for rank, (position, distance, is_hit) in enumerate(
            zip(shown, distances.tolist(), relevant.tolist(), strict=False), start=1
        ):
            color = (C.HIT_COLOR if is_hit else C.MISS_COLOR) if has_truth else C.GT_COLOR
            gallery_row = int(retrieval.gallery_ids[position])
            tiles.append(tile(gallery_row, color, (f"id {item_of(gallery_row)}", f"#{rank} · {distance:.3f}")))
        shown_set = set(shown)
        missed = [g for g in retrieval.gt_positions(row).tolist() if g not in shown_set][:n_gt_to_show]
        ranks = truth_ranks(row, missed) if truth_ranks is not None and missed else [None] * len(missed)
        for position, found in zip(missed, ranks, strict=True):
            gallery_row = int(retrieval.gallery_ids[position])
            where = "missed" if found is None else f"#{found[0]} · {found[1]:.3f}"
            tiles.append(tile(gallery_row, C.GT_COLOR, (f"GT id {item_of(gallery_row)}", where)))
        rows.append(tuple(tiles))
    return RetrievalLayout(tuple(rows))


def build_search_layout(
    query: Tile,
    retrieval: RetrievalResults,
    paths: Sequence[str],
    bboxes: Sequence[BBox | None],
    label_names: Sequence,
    n_instances: int,
    judged: bool,
) -> RetrievalLayout:
    """One row: `query`, then the first row of `retrieval` (a search), titled with item id, rank, distance and
    label; framed green / red when the query's label is known (`judged`) and it has ground truth among the
    searched items, grey otherwise (an upload, or an item whose label nobody else has).

    `paths`, `bboxes` and `label_names` are indexed by the ids that `retrieval.gallery_ids` hold (dataset rows).
    """
    retrieved, distances, relevant = retrieval.row(0)
    judged = judged and int(retrieval.n_gt[0]) > 0
    tiles = [query]
    for rank, (position, distance, is_hit) in enumerate(
        zip(retrieved[:n_instances].tolist(), distances.tolist(), relevant.tolist(), strict=False), start=1
    ):
        item = int(retrieval.gallery_ids[position])
        color = (C.HIT_COLOR if is_hit else C.MISS_COLOR) if judged else C.GT_COLOR
        lines = (f"id {item}", f"#{rank} · {distance:.3f}", f"{label_names[item]}")
        tiles.append(Tile(str(paths[item]), bboxes[item], color, lines, item))
    return RetrievalLayout((tuple(tiles),))


def build_item_grid_layout(
    item_ids: Sequence[int],
    paths: Sequence[str],
    bboxes: Sequence[BBox | None],
    label_names: Sequence,
    columns: int,
) -> RetrievalLayout:
    """The items (e.g. a selection in the embedding plot) as rows of `columns` grey-framed tiles, each titled with
    its item id and label."""
    tiles = [
        Tile(str(paths[item]), bboxes[item], C.GT_COLOR, (f"id {item}", f"{label_names[item]}"), int(item))
        for item in item_ids
    ]
    return RetrievalLayout(tuple(tuple(tiles[start : start + columns]) for start in range(0, len(tiles), columns)))
