"""Memory-bounded nearest-neighbour search of queries against a gallery.

Per chunk of queries: screening scores |g|^2 - 2 q.g with one matrix product on embeddings centred on the gallery
mean (the |q|^2 term does not change the order), exclusions (itself, its sequence) set to +inf, `topk` of a few
extra candidates, exact distances for those candidates, and a stable sort by (distance, gallery position). Rows whose candidate list cannot prove the
tie order at its boundary (duplicates, near-ties within float error) are redone exactly, all at once per chunk.
Memory: O(chunk x G + Q x top_n). With a GPU and a large search, the screening products and `topk` run there
(`search_device`); candidates' exact distances and the tie-break stay on the CPU, so results are the same.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from explorer.retrieval.distances import centre_of, centred, squared_distances_between, squared_distances_to
from explorer.retrieval.results import NO_ITEM, RetrievalResults

CHUNK_BYTES = 128 * 1024 * 1024  # budget of one chunk x G score matrix
EXTRA_CANDIDATES = 8  # candidates beyond top_n, so boundary ties rarely need the exact fallback
FALLBACK_ELEMENTS = 1 << 24  # rows x G of one block of the exact tie-break
CUDA_MIN_WORK = 1 << 33  # Q x G x D multiply-adds from which the screening products repay the copies to a GPU


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


def as_embedding_matrix(values: Tensor | np.ndarray, name: str) -> Tensor:
    """A 2-D CPU float tensor [N, D] (float32 unless given float64), or a message naming `name`'s shape."""
    matrix = torch.as_tensor(values).detach().cpu()
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {tuple(matrix.shape)}.")
    if not matrix.is_floating_point() or matrix.dtype in (torch.float16, torch.bfloat16):
        matrix = matrix.float()
    return matrix


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

    @functools.cached_property
    def gallery_sq_norms(self) -> Tensor:
        """Squared norm of every gallery row, computed once: the screening products of `gallery_ranks` reuse it."""
        return self.gallery_embeddings.pow(2).sum(1)


def prepare_inputs(
    embeddings: Tensor | np.ndarray,
    labels: Any,
    is_query: Any,
    is_gallery: Any,
    sequence: Any | None = None,
) -> RetrievalInputs:
    """Check shapes and split into queries and gallery; `sequence` None means every item is its own sequence."""
    embeddings = as_embedding_matrix(embeddings, "embeddings")
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
    """Screening scores of queries [start, stop): |g|^2 - 2 q.g on centred embeddings, +inf where excluded."""

    start: int
    stop: int
    scores: Tensor  # [stop - start, G]; a view into a reused buffer, valid until the next chunk
    query_sq_norms: Tensor  # [stop - start] of the centred queries
    gallery_sq_max: float  # largest squared norm of a centred gallery item

    def squared_distances(self) -> Tensor:
        """Squared distances of the chunk at the chunk's precision, clamped at 0; inf where excluded."""
        return (self.scores + self.query_sq_norms[:, None]).clamp_(min=0)


def default_chunk_size(n_gallery: int, itemsize: int = 4) -> int:
    return max(1, CHUNK_BYTES // max(1, n_gallery * itemsize))


def search_device(inputs: RetrievalInputs) -> torch.device:
    """The GPU when one is present and the search is large enough to repay copying the gallery, else the CPU."""
    work = len(inputs.query_ids) * len(inputs.gallery_ids) * inputs.gallery_embeddings.shape[1]
    return torch.device("cuda") if work >= CUDA_MIN_WORK and torch.cuda.is_available() else torch.device("cpu")


def _screening_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """float64 instead of float32 where the user enabled TF32 products: too coarse for `screening_tolerance`."""
    if device.type == "cuda" and dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return torch.float64
    return dtype


def iter_score_chunks(
    inputs: RetrievalInputs,
    chunk_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[ScoreChunk]:
    """Yield screening scores chunk by chunk, with self- and same-sequence pairs set to +inf.

    Embeddings are centred on the gallery mean first (distances do not change), so scores keep their precision
    for features far from the origin; `dtype` (default: the embeddings') sets the precision of the products, and
    `device` where they run (scores live there; the other fields on the CPU).
    """
    device = torch.device(device)
    dtype = _screening_dtype(dtype or inputs.gallery_embeddings.dtype, device)
    centre = centre_of(inputs.gallery_embeddings)
    gallery = centred(inputs.gallery_embeddings, centre, dtype).to(device)
    n_queries, n_gallery = len(inputs.query_ids), len(inputs.gallery_ids)
    chunk_size = chunk_size or default_chunk_size(n_gallery, gallery.element_size())
    gallery_sq_norms = gallery.pow(2).sum(1)
    gallery_sq_max = float(gallery_sq_norms.max().cpu()) if n_gallery else 0.0
    gallery_t = gallery.T.contiguous()
    del gallery
    sequence_order = np.argsort(inputs.gallery_sequences, kind="stable")
    sorted_sequences = inputs.gallery_sequences[sequence_order]
    buffer = gallery_t.new_empty((min(chunk_size, n_queries), n_gallery))
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        queries = centred(inputs.query_embeddings[start:stop], centre, dtype)
        scores = buffer[: stop - start]
        torch.addmm(gallery_sq_norms[None, :], queries.to(device), gallery_t, beta=1, alpha=-2, out=scores)
        rows, cols = _same_sequence_pairs(inputs.query_sequences[start:stop], sequence_order, sorted_sequences)
        scores[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)] = float("inf")
        yield ScoreChunk(start, stop, scores, queries.pow(2).sum(1), gallery_sq_max)


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


def screening_tolerance(inputs: RetrievalInputs, chunk: ScoreChunk) -> Tensor:
    """Bound on |screening - exact| squared distance: products, centring and the exact sum, ~D x eps x norms."""
    eps = torch.finfo(chunk.scores.dtype).eps
    dim = inputs.gallery_embeddings.shape[1]
    return (2 * dim + 2) * eps * (chunk.query_sq_norms + chunk.gallery_sq_max)


class ExactTieBreak:
    """Exact top-n of rows whose screened candidates cannot prove the order at their boundary (ties, near-ties).

    All such rows of a chunk are redone at once: every gallery item within the error bound of the row's n-th
    distance gets an exact distance, then rows are sorted by (distance, gallery position). Exact distances are
    computed once per distinct gallery vector, so collapsed or duplicated embeddings cost little.
    """

    def __init__(self, inputs: RetrievalInputs):
        self.inputs = inputs
        self._distinct: tuple[Tensor, Tensor] | None = None

    def distinct_gallery(self) -> tuple[Tensor, Tensor]:
        """(distinct gallery vectors [U, D], index of each gallery item's vector [G]), computed on first use."""
        if self._distinct is None:
            self._distinct = torch.unique(self.inputs.gallery_embeddings, dim=0, return_inverse=True)
        return self._distinct

    def top_n(self, queries: Tensor, scores: Tensor, limit: Tensor, top_n: int) -> tuple[Tensor, Tensor, Tensor]:
        """For queries [R, D] with scores [R, G]: (squared distances, positions) [R, top_n] and rows solved [R]."""
        is_candidate = scores <= limit[:, None]
        distinct, vector_of = self.distinct_gallery()
        needed = torch.unique(vector_of[is_candidate.any(0)])
        if len(needed) == 0:  # only if the error bound is violated: nothing to redo
            unsolved = torch.zeros(len(queries), dtype=torch.bool)
            return scores[:, :top_n], torch.zeros_like(scores[:, :top_n], dtype=torch.long), unsolved
        column_of_vector = torch.zeros(len(distinct), dtype=torch.long)
        column_of_vector[needed] = torch.arange(len(needed))
        exact = squared_distances_between(queries, distinct[needed])
        sq = exact[:, column_of_vector[vector_of]].masked_fill_(~is_candidate, float("inf"))
        nth = torch.topk(sq, top_n, dim=1, largest=False).values[:, -1:]
        below, tied = sq < nth, sq == nth
        keep = below | (tied & (tied.cumsum(1) <= top_n - below.sum(1, keepdim=True)))
        positions = torch.nonzero(keep)[:, 1].reshape(len(queries), top_n)  # ascending gallery positions
        sq = sq.gather(1, positions)
        order = torch.sort(sq, dim=1, stable=True).indices
        return sq.gather(1, order), positions.gather(1, order), torch.isfinite(nth[:, 0])


def _search_chunk(inputs: RetrievalInputs, chunk: ScoreChunk, top_n: int, tie_break: ExactTieBreak):
    """Top `top_n` (squared distance, gallery position) of each query in the chunk, exact and tie-stable."""
    gallery = inputs.gallery_embeddings
    queries = inputs.query_embeddings[chunk.start : chunk.stop]
    n_candidates = min(gallery.shape[0], top_n + EXTRA_CANDIDATES)
    screen, candidates = (t.cpu() for t in torch.topk(chunk.scores, n_candidates, dim=1, largest=False, sorted=True))
    sq_dist = squared_distances_to(queries, gallery, candidates)
    sq_dist[torch.isinf(screen)] = float("inf")
    sq_dist, candidates = _sort_by_distance_then_position(sq_dist, candidates)
    sq_dist, candidates = sq_dist[:, :top_n], candidates[:, :top_n]
    if n_candidates < gallery.shape[0]:
        tolerance = screening_tolerance(inputs, chunk)
        boundary = screen[:, -1] + chunk.query_sq_norms - tolerance
        unsafe = torch.nonzero(torch.isfinite(boundary) & (boundary <= sq_dist[:, -1])).flatten()
        block = max(1, FALLBACK_ELEMENTS // gallery.shape[0])
        for rows in torch.split(unsafe, block):
            limit = sq_dist[rows, -1] - chunk.query_sq_norms[rows] + tolerance[rows]
            scores = chunk.scores[rows.to(chunk.scores.device)].cpu()
            exact, positions, solved = tie_break.top_n(queries[rows], scores, limit, top_n)
            # unsolved rows cannot happen unless the error bound is violated: they keep the screened answer
            sq_dist[rows[solved]], candidates[rows[solved]] = exact[solved].to(sq_dist.dtype), positions[solved]
    return sq_dist, candidates


def retrieve_prepared(
    inputs: RetrievalInputs, top_n: int, chunk_size: int | None = None, device: torch.device | str | None = None
) -> RetrievalResults:
    """Search every query of prepared inputs; see `retrieve`. `device` runs the screening products there (default:
    `search_device`, the GPU for large searches when present); results do not depend on it."""
    if top_n < 1:
        raise ValueError(f"top_n must be a positive number of gallery items to retrieve, got {top_n}.")
    n_queries, n_gallery = len(inputs.query_ids), len(inputs.gallery_ids)
    width = min(top_n, n_gallery)
    retrieved = torch.full((n_queries, width), NO_ITEM, dtype=torch.long)
    distances = torch.full((n_queries, width), float("inf"), dtype=torch.float32)
    tie_break = ExactTieBreak(inputs)
    for chunk in iter_score_chunks(inputs, chunk_size, device=device or search_device(inputs)):
        sq_dist, positions = _search_chunk(inputs, chunk, width, tie_break)
        found = torch.isfinite(sq_dist)
        retrieved[chunk.start : chunk.stop] = torch.where(found, positions, NO_ITEM)
        distances[chunk.start : chunk.stop] = sq_dist.sqrt().float()
    return results_of(inputs, retrieved, distances)


def results_of(inputs: RetrievalInputs, retrieved: Tensor, distances: Tensor) -> RetrievalResults:
    """`RetrievalResults` of found gallery positions [Q, W] (NO_ITEM padding) and their distances, whatever the
    search (exact here, approximate in `explorer.retrieval.approximate`): relevance, n_gt, labels, sequences."""
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


def gallery_ranks(
    inputs: RetrievalInputs, query_position: int, gallery_positions: Sequence[int]
) -> list[tuple[int, float]]:
    """Where one query's full retrieval list would put some gallery items: (rank from 1, distance) of each.

    The same exact distances and tie order as `retrieve` (elementwise in the embeddings' precision, ties to the
    lower gallery position; the query itself and its sequence excluded), without sorting the gallery: a matrix
    product screens every item, and only those within its error bound of an item's own distance are measured
    exactly.
    """
    gallery, query = inputs.gallery_embeddings, inputs.query_embeddings[query_position]
    query_sq = float(query.pow(2).sum())
    # The element-wise work over the gallery runs in numpy, on one thread: torch splits each op on >32k elements
    # over its threads, and on busy cores waiting for them costs ~15 ms per op (a worst-queries page: 0.1 -> 2 s).
    gallery_sq = inputs.gallery_sq_norms.numpy()
    screen = gallery_sq - 2 * (gallery @ query).numpy() + query_sq
    dim, eps = gallery.shape[1], torch.finfo(gallery.dtype).eps
    margin = 2 * (2 * dim + 2) * eps * (query_sq + float(gallery_sq.max()))  # twice one item's bound
    allowed = inputs.gallery_sequences != inputs.query_sequences[query_position]
    allowed &= inputs.gallery_ids != inputs.query_ids[query_position]
    ranks = []
    for position in gallery_positions:
        near = np.flatnonzero(np.abs(screen - screen[position]) <= margin)  # holds `position` itself
        exact = squared_distances_between(query[None], gallery[torch.from_numpy(near)])[0].numpy()
        own = exact[near == position][0]
        closer_near = (exact < own) | ((exact == own) & (near < position))
        surely_closer = screen < screen[position] - margin
        closer = np.count_nonzero(surely_closer & allowed) + np.count_nonzero(closer_near & allowed[near])
        ranks.append((int(closer) + 1, float(np.sqrt(own))))
    return ranks


def search_gallery(
    queries: Tensor | np.ndarray,
    gallery: Tensor | np.ndarray,
    top_n: int,
    gallery_ids: np.ndarray | None = None,
    labels: tuple[Any, Any] | None = None,
    exclude: Sequence[int] | np.ndarray | None = None,
) -> RetrievalResults:
    """The `top_n` nearest gallery items of new query embeddings (an uploaded image, any dataset item, a
    selection), with the same exact, tie-aware search as evaluation.

    `gallery_ids` name the gallery items in the results (default: their positions); `labels` = (query labels,
    gallery labels) marks relevance (without them nothing is relevant: the query's label is unknown);
    `exclude[q]` is a gallery position query q must never retrieve (the item itself), -1 for none.
    """
    return retrieve_prepared(gallery_search_inputs(queries, gallery, gallery_ids, labels, exclude), top_n)


def gallery_search_inputs(
    queries: Tensor | np.ndarray,
    gallery: Tensor | np.ndarray,
    gallery_ids: np.ndarray | None = None,
    labels: tuple[Any, Any] | None = None,
    exclude: Sequence[int] | np.ndarray | None = None,
) -> RetrievalInputs:
    """Checked `RetrievalInputs` of a query set against a separate gallery; arguments as in `search_gallery`."""
    queries = as_embedding_matrix(torch.as_tensor(queries).reshape(-1, np.shape(queries)[-1]), "queries")
    gallery = as_embedding_matrix(gallery, "gallery")
    queries = queries.to(gallery.dtype)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} dimensions but the gallery has {gallery.shape[1]}.")
    n_queries, n_gallery = len(queries), len(gallery)
    if labels is None:  # two distinct codes: no gallery item shares the query's label
        query_labels, gallery_labels = np.ones(n_queries, np.int64), np.zeros(n_gallery, np.int64)
    else:
        codes = to_codes(np.concatenate([to_numpy(labels[0]), to_numpy(labels[1])]), "labels")
        query_labels, gallery_labels = codes[:n_queries], codes[n_queries:]
    # sequences do the exclusion: a query shares its code with the gallery item it must not retrieve
    excluded = np.full(n_queries, -1) if exclude is None else np.asarray(exclude, dtype=np.int64)
    query_sequences = np.where(excluded >= 0, excluded, n_gallery + np.arange(n_queries))
    return RetrievalInputs(
        query_ids=np.arange(n_queries),
        gallery_ids=np.arange(n_gallery) if gallery_ids is None else np.asarray(gallery_ids, dtype=np.int64),
        query_embeddings=queries,
        gallery_embeddings=gallery,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        query_sequences=query_sequences,
        gallery_sequences=np.arange(n_gallery),
    )


class KnnGraph(NamedTuple):
    """The k nearest items of every item, itself first (umap-learn's `precomputed_knn` layout)."""

    indices: np.ndarray  # [N, k] int64 item positions; column 0 is the item itself
    distances: np.ndarray  # [N, k] float32 Euclidean distances; column 0 is 0


def knn_graph(embeddings: Tensor | np.ndarray, n_neighbors: int) -> KnnGraph:
    """Exact `n_neighbors` nearest items of every item among all items (itself included, first), by the same
    chunked, tie-stable search as evaluation: UMAP takes it instead of building its approximate graph."""
    embeddings = as_embedding_matrix(embeddings, "embeddings")
    n_items = len(embeddings)
    width = min(n_neighbors, n_items)
    if width < 1:
        raise ValueError(f"A kNN graph needs at least one item and n_neighbors >= 1, got {n_items} and {n_neighbors}.")
    own = np.arange(n_items)
    indices, distances = own[:, None], np.zeros((n_items, 1), np.float32)
    if width > 1:
        others = search_gallery(embeddings, embeddings, width - 1, exclude=own)
        indices = np.concatenate([indices, others.retrieved.numpy()], axis=1)
        distances = np.concatenate([distances, others.distances.numpy()], axis=1)
    return KnnGraph(indices.astype(np.int64), distances.astype(np.float32))
