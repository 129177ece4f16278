"""Exploring a dataset item by item: which items a visitor picked (typed ids, a plot selection, a label), pages of
them, the neighbours of any item, and the tables and layouts the Queries, Worst queries and Embeddings views show.

Plain functions of values (the evaluation result, the `ItemIndex`, the embeddings, the dataset frame), so the
workspace only passes what it holds. Everything a visitor sends arrives here unchecked: ids, pages and label names
are bounded and checked, with a message that says what is accepted (`InputError`). Every id a visitor sees or
types is an *item id*: a row of the dataset table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.checks import MAX_TYPED_DIGITS, shown_token, typed_whole_number
from explorer.data.items import ItemIndex
from explorer.errors import InputError
from explorer.metrics.evaluation import EvaluationResult
from explorer.retrieval.search import gallery_ranks, search_gallery
from explorer.viz.retrieval_layout import (
    RetrievalLayout,
    Tile,
    build_item_grid_layout,
    build_retrieval_layout,
    build_search_layout,
)
from explorer.viz.retrieval_render import MAX_COLUMNS

MAX_SELECTION = 10_000  # item ids one plot selection may send
MAX_TYPED_IDS = 30  # item ids typed into the Queries tab at once
SELECTION_PAGE_SIZE = 48  # selected items per page of the selection grid (6 lines of 8)
SELECTION_COLUMNS = 8
MAX_LINES_PER_PAGE = 8  # lines of tiles in one page of retrieval rows
NEIGHBOUR_SCOPES = ("own split", "all items")  # where the neighbours of a clicked item are searched
SELECTION_VIEWS = ("items", "retrieval rows of its queries")
NO_TRUTH = "no ground truth"  # hit@1 of a query with no relevant gallery item: nothing to hit or miss
_GREY, _BLUE = "rgb(150,150,150)", "rgb(31,119,180)"  # const.GT_COLOR and const.QUERY_COLOR
# The projection's colours that mean what they mean in the grids: query blue, hit green, miss red, no truth grey.
PROJECTION_COLORS = {
    "hit@1": {"hit": "rgb(44,160,44)", "miss": "rgb(214,39,40)", NO_TRUTH: _GREY},
    "query/gallery": {"query": _BLUE, "query+gallery": "rgb(120,170,220)", "gallery": _GREY, "train": "#e0b070"},
}


@dataclass(frozen=True)
class Page:
    """One page of a longer list: its entries, which page it is (from 1), how many pages and entries there are."""

    entries: list[int]
    number: int
    n_pages: int
    n_total: int
    page_size: int

    def heading(self, what: str) -> str:
        """One line above the page's picture, e.g. "queries 9-16 of 30 · page 2 of 4"."""
        if self.n_total == 0:
            return f"no {what}"
        first = (self.number - 1) * self.page_size + 1
        return (
            f"{what} {first}-{first + len(self.entries) - 1} of {self.n_total} · page {self.number} of {self.n_pages}"
        )


def page_of(entries: Sequence[int], page: object, page_size: int) -> Page:
    """Page `page` (from 1; past the last page: the last page) of `entries`, `page_size` entries per page."""
    number = check_whole_number("page", page, 1)
    n_pages = max(1, -(-len(entries) // page_size))
    number = min(number, n_pages)
    start = (number - 1) * page_size
    return Page([int(e) for e in entries[start : start + page_size]], number, n_pages, len(entries), page_size)


def check_whole_number(name: str, value: object, minimum: int) -> int:
    """A whole number >= `minimum` (what a number box may send: floats, None, text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number from {minimum}, got {value!r}.") from None
    if not np.isfinite(number) or number != int(number) or number < minimum:
        raise InputError(f"{name} must be a whole number from {minimum}, got {value!r}.")
    return int(number)


# -- ids a visitor sends ------------------------------------------------------------------------------------


def parse_item_ids(text: str | Sequence[int] | None, n_items: int, limit: int = MAX_TYPED_IDS) -> list[int]:
    """Item ids from text such as "12, 40 41" (or a list), each in 0..n_items-1, repeats dropped, at most `limit`."""
    tokens = (text or "").replace(",", " ").split() if isinstance(text, str | type(None)) else list(text)
    if not tokens:
        raise InputError(f"No item ids given: enter ids such as '0, 3, 7' (valid ids are 0..{n_items - 1}).")
    if len(tokens) > limit:
        raise InputError(f"{len(tokens)} item ids given: at most {limit} at once.")
    ids = []
    for token in tokens:
        number = None if isinstance(token, bool) else typed_whole_number(str(token))
        if number is None:
            raise InputError(
                f"Item id {shown_token(str(token))} is not a whole number of at most {MAX_TYPED_DIGITS} digits: "
                "enter ids such as '0, 3, 7'."
            )
        ids.append(number)
    outside = [i for i in ids if not 0 <= i < n_items]
    if outside:
        raise InputError(f"Item id {outside[0]} is out of range: this dataset has {n_items} items (0..{n_items - 1}).")
    return list(dict.fromkeys(ids))


def check_item_id(item_id: object, n_items: int) -> int:
    """One item id (a number box or a click) in 0..n_items-1."""
    number = check_whole_number("Item id", item_id, 0)
    if number >= n_items:
        raise InputError(f"Item id {number} is out of range: valid ids are 0..{n_items - 1}.")
    return number


def check_selection(item_ids: object, n_items: int) -> list[int]:
    """The item ids of a plot selection (a list the page sent): whole numbers in range, at most MAX_SELECTION."""
    if item_ids is None:
        return []
    if not isinstance(item_ids, list | tuple):
        raise InputError("A selection must be a list of item ids.")
    if len(item_ids) > MAX_SELECTION:
        raise InputError(f"{len(item_ids)} points selected: select at most {MAX_SELECTION:,} (zoom in first).")
    return parse_item_ids([str(i) for i in item_ids], n_items, MAX_SELECTION) if item_ids else []


def query_positions_of(items: ItemIndex, item_ids: Sequence[int]) -> list[int]:
    """The query position of each item id, refusing items that are not queries with ids that are."""
    positions = []
    for item in item_ids:
        position = items.query_id_of_item(item)
        if position is None:
            examples = ", ".join(str(i) for i in items.query_items[:3])
            raise InputError(
                f"Item {item} is not a query (queries are validation items, e.g. {examples}); its neighbours are "
                "shown by clicking it in any grid or in the Embeddings plot."
            )
        positions.append(position)
    return positions


def query_items_text(items: ItemIndex, wanted: str) -> str:
    """What the Queries tab's ids field shows after a change: `wanted` (item ids of queries) when still valid for
    this dataset, else the first three queries."""
    try:
        ids = parse_item_ids(wanted, items.n_items)
        query_positions_of(items, ids)
        return ", ".join(map(str, ids))
    except InputError:
        return ", ".join(str(i) for i in items.query_items[:3])


# -- labels ---------------------------------------------------------------------------------------------------


def label_choice(items: ItemIndex, label: object) -> str:
    """How a label is offered in a list: "name (number)", or the number alone when the dataset names none."""
    name = items.label_name(label)
    return name if name == str(label) else f"{name} ({label})"


def label_choices(items: ItemIndex) -> np.ndarray:
    """`label_choice` of every item (what the projection's hover shows), formatted once per label."""
    labels, label_of_item = np.unique(items.labels, return_inverse=True)
    return np.array([label_choice(items, label) for label in labels], dtype=object)[label_of_item.reshape(-1)]


def label_table(items: ItemIndex) -> pd.DataFrame:
    """One row per label: how it is shown, its number, how many items and queries it has (most items first)."""
    labels, counts = np.unique(items.labels, return_counts=True)
    query_labels = pd.Series(items.labels[items.query_items]).value_counts()
    return pd.DataFrame(
        {
            "label": [label_choice(items, label) for label in labels],
            "number": labels,
            "items": counts,
            "queries": [int(query_labels.get(label, 0)) for label in labels],
        }
    ).sort_values(["items", "number"], ascending=[False, True], kind="stable", ignore_index=True)


def items_of_label(items: ItemIndex, choice: str) -> np.ndarray:
    """Item ids of the label chosen as `label_choice` shows it, or typed as its number or name (any case)."""
    text = (choice or "").strip()
    if not text:
        raise InputError("No label given: pick one from the list (or type its name or number).")
    matches = np.zeros(items.n_items, bool)
    for label in np.unique(items.labels):
        shown = label_choice(items, label)
        if text.casefold() in (shown.casefold(), str(label).casefold(), items.label_name(label).casefold()):
            matches |= items.labels == label
    if not matches.any():
        examples = ", ".join(label_choice(items, label) for label in np.unique(items.labels)[:3])
        raise InputError(f"No label {text!r} in this dataset: pick one from the list (e.g. {examples}).")
    return np.flatnonzero(matches)


def queries_of_label(items: ItemIndex, choice: str) -> list[int]:
    """Item ids of the queries of a label (at most MAX_TYPED_IDS, the Queries tab's limit)."""
    of_label = items_of_label(items, choice)
    queries = items.query_items[np.isin(items.query_items, of_label)].tolist()
    if not queries:
        raise InputError(f"Label {choice!r} has no queries: its items are all in the train split or gallery-only.")
    return queries[:MAX_TYPED_IDS]


# -- a selection ---------------------------------------------------------------------------------------------


def selection_labels(items: ItemIndex, item_ids: Sequence[int]) -> pd.DataFrame:
    """How many selected items each label has, most first (the count first: long names do not push it away)."""
    if not len(item_ids):
        return pd.DataFrame({"selected": [], "label": []})
    counts = pd.Series(items.labels[list(item_ids)]).value_counts(sort=True)
    return pd.DataFrame({"selected": counts.values, "label": [label_choice(items, label) for label in counts.index]})


def selection_frame(df: pd.DataFrame, items: ItemIndex, item_ids: Sequence[int]) -> pd.DataFrame:
    """The selected items for a CSV: item id, the dataset's own (relative) path, label, label name and split."""
    rows = df.iloc[list(item_ids)]
    return pd.DataFrame(
        {
            "item id": list(item_ids),
            C.PATHS_COLUMN: rows[C.PATHS_COLUMN].to_numpy(),
            C.LABELS_COLUMN: rows[C.LABELS_COLUMN].to_numpy(),
            C.LABEL_NAMES_COLUMN: items.label_names[list(item_ids)],
            C.SPLIT_COLUMN: rows[C.SPLIT_COLUMN].to_numpy(),
        }
    )


def selection_layout(items: ItemIndex, page: Page) -> RetrievalLayout:
    """One page of selected items as a grid of tiles titled by item id and label."""
    return build_item_grid_layout(page.entries, items.paths, items.bboxes, items.label_names, SELECTION_COLUMNS)


def selected_queries(items: ItemIndex, item_ids: Sequence[int]) -> list[int]:
    """The selected items that are queries, in selection order."""
    return [int(i) for i in item_ids if items.query_id_of_item(i) is not None]


# -- retrieval rows ------------------------------------------------------------------------------------------


def queries_per_page(n_instances: int, n_gt_to_show: int = 2) -> int:
    """Retrieval rows per page: as many as fit MAX_LINES_PER_PAGE lines of wrapped tiles."""
    lines_per_row = -(-(1 + n_instances + n_gt_to_show) // MAX_COLUMNS)
    return max(1, MAX_LINES_PER_PAGE // lines_per_row)


def rows_layout(evaluation: EvaluationResult, items: ItemIndex, query_positions: Sequence[int], n_instances: int):
    """The evaluation's retrieval rows of `query_positions`, titled by item ids and label names, missed ground truth
    ranked."""
    retrieval = evaluation.retrieval_for_queries(query_positions, n_instances)

    def truth_ranks(row: int, gallery_positions: Sequence[int]) -> list[tuple[int, float]]:
        return gallery_ranks(evaluation.inputs, int(query_positions[row]), gallery_positions)

    return build_retrieval_layout(
        retrieval,
        items.validation_paths(),
        items.validation_bboxes(),
        n_instances,
        item_ids=items.validation_items,
        truth_ranks=truth_ranks,
        label_names=items.validation_label_names,
    )


def neighbour_pool(df: pd.DataFrame, items: ItemIndex, item_id: int, scope: str) -> np.ndarray:
    """Item ids searched for an item's neighbours: its own split (the validation gallery for a validation item)
    or every item."""
    if scope not in NEIGHBOUR_SCOPES:
        raise InputError(f"Unknown neighbours scope {scope!r}: choose one of {', '.join(NEIGHBOUR_SCOPES)}.")
    if scope == "all items":
        return np.arange(items.n_items)
    split = df[C.SPLIT_COLUMN].to_numpy()
    if split[item_id] == C.VALIDATION_SPLIT:
        return items.gallery_items
    return np.flatnonzero(split == split[item_id])


def neighbours_layout(items: ItemIndex, embeddings: np.ndarray, item_id: int, pool: np.ndarray, n_instances: int):
    """One row: the item (blue), then its nearest items of `pool` (itself excluded); green / red by label, grey when
    no other item of `pool` has its label."""
    label = items.labels[item_id]
    own = np.flatnonzero(pool == item_id)
    retrieval = search_gallery(
        embeddings[item_id],
        embeddings[pool],
        min(n_instances, max(1, len(pool) - len(own))),
        gallery_ids=pool,
        labels=([label], items.labels[pool]),
        exclude=[int(own[0]) if len(own) else -1],
    )
    query = Tile(items.paths[item_id], items.bboxes[item_id], C.QUERY_COLOR, (f"id {item_id}", "the item", ""), item_id)
    return build_search_layout(query, retrieval, items.paths, items.bboxes, items.label_names, n_instances, True)


def ranked_table(items: ItemIndex, item_ids: Sequence[int], values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per item: its id, label, file, and the given per-item values rounded (e.g. a per-query metric)."""
    ids = list(map(int, item_ids))
    table = pd.DataFrame(
        {
            "item id": ids,
            "label": [label_choice(items, items.labels[i]) for i in ids],
            "file": items.file_names(ids),
        }
    )
    return table.assign(**{name: np.round(np.asarray(v, dtype=float), 4) for name, v in values.items()})
