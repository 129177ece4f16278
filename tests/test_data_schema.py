"""Schema validation, case by case: each problem gives a specific message; good data is normalised."""

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from explorer.data import DatasetValidationError, validate_dataframe


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for name in ("a0", "a1", "b0", "b1", "c0", "c1", "d0"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / f"{name}.png")
    return tmp_path


def good_rows() -> list[dict]:
    return [
        {"label": 0, "path": "a0.png", "split": "train", "is_query": None, "is_gallery": None},
        {"label": 0, "path": "a1.png", "split": "train", "is_query": None, "is_gallery": None},
        {"label": 1, "path": "b0.png", "split": "validation", "is_query": True, "is_gallery": True},
        {"label": 1, "path": "b1.png", "split": "validation", "is_query": "False", "is_gallery": 1},
    ]


def errors_of(df: pd.DataFrame, root: Path, **kwargs) -> str:
    with pytest.raises(DatasetValidationError) as info:
        validate_dataframe(df, root, **kwargs)
    return str(info.value)


def test_good_dataframe_is_normalised(root):
    report = validate_dataframe(pd.DataFrame(good_rows()), root)
    df = report.df
    assert df["label"].dtype == "int64"
    assert df["is_query"].tolist()[2:] == [True, False]
    assert df["is_gallery"].tolist()[2:] == [True, True]
    assert df["is_query"].isna().tolist()[:2] == [True, True]
    assert report.warnings == []


def test_missing_required_column_is_named(root):
    message = errors_of(pd.DataFrame(good_rows()).drop(columns=["split"]), root)
    assert "Missing required column(s) 'split'" in message


def test_unknown_column_is_a_warning_and_kept(root):
    df = pd.DataFrame(good_rows()).assign(extra=1)
    report = validate_dataframe(df, root)
    assert any("'extra'" in w for w in report.warnings)
    assert "extra" in report.df.columns


def test_non_integer_label_names_rows_and_values(root):
    df = pd.DataFrame(good_rows())
    df["label"] = df["label"].astype(object)
    df.loc[3, "label"] = "bird"
    message = errors_of(df, root)
    assert "'label' must hold integers" in message and "rows (0-based) 3" in message and "'bird'" in message


def test_unknown_split(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "split"] = "test"
    message = errors_of(df, root)
    assert "'split' must be 'train' or 'validation'" in message and "'test'" in message


def test_validation_row_neither_query_nor_gallery(root):
    df = pd.DataFrame(good_rows())
    df.loc[3, ["is_query", "is_gallery"]] = [False, False]
    assert "rows (0-based) 3 are neither query nor gallery" in errors_of(df, root)


def test_unparsable_boolean(root):
    df = pd.DataFrame(good_rows())
    df["is_query"] = df["is_query"].astype(object)
    df.loc[2, "is_query"] = "maybe"
    message = errors_of(df, root)
    assert "'is_query' must hold booleans" in message and "'maybe'" in message


@pytest.mark.parametrize(
    ("box", "problem"),
    [
        ((0, 4, 0, None), "all four"),
        ((4, 2, 0, 4), "x_1 < x_2"),
        ((0, 4, 5, 1), "y_1 < y_2"),
        ((-1, 4, 0, 4), "non-negative"),
        ((0.5, 4, 0, 4), "integers"),
    ],
)
def test_broken_bbox(root, box, problem):
    df = pd.DataFrame(good_rows())
    for column in ("x_1", "x_2", "y_1", "y_2"):
        df[column] = pd.Series([None] * len(df), dtype=object)
    df.loc[1, ["x_1", "x_2", "y_1", "y_2"]] = list(box)
    message = errors_of(df, root)
    assert "Bounding boxes" in message and problem in message and "rows (0-based) 1" in message


def test_bbox_needs_all_four_columns(root):
    df = pd.DataFrame(good_rows()).assign(x_1=0, x_2=4)
    assert "all four columns" in errors_of(df, root)


def test_good_bbox_becomes_int(root):
    df = pd.DataFrame(good_rows()).assign(x_1=0, x_2=4.0, y_1=1, y_2=5)
    report = validate_dataframe(df, root)
    assert report.df["x_2"].tolist() == [4, 4, 4, 4]


def test_missing_files_count_and_first_paths(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "path"] = "nope.png"
    message = errors_of(df, root)
    assert "1 image file(s) not found" in message and "'nope.png'" in message
    validate_dataframe(df, root, check_files=False)  # the file check is what failed


def test_path_escaping_root(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "path"] = "../secret.png"
    assert "escape it" in errors_of(df, root, check_files=False)


def test_duplicate_paths(root):
    df = pd.DataFrame(good_rows())
    df.loc[1, "path"] = "a0.png"
    message = errors_of(df, root)
    assert "Duplicate items" in message and "rows (0-based) 0, 1" in message


def test_same_path_with_different_boxes_is_allowed(root):
    df = pd.DataFrame(good_rows()).assign(x_1=0, x_2=4, y_1=0, y_2=4)
    df.loc[1, "path"] = "a0.png"
    df.loc[1, "x_2"] = 6
    validate_dataframe(df, root)


def test_query_without_gallery_label_warns(root):
    rows = good_rows() + [{"label": 2, "path": "c0.png", "split": "validation", "is_query": True, "is_gallery": True}]
    report = validate_dataframe(pd.DataFrame(rows), root)
    assert any("1 validation quer(ies) have no gallery item" in w and "2" in w for w in report.warnings)


def test_single_image_train_label_is_dropped_with_warning(root):
    rows = good_rows() + [{"label": 3, "path": "d0.png", "split": "train", "is_query": None, "is_gallery": None}]
    report = validate_dataframe(pd.DataFrame(rows), root)
    assert 3 not in report.df["label"].tolist()
    assert len(report.df) == 4
    assert any("Dropped 1 train label(s)" in w for w in report.warnings)


def test_all_problems_reported_at_once(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "split"] = "dev"
    df.loc[1, "path"] = "../x.png"
    message = errors_of(df, root)
    assert "'split'" in message and "escape" in message


def test_missing_files_reported_with_other_problems(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "split"] = "dev"
    df.loc[3, ["is_query", "is_gallery"]] = [False, False]
    df.loc[2, "path"] = "gone.png"
    message = errors_of(df, root)
    assert "'split'" in message and "neither query nor gallery" in message
    assert "1 image file(s) not found" in message and "'gone.png'" in message


def test_file_checks_run_when_required_columns_are_missing(root):
    df = pd.DataFrame(good_rows()).drop(columns=["label", "is_query"])
    df.loc[0, "path"] = "../outside.png"
    df.loc[1, "path"] = "gone.png"
    message = errors_of(df, root)
    assert "Missing required column(s) 'label', 'is_query'" in message
    assert "escape it" in message and "'../outside.png'" in message
    assert "1 image file(s) not found" in message and "'gone.png'" in message


def test_escaping_and_empty_paths_are_not_also_reported_missing(root):
    df = pd.DataFrame(good_rows())
    df.loc[0, "path"] = "../outside.png"
    df.loc[1, "path"] = ""
    message = errors_of(df, root)
    assert "escape it" in message and "is empty in rows (0-based) 1" in message
    assert "not found" not in message


def test_bad_labels_and_boxes_with_missing_file_all_reported(root):
    df = pd.DataFrame(good_rows()).assign(x_1=0, x_2=4, y_1=0, y_2=4)
    df["label"] = df["label"].astype(object)
    df.loc[0, "label"] = "cat"
    df.loc[1, "x_1"] = 9
    df.loc[3, "path"] = "gone.png"
    message = errors_of(df, root)
    assert "'label' must hold integers" in message and "x_1 < x_2" in message and "'gone.png'" in message


def test_empty_dataframe(root):
    assert "empty" in errors_of(pd.DataFrame(columns=["label", "path"]), root)


def test_label_names_are_text_one_per_label_with_the_number_as_fallback(root):
    df = pd.DataFrame(good_rows())
    df["label_name"] = ["sparrow", None, 7.0, float("nan")]  # a CSV column of numbers with gaps reads as floats
    report = validate_dataframe(df, root)
    assert report.df["label_name"].tolist() == ["sparrow", "sparrow", "7", "7"]
    assert report.warnings == []
    df["label_name"] = ["sparrow", None, None, "  "]
    assert validate_dataframe(df, root).df["label_name"].tolist() == ["sparrow", "sparrow", "1", "1"]


def test_a_label_with_two_names_is_an_error_naming_label_and_rows(root):
    df = pd.DataFrame(good_rows())
    df["label_name"] = ["sparrow", "finch", "gull", "gull"]
    message = errors_of(df, root)
    assert "Label 0 has 2 names in column 'label_name' ('finch', 'sparrow'), rows (0-based) 0, 1" in message


def test_two_labels_sharing_a_name_is_a_warning(root):
    df = pd.DataFrame(good_rows())
    df["label_name"] = "bird"
    report = validate_dataframe(df, root)
    assert any("Labels 0, 1 share names ('bird')" in w for w in report.warnings)
