"""Import of `root/<class_name>/<image>` folders into the OML dataframe (CUB/SOP protocol: disjoint classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.data.schema import DatasetValidationError


def _class_folders(root: Path, with_categories: bool) -> dict[str, list[Path]]:
    """Class name -> sorted images; with categories the layout is root/<category>/<class>/<image>."""
    depth = 2 if with_categories else 1
    classes: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in C.IMAGE_EXTENSIONS and not path.name.startswith("."):
            relative = path.relative_to(root)
            if len(relative.parts) == depth + 1:
                classes.setdefault("/".join(relative.parts[:depth]), []).append(relative)
    return classes


def dataframe_from_image_folder(
    root: str | Path, validation_fraction: float = 0.5, seed: int = 0, with_categories: bool = False
) -> pd.DataFrame:
    """One row per image; classes are shuffled by `seed` and split so that no class is in both splits.

    Validation items are both query and gallery. Each class folder's name is kept as `label_name` (with
    `with_categories` as "<category>/<class>", unique even where two categories hold a class folder of one
    name), and the folder above each class folder becomes the `category` column. Paths are relative to `root`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetValidationError(f"Image folder {root} does not exist or is not a folder.")
    if not 0.0 < validation_fraction < 1.0:
        raise DatasetValidationError(
            f"validation_fraction must be between 0 and 1 (exclusive), got {validation_fraction}."
        )
    classes = _class_folders(root, with_categories)
    layout = "root/<category>/<class>/<image>" if with_categories else "root/<class>/<image>"
    if len(classes) < 2:
        raise DatasetValidationError(
            f"Found {len(classes)} class folder(s) with images in {root}; need at least 2 laid out as {layout} "
            f"(image extensions: {', '.join(C.IMAGE_EXTENSIONS)})."
        )
    names = sorted(classes)
    shuffled = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_validation = min(max(1, round(len(names) * validation_fraction)), len(names) - 1)
    validation = set(shuffled[:n_validation])
    rows = []
    for label, name in enumerate(names):
        is_validation = name in validation
        for relative in classes[name]:
            row = {
                C.LABELS_COLUMN: label,
                C.LABEL_NAMES_COLUMN: name,
                C.PATHS_COLUMN: relative.as_posix(),
                C.SPLIT_COLUMN: C.VALIDATION_SPLIT if is_validation else C.TRAIN_SPLIT,
                C.IS_QUERY_COLUMN: True if is_validation else None,
                C.IS_GALLERY_COLUMN: True if is_validation else None,
            }
            if with_categories:
                row[C.CATEGORIES_COLUMN] = relative.parts[0]
            rows.append(row)
    return pd.DataFrame(rows)
