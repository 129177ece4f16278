"""Pure retrieval and embedding metrics with the OML definitions (one function per metric, no state).

Inputs of the retrieval metrics, per query (row): `is_relevant` [Q, L] relevance flags of the retrieved list
padded with False, `n_gt` [Q] ground-truth counts and `n_retrieved` [Q] real list lengths (None = all L).
With k' = min(k, n_retrieved): cmc@k = any relevant in the first k'; precision@k = hits / min(n_gt, k');
map@k = (1 / hits) * sum_{i <= k'} (hits among first i / i) * rel_i. An empty list with n_gt = 0 scores 1 on all
three (nothing to find, nothing missed). A non-empty list with n_gt = 0 scores cmc = map = 0 and precision NaN
(undefined): reductions skip it and `count_queries_without_gt` says how many there were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from explorer.const import METRIC_NAME_SEPARATOR, OVERALL_CATEGORIES_KEY

MetricsDict = dict[Any, Any]
CMC, PRECISION, MAP, PCF, FNMR = "cmc", "precision", "map", "pcf", "fnmr@fmr"
PER_QUERY_METRICS = (CMC, PRECISION, MAP)
PCF_TOLERANCE = 1e-9  # explained-variance ratios equal to v up to float error count as <= v
NO_VARIANCE = 1e-12  # spread below this fraction of the largest |value| is float noise: no variance


def _check_top_k(top_k: Sequence[int], name: str) -> None:
    if not all(isinstance(k, int | np.integer) and not isinstance(k, bool) and k > 0 for k in top_k):
        raise ValueError(f"{name} must hold positive integers, got {tuple(top_k)}.")


def check_fractions(values: Sequence[float], name: str) -> None:
    if not all(0 <= v <= 1 for v in values):
        raise ValueError(f"{name} must hold fractions in [0, 1], got {tuple(values)}.")


def _prepare(is_relevant: Tensor, n_gt: Tensor, n_retrieved: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Float hit counts (cumulative, padded with a leading 0 column), flags, n_gt and list lengths."""
    is_relevant = torch.as_tensor(is_relevant, dtype=torch.bool)
    if is_relevant.ndim != 2:
        raise ValueError(f"is_relevant must be 2-D [queries, retrieved], got shape {tuple(is_relevant.shape)}.")
    n_gt = torch.as_tensor(n_gt, dtype=torch.long)
    if n_retrieved is None:
        n_retrieved = torch.full((is_relevant.shape[0],), is_relevant.shape[1], dtype=torch.long)
    n_retrieved = torch.as_tensor(n_retrieved, dtype=torch.long)
    columns = torch.arange(is_relevant.shape[1])
    is_relevant = is_relevant & (columns[None, :] < n_retrieved[:, None])  # padding never counts
    hits = torch.cat([torch.zeros(len(is_relevant), 1, dtype=torch.float64), is_relevant.double().cumsum(1)], dim=1)
    return hits, is_relevant, n_gt, n_retrieved


def _apply_empty_list_rule(values: Tensor, n_gt: Tensor, n_retrieved: Tensor) -> Tensor:
    """An empty retrieved list scores 1 when there was nothing to find, 0 otherwise."""
    empty = n_retrieved == 0
    return torch.where(empty, (n_gt == 0).to(values.dtype), values)


def calc_cmc(is_relevant: Tensor, n_gt: Tensor, n_retrieved: Tensor | None, top_k: Sequence[int]) -> dict[int, Tensor]:
    """cmc@k per query: 1 if any of the first k' retrieved items is relevant."""
    _check_top_k(top_k, "cmc top_k")
    hits, _, n_gt, n_retrieved = _prepare(is_relevant, n_gt, n_retrieved)
    width = hits.shape[1] - 1
    return {k: _apply_empty_list_rule((hits[:, min(k, width)] > 0).double(), n_gt, n_retrieved) for k in top_k}


def calc_precision(
    is_relevant: Tensor, n_gt: Tensor, n_retrieved: Tensor | None, top_k: Sequence[int]
) -> dict[int, Tensor]:
    """precision@k per query: hits among the first k' / min(n_gt, k'); NaN when n_gt = 0 and the list is not empty."""
    _check_top_k(top_k, "precision top_k")
    hits, _, n_gt, n_retrieved = _prepare(is_relevant, n_gt, n_retrieved)
    width = hits.shape[1] - 1
    out = {}
    for k in top_k:
        k_clipped = torch.clamp(n_retrieved, max=k)
        denominator = torch.minimum(n_gt, k_clipped).float()
        value = hits[:, min(k, width)] / denominator
        value = torch.where(denominator == 0, torch.full_like(value, float("nan")), value)
        out[k] = _apply_empty_list_rule(value, n_gt, n_retrieved)
    return out


def calc_map(is_relevant: Tensor, n_gt: Tensor, n_retrieved: Tensor | None, top_k: Sequence[int]) -> dict[int, Tensor]:
    """map@k per query: mean over the relevant items among the first k' of the precision (hits_i / i) at each one."""
    _check_top_k(top_k, "map top_k")
    hits, flags, n_gt, n_retrieved = _prepare(is_relevant, n_gt, n_retrieved)
    width = hits.shape[1] - 1
    positions = torch.arange(1, width + 1, dtype=torch.float64)
    precision_at_hits = hits[:, 1:] / positions[None, :] * flags.double()
    summed = torch.cat([torch.zeros(len(hits), 1, dtype=torch.float64), precision_at_hits.cumsum(1)], dim=1)
    out = {}
    for k in top_k:
        n_hits = hits[:, min(k, width)]
        value = torch.where(n_hits > 0, summed[:, min(k, width)] / n_hits.clamp(min=1), torch.zeros_like(n_hits))
        out[k] = _apply_empty_list_rule(value, n_gt, n_retrieved)
    return out


def count_queries_without_gt(n_gt: Tensor, n_retrieved: Tensor) -> int:
    """Queries whose precision is undefined: a non-empty retrieved list but no ground truth in the gallery."""
    return int(((torch.as_tensor(n_gt) == 0) & (torch.as_tensor(n_retrieved) > 0)).sum())


def calc_fnmr_at_fmr(pos_dist: Any, neg_dist: Any, fmr_vals: Sequence[float]) -> dict[float, float]:
    """fnmr@fmr: T = the `fmr` quantile (linear) of non-matching distances; fnmr = share of matching ones >= T.

    NaN (undefined) when there are no matching or no non-matching distances.
    """
    check_fractions(fmr_vals, "fmr_vals")
    pos, neg = np.asarray(pos_dist, dtype=np.float64), np.asarray(neg_dist, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return {fmr: float("nan") for fmr in fmr_vals}
    thresholds = np.quantile(neg, list(fmr_vals))
    return {fmr: float((pos >= t).mean()) for fmr, t in zip(fmr_vals, thresholds, strict=True)}


def calc_pcf(embeddings: Tensor, pcf_variance: Sequence[float]) -> dict[float, float]:
    """pcf@v = n / D with n = 1 + #components whose cumulative explained-variance ratio is <= v (PCA, centred).

    The component variances are the eigenvalues of the smaller of the D x D scatter matrix and the N x N Gram
    matrix of the centred rows (they share their non-zero eigenvalues), in float64 for exact ratios, not an SVD of
    the N x D matrix: the same values at a fraction of the cost whether N >> D or N << D.
    The eigenvalues come from numpy's LAPACK on one thread: multi-threaded `eigvalsh` of a 384 x 384 matrix (torch's
    MKL, or OpenBLAS) takes seconds instead of milliseconds when the cores are busy with other work.
    Without variance (fewer than two distinct items) no component counts, so n = 1 and pcf = 1 / D.
    """
    check_fractions(pcf_variance, "pcf_variance")
    x = torch.as_tensor(embeddings).detach().to(torch.float64)
    dim = x.shape[1]
    if dim == 0:
        raise ValueError("pcf needs embeddings with at least one dimension, got shape [N, 0].")
    if x.shape[0] < 2:
        return {v: 1 / dim for v in pcf_variance}
    centred = x - x.mean(0, keepdim=True)
    # descending like the singular values of the N x D matrix, and as many of them: min(N, D)
    with threadpool_limits(1, user_api="blas"):
        smaller = centred.T @ centred if x.shape[0] >= dim else centred @ centred.T
        eigenvalues = torch.from_numpy(np.linalg.eigvalsh(smaller.numpy()))
    variance = eigenvalues.flip(0).clamp(min=0)[: min(x.shape)]
    if float(variance.sum()) <= x.numel() * (NO_VARIANCE * float(x.abs().max())) ** 2:
        return {v: 1 / dim for v in pcf_variance}
    cumulative = torch.cumsum(variance, 0) / variance.sum()
    return {v: (1 + int((cumulative <= v + PCF_TOLERANCE).sum())) / dim for v in pcf_variance}


def calc_retrieval_metrics(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor | None = None,
    cmc_top_k: Sequence[int] = (5,),
    precision_top_k: Sequence[int] = (5,),
    map_top_k: Sequence[int] = (5,),
    query_categories: Sequence | np.ndarray | None = None,
) -> MetricsDict:
    """Unreduced per-query metrics, nested as {"OVERALL": {"cmc": {k: Tensor[Q]}, ...}, category: {...}}."""
    overall: MetricsDict = {}
    for name, function, top_k in (
        (CMC, calc_cmc, cmc_top_k),
        (PRECISION, calc_precision, precision_top_k),
        (MAP, calc_map, map_top_k),
    ):
        if top_k:
            overall[name] = function(is_relevant, n_gt, n_retrieved, top_k)
    nested: MetricsDict = {OVERALL_CATEGORIES_KEY: overall}
    if query_categories is not None:
        for category, mask in category_groups(query_categories):
            mask = torch.from_numpy(mask)
            nested[category] = {
                name: {k: values[mask] for k, values in per_k.items()} for name, per_k in overall.items()
            }
    return nested


def category_groups(categories: Sequence | np.ndarray | Tensor) -> list[tuple[Any, np.ndarray]]:
    """(category, item mask) per distinct category, sorted; categories keep their type (int stays int).

    Missing categories (None, NaN) belong to no group: those items count in OVERALL only.
    """
    if isinstance(categories, Tensor):
        categories = categories.detach().cpu().numpy()
    values = np.asarray(categories) if isinstance(categories, np.ndarray) else np.asarray(list(categories), object)
    codes, uniques = pd.factorize(pd.Series(values.reshape(-1)))
    keys = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    try:
        order = sorted(range(len(keys)), key=lambda i: keys[i])
    except TypeError:  # mixed types (e.g. "x" and 1): order by their text
        order = sorted(range(len(keys)), key=lambda i: (str(keys[i]), type(keys[i]).__name__))
    return [(keys[i], codes == i) for i in order]


def reduce_metrics(unreduced: Mapping) -> MetricsDict:
    """Means over queries (NaN entries, i.e. undefined precision, skipped); scalars are kept as floats."""
    out: MetricsDict = {}
    for key, value in unreduced.items():
        if isinstance(value, Mapping):
            out[key] = reduce_metrics(value)
        elif isinstance(value, Tensor | np.ndarray):
            values = torch.as_tensor(value, dtype=torch.float64)
            out[key] = float(torch.nanmean(values)) if values.numel() else float("nan")
        else:
            out[key] = float(value)
    return out


def flatten_metrics(nested: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"OVERALL": {"cmc": {1: v}}} -> {"OVERALL/cmc/1": v}."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{METRIC_NAME_SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        else:
            flat[name] = value
    return flat


def select_worst(values: Tensor, n: int) -> list[int]:
    """Positions of the `n` lowest values, ties by position; NaN (undefined) values are never selected."""
    values = torch.as_tensor(values, dtype=torch.float64)
    defined = torch.nonzero(~torch.isnan(values)).flatten()
    order = torch.sort(values[defined], stable=True).indices
    return defined[order][: max(0, n)].tolist()
