"""scikit-learn's handwritten digits as a tiny real built-in set (1,797 scans of 8x8 px, 10 classes).

Written as upscaled grey PNGs plus an OML `df.csv`; digit classes are split by class (0-4 vs 5-9 after a seeded
shuffle), validation items are both query and gallery; a label's name is its digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from explorer import const as C
from explorer.data.shapes import CSV_NAME


def write_digits_dataset(root: str | Path, image_size: int = 32, seed: int = 0) -> pd.DataFrame:
    """Write every digit image to `root/images` and return the dataframe (also saved as `root/df.csv`)."""
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing is downloaded

    digits = load_digits()
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    validation_classes = set(np.random.default_rng(seed).permutation(10)[:5].tolist())
    rows = []
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        name = f"images/digit{label}_{index:04d}.png"
        grey = (255 - pixels * 255 / 16).astype(np.uint8)  # dark ink on white, as scanned
        Image.fromarray(grey, mode="L").resize((image_size, image_size), Image.NEAREST).save(root / name)
        is_validation = int(label) in validation_classes
        rows.append(
            {
                C.LABELS_COLUMN: int(label),
                C.LABEL_NAMES_COLUMN: str(label),
                C.PATHS_COLUMN: name,
                C.SPLIT_COLUMN: C.VALIDATION_SPLIT if is_validation else C.TRAIN_SPLIT,
                C.IS_QUERY_COLUMN: True if is_validation else None,
                C.IS_GALLERY_COLUMN: True if is_validation else None,
            }
        )
    df = pd.DataFrame(rows)
    df.to_csv(root / CSV_NAME, index=False)
    return df
