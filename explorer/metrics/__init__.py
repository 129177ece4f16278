"""Retrieval and embedding metrics (OML definitions): pure `calc_*` functions, evaluation, `EmbeddingMetrics`."""

from explorer.metrics.embedding_metrics import EmbeddingMetrics
from explorer.metrics.evaluation import EvaluationResult, evaluate_arrays, evaluate_embeddings
from explorer.metrics.fnmr import calc_fnmr_at_fmr_streaming
from explorer.metrics.functional import (
    calc_cmc,
    calc_fnmr_at_fmr,
    calc_map,
    calc_pcf,
    calc_precision,
    calc_retrieval_metrics,
    count_queries_without_gt,
    flatten_metrics,
    reduce_metrics,
    select_worst,
)

__all__ = [
    "EmbeddingMetrics",
    "EvaluationResult",
    "calc_cmc",
    "calc_fnmr_at_fmr",
    "calc_fnmr_at_fmr_streaming",
    "calc_map",
    "calc_pcf",
    "calc_precision",
    "calc_retrieval_metrics",
    "count_queries_without_gt",
    "evaluate_arrays",
    "evaluate_embeddings",
    "flatten_metrics",
    "reduce_metrics",
    "select_worst",
]
