"""The item index of a loaded dataset: per-item facts every view looks up, and the translations between numberings.

An *item id* is a row of the dataset's dataframe. Evaluation works on the validation split only, so its
retrieval results count *validation positions* (rows of the validation frame) and *query ids* (positions among
the queries). This index is the one place that translates between the three, so pictures, tables, compare and
export take it as a value instead of asking the object that owns the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.data.images import BBox
from explorer.data.schema import bbox_of_row, resolve_path


def label_names_of_frame(df: pd.DataFrame) -> np.ndarray:
    """Per row the label's name as text: the `label_name` column where given, else the label number."""
    numbers = df[C.LABELS_COLUMN].astype(str)
    if C.LABEL_NAMES_COLUMN not in df.columns:
        return numbers.to_numpy(dtype=object)
    names = df[C.LABEL_NAMES_COLUMN]
    return names.where(names.notna(), numbers).astype(str).to_numpy(dtype=object)


@dataclass(frozen=True)
class ItemIndex:
    """Per item id: image path (absolute, for reading), crop box, label and label name; and which items are
    validation, query and gallery items (each as item ids, in the order evaluation uses)."""

    paths: tuple[str, ...]
    bboxes: tuple[BBox | None, ...]
    labels: np.ndarray
    label_names: np.ndarray  # text per item: the frame's `label_name`, else the label number as text
    validation_items: np.ndarray  # item ids of the validation split in frame order = evaluation's item order
    query_items: np.ndarray  # item id of every query id
    gallery_items: np.ndarray  # item ids of the gallery, in gallery-position order

    @classmethod
    def from_frame(cls, df: pd.DataFrame, root: Path) -> ItemIndex:
        """Index a validated OML frame whose relative paths live under `root` (computed once per dataset)."""
        validation = np.flatnonzero((df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT).to_numpy())
        flags = df.iloc[validation]
        has_boxes = all(column in df.columns for column in C.BBOX_COLUMNS)
        boxes = map(bbox_of_row, df[list(C.BBOX_COLUMNS)].to_dict("records")) if has_boxes else (None,) * len(df)
        return cls(
            paths=tuple(str(resolve_path(p, Path(root))) for p in df[C.PATHS_COLUMN]),
            bboxes=tuple(boxes),
            labels=df[C.LABELS_COLUMN].to_numpy(),
            label_names=label_names_of_frame(df),
            validation_items=validation,
            query_items=validation[flags[C.IS_QUERY_COLUMN].astype(bool).to_numpy()],
            gallery_items=validation[flags[C.IS_GALLERY_COLUMN].astype(bool).to_numpy()],
        )

    @property
    def n_items(self) -> int:
        return len(self.paths)

    @property
    def n_queries(self) -> int:
        return len(self.query_items)

    def file_name(self, item_id: int) -> str:
        return str(self.all_file_names[item_id])

    def file_names(self, item_ids: Sequence[int]) -> list[str]:
        return self.all_file_names[np.asarray(item_ids, dtype=np.int64)].tolist()

    @cached_property
    def all_file_names(self) -> np.ndarray:
        """The file name of every item (hover texts and tables show it), computed once per dataset
        (`os.path.basename`: a `Path` per item made the first worst-queries table of 100k items cost 0.25 s)."""
        return np.array([os.path.basename(p) for p in self.paths], dtype=object)

    def label_name(self, label: int) -> str:
        """How views show a label: its name, or its number as text when the dataset names none."""
        return self._name_of_label.get(label, str(label))

    @cached_property
    def _name_of_label(self) -> dict:
        """Label -> the name of its first item: one lookup per tile or table row instead of a scan of every item."""
        labels, first = np.unique(self.labels, return_index=True)
        return {label: str(self.label_names[i]) for label, i in zip(labels.tolist(), first.tolist(), strict=True)}

    def query_id_of_item(self, item_id: int) -> int | None:
        """The query id of an item, or None when the item is not a query."""
        return _position_in(self._query_id_of, item_id)

    def gallery_position_of_item(self, item_id: int) -> int | None:
        """The gallery position of an item, or None when the item is not in the gallery."""
        return _position_in(self._gallery_position_of, item_id)

    @cached_property
    def _query_id_of(self) -> np.ndarray:
        return _inverse(self.query_items, self.n_items)

    @cached_property
    def _gallery_position_of(self) -> np.ndarray:
        return _inverse(self.gallery_items, self.n_items)

    def validation_paths(self) -> list[str]:
        """Paths by validation position: what retrieval results' `query_ids` / `gallery_ids` index."""
        return list(self._validation_paths)

    def validation_bboxes(self) -> list[BBox | None]:
        return list(self._validation_bboxes)

    @cached_property
    def _validation_paths(self) -> tuple[str, ...]:
        return tuple(self.paths[i] for i in self.validation_items)

    @cached_property
    def _validation_bboxes(self) -> tuple[BBox | None, ...]:
        return tuple(self.bboxes[i] for i in self.validation_items)

    @cached_property
    def validation_label_names(self) -> np.ndarray:
        """Label names by validation position (the label line of every retrieval tile)."""
        return self.label_names[self.validation_items]

    def roles(self) -> np.ndarray:
        """Per item: 'train', 'query', 'gallery' or 'query+gallery' (what the projection can colour by)."""
        role = np.full(self.n_items, "train", dtype=object)
        role[self.gallery_items] = "gallery"
        role[self.query_items] = "query"
        role[np.intersect1d(self.query_items, self.gallery_items)] = "query+gallery"
        return role


def _inverse(item_ids: np.ndarray, n_items: int) -> np.ndarray:
    """Per item id: its position in `item_ids`, -1 where absent."""
    positions = np.full(n_items, -1, dtype=np.int64)
    positions[item_ids] = np.arange(len(item_ids))
    return positions


def _position_in(positions: np.ndarray, item_id: int) -> int | None:
    """`positions[item_id]` as an int, None for -1 or an id outside the items."""
    item_id = int(item_id)
    position = int(positions[item_id]) if 0 <= item_id < len(positions) else -1
    return None if position < 0 else position
