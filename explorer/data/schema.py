"""Validation of OML-format dataframes: strict, with messages that say what, where and how to fix.

`validate_dataframe` is the single gate every dataset passes through (CSV, image folder, built-in data,
a DataFrame from Python); it returns a normalised copy plus warnings, or raises one error listing every problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.errors import InputError

MAX_SHOWN = 5  # offending values / rows quoted per message


class DatasetValidationError(InputError):
    """A dataset that cannot be used as given; the message lists every problem found."""


@dataclass
class ValidationReport:
    df: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _first(values, limit: int = MAX_SHOWN) -> str:
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _rows(mask: pd.Series | np.ndarray) -> str:
    return "rows (0-based) " + _first(np.flatnonzero(np.asarray(mask)).tolist())


_TRUE = {"true", "1", "yes", "t", "y", "1.0"}
_FALSE = {"false", "0", "no", "f", "n", "0.0"}


def _parse_bool(value) -> bool | None:
    """True/False for recognised spellings, None for empty, raise KeyError for anything else."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text == "" or text == "nan":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise KeyError(value)


def bbox_of_row(row: pd.Series | dict) -> tuple[int, int, int, int] | None:
    """The row's box as (x_1, y_1, x_2, y_2), or None when the dataset or the row has none."""
    if C.X1_COLUMN not in row:
        return None
    values = [row[C.X1_COLUMN], row[C.Y1_COLUMN], row[C.X2_COLUMN], row[C.Y2_COLUMN]]
    if any(pd.isna(v) for v in values):
        return None
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def resolve_path(path: str, dataset_root: Path) -> Path:
    path_obj = Path(path)
    return path_obj if path_obj.is_absolute() else dataset_root / path_obj


class _Checker:
    """Collects errors and warnings while normalising a copy of the dataframe column by column."""

    def __init__(self, df: pd.DataFrame, dataset_root: Path, confine_to_root: bool = False):
        self.df = df.reset_index(drop=True).copy()
        self.root = dataset_root
        self.confine_to_root = confine_to_root
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def has(self, *columns: str) -> bool:
        return all(c in self.df.columns for c in columns)

    def columns(self) -> None:
        missing = [c for c in C.REQUIRED_COLUMNS if c not in self.df.columns]
        if missing:
            self.errors.append(
                f"Missing required column(s) {_first(missing)}. An OML dataset needs {list(C.REQUIRED_COLUMNS)}; "
                f"found {list(self.df.columns)}."
            )
        known = set(C.REQUIRED_COLUMNS) | set(C.OPTIONAL_COLUMNS)
        unknown = [c for c in self.df.columns if c not in known]
        if unknown:
            self.warnings.append(
                f"Unknown column(s) {_first(unknown)} are kept but not used; known optional columns are "
                f"{list(C.OPTIONAL_COLUMNS)}."
            )
        bbox_present = [c for c in C.BBOX_COLUMNS if c in self.df.columns]
        if bbox_present and len(bbox_present) != len(C.BBOX_COLUMNS):
            self.errors.append(
                f"Bounding box needs all four columns {list(C.BBOX_COLUMNS)} or none; found only {bbox_present}."
            )

    def labels(self) -> None:
        column = self.df[C.LABELS_COLUMN]
        numeric = pd.to_numeric(column, errors="coerce")
        bad = numeric.isna() | (numeric != np.round(numeric))
        if bad.any():
            self.errors.append(
                f"Column 'label' must hold integers; {_rows(bad)} hold {_first(column[bad].tolist())}. "
                "Map class names to integer ids (e.g. with pandas.factorize)."
            )
        else:
            self.df[C.LABELS_COLUMN] = numeric.astype(np.int64)

    def label_names(self) -> None:
        """Names are any text, one per label: a label with two names is an error, a missing name falls back to
        the label's other rows' name, else to the label number as text (what every view shows)."""
        names = self.df[C.LABEL_NAMES_COLUMN].map(_name_text)
        labels = self.df[C.LABELS_COLUMN]
        per_label = names.groupby(labels, sort=True).agg(lambda group: sorted(set(group.dropna())))
        for label, distinct in per_label.items():
            if len(distinct) > 1:
                rows = (labels == label) & names.isin(distinct)
                self.errors.append(
                    f"Label {label} has {len(distinct)} names in column 'label_name' ({_first(distinct)}), "
                    f"{_rows(rows)}; give each label one name."
                )
        named = per_label[per_label.map(len) == 1].map(lambda distinct: distinct[0])
        fallback = labels.map(named).where(labels.isin(named.index), labels.astype(str))
        self.df[C.LABEL_NAMES_COLUMN] = names.fillna(fallback).astype(object)
        shared = named[named.duplicated(keep=False)]
        if not shared.empty:
            self.warnings.append(
                f"Labels {_first(shared.index.tolist())} share names ({_first(sorted(set(shared)))}) in column "
                "'label_name': views show them alike; tell them apart by the label number."
            )

    def splits(self) -> None:
        split = self.df[C.SPLIT_COLUMN].astype(str).str.strip()
        bad = ~split.isin(C.SPLITS)
        if bad.any():
            self.errors.append(
                f"Column 'split' must be 'train' or 'validation'; {_rows(bad)} hold {_first(split[bad].unique())}."
            )
        self.df[C.SPLIT_COLUMN] = split

    def query_gallery(self) -> None:
        is_val = (self.df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT).to_numpy()
        for column in (C.IS_QUERY_COLUMN, C.IS_GALLERY_COLUMN):
            parsed, bad_rows = [], []
            for position, value in enumerate(self.df[column].tolist()):
                try:
                    parsed.append(_parse_bool(value) if is_val[position] else None)
                except KeyError:
                    parsed.append(None)
                    bad_rows.append(position)
            if bad_rows:
                self.errors.append(
                    f"Column '{column}' must hold booleans (True/False, 1/0); rows (0-based) {_first(bad_rows)} "
                    f"hold {_first(self.df[column].iloc[bad_rows].tolist())}."
                )
            self.df[column] = pd.array(parsed, dtype="boolean")
        query = self.df[C.IS_QUERY_COLUMN].fillna(False).to_numpy(bool)
        gallery = self.df[C.IS_GALLERY_COLUMN].fillna(False).to_numpy(bool)
        neither = is_val & ~query & ~gallery
        if neither.any():
            self.errors.append(
                f"Validation {_rows(neither)} are neither query nor gallery: set is_query and/or is_gallery "
                "to True (both True compares the item against all others)."
            )

    def paths(self) -> pd.Series:
        """Check the 'path' column; return the rows whose file may be looked for (non-empty, inside the root)."""
        self.df[C.PATHS_COLUMN] = self.df[C.PATHS_COLUMN].map(lambda p: "" if pd.isna(p) else str(p))
        paths = self.df[C.PATHS_COLUMN]
        empty = paths.str.strip() == ""
        if empty.any():
            self.errors.append(f"Column 'path' is empty in {_rows(empty)}.")
        root = self.root.resolve()
        absolute = paths.map(lambda p: Path(p).is_absolute()) & ~empty
        escaping = paths.map(lambda p: not Path(p).is_absolute() and not _inside(root / p, root)) & ~empty
        if escaping.any():
            fix = (
                "Keep every image inside the upload."
                if self.confine_to_root
                else "Use absolute paths or move the images under the root."
            )
            self.errors.append(
                f"Relative paths must stay inside dataset_root; {_rows(escaping)} escape it: "
                f"{_first(paths[escaping].tolist())}. {fix}"
            )
        if self.confine_to_root and absolute.any():
            self.errors.append(
                f"Absolute paths are not allowed here (paths are relative to the upload's folder); "
                f"{_rows(absolute)} give one: {_first(paths[absolute].tolist())}. Make them relative to the CSV's folder."
            )
            escaping = escaping | absolute
        key_columns = [C.PATHS_COLUMN] + [c for c in C.BBOX_COLUMNS if c in self.df.columns]
        duplicated = self.df.duplicated(subset=key_columns, keep=False)
        if duplicated.any():
            self.errors.append(
                f"Duplicate items (same path{' and box' if len(key_columns) > 1 else ''}) in {_rows(duplicated)}: "
                f"{_first(paths[duplicated].unique())}. Each image (or crop) may appear once."
            )
        return ~empty & ~escaping

    def files(self, checkable: pd.Series) -> None:
        exists = pd.Series(True, index=self.df.index)
        exists[checkable] = self.df[C.PATHS_COLUMN][checkable].map(lambda p: resolve_path(p, self.root).is_file())
        missing = ~exists
        if missing.any():
            self.errors.append(
                f"{int(missing.sum())} image file(s) not found under dataset_root ({self.root.name}), e.g. "
                f"{_first(self.df[C.PATHS_COLUMN][missing].tolist())}. Check dataset_root and the 'path' column."
            )

    def bboxes(self) -> None:
        if not all(c in self.df.columns for c in C.BBOX_COLUMNS):
            return
        boxes = self.df[list(C.BBOX_COLUMNS)].apply(pd.to_numeric, errors="coerce")
        given = self.df[list(C.BBOX_COLUMNS)].notna()
        partial = given.any(axis=1) & ~given.all(axis=1)
        unparsable = (boxes.isna() & given).any(axis=1)
        full = given.all(axis=1) & ~unparsable
        non_int = full & (boxes != np.round(boxes)).any(axis=1)
        x1, x2, y1, y2 = (boxes[c] for c in C.BBOX_COLUMNS)
        inverted = full & ~((x1 < x2) & (y1 < y2))
        negative = full & (boxes < 0).any(axis=1)
        for mask, problem in (
            (partial, "give all four of x_1, x_2, y_1, y_2 or none"),
            (unparsable | non_int, "must be integers"),
            (inverted, "need x_1 < x_2 and y_1 < y_2"),
            (negative, "must be non-negative"),
        ):
            if mask.any():
                sample = boxes[mask].head(MAX_SHOWN).to_dict("records")
                self.errors.append(f"Bounding boxes {problem}: {_rows(mask)}, e.g. {sample}.")
        self.df[list(C.BBOX_COLUMNS)] = boxes.round().astype("Int64")

    def train_labels(self) -> None:
        train = self.df[self.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT]
        counts = train[C.LABELS_COLUMN].value_counts()
        lonely = sorted(counts[counts < 2].index.tolist())
        if lonely:
            self.df = self.df[~((self.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT) & self.df[C.LABELS_COLUMN].isin(lonely))]
            self.df = self.df.reset_index(drop=True)
            self.warnings.append(
                f"Dropped {len(lonely)} train label(s) with a single image (they cannot form a positive pair): "
                f"{_first(lonely)}."
            )

    def queries_without_gallery(self) -> None:
        val = self.df[self.df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT]
        if val.empty:
            return
        is_gallery = val[C.IS_GALLERY_COLUMN].fillna(False).astype(bool)
        is_query = val[C.IS_QUERY_COLUMN].fillna(False).astype(bool)
        gallery_counts = val[is_gallery][C.LABELS_COLUMN].value_counts()
        available = val[C.LABELS_COLUMN].map(gallery_counts).fillna(0) - is_gallery.astype(int)
        orphans = is_query & (available <= 0)
        if orphans.any():
            self.warnings.append(
                f"{int(orphans.sum())} validation quer(ies) have no gallery item of the same label (labels "
                f"{_first(sorted(val[orphans][C.LABELS_COLUMN].unique().tolist()))}): their cmc and map are 0 "
                "and they are left out of the precision mean."
            )


def _name_text(value) -> str | None:
    """A label name as text, None when missing or blank; whole floats lose their '.0' (a CSV column of numbers
    with gaps is read as floats)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def validate_dataframe(
    df: pd.DataFrame, dataset_root: str | Path, check_files: bool = True, confine_to_root: bool = False
) -> ValidationReport:
    """Check an OML-format dataframe and return a normalised copy (index 0..N-1) with warnings.

    `confine_to_root` (untrusted tables, e.g. a visitor's upload): absolute paths are refused like `../`
    escapes, and no file outside the root is even looked for, so an error never tells what exists elsewhere.

    Normalised: `label` int64, `path` str, `is_query`/`is_gallery` nullable booleans (NA on train rows),
    bbox columns nullable ints, `label_name` text (missing names filled in). Train labels with a single image
    are dropped with a warning.
    """
    if not isinstance(df, pd.DataFrame):
        raise DatasetValidationError(f"Expected a pandas DataFrame, got {type(df).__name__}.")
    if df.empty:
        raise DatasetValidationError("The dataset is empty: the dataframe has no rows.")
    checker = _Checker(df, Path(dataset_root), confine_to_root)
    checker.columns()  # every check whose columns are present runs, so one error lists every problem
    if checker.has(C.LABELS_COLUMN):
        checker.labels()
        if checker.has(C.LABEL_NAMES_COLUMN):
            checker.label_names()
    if checker.has(C.SPLIT_COLUMN):
        checker.splits()
        if checker.has(C.IS_QUERY_COLUMN, C.IS_GALLERY_COLUMN):
            checker.query_gallery()
    if checker.has(C.PATHS_COLUMN):
        checkable = checker.paths()
        if check_files:
            checker.files(checkable)
    checker.bboxes()
    if checker.errors:
        raise DatasetValidationError("Invalid dataset:\n- " + "\n- ".join(checker.errors))
    checker.train_labels()
    checker.queries_without_gallery()
    return ValidationReport(df=checker.df, warnings=checker.warnings)
