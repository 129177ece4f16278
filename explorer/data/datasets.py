"""Torch datasets with the seed's names: `DatasetWithLabels` (training) and `DatasetQueryGallery` (validation).

Items are dicts so batches carry everything metrics and pictures need (labels, paths, boxes, query/gallery flags)
through the default DataLoader collation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from explorer import const as C
from explorer.data.images import read_image
from explorer.data.schema import bbox_of_row, resolve_path, validate_dataframe

Transform = Callable[[Image.Image], torch.Tensor]
NO_BBOX = -1  # batch value of a bbox coordinate for a row without a box


def default_transform(
    image_size: int = C.DEFAULT_IMAGE_SIZE,
    mean: tuple[float, float, float] = C.IMAGENET_MEAN,
    std: tuple[float, float, float] = C.IMAGENET_STD,
) -> Transform:
    """Resize to a square input, to tensor, normalise: the fallback when no model config decides."""
    return T.Compose([T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)])


class DatasetWithLabels(Dataset):
    """Labelled images for training; `df` may hold only the train split (the seed passes `df_train`)."""

    default_split = C.TRAIN_SPLIT

    def __init__(self, df: pd.DataFrame, dataset_root: str | Path = "", transform: Transform | None = None):
        df = df.copy()
        if C.SPLIT_COLUMN not in df.columns:
            df[C.SPLIT_COLUMN] = self.default_split
        for column in (C.IS_QUERY_COLUMN, C.IS_GALLERY_COLUMN):
            if column not in df.columns:
                df[column] = pd.NA if self.default_split == C.TRAIN_SPLIT else True
        self.dataset_root = Path(dataset_root)
        report = validate_dataframe(df, self.dataset_root)
        for message in report.warnings:
            warnings.warn(message, stacklevel=2)
        self.df = report.df
        self.transform = transform or default_transform()
        self._paths = [str(resolve_path(p, self.dataset_root)) for p in self.df[C.PATHS_COLUMN]]
        self._labels = self.df[C.LABELS_COLUMN].to_numpy(np.int64)
        self._has_bbox = all(c in self.df.columns for c in C.BBOX_COLUMNS)
        self._bboxes = [bbox_of_row(row) for _, row in self.df.iterrows()] if self._has_bbox else None

    def __len__(self) -> int:
        return len(self.df)

    def get_labels(self) -> np.ndarray:
        return self._labels.copy()

    @property
    def paths(self) -> list[str]:
        """Absolute image paths, in row order."""
        return list(self._paths)

    @property
    def bboxes(self) -> list[tuple[int, int, int, int] | None]:
        """Per-row crop box (x_1, y_1, x_2, y_2) or None."""
        return list(self._bboxes) if self._bboxes is not None else [None] * len(self)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        bbox = self._bboxes[idx] if self._bboxes is not None else None
        item: dict[str, Any] = {
            C.INPUT_TENSORS_KEY: self.transform(read_image(self._paths[idx], bbox)),
            C.LABELS_KEY: int(self._labels[idx]),
            C.PATHS_KEY: self._paths[idx],
            C.INDEX_KEY: idx,
        }
        row = self.df.iloc[idx]
        if C.CATEGORIES_COLUMN in self.df.columns:
            item[C.CATEGORIES_KEY] = row[C.CATEGORIES_COLUMN]
        if self._has_bbox:
            x1, y1, x2, y2 = bbox if bbox is not None else (NO_BBOX,) * 4
            item.update({C.X1_COLUMN: x1, C.X2_COLUMN: x2, C.Y1_COLUMN: y1, C.Y2_COLUMN: y2})
        return item


class DatasetQueryGallery(DatasetWithLabels):
    """Validation images with query/gallery flags; an item that is both is compared against all others."""

    default_split = C.VALIDATION_SPLIT

    def __init__(self, df: pd.DataFrame, dataset_root: str | Path = "", transform: Transform | None = None):
        super().__init__(df, dataset_root, transform)
        if (self.df[C.SPLIT_COLUMN] != C.VALIDATION_SPLIT).any():
            raise ValueError(
                "DatasetQueryGallery takes validation rows only; select them first, e.g. "
                "df[df['split'] == 'validation']."
            )
        self._is_query = self.df[C.IS_QUERY_COLUMN].fillna(False).to_numpy(bool)
        self._is_gallery = self.df[C.IS_GALLERY_COLUMN].fillna(False).to_numpy(bool)

    def get_query_ids(self) -> np.ndarray:
        return np.flatnonzero(self._is_query)

    def get_gallery_ids(self) -> np.ndarray:
        return np.flatnonzero(self._is_gallery)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = super().__getitem__(idx)
        item[C.IS_QUERY_KEY] = bool(self._is_query[idx])
        item[C.IS_GALLERY_KEY] = bool(self._is_gallery[idx])
        if C.SEQUENCE_COLUMN in self.df.columns:
            item[C.SEQUENCE_KEY] = self.df[C.SEQUENCE_COLUMN].iloc[idx]
        return item
