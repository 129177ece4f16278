"""`EmbeddingMetrics`: the seed's accumulator. Collect batches in any order, then metrics and retrieval pictures.

A thin stateful shell over `evaluate_arrays` (numbers) and `explorer.viz.retrieval_pictures` (pictures).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pprint import pprint
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explorer import const as C
from explorer.metrics.evaluation import EvaluationResult, evaluate_arrays
from explorer.metrics.functional import MetricsDict

BBox = tuple[int, int, int, int]


class EmbeddingMetrics:
    """Accumulates embeddings and labels batch by batch; metrics are computed once every sample is in."""

    def __init__(
        self,
        embeddings_key: str = C.EMBEDDINGS_KEY,
        labels_key: str = C.LABELS_KEY,
        is_query_key: str = C.IS_QUERY_KEY,
        is_gallery_key: str = C.IS_GALLERY_KEY,
        extra_keys: Iterable[str] = (),
        cmc_top_k: tuple[int, ...] = (5,),
        precision_top_k: tuple[int, ...] = (5,),
        map_top_k: tuple[int, ...] = (5,),
        fmr_vals: tuple[float, ...] = (),
        pcf_variance: tuple[float, ...] = (0.5,),
        categories_key: str | None = None,
        sequence_key: str | None = None,
        verbose: bool = True,
    ):
        self.embeddings_key, self.labels_key = embeddings_key, labels_key
        self.is_query_key, self.is_gallery_key = is_query_key, is_gallery_key
        self.extra_keys = tuple(extra_keys)
        self.cmc_top_k, self.precision_top_k, self.map_top_k = cmc_top_k, precision_top_k, map_top_k
        self.fmr_vals, self.pcf_variance = fmr_vals, pcf_variance
        self.categories_key, self.sequence_key = categories_key, sequence_key
        self.verbose = verbose
        self.num_samples: int | None = None
        self._storage: dict[str, list[Any]] = {}
        self._embeddings: Tensor | None = None  # [num_samples, D], filled by update_data
        self._filled = np.zeros(0, dtype=bool)
        self._next_position = 0
        self.evaluation: EvaluationResult | None = None

    # --- accumulation ---
    @property
    def _keys(self) -> tuple[str, ...]:
        optional = tuple(k for k in (self.categories_key, self.sequence_key) if k is not None)
        keys = (
            self.embeddings_key,
            self.labels_key,
            self.is_query_key,
            self.is_gallery_key,
            *self.extra_keys,
            *optional,
        )
        return tuple(dict.fromkeys(keys))

    def setup(self, num_samples: int) -> None:
        """Start a new epoch of `num_samples` items (call before the first `update_data`)."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}.")
        self.num_samples = int(num_samples)
        self._storage = {}
        self._embeddings = None
        self._filled = np.zeros(self.num_samples, dtype=bool)
        self._next_position = 0
        self.evaluation = None

    def update_data(self, batch: dict[str, Any], indices: Sequence[int] | Tensor | None = None) -> None:
        """Store one batch; rows go to `indices`, else to batch["idx"], else after the previous batch."""
        if self.num_samples is None:
            raise RuntimeError("Call EmbeddingMetrics.setup(num_samples=len(dataset)) before update_data().")
        missing = [k for k in self._keys if k not in batch]
        if missing:
            raise KeyError(
                f"The batch lacks keys {missing} that EmbeddingMetrics collects (it has {sorted(batch)}); add them "
                f"to the batch (e.g. batch['{self.embeddings_key}'] = model(batch['input_tensors'])) or change "
                f"the *_key / extra_keys arguments."
            )
        size = len(batch[self.embeddings_key])
        positions = self._positions(batch, indices, size)
        keys = self._keys + tuple(k for k in C.BBOX_COLUMNS if k in batch and k not in self._keys)
        self._store_embeddings(batch[self.embeddings_key], positions)
        for key in keys:
            if key == self.embeddings_key:
                continue
            values = _rows(batch[key], key, size)
            column = self._storage.setdefault(key, [None] * self.num_samples)
            for position, value in zip(positions, values, strict=True):
                column[position] = value
        self._filled[positions] = True
        self.evaluation = None

    def _store_embeddings(self, values: Any, positions: np.ndarray) -> None:
        """Rows of one [N, D] matrix, filled batch by batch: no per-row tensors to split and stack again."""
        matrix = (
            torch.stack([torch.as_tensor(v) for v in values])
            if isinstance(values, list | tuple)
            else torch.as_tensor(values)
        )
        matrix = matrix.detach().cpu()
        if self._embeddings is None:
            self._embeddings = matrix.new_empty((self.num_samples, *matrix.shape[1:]))
        dtype = torch.promote_types(self._embeddings.dtype, matrix.dtype)
        self._embeddings = self._embeddings.to(dtype)
        self._embeddings[torch.from_numpy(positions)] = matrix.to(dtype)

    def _positions(self, batch: dict[str, Any], indices: Sequence[int] | Tensor | None, size: int) -> np.ndarray:
        if indices is None and C.INDEX_KEY in batch:
            indices = batch[C.INDEX_KEY]
        if indices is None:
            positions = np.arange(self._next_position, self._next_position + size)
        else:
            positions = np.asarray(indices.tolist() if isinstance(indices, Tensor) else list(indices), dtype=np.int64)
        if len(positions) != size:
            raise ValueError(f"Got {len(positions)} indices for a batch of {size} embeddings.")
        if len(positions) and (positions.min() < 0 or positions.max() >= self.num_samples):
            raise IndexError(
                f"Batch positions {positions.min()}..{positions.max()} fall outside 0..{self.num_samples - 1}; "
                f"setup(num_samples=...) must be the dataset size."
            )
        self._next_position = int(positions.max()) + 1 if len(positions) else self._next_position
        return positions

    # --- metrics ---
    def compute_metrics(self) -> MetricsDict:
        """Retrieval + metrics on everything collected; returns the nested reduced metrics."""
        if self.num_samples is None or not self._filled.all():
            collected = int(self._filled.sum())
            missing = np.flatnonzero(~self._filled)[:10].tolist()
            raise RuntimeError(
                f"Metrics need every sample: collected {collected} of {self.num_samples} (missing positions "
                f"{missing}{'...' if self.num_samples and self.num_samples - collected > 10 else ''}). Call "
                f"setup(num_samples=len(dataset)) and update_data() with every batch of the loader first."
            )
        self.evaluation = evaluate_arrays(
            self._embeddings,
            _plain(self._storage[self.labels_key]),
            _plain(self._storage[self.is_query_key]),
            _plain(self._storage[self.is_gallery_key]),
            categories=None if self.categories_key is None else _plain(self._storage[self.categories_key]),
            sequence=None if self.sequence_key is None else _plain(self._storage[self.sequence_key]),
            cmc_top_k=self.cmc_top_k,
            precision_top_k=self.precision_top_k,
            map_top_k=self.map_top_k,
            fmr_vals=self.fmr_vals,
            pcf_variance=self.pcf_variance,
        )
        if self.verbose:
            print("\nMetrics:")
            pprint(self.evaluation.metrics)
            if self.evaluation.n_queries_without_gt:
                print(
                    f"{self.evaluation.n_queries_without_gt} queries have no relevant gallery item: "
                    f"their precision is undefined and left out of the precision means."
                )
            for note in self.evaluation.notes:
                print(note)
        return self.evaluation.metrics

    def _evaluated(self) -> EvaluationResult:
        if self.evaluation is None:
            self.compute_metrics()
        return self.evaluation

    @property
    def metrics(self) -> MetricsDict:
        """Nested reduced metrics, computed on first access."""
        return self._evaluated().metrics

    @property
    def metrics_unreduced(self) -> MetricsDict:
        """Nested per-query metrics, computed on first access."""
        return self._evaluated().metrics_unreduced

    @property
    def n_queries_without_gt(self) -> int:
        return self._evaluated().n_queries_without_gt

    def get_worst_queries_ids(self, metric_name: str, n_queries: int) -> list[int]:
        """Positions (among the queries) of the `n_queries` worst by a flat key such as "OVERALL/map/5"."""
        return self._evaluated().worst_queries(metric_name, n_queries)

    # --- pictures ---
    def get_plot_for_queries(self, query_ids: Sequence[int], n_instances: int, verbose: bool = True):
        """matplotlib Figure: a retrieval row per query (positions among the queries); needs "paths" collected."""
        from explorer.viz.retrieval_layout import build_retrieval_layout
        from explorer.viz.retrieval_render import render_matplotlib

        if C.PATHS_KEY not in self.extra_keys:
            raise ValueError(
                f"Pictures need image paths: create EmbeddingMetrics(extra_keys=('{C.PATHS_KEY}',)) so batches' "
                f"paths are collected."
            )
        evaluation = self._evaluated()
        retrieval = evaluation.retrieval_for_queries(query_ids, n_instances)
        layout = build_retrieval_layout(
            retrieval,
            paths=[str(p) for p in self._storage[C.PATHS_KEY]],
            bboxes=self._bboxes(),
            n_instances=n_instances,
            verbose=verbose,
        )
        return render_matplotlib(layout, pyplot=True)

    def get_plot_for_worst_queries(self, metric_name: str, n_queries: int, n_instances: int, verbose: bool = False):
        """`get_plot_for_queries` for the worst queries by `metric_name`."""
        query_ids = self.get_worst_queries_ids(metric_name, n_queries)
        return self.get_plot_for_queries(query_ids, n_instances=n_instances, verbose=verbose)

    def _bboxes(self) -> list[BBox | None] | None:
        if not all(k in self._storage for k in C.BBOX_COLUMNS):
            return None
        x1, x2, y1, y2 = (_plain(self._storage[k]) for k in C.BBOX_COLUMNS)
        return [None if -1 in box else tuple(int(v) for v in box) for box in zip(x1, y1, x2, y2, strict=True)]


def _rows(values: Any, key: str, size: int) -> list[Any]:
    """Split a collated batch value (tensor, array or list) into one value per row."""
    if isinstance(values, Tensor | np.ndarray):
        values = values.detach().cpu() if isinstance(values, Tensor) else values
        if len(values) != size:
            raise ValueError(f"batch[{key!r}] has {len(values)} rows, the embeddings {size}.")
        return list(values) if values.ndim > 1 else values.tolist()
    values = list(values)
    if len(values) != size:
        raise ValueError(f"batch[{key!r}] has {len(values)} rows, the embeddings {size}.")
    return values


def _plain(values: list[Any]) -> list[Any]:
    """Python scalars (0-d tensors/arrays unwrapped)."""
    return [v.item() if isinstance(v, Tensor | np.generic) else v for v in values]
