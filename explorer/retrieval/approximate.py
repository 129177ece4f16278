"""Approximate search with FAISS (optional `faiss-cpu`) for galleries beyond exact search (>= ~1M items).

Exact search (`explorer.retrieval.search`) stays the default everywhere: this is opt-in, and `recall_at_k` says
how much of the exact top-k an index finds. Results are `RetrievalResults` like the exact ones (exclusions,
relevance, n_gt), rows sorted by (distance, gallery position).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from explorer.retrieval.results import NO_ITEM, RetrievalResults
from explorer.retrieval.search import gallery_search_inputs, results_of

IndexKind = Literal["hnsw", "ivf"]
HNSW_LINKS = 32  # graph degree M of HNSW
HNSW_SEARCH_DEPTH = 128  # efSearch: candidates kept while searching, the recall / speed dial of HNSW
IVF_ITEMS_PER_LIST = 1024  # gallery items per inverted list (nlist = G / this, at least 1)
IVF_PROBED_LISTS = 32  # nprobe: lists visited per query, the recall / speed dial of IVF


def build_index(gallery: np.ndarray, kind: IndexKind = "hnsw", seed: int = 0) -> Any:
    """A FAISS L2 index over `gallery` [G, D] float32: HNSW (no training) or IVF-Flat (k-means on the gallery)."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError("Approximate search needs FAISS: pip install faiss-cpu") from error
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    dim = gallery.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_LINKS)
        index.hnsw.efSearch = HNSW_SEARCH_DEPTH
    elif kind == "ivf":
        n_lists = max(1, len(gallery) // IVF_ITEMS_PER_LIST)
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, n_lists)
        index.cp.seed = seed
        index.train(gallery)
        index.nprobe = min(IVF_PROBED_LISTS, n_lists)
    else:
        raise ValueError(f"Unknown index kind {kind!r}; choose 'hnsw' or 'ivf'.")
    index.add(gallery)
    return index


def approximate_search(
    queries: Tensor | np.ndarray,
    gallery: Tensor | np.ndarray,
    top_n: int,
    kind: IndexKind = "hnsw",
    index: Any | None = None,
    gallery_ids: np.ndarray | None = None,
    labels: tuple[Any, Any] | None = None,
    exclude: Sequence[int] | np.ndarray | None = None,
) -> RetrievalResults:
    """`search_gallery` through a FAISS index (built here unless `index`, from `build_index(gallery, kind)`, is
    given): the approximate `top_n` nearest gallery items of every query, arguments as in `search_gallery`."""
    if top_n < 1:
        raise ValueError(f"top_n must be a positive number of gallery items to retrieve, got {top_n}.")
    inputs = gallery_search_inputs(queries, gallery, gallery_ids, labels, exclude)
    gallery_matrix = inputs.gallery_embeddings.float().numpy()
    index = build_index(gallery_matrix, kind) if index is None else index
    width = min(top_n, len(gallery_matrix))
    excluded = inputs.query_sequences < len(gallery_matrix)  # a query's sequence code names its excluded item
    depth = min(width + int(excluded.any()), len(gallery_matrix))
    sq_dist, positions = index.search(np.ascontiguousarray(inputs.query_embeddings.float().numpy()), depth)
    sq_dist, positions = torch.from_numpy(sq_dist).double(), torch.from_numpy(positions)
    own = torch.from_numpy(np.where(excluded, inputs.query_sequences, NO_ITEM))
    dropped = (positions == own[:, None]) | (positions < 0)
    sq_dist = sq_dist.masked_fill(dropped, float("inf"))
    by_position = torch.argsort(positions.masked_fill(dropped, len(gallery_matrix)), dim=1)
    sq_dist, positions = sq_dist.gather(1, by_position), positions.gather(1, by_position)
    order = torch.sort(sq_dist, dim=1, stable=True).indices[:, :width]
    sq_dist, positions = sq_dist.gather(1, order), positions.gather(1, order)
    found = torch.isfinite(sq_dist)
    retrieved = torch.where(found, positions, NO_ITEM)
    return results_of(inputs, retrieved, sq_dist.clamp(min=0).sqrt().float())


def recall_at_k(approx: RetrievalResults, exact: RetrievalResults, k: int | None = None) -> float:
    """Share of the exact top-k gallery items (per query, then averaged) that the approximate top-k also holds."""
    k = min(k or exact.top_n, exact.top_n, approx.top_n)
    truth, found = exact.retrieved[:, :k], approx.retrieved[:, :k]
    real = truth != NO_ITEM
    hits = ((truth[:, :, None] == found[:, None, :]) & real[:, :, None]).any(2)
    return float(hits.sum()) / max(int(real.sum()), 1)
