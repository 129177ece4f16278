"""The item index of a loaded dataset: per-item facts every view looks up, and the translations between numberings.

An *item id* is a row of the dataset's dataframe. Evaluation works on the validation split only, so its
retrieval results count *validation positions* (rows of the validation frame) and *query ids* (positions among
the queries). This index is the one place that translates between the three, so pictures, tables, compare and
export take it as a value instead of asking the object that owns the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
        return cls(
            paths=tuple(str(resolve_path(p, Path(root))) for p in df[C.PATHS_COLUMN]),
            bboxes=tuple(bbox_of_row(row) for _, row in df.iterrows()) if has_boxes else (None,) * len(df),
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
        return Path(self.paths[item_id]).name

    def file_names(self, item_ids: Sequence[int]) -> list[str]:
        return [self.file_name(int(i)) for i in item_ids]

    def label_name(self, label: int) -> str:
        """How views show a label: its name, or its number as text when the dataset names none."""
        hits = np.flatnonzero(self.labels == label)
        return str(self.label_names[hits[0]]) if len(hits) else str(label)

    def query_id_of_item(self, item_id: int) -> int | None:
        """The query id of an item, or None when the item is not a query."""
        hits = np.flatnonzero(self.query_items == int(item_id))
        return int(hits[0]) if len(hits) else None

    def gallery_position_of_item(self, item_id: int) -> int | None:
        """The gallery position of an item, or None when the item is not in the gallery."""
        hits = np.flatnonzero(self.gallery_items == int(item_id))
        return int(hits[0]) if len(hits) else None

    def validation_paths(self) -> list[str]:
        """Paths by validation position: what retrieval results' `query_ids` / `gallery_ids` index."""
        return [self.paths[i] for i in self.validation_items]

    def validation_bboxes(self) -> list[BBox | None]:
        return [self.bboxes[i] for i in self.validation_items]

    def roles(self) -> np.ndarray:
        """Per item: 'train', 'query', 'gallery' or 'query+gallery' (what the projection can colour by)."""
        role = np.full(self.n_items, "train", dtype=object)
        role[self.gallery_items] = "gallery"
        role[self.query_items] = "query"
        role[np.intersect1d(self.query_items, self.gallery_items)] = "query+gallery"
        return role
