"""Euclidean distances between embeddings, computed the exact (elementwise) way.

The chunked search screens candidates with a matrix product and then calls `squared_distances_to` on the few
survivors, so reported distances are as accurate as the naive formula while the search stays matmul-fast.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BLOCK_ELEMENTS = 1 << 24  # elements of one (rows x cols x dim) difference block: ~64 MB in float32


def pairwise_dist(x1: Tensor, x2: Tensor, p: int = 2) -> Tensor:
    """Distances between every row of `x1` [N, D] and every row of `x2` [M, D] -> [N, M] (the seed's helper).

    Materialises the full matrix: fine for a few thousand items; use `explorer.retrieval.retrieve` for more.
    """
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"pairwise_dist needs two 2-D tensors with the same number of columns, got shapes "
            f"{tuple(x1.shape)} and {tuple(x2.shape)}."
        )
    rows = []
    block_rows = max(1, _BLOCK_ELEMENTS // max(1, x2.shape[0] * x2.shape[1]))
    for start in range(0, x1.shape[0], block_rows):
        diff = x1[start : start + block_rows, None, :] - x2[None, :, :]
        rows.append(diff.abs().pow(p).sum(-1).pow(1.0 / p))
    return torch.cat(rows) if rows else x1.new_zeros((0, x2.shape[0]))


def squared_distances_to(queries: Tensor, candidates: Tensor) -> Tensor:
    """Squared distances of each query [R, D] to its own candidates [R, K, D] -> [R, K], in bounded blocks."""
    n_rows, n_candidates, dim = candidates.shape
    block_rows = max(1, _BLOCK_ELEMENTS // max(1, n_candidates * dim))
    out = queries.new_empty((n_rows, n_candidates))
    for start in range(0, n_rows, block_rows):
        stop = start + block_rows
        out[start:stop] = (candidates[start:stop] - queries[start:stop, None, :]).pow(2).sum(-1)
    return out
