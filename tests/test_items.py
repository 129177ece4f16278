"""The item index: item ids, validation positions and query ids translated in one place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explorer.data.items import ItemIndex


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [0, 0, 1, 1, 2, 2],
            "path": ["a.jpg", "b.jpg", "c.jpg", "/abs/d.jpg", "e.jpg", "f.jpg"],
            "split": ["train", "train", "validation", "validation", "validation", "validation"],
            "is_query": [None, None, True, False, True, True],
            "is_gallery": [None, None, True, True, False, True],
        }
    )


def test_item_index_translates_between_item_ids_and_query_ids():
    items = ItemIndex.from_frame(_frame(), Path("/data"))
    assert items.validation_items.tolist() == [2, 3, 4, 5]
    assert items.query_items.tolist() == [2, 4, 5]
    assert items.gallery_items.tolist() == [2, 3, 5]
    assert items.query_id_of_item(4) == 1 and items.query_id_of_item(3) is None
    assert items.gallery_position_of_item(5) == 2 and items.gallery_position_of_item(4) is None
    assert items.paths[0] == "/data/a.jpg" and items.paths[3] == "/abs/d.jpg"
    assert items.validation_paths() == ["/data/c.jpg", "/abs/d.jpg", "/data/e.jpg", "/data/f.jpg"]
    assert items.bboxes == (None,) * 6
    assert items.roles().tolist() == ["train", "train", "query+gallery", "gallery", "query", "query+gallery"]
    assert np.array_equal(items.labels, [0, 0, 1, 1, 2, 2])
    assert items.label_names.tolist() == ["0", "0", "1", "1", "2", "2"] and items.label_name(2) == "2"


def test_item_index_names_labels_from_the_frame():
    df = _frame().assign(label_name=["gull", "gull", "tern", "tern", None, None])
    items = ItemIndex.from_frame(df, Path("/data"))
    assert items.label_names.tolist() == ["gull", "gull", "tern", "tern", "2", "2"]
    assert items.label_name(1) == "tern" and items.label_name(2) == "2" and items.label_name(9) == "9"


def test_item_index_reads_boxes_when_the_frame_has_them():
    df = _frame().assign(x_1=[0, 1, None, 0, 0, 0], y_1=0, x_2=5, y_2=6)
    items = ItemIndex.from_frame(df, Path("/data"))
    assert items.bboxes[1] == (1, 0, 5, 6) and items.bboxes[2] is None


def test_lookups_built_once_answer_like_a_scan_of_every_item():
    items = ItemIndex.from_frame(_frame().assign(label_name=["gull", "gull", "tern", "tern", None, None]), Path("/d"))
    assert [items.query_id_of_item(i) for i in (-1, 2, 4, 5, 6, 99)] == [None, 0, 1, 2, None, None]
    assert items.file_name(3) == "d.jpg" and items.file_names([5, 0]) == ["f.jpg", "a.jpg"]
    assert items.all_file_names.tolist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    assert items.validation_label_names.tolist() == ["tern", "tern", "2", "2"]
    assert items.validation_bboxes() == [None] * 4
    assert items.validation_paths() is not items.validation_paths()  # a fresh list each time: callers may change it
