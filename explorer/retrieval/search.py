"""Memory-bounded nearest-neighbour search of queries against a gallery.

Per chunk of queries: screening scores |g|^2 - 2 q.g with one matrix product (the |q|^2 term does not change the
order), exclusions (itself, its sequence) set to +inf, `topk` of a few extra candidates, exact distances for
those candidates, and a stable sort by (distance, gallery position). Rows whose candidate list cannot prove the
tie order at its boundary (duplicates, near-ties within float error) are redone exactly from the scores row.
Memory: O(chunk x G + Q x top_n).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from explorer.retrieval.distances import squared_distances_to
from explorer.retrieval.results import NO_ITEM, RetrievalResults

CHUNK_BYTES = 128 * 1024 * 1024  # budget of one chunk x G score matrix
EXTRA_CANDIDATES = 8  # candidates beyond top_n, so boundary ties rarely need the exact fallback


def to_codes(values: Any, name: str, allow_missing: bool = False) -> np.ndarray:
    """Integer codes of any 1-D labels (ints, strings, tensors); missing values get unique codes if allowed."""
    codes, _ = pd.factorize(pd.Series(to_numpy(values).reshape(-1)), sort=True)
    missing = codes < 0
    if missing.any():
        if not allow_missing:
            raise ValueError(
                f"{name} has {int(missing.sum())} missing values (e.g. row {int(np.argmax(missing))}); "
                f"every item needs one."
            )
        codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes.astype(np.int64)


def to_numpy(values: Any) -> np.ndarray:
    """1-D values of any container (tensor, array, Series, list) as a numpy array."""
    if isinstance(values, Tensor):
        return values.detach().cpu().numpy()
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        return np.asarray(values)
    return np.asarray(list(values), dtype=object)


def _to_bool(values: Any, name: str, n: int) -> np.ndarray:
    array = np.asarray(pd.Series(to_numpy(values).reshape(-1)).fillna(False).astype(bool))
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} values but there are {n} embeddings; give one per item.")
    return array


@dataclass
class RetrievalInputs:
    """Validated search inputs: query/gallery embeddings and codes, ready to be searched chunk by chunk."""

    query_ids: np.ndarray
    gallery_ids: np.ndarray
    query_embeddings: Tensor
    gallery_embeddings: Tensor
    query_labels: np.ndarray
    gallery_labels: np.ndarray
    query_sequences: np.ndarray
    gallery_sequences: np.ndarray

    def n_gt(self) -> np.ndarray:
        """Ground-truth count per query from label counts, without any Q x G matrix."""
        n_labels = int(max(self.query_labels.max(initial=0), self.gallery_labels.max(initial=0))) + 1
        per_label = np.bincount(self.gallery_labels, minlength=n_labels)
        gallery_keys = self.gallery_sequences * n_labels + self.gallery_labels
        unique_keys, key_counts = np.unique(gallery_keys, return_counts=True)
        query_keys = self.query_sequences * n_labels + self.query_labels
        found = np.minimum(np.searchsorted(unique_keys, query_keys), max(len(unique_keys) - 1, 0))
        in_own_sequence = np.where(unique_keys[found] == query_keys, key_counts[found], 0) if len(unique_keys) else 0
        return per_label[self.query_labels] - in_own_sequence


def prepare_inputs(
    embeddings: Tensor | np.ndarray,
    labels: Any,
    is_query: Any,
    is_gallery: Any,
    sequence: Any | None = None,
) -> RetrievalInputs:
    """Check shapes and split into queries and gallery; `sequence` None means every item is its own sequence."""
    embeddings = torch.as_tensor(embeddings).detach().cpu()
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [N, D], got shape {tuple(embeddings.shape)}.")
    if not embeddings.is_floating_point() or embeddings.dtype in (torch.float16, torch.bfloat16):
        embeddings = embeddings.float()
    n = embeddings.shape[0]
    label_codes = to_codes(labels, "labels")
    if len(label_codes) != n:
        raise ValueError(f"labels has {len(label_codes)} values but there are {n} embeddings; give one per item.")
    query_mask, gallery_mask = _to_bool(is_query, "is_query", n), _to_bool(is_gallery, "is_gallery", n)
    if not query_mask.any() or not gallery_mask.any():
        raise ValueError(
            f"Retrieval needs at least one query and one gallery item, got {int(query_mask.sum())} queries and "
            f"{int(gallery_mask.sum())} gallery items; set is_query / is_gallery (both True for 1-vs-rest)."
        )
    if sequence is None:
        sequence_codes = np.arange(n, dtype=np.int64)
    else:
        sequence_codes = to_codes(sequence, "sequence", allow_missing=True)
        if len(sequence_codes) != n:
            raise ValueError(f"sequence has {len(sequence_codes)} values but there are {n} embeddings.")
    query_ids, gallery_ids = np.flatnonzero(query_mask), np.flatnonzero(gallery_mask)
    return RetrievalInputs(
        query_ids=query_ids,
        gallery_ids=gallery_ids,
        query_embeddings=embeddings[torch.from_numpy(query_ids)],
        gallery_embeddings=embeddings[torch.from_numpy(gallery_ids)],
        query_labels=label_codes[query_ids],
        gallery_labels=label_codes[gallery_ids],
        query_sequences=sequence_codes[query_ids],
        gallery_sequences=sequence_codes[gallery_ids],
    )


@dataclass
class ScoreChunk:
    """Screening scores of queries [start, stop): |g|^2 - 2 q.g, +inf where the pair is excluded."""

    start: int
    stop: int
    scores: Tensor  # [stop - start, G]; a view into a reused buffer, valid until the next chunk
    query_sq_norms: Tensor  # [stop - start]

    def squared_distances(self) -> Tensor:
        """Approximate squared distances of the chunk (matmul precision), clamped at 0; inf where excluded."""
        return (self.scores + self.query_sq_norms[:, None]).clamp_(min=0)


def default_chunk_size(n_gallery: int, itemsize: int = 4) -> int:
    return max(1, CHUNK_BYTES // max(1, n_gallery * itemsize))


def iter_score_chunks(inputs: RetrievalInputs, chunk_size: int | None = None) -> Iterator[ScoreChunk]:
    """Yield screening scores chunk by chunk, with self- and same-sequence pairs set to +inf."""
    gallery = inputs.gallery_embeddings
    n_queries, n_gallery = len(inputs.query_ids), len(inputs.gallery_ids)
    chunk_size = chunk_size or default_chunk_size(n_gallery, gallery.element_size())
    gallery_sq_norms = gallery.pow(2).sum(1)
    gallery_t = gallery.T.contiguous()
    sequence_order = np.argsort(inputs.gallery_sequences, kind="stable")
    sorted_sequences = inputs.gallery_sequences[sequence_order]
    buffer = gallery.new_empty((min(chunk_size, n_queries), n_gallery))
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        queries = inputs.query_embeddings[start:stop]
        scores = buffer[: stop - start]
        torch.addmm(gallery_sq_norms[None, :], queries, gallery_t, beta=1, alpha=-2, out=scores)
        rows, cols = _same_sequence_pairs(inputs.query_sequences[start:stop], sequence_order, sorted_sequences)
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = float("inf")
        yield ScoreChunk(start, stop, scores, queries.pow(2).sum(1))


def _same_sequence_pairs(
    query_sequences: np.ndarray, sequence_order: np.ndarray, sorted_sequences: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row, gallery position) of every gallery item sharing the query's sequence (itself included)."""
    starts = np.searchsorted(sorted_sequences, query_sequences, side="left")
    counts = np.searchsorted(sorted_sequences, query_sequences, side="right") - starts
    rows = np.repeat(np.arange(len(query_sequences)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, sequence_order[np.repeat(starts, counts) + offsets]


def _sort_by_distance_then_position(sq_dist: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """Sort each row by (squared distance, gallery position), so ties resolve to the lower position."""
    by_position = torch.argsort(positions, dim=1)
    positions, sq_dist = positions.gather(1, by_position), sq_dist.gather(1, by_position)
    by_distance = torch.sort(sq_dist, dim=1, stable=True).indices
    return sq_dist.gather(1, by_distance), positions.gather(1, by_distance)


def _screening_tolerance(inputs: RetrievalInputs, query_sq_norms: Tensor, gallery_sq_max: float) -> Tensor:
    """Bound on the float error of a screening squared distance (about D x eps x squared norms)."""
    eps = torch.finfo(inputs.gallery_embeddings.dtype).eps
    return 2 * inputs.gallery_embeddings.shape[1] * eps * (query_sq_norms + gallery_sq_max)


def _search_chunk(inputs: RetrievalInputs, chunk: ScoreChunk, top_n: int, gallery_sq_max: float):
    """Top `top_n` (squared distance, gallery position) of each query in the chunk, exact and tie-stable."""
    gallery = inputs.gallery_embeddings
    queries = inputs.query_embeddings[chunk.start : chunk.stop]
    n_candidates = min(gallery.shape[0], top_n + EXTRA_CANDIDATES)
    screen, candidates = torch.topk(chunk.scores, n_candidates, dim=1, largest=False, sorted=True)
    sq_dist = squared_distances_to(queries, gallery[candidates])
    sq_dist[torch.isinf(screen)] = float("inf")
    sq_dist, candidates = _sort_by_distance_then_position(sq_dist, candidates)
    sq_dist, candidates = sq_dist[:, :top_n], candidates[:, :top_n]
    if n_candidates < gallery.shape[0]:
        tolerance = _screening_tolerance(inputs, chunk.query_sq_norms, gallery_sq_max)
        boundary = screen[:, -1] + chunk.query_sq_norms - tolerance
        unsafe = torch.isfinite(boundary) & (boundary <= sq_dist[:, -1])
        for row in torch.nonzero(unsafe).flatten().tolist():
            limit = sq_dist[row, -1] - chunk.query_sq_norms[row] + tolerance[row]
            columns = torch.nonzero(chunk.scores[row] <= limit).flatten()  # ascending positions
            row_sq = squared_distances_to(queries[row : row + 1], gallery[columns][None])[0]
            order = torch.sort(row_sq, stable=True).indices[:top_n]
            if len(order) < top_n:  # cannot happen unless the error bound is violated; keep the screened answer
                continue
            sq_dist[row], candidates[row] = row_sq[order], columns[order]
    return sq_dist, candidates


def retrieve_prepared(inputs: RetrievalInputs, top_n: int, chunk_size: int | None = None) -> RetrievalResults:
    """Search every query of prepared inputs; see `retrieve`."""
    if top_n < 1:
        raise ValueError(f"top_n must be a positive number of gallery items to retrieve, got {top_n}.")
    n_queries, n_gallery = len(inputs.query_ids), len(inputs.gallery_ids)
    width = min(top_n, n_gallery)
    retrieved = torch.full((n_queries, width), NO_ITEM, dtype=torch.long)
    distances = torch.full((n_queries, width), float("inf"), dtype=torch.float32)
    gallery_sq_max = float(inputs.gallery_embeddings.pow(2).sum(1).max())
    for chunk in iter_score_chunks(inputs, chunk_size):
        sq_dist, positions = _search_chunk(inputs, chunk, width, gallery_sq_max)
        found = torch.isfinite(sq_dist)
        retrieved[chunk.start : chunk.stop] = torch.where(found, positions, NO_ITEM)
        distances[chunk.start : chunk.stop] = sq_dist.sqrt().float()
    found = retrieved != NO_ITEM
    query_labels = torch.from_numpy(inputs.query_labels)
    gallery_labels = torch.from_numpy(inputs.gallery_labels)
    is_relevant = found & (gallery_labels[retrieved.clamp(min=0)] == query_labels[:, None])
    return RetrievalResults(
        query_ids=torch.from_numpy(inputs.query_ids),
        gallery_ids=torch.from_numpy(inputs.gallery_ids),
        retrieved=retrieved,
        distances=distances,
        is_relevant=is_relevant,
        n_retrieved=found.sum(1),
        n_gt=torch.from_numpy(inputs.n_gt()),
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        query_sequences=torch.from_numpy(inputs.query_sequences),
        gallery_sequences=torch.from_numpy(inputs.gallery_sequences),
    )


def retrieve(
    embeddings: Tensor | np.ndarray,
    labels: Sequence | np.ndarray | Tensor,
    is_query: Sequence | np.ndarray | Tensor,
    is_gallery: Sequence | np.ndarray | Tensor,
    sequence: Sequence | np.ndarray | Tensor | None = None,
    top_n: int = 10,
    chunk_size: int | None = None,
) -> RetrievalResults:
    """The `top_n` nearest gallery items of every query by Euclidean distance, in chunks of `chunk_size` queries.

    An item never retrieves itself nor gallery items of its own `sequence`; ground truth = the remaining gallery
    items with the query's label; ties in distance go to the lower gallery position.
    """
    return retrieve_prepared(prepare_inputs(embeddings, labels, is_query, is_gallery, sequence), top_n, chunk_size)
