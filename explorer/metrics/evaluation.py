"""One call from embeddings to trusted numbers: retrieval, metrics (nested, flat, per query) and worst queries.

`evaluate_embeddings` is what the app and the CLI call with a dataset DataFrame; `evaluate_arrays` is the same on
plain arrays (what `EmbeddingMetrics` accumulates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from explorer import const as C
from explorer.metrics.fnmr import fnmr_at_fmr_with_pair_counts
from explorer.metrics.functional import (
    FNMR,
    PCF,
    MetricsDict,
    calc_pcf,
    calc_retrieval_metrics,
    category_groups,
    count_queries_without_gt,
    flatten_metrics,
    reduce_metrics,
    select_worst,
)
from explorer.retrieval.results import RetrievalResults
from explorer.retrieval.search import RetrievalInputs, prepare_inputs, retrieve_prepared, to_numpy


@dataclass
class EvaluationResult:
    """Metrics of one embedding set and the retrieval results behind them."""

    metrics: MetricsDict  # {"OVERALL": {"cmc": {1: float}, ...}, category: {...}}
    metrics_unreduced: MetricsDict  # same nesting, per-query tensors (pcf, fnmr@fmr stay scalars)
    retrieval: RetrievalResults
    query_categories: np.ndarray | None  # category of every query (row of `retrieval`), or None
    n_queries_without_gt: int  # precision undefined: non-empty list but no relevant gallery item
    inputs: RetrievalInputs = field(repr=False)  # kept to retrieve deeper lists for pictures
    notes: list[str] = field(default_factory=list)  # why some values are NaN (undefined), for the user

    @property
    def metrics_flat(self) -> dict[str, float]:
        return flatten_metrics(self.metrics)

    @property
    def n_queries(self) -> int:
        return len(self.retrieval)

    @property
    def n_gallery(self) -> int:
        return len(self.retrieval.gallery_ids)

    def per_query_values(self, metric_name: str) -> np.ndarray:
        """`[n_queries]` float64 values of a flat per-query key such as "OVERALL/map/5" or "<category>/cmc/1";
        NaN for queries outside that category and where the value is undefined."""
        unreduced = flatten_metrics(self.metrics_unreduced)
        if metric_name not in unreduced:
            per_query = [k for k, v in unreduced.items() if isinstance(v, Tensor)]
            raise KeyError(f"No per-query metric {metric_name!r}; choose one of {per_query}.")
        values = unreduced[metric_name]
        if not isinstance(values, Tensor):
            raise ValueError(f"{metric_name!r} is one number for the whole set, not per query.")
        values = values.double().numpy()
        category = metric_name.split(C.METRIC_NAME_SEPARATOR)[0]
        if category == C.OVERALL_CATEGORIES_KEY:
            return values
        masks = {str(key): mask for key, mask in category_groups(self.query_categories)}
        full = np.full(self.n_queries, np.nan)
        full[masks[category]] = values
        return full

    def worst_queries(self, metric_name: str, n_queries: int) -> list[int]:
        """Query positions with the lowest per-query value of a flat key (ties by position; undefined skipped)."""
        return select_worst(torch.from_numpy(self.per_query_values(metric_name)), n_queries)

    def retrieval_for_queries(self, query_positions: Sequence[int], top_n: int) -> RetrievalResults:
        """Rows of the given queries with at least `top_n` items, searching again (for them only) if needed."""
        positions = [int(q) for q in query_positions]
        bad = [q for q in positions if not 0 <= q < self.n_queries]
        if bad:
            raise IndexError(f"Query positions {bad} are out of range: there are {self.n_queries} queries.")
        if top_n <= self.retrieval.top_n or self.retrieval.top_n >= self.n_gallery:
            return self.retrieval.take(positions)
        unique = sorted(set(positions))
        subset = replace(
            self.inputs,
            query_ids=self.inputs.query_ids[unique],
            query_embeddings=self.inputs.query_embeddings[unique],
            query_labels=self.inputs.query_labels[unique],
            query_sequences=self.inputs.query_sequences[unique],
        )
        deeper = retrieve_prepared(subset, top_n)
        return deeper.take([unique.index(q) for q in positions])


def evaluate_arrays(
    embeddings: Tensor | np.ndarray,
    labels: Any,
    is_query: Any,
    is_gallery: Any,
    categories: Any | None = None,
    sequence: Any | None = None,
    cmc_top_k: Sequence[int] = (1, 5),
    precision_top_k: Sequence[int] = (5,),
    map_top_k: Sequence[int] = (5,),
    fmr_vals: Sequence[float] = (),
    pcf_variance: Sequence[float] = (0.5,),
    top_n: int | None = None,
    chunk_size: int | None = None,
) -> EvaluationResult:
    """Retrieve, then compute every metric. `top_n` (default: the largest k) sets how deep lists are kept."""
    inputs = prepare_inputs(embeddings, labels, is_query, is_gallery, sequence)
    depth = max([*cmc_top_k, *precision_top_k, *map_top_k, top_n or 1])
    retrieval = retrieve_prepared(inputs, depth, chunk_size)
    query_categories = None if categories is None else to_numpy(categories)[inputs.query_ids]
    unreduced = calc_retrieval_metrics(
        retrieval.is_relevant,
        retrieval.n_gt,
        retrieval.n_retrieved,
        cmc_top_k,
        precision_top_k,
        map_top_k,
        query_categories,
    )
    if pcf_variance:
        all_embeddings = torch.as_tensor(embeddings)
        unreduced[C.OVERALL_CATEGORIES_KEY][PCF] = calc_pcf(all_embeddings, pcf_variance)
        if categories is not None:
            for category, mask in category_groups(to_numpy(categories)):
                if category in unreduced:  # categories of queries only, as the retrieval metrics
                    unreduced[category][PCF] = calc_pcf(all_embeddings[torch.from_numpy(mask)], pcf_variance)
    notes = []
    if fmr_vals:
        fnmr, n_matching, n_non_matching = fnmr_at_fmr_with_pair_counts(inputs, fmr_vals, chunk_size)
        unreduced[C.OVERALL_CATEGORIES_KEY][FNMR] = fnmr
        if not n_matching or not n_non_matching:
            notes.append(
                f"fnmr@fmr is NaN (undefined): it needs matching and non-matching query-gallery pairs, and there "
                f"are {n_matching} matching and {n_non_matching} non-matching ones."
            )
    return EvaluationResult(
        metrics=reduce_metrics(unreduced),
        metrics_unreduced=unreduced,
        retrieval=retrieval,
        query_categories=query_categories,
        n_queries_without_gt=count_queries_without_gt(retrieval.n_gt, retrieval.n_retrieved),
        inputs=inputs,
        notes=notes,
    )


def evaluate_embeddings(embeddings: Tensor | np.ndarray, df: pd.DataFrame, **options: Any) -> EvaluationResult:
    """`evaluate_arrays` with labels, query/gallery flags, category and sequence taken from an OML-format df.

    Row i of `df` must describe embedding i (use the validation rows, in dataset order). `options` are those of
    `evaluate_arrays` (cmc_top_k, precision_top_k, map_top_k, fmr_vals, pcf_variance, top_n, chunk_size).
    """
    if len(df) != len(embeddings):
        raise ValueError(
            f"The DataFrame has {len(df)} rows but there are {len(embeddings)} embeddings; pass the rows the "
            f"embeddings were computed for, in the same order."
        )
    missing = [c for c in (C.LABELS_COLUMN, C.IS_QUERY_COLUMN, C.IS_GALLERY_COLUMN) if c not in df.columns]
    if missing:
        raise ValueError(f"The DataFrame lacks columns {missing} needed to evaluate retrieval.")
    categories = df[C.CATEGORIES_COLUMN].to_numpy() if C.CATEGORIES_COLUMN in df.columns else None
    sequence = df[C.SEQUENCE_COLUMN].to_numpy() if C.SEQUENCE_COLUMN in df.columns else None
    return evaluate_arrays(
        embeddings,
        df[C.LABELS_COLUMN].to_numpy(),
        df[C.IS_QUERY_COLUMN].to_numpy(),
        df[C.IS_GALLERY_COLUMN].to_numpy(),
        categories=categories,
        sequence=sequence,
        **options,
    )


__all__ = ["EvaluationResult", "evaluate_arrays", "evaluate_embeddings"]
