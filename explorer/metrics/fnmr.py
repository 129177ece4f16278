"""fnmr@fmr over all query-gallery pairs without holding the Q x G distance matrix.

The threshold is an exact linear-interpolation quantile of the non-matching distances, found in two streaming
passes: a histogram locates the two order statistics each quantile needs, a second pass collects only the values
in those bins. Matching distances (sum of n_gt values) are kept. Pairs excluded by the search (itself, its
sequence) are left out, as in OML. Distances come from float64 products on embeddings centred on the gallery mean,
rounded to float32 resolution (so equal distances stay equal), exact enough even for un-normalised features far
from the origin. Without matching or
without non-matching pairs fnmr@fmr is undefined: NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explorer.metrics.functional import check_fractions
from explorer.retrieval.search import RetrievalInputs, iter_score_chunks, screening_tolerance

HISTOGRAM_BINS = 1 << 16


def _chunk_distances(inputs: RetrievalInputs, chunk_size: int | None):
    """(non-matching distances, matching distances) of each chunk, excluded pairs dropped."""
    gallery_labels = torch.from_numpy(inputs.gallery_labels)
    query_labels = torch.from_numpy(inputs.query_labels)
    for chunk in iter_score_chunks(inputs, chunk_size, dtype=torch.float64):
        sq = chunk.squared_distances()
        allowed = torch.isfinite(sq)
        matching = query_labels[chunk.start : chunk.stop, None] == gallery_labels[None, :]
        # below the float64 error bound a distance is a duplicate's 0; float32 resolution keeps exact ties tied
        sq[sq <= screening_tolerance(inputs, chunk)[:, None]] = 0
        distances = sq.float().double().sqrt_()
        yield distances[allowed & ~matching], distances[allowed & matching]


def _quantiles_streaming(inputs: RetrievalInputs, fmr_vals: Sequence[float], chunk_size: int | None):
    """Exact np.quantile(neg, fmr_vals) (linear) of the non-matching distances (None if there are none), all
    matching distances and the number of non-matching ones."""
    low, high, n_neg, positives = float("inf"), float("-inf"), 0, []
    for neg, pos in _chunk_distances(inputs, chunk_size):
        positives.append(pos.double().numpy())
        if len(neg):
            low, high, n_neg = min(low, float(neg.min())), max(high, float(neg.max())), n_neg + len(neg)
    pos_all = np.concatenate(positives) if positives else np.zeros(0)
    if n_neg == 0 or len(pos_all) == 0:
        return None, pos_all, n_neg
    if low == high:
        return np.full(len(fmr_vals), low), pos_all, n_neg
    ranks = [(n_neg - 1) * fmr for fmr in fmr_vals]
    wanted = sorted({int(np.floor(r)) for r in ranks} | {min(int(np.floor(r)) + 1, n_neg - 1) for r in ranks})
    edges = torch.linspace(low, high, HISTOGRAM_BINS + 1, dtype=torch.float64)
    counts = torch.zeros(HISTOGRAM_BINS, dtype=torch.long)
    for neg, _ in _chunk_distances(inputs, chunk_size):
        bins = (torch.bucketize(neg.double(), edges, right=True) - 1).clamp_(0, HISTOGRAM_BINS - 1)
        counts += torch.bincount(bins, minlength=HISTOGRAM_BINS)
    cumulative = torch.cumsum(counts, 0)
    wanted_bins = sorted({int(torch.searchsorted(cumulative, rank, right=True)) for rank in wanted})
    collected = {b: [] for b in wanted_bins}
    for neg, _ in _chunk_distances(inputs, chunk_size):
        bins = (torch.bucketize(neg.double(), edges, right=True) - 1).clamp_(0, HISTOGRAM_BINS - 1)
        for b in wanted_bins:
            collected[b].append(neg[bins == b].double().numpy())
    order_statistics = {}
    for b in wanted_bins:
        values = np.sort(np.concatenate(collected[b]))
        before = int(cumulative[b - 1]) if b > 0 else 0
        for rank in wanted:
            if before <= rank < before + len(values):
                order_statistics[rank] = values[rank - before]
    thresholds = []
    for rank in ranks:
        lower = int(np.floor(rank))
        upper = min(lower + 1, n_neg - 1)
        fraction = rank - lower
        thresholds.append(order_statistics[lower] + (order_statistics[upper] - order_statistics[lower]) * fraction)
    return np.asarray(thresholds), pos_all, n_neg


def fnmr_at_fmr_with_pair_counts(
    inputs: RetrievalInputs, fmr_vals: Sequence[float], chunk_size: int | None = None
) -> tuple[dict[float, float], int, int]:
    """`calc_fnmr_at_fmr_streaming` plus the numbers of matching and non-matching pairs it was computed on."""
    check_fractions(fmr_vals, "fmr_vals")
    thresholds, positives, n_neg = _quantiles_streaming(inputs, fmr_vals, chunk_size)
    if thresholds is None:
        return {fmr: float("nan") for fmr in fmr_vals}, len(positives), n_neg
    values = {fmr: float((positives >= t).mean()) for fmr, t in zip(fmr_vals, thresholds, strict=True)}
    return values, len(positives), n_neg


def calc_fnmr_at_fmr_streaming(
    inputs: RetrievalInputs, fmr_vals: Sequence[float], chunk_size: int | None = None
) -> dict[float, float]:
    """fnmr@fmr over every allowed query-gallery pair of `inputs` (see module doc); memory O(chunk x G + n_pos)."""
    return fnmr_at_fmr_with_pair_counts(inputs, fmr_vals, chunk_size)[0]
