"""Torch datasets, collation, folder import, built-in data determinism, and the real birds50 set."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from explorer import const
from explorer.data import (
    DatasetQueryGallery,
    DatasetValidationError,
    DatasetWithLabels,
    dataframe_from_image_folder,
    download_mock_dataset,
    generate_shapes_dataset,
    load_dataset,
)

BIRDS50 = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds50"


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_mock_dataset_matches_oml_layout(tmp_path):
    df_train, df_val = download_mock_dataset(tmp_path / "mock")
    assert len(df_train) == 12 and len(df_val) == 12
    assert df_train["label"].nunique() == 4 and df_val["label"].nunique() == 4
    assert set(df_train["label"]).isdisjoint(df_val["label"])
    assert df_val["is_query"].sum() == 4 and df_val["is_gallery"].sum() == 8
    assert "label_name" not in df_val.columns  # OML's mock has bare label numbers
    assert df_val[df_val["is_query"]]["path"].tolist()[0].endswith(".jpg")
    again_train, _ = download_mock_dataset(tmp_path / "mock")  # second call reuses the files
    pd.testing.assert_frame_equal(df_train, again_train)


def test_shapes_generation_is_deterministic(tmp_path):
    df_a = generate_shapes_dataset(tmp_path / "a", n_classes=6, images_per_class=3, image_size=32, seed=3)
    df_b = generate_shapes_dataset(tmp_path / "b", n_classes=6, images_per_class=3, image_size=32, seed=3)
    pd.testing.assert_frame_equal(df_a, df_b)
    assert digest(tmp_path / "a" / "images") == digest(tmp_path / "b" / "images")
    generate_shapes_dataset(tmp_path / "c", n_classes=6, images_per_class=3, image_size=32, seed=4)
    assert digest(tmp_path / "a" / "images") != digest(tmp_path / "c" / "images")


def test_default_shapes_layout(tmp_path):
    df = generate_shapes_dataset(tmp_path / "s", n_classes=48, images_per_class=16, image_size=32)
    assert len(df) == 48 * 16 and df["label"].nunique() == 48
    train, val = df[df.split == "train"], df[df.split == "validation"]
    assert train["label"].nunique() == 24 and val["label"].nunique() == 24
    assert set(train["label"]).isdisjoint(val["label"])
    assert val["is_query"].all() and val["is_gallery"].all()
    assert df["category"].nunique() == 6
    assert df.groupby("label")["label_name"].nunique().eq(1).all() and df["label_name"].nunique() == 48
    assert (df["label_name"] == df["path"].str.extract(r"images/([a-z]+)_([a-z]+)_")[0] + " " + df["category"]).all()
    loaded = load_dataset(tmp_path / "s")
    assert loaded.summary()["queries"] == 384 and loaded.warnings == []


def test_generator_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="n_classes"):
        generate_shapes_dataset(tmp_path, n_classes=1000)
    with pytest.raises(ValueError, match="images_per_class"):
        generate_shapes_dataset(tmp_path, images_per_class=1)


def test_dataset_items_and_default_collation(tmp_path):
    df_train, df_val = download_mock_dataset(tmp_path / "mock")
    train = DatasetWithLabels(df_train, tmp_path / "mock")
    item = train[0]
    assert set(item) == {"input_tensors", "labels", "paths", "idx"}
    assert item["input_tensors"].shape == (3, const.DEFAULT_IMAGE_SIZE, const.DEFAULT_IMAGE_SIZE)
    assert Path(item["paths"]).is_absolute() and item["idx"] == 0
    assert train.get_labels().tolist() == df_train["label"].tolist()

    val = DatasetQueryGallery(df_val, tmp_path / "mock")
    batch = next(iter(torch.utils.data.DataLoader(val, batch_size=4)))
    assert batch["input_tensors"].shape[0] == 4
    assert batch["is_query"].tolist() == [True, False, False, True]
    assert batch["idx"].tolist() == [0, 1, 2, 3]
    assert isinstance(batch["paths"], list) and len(batch["paths"]) == 4
    assert val.get_query_ids().tolist() == [0, 3, 6, 9]
    assert len(val.get_gallery_ids()) == 8


def test_dataset_carries_category_bbox_and_sequence(tmp_path):
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "a.png")
    Image.new("RGB", (20, 20), (0, 255, 0)).save(tmp_path / "b.png")
    df = pd.DataFrame(
        {
            "label": [0, 0],
            "path": ["a.png", "b.png"],
            "split": ["validation"] * 2,
            "is_query": [True, True],
            "is_gallery": [True, True],
            "category": ["x", "y"],
            "sequence": [7, 8],
            "x_1": [2, None],
            "x_2": [10, None],
            "y_1": [4, None],
            "y_2": [8, None],
        }
    )
    dataset = DatasetQueryGallery(df, tmp_path, transform=lambda image: torch.tensor(image.size))
    first, second = dataset[0], dataset[1]
    assert first["input_tensors"].tolist() == [8, 4]  # cropped to the box
    assert second["input_tensors"].tolist() == [20, 20]
    assert (first["x_1"], first["y_2"]) == (2, 8) and second["x_1"] == -1
    assert first["category"] == "x" and first["sequence"] == 7


def test_query_gallery_dataset_refuses_train_rows(tmp_path):
    df_train, _ = download_mock_dataset(tmp_path / "mock")
    with pytest.raises(ValueError, match="validation rows only"):
        DatasetQueryGallery(df_train.assign(split="train"), tmp_path / "mock")


def make_folder(root: Path, classes: dict[str, int]) -> None:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (8, 8)).save(root / name / f"{i}.jpg")


def test_image_folder_import_splits_disjoint_classes(tmp_path):
    make_folder(tmp_path, {f"class{i}": 3 for i in range(10)})
    df = dataframe_from_image_folder(tmp_path, validation_fraction=0.3, seed=1)
    train, val = df[df.split == "train"], df[df.split == "validation"]
    assert val["label"].nunique() == 3 and train["label"].nunique() == 7
    assert set(train["label"]).isdisjoint(val["label"])
    assert val["is_query"].all() and val["is_gallery"].all()
    again = dataframe_from_image_folder(tmp_path, validation_fraction=0.3, seed=1)
    pd.testing.assert_frame_equal(df, again)
    other = dataframe_from_image_folder(tmp_path, validation_fraction=0.3, seed=2)
    assert set(other[other.split == "validation"]["label"]) != set(val["label"])


def test_image_folder_with_categories(tmp_path):
    make_folder(tmp_path, {"birds/sparrow": 2, "birds/gull": 2, "cars/audi": 2, "cars/bmw": 2})
    df = dataframe_from_image_folder(tmp_path, with_categories=True)
    assert sorted(df["category"].unique()) == ["birds", "cars"]
    assert df["label"].nunique() == 4
    assert sorted(df["label_name"].unique()) == ["birds/gull", "birds/sparrow", "cars/audi", "cars/bmw"]


def test_image_folder_keeps_class_folder_names(tmp_path):
    make_folder(tmp_path, {"001.Albatross": 2, "002.Gull": 3})
    loaded = load_dataset(tmp_path)
    names = loaded.df.groupby("label")["label_name"].unique().map(list).to_dict()
    assert names == {0: ["001.Albatross"], 1: ["002.Gull"]}
    assert loaded.items.label_name(1) == "002.Gull" and loaded.warnings == []


def test_image_folder_needs_two_classes(tmp_path):
    make_folder(tmp_path, {"only": 3})
    with pytest.raises(DatasetValidationError, match="need at least 2"):
        dataframe_from_image_folder(tmp_path)


def test_load_dataset_unknown_source(tmp_path):
    with pytest.raises(DatasetValidationError, match="neither a built-in dataset"):
        load_dataset(tmp_path / "missing.csv")


def test_load_dataset_from_csv_with_other_root(tmp_path):
    df_train, df_val = download_mock_dataset(tmp_path / "mock")
    csv = tmp_path / "elsewhere.csv"
    pd.concat([df_train, df_val]).to_csv(csv, index=False)
    with pytest.raises(DatasetValidationError, match="not found"):
        load_dataset(csv)
    loaded = load_dataset(csv, dataset_root=tmp_path / "mock")
    assert loaded.summary()["images"] == 24


@pytest.mark.skipif(not BIRDS50.is_dir(), reason="../shared/data/birds50 is not present")
def test_birds50_import_counts_and_class_split():
    loaded = load_dataset(BIRDS50)
    summary = loaded.summary()
    assert summary["images"] == 2949 and summary["labels"] == 50
    assert summary["train labels"] == 25 and summary["validation labels"] == 25
    train_labels = set(loaded.train_df["label"])
    assert train_labels.isdisjoint(loaded.validation_df["label"])
    per_class = loaded.df.groupby("label").size()
    assert per_class.min() >= 2
    assert np.all(loaded.validation_df["is_query"]) and loaded.warnings == []
    assert loaded.items.label_name(0) == "American_Goldfinch" and loaded.df["label_name"].nunique() == 50


def test_mock_dataset_is_also_where_the_seed_looks_for_it(tmp_path):
    _, df_val = download_mock_dataset(tmp_path / "elsewhere")
    for path in df_val["path"]:
        assert (const.MOCK_DATASET_PATH / path).is_file()


def test_load_dataset_names_and_categories(tmp_path):
    make_folder(tmp_path / "shop", {"shoes/a": 2, "shoes/b": 2, "hats/c": 2, "hats/d": 2})
    loaded = load_dataset(tmp_path / "shop", with_categories=True)
    assert loaded.name == "shop" and sorted(loaded.df["category"].unique()) == ["hats", "shoes"]
    df_train, df_val = download_mock_dataset(tmp_path / "mock")
    assert load_dataset(tmp_path / "mock" / "df.csv").name == "mock"
    pd.concat([df_train, df_val]).to_csv(tmp_path / "mock" / "birds.csv", index=False)
    assert load_dataset(tmp_path / "mock" / "birds.csv").name == "birds"


def test_builtin_digits_is_a_small_real_set_split_by_class():
    loaded = load_dataset("digits")
    summary = loaded.summary()
    assert summary["images"] == 1797 and summary["labels"] == 10
    assert summary["train labels"] == 5 and summary["validation labels"] == 5
    assert set(loaded.train_df["label"]).isdisjoint(loaded.validation_df["label"])
    first = Image.open(loaded.root / loaded.df["path"].iloc[0])
    assert first.size == (32, 32) and loaded.warnings == []
    assert loaded.items.label_name(7) == "7" and set(loaded.df["label_name"]) == {str(d) for d in range(10)}
