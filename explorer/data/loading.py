"""One entry point from "what the user named" (built-in name, CSV, image folder) to a validated dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from explorer import const as C
from explorer.data.digits import write_digits_dataset
from explorer.data.folder import dataframe_from_image_folder
from explorer.data.items import ItemIndex
from explorer.data.schema import DatasetValidationError, validate_dataframe
from explorer.data.shapes import CSV_NAME, download_mock_dataset, generate_shapes_dataset
from explorer.progress import Progress

# Built-in data: name -> (folder under the cache, generator settings). "shapes" is the app's default.
SHAPES_SETTINGS = {"n_classes": 48, "images_per_class": 16, "image_size": 96, "seed": 0}
BUILTIN_DATASETS = ("shapes", "mock", "digits")
# Bumped whenever a generator writes different files or columns (v2: `label_name`), so a cache made by an older
# version is never read as the new data.
BUILTIN_FORMAT = "v2"


@dataclass
class LoadedDataset:
    """A validated dataset: every split in one dataframe, paths relative to `root` (or absolute)."""

    df: pd.DataFrame
    root: Path
    name: str
    warnings: list[str] = field(default_factory=list)
    source: str = ""  # what was loaded, as given: a built-in name, a CSV or a folder path

    @cached_property
    def items(self) -> ItemIndex:
        """Paths, boxes, labels and the validation / query / gallery item ids, computed once per dataset."""
        return ItemIndex.from_frame(self.df, self.root)

    @property
    def train_df(self) -> pd.DataFrame:
        return self.df[self.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT].reset_index(drop=True)

    @property
    def validation_df(self) -> pd.DataFrame:
        return self.df[self.df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT].reset_index(drop=True)

    def summary(self) -> dict[str, int]:
        """Counts shown to the user: labels, images, splits, queries and gallery."""
        val = self.validation_df
        return {
            "images": len(self.df),
            "labels": int(self.df[C.LABELS_COLUMN].nunique()),
            "train images": int((self.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT).sum()),
            "train labels": int(self.train_df[C.LABELS_COLUMN].nunique()),
            "validation images": len(val),
            "validation labels": int(val[C.LABELS_COLUMN].nunique()),
            "queries": int(val[C.IS_QUERY_COLUMN].fillna(False).sum()),
            "gallery": int(val[C.IS_GALLERY_COLUMN].fillna(False).sum()),
        }


def shapes_root(cache_root: Path = C.CACHE_ROOT) -> Path:
    settings = "_".join(f"{value}" for value in SHAPES_SETTINGS.values())
    return cache_root / f"shapes_{settings}_{BUILTIN_FORMAT}"


def _builtin(name: str, progress: Progress | None) -> tuple[pd.DataFrame, Path]:
    if name == "mock":
        df_train, df_val = download_mock_dataset(C.MOCK_DATASET_PATH)
        return pd.concat([df_train, df_val], ignore_index=True), C.MOCK_DATASET_PATH
    if name == "digits":
        root = C.CACHE_ROOT / f"digits_{BUILTIN_FORMAT}"
        if not (root / CSV_NAME).is_file():
            write_digits_dataset(root)
        return pd.read_csv(root / CSV_NAME), root
    root = shapes_root()
    if not (root / CSV_NAME).is_file():
        generate_shapes_dataset(root, progress=progress, **SHAPES_SETTINGS)
    return pd.read_csv(root / CSV_NAME), root


def _read_csv(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """The CSV, read no further than one row past `max_rows` (an oversized table is refused before any row is
    checked: validating millions of rows would hold the server for minutes)."""
    try:
        df = pd.read_csv(path, nrows=None if max_rows is None else max_rows + 1)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DatasetValidationError(f"Cannot read CSV {path}: {error}") from error
    if max_rows is not None and len(df) > max_rows:
        raise DatasetValidationError(
            f"{path.name} has more than {max_rows:,} rows; this app accepts at most {max_rows:,} images: "
            "upload a smaller subset."
        )
    return df


def load_dataset(
    source: str | Path,
    dataset_root: str | Path | None = None,
    validation_fraction: float = 0.5,
    seed: int = 0,
    with_categories: bool = False,
    progress: Progress | None = None,
    confine_to_root: bool = False,
    max_rows: int | None = None,
) -> LoadedDataset:
    """Load a built-in name ("shapes", "mock", "digits"), an OML CSV, or an image folder, and validate it.

    A CSV's paths are relative to `dataset_root` (default: the CSV's folder). A folder holding `df.csv` is read
    as that CSV; any other folder is imported as `<class>/<image>` (or `<category>/<class>/<image>` with
    `with_categories`) with classes split by `seed`. `confine_to_root` is for untrusted tables (uploads): every
    path must lie inside the root (see `validate_dataframe`); `max_rows` bounds a CSV's rows before they are
    checked (None: no bound).
    """
    text = str(source)
    if text in BUILTIN_DATASETS:
        df, root = _builtin(text, progress)
        name = text
    else:
        path = Path(source).expanduser()
        if path.is_file() and path.suffix.lower() == ".csv":
            df, root = _read_csv(path, max_rows), Path(dataset_root) if dataset_root else path.parent
        elif path.is_dir() and (path / CSV_NAME).is_file():
            df, root = _read_csv(path / CSV_NAME, max_rows), Path(dataset_root) if dataset_root else path
        elif path.is_dir():
            df, root = dataframe_from_image_folder(path, validation_fraction, seed, with_categories), path
        else:
            raise DatasetValidationError(
                f"Data source {text!r} is neither a built-in dataset ({', '.join(BUILTIN_DATASETS)}), a CSV file, "
                "nor a folder. Pass a path to an OML CSV or to a folder laid out as <class>/<image>."
            )
        # a generic "df.csv" is named after its folder, any other CSV after itself
        name = path.parent.name if path.name == CSV_NAME else path.stem
    report = validate_dataframe(df, root, confine_to_root=confine_to_root)
    return LoadedDataset(df=report.df, root=Path(root), name=name, warnings=report.warnings, source=text)
