"""Exploring items: ids a visitor sends are checked, pages, labels, selections, neighbours of any item."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_workspace import build_tiny_workspace

from explorer import const as C
from explorer.errors import InputError
from explorer.metrics.evaluation import evaluate_arrays
from explorer.retrieval.search import gallery_ranks
from explorer.workspace.exploration import (
    MAX_SELECTION,
    check_selection,
    items_of_label,
    neighbour_pool,
    page_of,
    parse_item_ids,
    query_positions_of,
)
from explorer.workspace.inputs import parse_top_k


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_tiny_workspace(tmp_path_factory.mktemp("exploration"))


def test_item_ids_are_parsed_bounded_and_refused_with_the_range():
    assert parse_item_ids("3, 1 3", 10) == [3, 1]
    for text, message in (("", "No item ids"), ("1, x", "'x' is not a whole number"), ("10", r"0\.\.9")):
        with pytest.raises(InputError, match=message):
            parse_item_ids(text, 10)
    with pytest.raises(InputError, match="at most 2"):
        parse_item_ids("1 2 3", 10, limit=2)


@pytest.mark.parametrize("token", ["1_0", "\u0663", "+2", "-1", "2.0", "9" * 5000])  # int() reads the first two
def test_typed_ids_other_than_plain_short_digits_are_refused_with_a_message(token):
    with pytest.raises(InputError, match="is not a whole number of at most 12 digits"):
        parse_item_ids(f"1, {token}", 10)
    with pytest.raises(InputError, match="k must be a positive whole number"):
        parse_top_k(token)


def test_a_selection_from_the_page_is_checked_and_capped():
    assert check_selection([4, 2, 4], 10) == [4, 2] and check_selection(None, 10) == []
    for sent, message in (("1,2", "list of item ids"), ([1, "2; drop"], "not a whole number"), ([11], "range")):
        with pytest.raises(InputError, match=message):
            check_selection(sent, 10)
    with pytest.raises(InputError, match="select at most"):
        check_selection(list(range(MAX_SELECTION + 1)), MAX_SELECTION + 2)


def test_pages_clamp_past_the_end_and_say_where_they_are():
    page = page_of(list(range(100)), 3, 48)
    assert page.entries == list(range(96, 100)) and (page.number, page.n_pages) == (3, 3)
    assert page.heading("items") == "items 97-100 of 100 · page 3 of 3"
    assert page_of(list(range(10)), 9, 4).number == 3  # past the last page: the last page
    with pytest.raises(InputError, match="page must be a whole number"):
        page_of([1], 0.5, 4)


def test_queries_are_named_by_item_id_and_other_items_are_refused_with_examples(workspace):
    items = workspace.items
    assert query_positions_of(items, [int(items.query_items[2])]) == [2]
    with pytest.raises(InputError, match=f"Item 0 is not a query.*e.g. {items.query_items[0]}"):
        query_positions_of(items, [0])


def test_a_label_is_found_by_its_name_or_number_and_an_unknown_one_lists_examples(workspace):
    items = workspace.items
    label = int(items.labels[20])
    by_number = items_of_label(items, str(label))
    assert by_number.tolist() == np.flatnonzero(items.labels == label).tolist()
    assert items_of_label(items, items.label_name(label).upper()).tolist() == by_number.tolist()
    with pytest.raises(InputError, match="No label 'zebra'"):
        items_of_label(items, "zebra")


def test_a_label_filter_gives_its_queries_for_the_queries_tab(workspace):
    label = workspace.label_table().query("queries > 0")["label"].iloc[0]
    ids = [int(i) for i in workspace.label_queries_text(label).split(", ")]
    assert ids and all(workspace.items.query_id_of_item(i) is not None for i in ids)


def test_a_train_items_neighbours_come_from_its_own_split_or_all_items(workspace):
    df, items = workspace.df, workspace.items
    train_item = int(np.flatnonzero(df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT)[0])
    own = neighbour_pool(df, items, train_item, "own split")
    assert set(df[C.SPLIT_COLUMN].iloc[own]) == {C.TRAIN_SPLIT}
    assert len(neighbour_pool(df, items, train_item, "all items")) == len(df)
    (row,) = workspace.item_row_layout(train_item, 3)[0].rows
    neighbours = [tile.item_id for tile in row[1:]]
    assert train_item not in neighbours and set(df[C.SPLIT_COLUMN].iloc[neighbours]) == {C.TRAIN_SPLIT}
    same_label = items.labels[neighbours] == items.labels[train_item]
    assert [t.color for t in row[1:]] == [C.HIT_COLOR if hit else C.MISS_COLOR for hit in same_label]
    with pytest.raises(InputError, match="Unknown neighbours scope"):
        neighbour_pool(df, items, train_item, "everything")


def test_missed_ground_truth_ranks_count_the_closer_gallery_items(workspace):
    evaluation = workspace.evaluation()
    retrieval = evaluation.retrieval
    truth = retrieval.gt_positions(0).tolist()
    full = evaluation.retrieval_for_queries([0], len(retrieval.gallery_ids))
    order = full.row(0)[0].tolist()
    for (rank, distance), position in zip(gallery_ranks(evaluation.inputs, 0, truth), truth, strict=True):
        assert rank == order.index(position) + 1
        assert distance == pytest.approx(float(full.row(0)[1][order.index(position)]), abs=1e-5)


@pytest.mark.parametrize("offset", [0.0, 1000.0])  # un-normalised embeddings far from the origin too
def test_missed_ground_truth_ranks_follow_the_full_order_through_duplicates_and_ties(offset):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(12, 8)).astype(np.float32)
    embeddings = np.concatenate([base, base[:6], base[:3] + 1e-7]) + offset  # exact duplicates, near-duplicates
    labels = np.arange(len(embeddings)) % 4
    evaluation = evaluate_arrays(embeddings, labels, np.ones(len(labels), bool), np.ones(len(labels), bool))
    for query in range(len(labels)):
        full = evaluation.retrieval_for_queries([query], len(labels))
        order = full.row(0)[0].tolist()
        truth = evaluation.retrieval.gt_positions(query).tolist()
        ranks = [rank for rank, _ in gallery_ranks(evaluation.inputs, query, truth)]
        assert ranks == [order.index(position) + 1 for position in truth]


def test_a_selection_exports_item_ids_relative_paths_and_labels(workspace, tmp_path):
    ids = [3, 20, 7]
    table = pd.read_csv(workspace.selection_csv(ids, tmp_path))
    assert table["item id"].tolist() == ids
    assert table[C.PATHS_COLUMN].tolist() == workspace.df[C.PATHS_COLUMN].iloc[ids].tolist()  # never absolute
    assert table[C.LABELS_COLUMN].tolist() == workspace.items.labels[ids].tolist()
    counts = workspace.selection_labels(ids)
    assert counts["selected"].sum() == 3
    layout, heading = workspace.selection_grid_layout(ids, "items", 3)
    assert [t.item_id for row in layout.rows for t in row] == ids and heading.startswith("selected items 1-3 of 3")
    with pytest.raises(InputError, match="no selected queries"):
        workspace.selection_grid_layout([0], "retrieval rows of its queries", 3)
