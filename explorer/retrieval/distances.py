"""Euclidean distances between embeddings: exact (elementwise) for a few pairs, matmul-fast and centred for many.

The chunked search screens candidates with a matrix product on embeddings centred on the gallery mean, then calls
`squared_distances_to` on the few survivors, so reported distances are as accurate as the naive formula while the
search stays matmul-fast. Centring matters: |q|^2 + |g|^2 - 2 q.g loses every digit of a small distance between
far-from-origin points (un-normalised features), and distances do not change under a shift.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BLOCK_ELEMENTS = 1 << 24  # elements of one work block (rows x cols, or rows x cols x dim): ~64 MB in float32


def centre_of(gallery: Tensor) -> Tensor:
    """Mean of the gallery rows, computed in float64 (zeros for an empty gallery)."""
    if len(gallery) == 0:
        return gallery.new_zeros(gallery.shape[1], dtype=torch.float64)
    return gallery.to(torch.float64).mean(0)


def centred(x: Tensor, centre: Tensor, dtype: torch.dtype) -> Tensor:
    """`x - centre` in `dtype`; subtracting in float64 first keeps the rounding relative to the (small) result."""
    return (x.to(torch.float64) - centre).to(dtype)


def pairwise_dist(x1: Tensor, x2: Tensor, p: float = 2) -> Tensor:
    """Distances between every row of `x1` [N, D] and every row of `x2` [M, D] -> [N, M] (the seed's helper).

    Euclidean (p=2): matrix products in float64 on embeddings centred on the mean of `x2`, a chunk of rows at a
    time, so it is fast and accurate even far from the origin. Other p: `torch.cdist` per chunk (elementwise).
    Materialises the full result: fine for tens of thousands of items; use `explorer.retrieval.retrieve` for more.
    """
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"pairwise_dist needs two 2-D tensors with the same number of columns, got shapes "
            f"{tuple(x1.shape)} and {tuple(x2.shape)}."
        )
    if p <= 0:
        raise ValueError(f"pairwise_dist needs a positive p (2 = Euclidean), got {p}.")
    out_dtype = torch.promote_types(x1.dtype, x2.dtype)
    if not out_dtype.is_floating_point:
        out_dtype = torch.get_default_dtype()
    n_rows, n_cols = x1.shape[0], x2.shape[0]
    if n_rows == 0 or n_cols == 0:
        return torch.zeros((n_rows, n_cols), dtype=out_dtype, device=x1.device)
    block_rows = max(1, _BLOCK_ELEMENTS // n_cols)
    if p != 2:
        a, b = x1.to(out_dtype), x2.to(out_dtype)
        return torch.cat([torch.cdist(a[i : i + block_rows], b, p=p) for i in range(0, n_rows, block_rows)])
    centre = centre_of(x2.detach())
    a, b = centred(x1, centre, torch.float64), centred(x2, centre, torch.float64)
    b_sq, b_t = b.pow(2).sum(1), b.T
    rows = []
    for start in range(0, n_rows, block_rows):
        block = a[start : start + block_rows]
        sq = torch.addmm(b_sq[None, :], block, b_t, alpha=-2) + block.pow(2).sum(1, keepdim=True)
        rows.append(sq.clamp(min=0).sqrt().to(out_dtype))
    return torch.cat(rows)


def squared_distances_to(queries: Tensor, gallery: Tensor, candidates: Tensor) -> Tensor:
    """Squared distances of each query [R, D] to its own candidates, gallery rows `candidates` [R, K] -> [R, K].

    Candidates are gathered one bounded block at a time and the difference is squared in place, so memory stays
    one [block, K, D] tensor (never [R, K, D]) and the values are those of `(g - q).pow(2).sum(-1)`.
    """
    (n_rows, n_candidates), dim = candidates.shape, gallery.shape[1]
    block_rows = max(1, _BLOCK_ELEMENTS // max(1, n_candidates * dim))
    out = queries.new_empty((n_rows, n_candidates))
    for start in range(0, n_rows, block_rows):
        stop = start + block_rows
        difference = gallery[candidates[start:stop]].sub_(queries[start:stop, None, :])
        out[start:stop] = difference.pow_(2).sum(-1)
    return out


def squared_distances_between(queries: Tensor, gallery: Tensor) -> Tensor:
    """Exact (elementwise) squared distances of every query [R, D] to every gallery row [K, D] -> [R, K], blocked."""
    (n_rows, dim), n_gallery = queries.shape, gallery.shape[0]
    block_cols = max(1, min(n_gallery, _BLOCK_ELEMENTS // max(1, dim)))
    block_rows = max(1, _BLOCK_ELEMENTS // (block_cols * max(1, dim)))
    out = queries.new_empty((n_rows, n_gallery))
    for row in range(0, n_rows, block_rows):
        for col in range(0, n_gallery, block_cols):
            diff = gallery[None, col : col + block_cols, :] - queries[row : row + block_rows, None, :]
            out[row : row + block_rows, col : col + block_cols] = diff.pow(2).sum(-1)
    return out
