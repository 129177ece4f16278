"""Embeddings computed elsewhere (a GPU box, another framework) for a dataset: read, checked, aligned to its rows.

Two formats, the ones our own `embed` command and the app's export write: a `.npy` matrix `[N, D]` whose row i
belongs to row i of the dataset table, or a parquet with an `embedding` column (one vector per row). A parquet
that also has a `path` column is aligned to the dataset by path, so its row order does not matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.errors import InputError

EMBEDDING_SUFFIXES = (".npy", ".parquet")
MAX_EMBEDDING_DIM = 65_536


def load_embeddings(path: str | Path, df: pd.DataFrame) -> np.ndarray:
    """The `[len(df), D]` float32 embeddings in `path` for the rows of `df` (an OML frame), or a message that
    says what does not fit (file type, shape, missing rows, non-finite values) and how to fix it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise InputError(f"Embeddings file {path.name} must end with .npy or .parquet (what `embed` writes).")
    if not path.is_file():
        raise InputError(f"Embeddings file {path.name} not found.")
    matrix = _read_npy(path) if suffix == ".npy" else _read_parquet(path, df)
    return _checked(matrix, len(df), path.name)


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise InputError(f"{path.name} is not a readable .npy matrix ({error}).") from error


def _read_parquet(path: Path, df: pd.DataFrame) -> np.ndarray:
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a file that is not parquet
        raise InputError(f"{path.name} is not a readable parquet file ({type(error).__name__}).") from error
    if C.EMBEDDING_COLUMN not in table.columns:
        raise InputError(
            f"{path.name} has no {C.EMBEDDING_COLUMN!r} column (it has {list(table.columns)[:8]}): write it with "
            f"`python -m explorer embed --out x.parquet` or a column of one vector per row."
        )
    vectors = table[C.EMBEDDING_COLUMN]
    if C.PATHS_COLUMN in table.columns and C.PATHS_COLUMN in df.columns:
        vectors = _aligned_by_path(table, df, path.name)
    try:
        return np.stack([np.asarray(v, dtype=np.float32) for v in vectors]) if len(vectors) else np.empty((0, 0))
    except ValueError as error:
        raise InputError(f"The {C.EMBEDDING_COLUMN!r} vectors of {path.name} differ in length ({error}).") from error


def _aligned_by_path(table: pd.DataFrame, df: pd.DataFrame, name: str) -> pd.Series:
    """The embedding of every row of `df`, found by its path in `table` (each path once)."""
    by_path = table.drop_duplicates(C.PATHS_COLUMN, keep=False).set_index(C.PATHS_COLUMN)[C.EMBEDDING_COLUMN]
    duplicated = len(table) - len(by_path)
    if duplicated:
        raise InputError(f"{name} repeats {duplicated} path(s): give each image's embedding once.")
    missing = df[C.PATHS_COLUMN][~df[C.PATHS_COLUMN].isin(by_path.index)]
    if len(missing):
        raise InputError(
            f"{name} has no embedding for {len(missing)} of the dataset's {len(df)} images, e.g. "
            f"{missing.iloc[0]!r}: compute it for the same table (paths as in the dataset's 'path' column)."
        )
    return by_path.loc[df[C.PATHS_COLUMN]]


def _checked(matrix: np.ndarray, n_rows: int, name: str) -> np.ndarray:
    if matrix.ndim != 2 or not 0 < matrix.shape[1] <= MAX_EMBEDDING_DIM:
        raise InputError(f"{name} holds an array of shape {matrix.shape}; embeddings must be [N, D] with D >= 1.")
    if matrix.shape[0] != n_rows:
        raise InputError(
            f"{name} has {matrix.shape[0]} rows but the dataset has {n_rows} images: give one row per image, in "
            "the dataset's order (or a parquet with a 'path' column)."
        )
    if not np.issubdtype(matrix.dtype, np.number):
        raise InputError(f"{name} holds {matrix.dtype} values, not numbers.")
    # a copy in memory: the .npy is memory-mapped only to check its shape before reading it, and a read-only map
    # would change under the app if the file were rewritten (torch also warns on every non-writable array)
    matrix = np.array(matrix, dtype=np.float32, order="C")
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad_rows):
        raise InputError(f"{name} has NaN or infinite values in {len(bad_rows)} row(s), e.g. row {bad_rows[0]}.")
    return matrix
