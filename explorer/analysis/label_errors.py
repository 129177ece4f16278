"""Suspected label errors: items whose nearest neighbours agree on another label more than on their own.

A mislabelled image still looks like its true class, so its neighbours in embedding space vote for that class
and not for the label it was given. Each item's k nearest other items (exact, via the gallery search, the item
itself excluded) vote with weights that fall with distance; the score is the share of the strongest other label
minus the share of the item's own label (-1: every neighbour agrees with the label, 1: all vote for one other
label). Items are ranked by that score, the strongest other label being the suggestion. Queries are searched in
chunks, so memory stays O(chunk x N + N x k), never N x N.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from explorer import const as C
from explorer.data.items import label_names_of_frame
from explorer.progress import Progress, report
from explorer.retrieval.search import as_embedding_matrix, search_gallery

DEFAULT_NEIGHBOURS = 10
QUERY_CHUNK = 1024  # items searched per call: bounds memory and paces the progress bar

ITEM_ID, PATH, GIVEN_LABEL, SUGGESTED_LABEL, SCORE = "item id", "path", "given label", "suggested label", "score"
GIVEN_LABEL_NAME, SUGGESTED_LABEL_NAME = "given label name", "suggested label name"


def nearest_other_items(
    embeddings: torch.Tensor | np.ndarray, k: int, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, distances), each [N, min(k, N - 1)]: every item's nearest other items, nearest first (ties to
    the lower position), searched a chunk of items at a time."""
    embeddings = as_embedding_matrix(embeddings, "embeddings")
    n_items = len(embeddings)
    width = min(k, n_items - 1)
    positions = np.empty((n_items, width), dtype=np.int64)
    distances = np.empty((n_items, width), dtype=np.float32)
    for start in range(0, n_items, QUERY_CHUNK):
        stop = min(start + QUERY_CHUNK, n_items)
        found = search_gallery(embeddings[start:stop], embeddings, width, exclude=np.arange(start, stop))
        positions[start:stop], distances[start:stop] = found.retrieved.numpy(), found.distances.numpy()
        report(progress, stop / n_items, f"searched the neighbours of {stop}/{n_items} items")
    return positions, distances


def neighbour_weights(distances: np.ndarray) -> np.ndarray:
    """Vote weights [N, k] that fall with distance, scaled per item by its own neighbourhood's radius (the
    farthest of its k neighbours), so dense and sparse regions of the embedding space vote alike."""
    radius = np.maximum(distances[:, -1:], np.finfo(np.float32).tiny)
    return np.exp(-((distances / radius) ** 2))


def disagreement(labels: np.ndarray, neighbours: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score, suggested label) per item from its neighbours' labels [N, k] and vote weights [N, k].

    score = weighted share of the strongest other label - share of the item's own label; the suggestion is that
    other label (ties to the nearer neighbour's), or the item's own label when no neighbour has another one.
    """
    neighbour_labels = labels[neighbours]
    shares = weights / weights.sum(1, keepdims=True)
    own = (shares * (neighbour_labels == labels[:, None])).sum(1)
    # share of every neighbour's label in its row: [N, k, k] comparisons, in chunks to bound memory
    best_other = np.zeros(len(labels))
    suggested = labels.copy()
    for start in range(0, len(labels), QUERY_CHUNK):
        rows = slice(start, start + QUERY_CHUNK)
        same = neighbour_labels[rows, :, None] == neighbour_labels[rows, None, :]
        label_share = (same * shares[rows, None, :]).sum(2)
        label_share[neighbour_labels[rows] == labels[rows, None]] = -1.0
        strongest = label_share.argmax(1)
        best = label_share[np.arange(len(strongest)), strongest]
        has_other = best >= 0
        best_other[rows] = np.where(has_other, best, 0.0)
        suggested[rows] = np.where(
            has_other, neighbour_labels[rows][np.arange(len(strongest)), strongest], labels[rows]
        )
    return np.clip(best_other - own, -1.0, 1.0), suggested  # clip: shares summed in floats may pass 1


def suspected_label_errors(
    embeddings: torch.Tensor | np.ndarray,
    df: pd.DataFrame,
    k: int = DEFAULT_NEIGHBOURS,
    item_ids: Sequence[int] | np.ndarray | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every item ranked by how strongly its neighbours disagree with its label, most suspicious first.

    Row i of `df` (an OML frame: `label`, `path`, optional `label_name`) describes embedding i. `item_ids`
    restricts the analysis to some rows (e.g. one split): neighbours are then searched among those rows only.
    Columns: item id, path (as in `df`), given label, suggested label, score (ties by item id), plus the two
    labels' names when `df` names its labels; `DataFrame.to_csv` exports it.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of neighbours, got {k}.")
    if len(df) != len(embeddings):
        raise ValueError(f"df has {len(df)} rows but there are {len(embeddings)} embeddings; give one row per item.")
    ids = np.arange(len(df)) if item_ids is None else np.asarray(item_ids, dtype=np.int64)
    if len(ids) < 2:
        raise ValueError(f"Suspected label errors need at least 2 items to compare, got {len(ids)}.")
    frame = df.iloc[ids]
    labels = frame[C.LABELS_COLUMN].to_numpy()
    neighbours, distances = nearest_other_items(as_embedding_matrix(embeddings, "embeddings")[ids], k, progress)
    score, suggested = disagreement(labels, neighbours, neighbour_weights(distances))
    table = pd.DataFrame(
        {
            ITEM_ID: ids,
            PATH: frame[C.PATHS_COLUMN].to_numpy(),
            GIVEN_LABEL: labels,
            SUGGESTED_LABEL: suggested,
            SCORE: score,
        }
    )
    if C.LABEL_NAMES_COLUMN in df.columns:
        names = dict(zip(labels.tolist(), label_names_of_frame(frame), strict=True))
        table[GIVEN_LABEL_NAME] = table[GIVEN_LABEL].map(names)
        table[SUGGESTED_LABEL_NAME] = table[SUGGESTED_LABEL].map(names)
    return table.sort_values([SCORE, ITEM_ID], ascending=[False, True], kind="stable").reset_index(drop=True)
