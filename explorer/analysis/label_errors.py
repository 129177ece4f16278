"""Suspected label errors: items that lie closer to another label's images than to their own label's.

A mislabelled image still looks like its true class, so in embedding space it sits near that class and away
from the label it was given. Each item is compared with the mean embedding of every label (its own label's mean
leaving the item out, so it cannot vouch for itself): score = (d_own - d_other) / (d_own + d_other), with d_other
the distance to the nearest other label's mean, which is the suggestion. -1: at its own label's centre; > 0:
closer to another label; 1: on another label's centre. Class means beat neighbour votes on real photos with
flipped labels (bench/bench_label_errors.py, birds50 with 3% flipped: precision@n_flipped 0.91, ROC-AUC 0.998,
against at best 0.86 for votes of 5-50 neighbours, whose scores also tie), because a mean averages out the
noise of a few near neighbours. As evidence for a person checking a row, the item's k nearest other items
(exact gallery search, itself excluded) say how many carry the suggested label.

Memory: O(labels x D) for the means and O(chunk x max(labels, N)) per search chunk, never N x N.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from explorer import const as C
from explorer.data.items import label_names_of_frame
from explorer.progress import Progress, report, scaled
from explorer.retrieval.search import as_embedding_matrix, search_gallery, to_codes

DEFAULT_NEIGHBOURS = 10
QUERY_CHUNK = 1024  # items searched per call: bounds memory and paces the progress bar

ITEM_ID, PATH, GIVEN_LABEL, SUGGESTED_LABEL, SCORE = "item id", "path", "given label", "suggested label", "score"
NEIGHBOURS_AGREEING = "neighbours with suggested label"  # of the item's k nearest other items
GIVEN_LABEL_NAME, SUGGESTED_LABEL_NAME = "given label name", "suggested label name"


def _chunks(n_items: int) -> list[slice]:
    return [slice(start, min(start + QUERY_CHUNK, n_items)) for start in range(0, n_items, QUERY_CHUNK)]


def class_mean_contrast(
    embeddings: torch.Tensor | np.ndarray, labels: Sequence | np.ndarray, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(score, suggested label) per item: (d_own - d_other) / (d_own + d_other) against the leave-one-out mean of
    its own label and the nearest other label's mean. Items alone in their label have no own mean: score NaN."""
    embeddings = as_embedding_matrix(embeddings, "embeddings")
    labels = np.asarray(labels)
    codes = to_codes(labels, "labels")
    n_labels = int(codes.max()) + 1
    if n_labels < 2:
        raise ValueError("Suspected label errors need at least 2 labels: there is nothing to confuse a label with.")
    label_of_code = np.empty(n_labels, dtype=labels.dtype)
    label_of_code[codes] = labels
    index = torch.from_numpy(codes)
    sums = torch.zeros(n_labels, embeddings.shape[1], dtype=torch.float64).index_add_(0, index, embeddings.double())
    counts = torch.bincount(index, minlength=n_labels).double()
    means = (sums / counts[:, None]).to(embeddings.dtype)
    score = np.empty(len(codes))
    suggested = np.empty(len(codes), dtype=np.int64)
    for rows in _chunks(len(codes)):
        items, own = embeddings[rows].double(), index[rows]
        others = (counts[own] - 1).clamp(min=1)[:, None]
        own_distance = (items - (sums[own] - items) / others).norm(dim=1).numpy()  # singletons: NaN below
        nearest = search_gallery(embeddings[rows], means, min(2, n_labels)).retrieved.numpy()
        first_other = np.where(nearest[:, 0] == codes[rows], nearest[:, 1], nearest[:, 0])
        other_distance = (items - means[first_other].double()).norm(dim=1).numpy()
        total = np.maximum(own_distance + other_distance, np.finfo(np.float64).tiny)
        score[rows], suggested[rows] = (own_distance - other_distance) / total, first_other
        report(progress, rows.stop / len(codes), f"compared {rows.stop}/{len(codes)} items with the label means")
    score[counts.numpy()[codes] < 2] = np.nan
    return score, label_of_code[suggested]


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
    for rows in _chunks(n_items):
        found = search_gallery(embeddings[rows], embeddings, width, exclude=np.arange(rows.start, rows.stop))
        positions[rows], distances[rows] = found.retrieved.numpy(), found.distances.numpy()
        report(progress, rows.stop / n_items, f"searched the neighbours of {rows.stop}/{n_items} items")
    return positions, distances


def suspected_label_errors(
    embeddings: torch.Tensor | np.ndarray,
    df: pd.DataFrame | Sequence | np.ndarray,
    k: int = DEFAULT_NEIGHBOURS,
    item_ids: Sequence[int] | np.ndarray | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every item ranked by how much closer it lies to another label than to its own, most suspicious first.

    Row i of `df` (an OML frame: `label`, `path`, optional `label_name`; or just the labels, then paths are
    empty) describes embedding i. `item_ids` restricts the analysis to some rows (e.g. one split): label means
    and neighbours then come from those rows only. Columns: item id, path (as in `df`), given label, suggested
    label, score (ties by item id; NaN, ranked last, for an item alone in its label), the number of its `k`
    nearest other items that carry the suggested label (`k=0` skips that search: the costly part on 100k
    items), plus the two labels' names when `df` names its labels. `DataFrame.to_csv` exports it.
    """
    frame = df if isinstance(df, pd.DataFrame) else pd.DataFrame({C.LABELS_COLUMN: np.asarray(df)})
    if k < 0:
        raise ValueError(f"k must be a number of neighbours (0 for none), got {k}.")
    if len(frame) != len(embeddings):
        raise ValueError(f"df has {len(frame)} rows but there are {len(embeddings)} embeddings; give one row per item.")
    ids = np.arange(len(frame)) if item_ids is None else np.asarray(item_ids, dtype=np.int64)
    if len(ids) < 2:
        raise ValueError(f"Suspected label errors need at least 2 items to compare, got {len(ids)}.")
    frame = frame.iloc[ids]
    labels = frame[C.LABELS_COLUMN].to_numpy()
    chosen = as_embedding_matrix(embeddings, "embeddings")[torch.from_numpy(ids)]
    score, suggested = class_mean_contrast(chosen, labels, scaled(progress, 0.0, 0.2 if k else 1.0))
    table = pd.DataFrame(
        {
            ITEM_ID: ids,
            PATH: frame[C.PATHS_COLUMN].to_numpy() if C.PATHS_COLUMN in frame.columns else "",
            GIVEN_LABEL: labels,
            SUGGESTED_LABEL: suggested,
            SCORE: score,
        }
    )
    if k:
        neighbours, _ = nearest_other_items(chosen, k, scaled(progress, 0.2, 1.0))
        table[NEIGHBOURS_AGREEING] = (labels[neighbours] == suggested[:, None]).sum(1)
    if C.LABEL_NAMES_COLUMN in frame.columns:
        names = dict(zip(labels.tolist(), label_names_of_frame(frame), strict=True))
        table[GIVEN_LABEL_NAME] = table[GIVEN_LABEL].map(names)
        table[SUGGESTED_LABEL_NAME] = table[SUGGESTED_LABEL].map(names)
    ranked = table.sort_values([SCORE, ITEM_ID], ascending=[False, True], kind="stable", na_position="last")
    return ranked.reset_index(drop=True)
