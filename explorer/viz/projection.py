"""2-D projections of embeddings (PCA, UMAP) and their interactive plotly figure.

PCA is instant; UMAP takes seconds. Its first call in a process compiles numba code: umap-learn's kernels are
compiled once and kept in numba's on-disk cache (`_cache_umap_compilation`), and a kNN graph from our exact search
(`explorer.retrieval.search.knn_graph`) spares pynndescent's approximate one, so a fresh process projects 10k
items in seconds. Results are cached in memory and on disk, keyed by the embeddings' bytes, the parameters and
the kNN graph given (the app computes its default workspace's UMAP in the background at start-up).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative
from scipy.sparse.linalg import svds
from threadpoolctl import threadpool_limits

from explorer.const import LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN
from explorer.progress import Progress
from explorer.retrieval.search import KnnGraph, knn_graph

ProjectionMethod = Literal["umap", "pca"]
PROJECTION_METHODS: tuple[ProjectionMethod, ...] = ("umap", "pca")

UMAP_N_NEIGHBORS = 15
UMAP_MIN_DIST = 0.1
UMAP_MIN_ITEMS = 4  # umap-learn's spectral initialisation fails below this
# Below this many items umap-learn finds exact neighbours, but through a per-pair Python call of its numba metric
# (~12 s for 3,000 items); handing it the distance matrix from one BLAS product takes under a second instead.
UMAP_EXACT_NEIGHBORS_MAX = 4096
# umap-learn runs 500 layout epochs up to 10,000 items and 200 above; its single-threaded (seeded) layout costs
# ~1.8 ms per epoch per 1,000 items, so 10,000 items took 9 s. From this size on we ask for the large-data 200.
UMAP_FEW_EPOCHS_FROM = 5000
UMAP_EPOCHS_SMALL, UMAP_EPOCHS_LARGE = 500, 200
PCA_SCATTER_MAX_DIM = 1024  # up to this many dimensions PCA decomposes the D x D scatter matrix
WEBGL_MIN_POINTS = 1000  # above this many points the figure uses Scattergl (WebGL) instead of SVG
MAX_LEGEND_CATEGORIES = 30  # legend entries at most: beyond, the least frequent categories share one "other" entry
OTHER_NAME = "categories"  # the shared entry reads "<n> other categories"
FAINT_NAME = "not in the filter"  # points outside `focus`
MEMORY_CACHE_SIZE = 32
UMAP_LAYOUT_REPORTS = 20  # progress reports during UMAP's layout epochs
UMAP_LAYOUT_START = 0.3  # share of the progress bar spent before UMAP's layout epochs (neighbour graph)
PROJECTION_ID_COLUMN = "id"
PROJECTION_X_COLUMN, PROJECTION_Y_COLUMN = "x", "y"
PROJECTION_METHOD_COLUMN = "method"
MISSING_CATEGORY = "n/a"
MISSING_VALUE_COLOR = "lightgrey"
CATEGORICAL_PALETTE = qualitative.Plotly + qualitative.D3[1:] + qualitative.Set2
_CACHE_FORMAT_VERSION = 3
UMAP_NUMBA_MODULES = ("umap.umap_", "umap.layouts", "umap.distances", "umap.spectral", "umap.utils")

_memory_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_memory_cache_lock = threading.Lock()


class _EpochProgressStream:
    """A file-like sink for umap-learn's tqdm bar (formatted as "n/total") that forwards the fraction done."""

    _COUNTS = re.compile(r"(\d+)/(\d+)")

    def __init__(self, progress: Progress):
        self._progress = progress

    def write(self, text: str) -> None:
        counts = self._COUNTS.findall(text)
        if counts:
            done, total = map(int, counts[-1])
            self._progress(UMAP_LAYOUT_START + (1 - UMAP_LAYOUT_START) * done / max(total, 1), "UMAP: layout")

    def flush(self) -> None:
        """tqdm flushes after each write; nothing is buffered here."""


def _tqdm_kwds_reporting_to(progress: Progress | None, n_epochs: int) -> dict:
    """tqdm settings for umap-learn's epoch loop: to `progress`, a report every 1/UMAP_LAYOUT_REPORTS of the
    epochs however fast they run (tqdm's default, 0.1 s between reports, says nothing of a 0.2 s layout)."""
    if progress is None:
        return {"disable": False, "desc": "UMAP epochs", "leave": False}
    return {
        "disable": False,
        "desc": "UMAP epochs",
        "leave": False,
        "bar_format": "{n}/{total}\n",
        "file": _EpochProgressStream(progress),
        "mininterval": 0,
        "miniters": max(1, n_epochs // UMAP_LAYOUT_REPORTS),
    }


def calc_pca_projection(embeddings: np.ndarray) -> np.ndarray:
    """First two principal components, [N, 2] float32, variance in decreasing order.

    The sign of each component is fixed (its largest-magnitude loading is positive) so the same embeddings always
    give the same picture. Missing dimensions (N < 3 or D < 2) are zero columns.
    """
    centered = embeddings.astype(np.float64)
    centered -= centered.mean(axis=0)
    if not centered.any():  # all embeddings equal (e.g. a collapsed model): every point sits at the origin
        return np.zeros((len(embeddings), 2), dtype=np.float32)
    n_components = min(2, *centered.shape)
    right = _leading_directions(centered, n_components)
    signs = np.sign(right[np.arange(n_components), np.abs(right).argmax(axis=1)])
    coords = np.zeros((len(embeddings), 2), dtype=np.float64)
    coords[:, :n_components] = centered @ (right.T * signs)
    return coords.astype(np.float32)


def _leading_directions(centered: np.ndarray, k: int) -> np.ndarray:
    """The `k` directions of largest variance of centred rows, [k, D], largest first.

    Up to PCA_SCATTER_MAX_DIM dimensions: eigenvectors of the D x D scatter matrix (one N x D x D product). An
    iterative SVD of the N x D matrix reads all of it once per iteration (~110 passes: 3-7 s at 100k x 384,
    against 0.6 s); it stays for wider embeddings, whose D x D eigenproblem would cost more.
    """
    if centered.shape[1] <= PCA_SCATTER_MAX_DIM:
        scatter = torch.from_numpy(centered).T @ torch.from_numpy(centered)
        with threadpool_limits(1, user_api="blas"):  # see calc_pcf: multi-threaded eigh is slow on busy cores
            _, eigenvectors = np.linalg.eigh(scatter.numpy())
        return eigenvectors[:, ::-1][:, :k].T
    if min(centered.shape) > 3:
        _, singular, right = svds(centered, k=k, random_state=0)
        return right[np.argsort(singular)[::-1]]
    return np.linalg.svd(centered, full_matrices=False)[2][:k]


@functools.cache
def _cache_umap_compilation() -> None:
    """Keep umap-learn's numba kernels in numba's on-disk cache (umap marks few of them `cache=True`), so only the
    first process on a machine pays their compilation (~10-20 s); numba re-compiles if umap or numba change."""
    import importlib

    from numba.core.dispatcher import Dispatcher

    for module_name in UMAP_NUMBA_MODULES:
        for value in vars(importlib.import_module(module_name)).values():
            if isinstance(value, Dispatcher):
                value.enable_caching()


def calc_umap_projection(
    embeddings: np.ndarray,
    seed: int = 0,
    n_neighbors: int = UMAP_N_NEIGHBORS,
    min_dist: float = UMAP_MIN_DIST,
    progress: Progress | None = None,
    knn: KnnGraph | None = None,
) -> np.ndarray:
    """UMAP to 2-D, [N, 2] float32; needs at least UMAP_MIN_ITEMS rows.

    Euclidean metric. A fixed seed makes UMAP deterministic (and single-threaded). `knn` (every item's nearest
    items, itself first, at least min(n_neighbors, N - 1) of them) replaces UMAP's own neighbour search. Epoch
    progress goes to `progress` and, through tqdm, to `gr.Progress(track_tqdm=True)`.
    """
    import umap  # slow import (numba): only when UMAP is actually used

    _cache_umap_compilation()
    n_items = len(embeddings)
    if n_items < UMAP_MIN_ITEMS:
        raise ValueError(f"UMAP needs at least {UMAP_MIN_ITEMS} embeddings, got {n_items}; use PCA instead.")
    n_neighbors = min(n_neighbors, n_items - 1)
    if knn is not None:
        _check_knn(knn, n_items, n_neighbors)
    exact = knn is None and n_items < UMAP_EXACT_NEIGHBORS_MAX
    n_epochs = UMAP_EPOCHS_LARGE if n_items >= UMAP_FEW_EPOCHS_FROM else UMAP_EPOCHS_SMALL
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric="precomputed" if exact else "euclidean",
        random_state=seed,
        n_jobs=1,
        n_epochs=n_epochs,
        tqdm_kwds=_tqdm_kwds_reporting_to(progress, n_epochs),
        precomputed_knn=(None, None, None) if knn is None else (knn.indices, knn.distances),
    )
    data = _euclidean_distance_matrix(embeddings) if exact else embeddings.astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message="using precomputed metric")
        warnings.filterwarnings("ignore", message="precomputed_knn\\[2\\]")  # no search index: no transform()
        coords = reducer.fit_transform(data)
    return np.asarray(coords, dtype=np.float32)


def _check_knn(knn: KnnGraph, n_items: int, n_neighbors: int) -> None:
    """umap-learn silently ignores a kNN graph of the wrong size: refuse it with the shapes instead."""
    indices, distances = np.asarray(knn.indices), np.asarray(knn.distances)
    if indices.shape != distances.shape or indices.ndim != 2:
        raise ValueError(f"kNN indices {indices.shape} and distances {distances.shape} must be the same [N, k] shape.")
    if indices.shape[0] != n_items or indices.shape[1] < n_neighbors:
        raise ValueError(
            f"The kNN graph is {indices.shape[0]} x {indices.shape[1]}, but UMAP of {n_items} items needs "
            f"{n_items} rows of at least {n_neighbors} neighbours (itself first): see retrieval.search.knn_graph."
        )


def _euclidean_distance_matrix(embeddings: np.ndarray) -> np.ndarray:
    """All pairwise euclidean distances [N, N] (float32) through one matrix product."""
    points = embeddings.astype(np.float32)
    squared_norms = np.einsum("ij,ij->i", points, points)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2 * (points @ points.T)
    np.maximum(squared, 0, out=squared)
    np.fill_diagonal(squared, 0)
    return np.sqrt(squared)


def compute_projection(
    embeddings: np.ndarray,
    method: ProjectionMethod,
    seed: int = 0,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    knn: KnnGraph | None = None,
    exact_knn: bool = False,
) -> np.ndarray:
    """2-D coordinates [N, 2] (float32) of `embeddings` [N, D], cached in memory and, if `cache_dir`, on disk.

    UMAP on fewer than UMAP_MIN_ITEMS embeddings falls back to PCA and says so through `progress` and a warning.
    `knn` (UMAP only; e.g. `knn_graph(embeddings, UMAP_N_NEIGHBORS)`) is used instead of UMAP's neighbour search
    and is part of the cache key. `exact_knn` (UMAP only): build that graph with the exact search, only when the
    result is not cached (the graph follows from the embeddings, so the key just says "exact").
    """
    embeddings = _validated_embeddings(embeddings)
    if method not in PROJECTION_METHODS:
        raise ValueError(f"Unknown projection method {method!r}; choose one of {', '.join(PROJECTION_METHODS)}.")
    report = progress or (lambda fraction, message: None)
    if method == "umap" and len(embeddings) < UMAP_MIN_ITEMS:
        message = f"UMAP needs at least {UMAP_MIN_ITEMS} embeddings, got {len(embeddings)}: showing PCA instead."
        warnings.warn(message, stacklevel=2)
        report(0.0, message)
        method = "pca"
    params = {"seed": seed, "n_neighbors": UMAP_N_NEIGHBORS, "min_dist": UMAP_MIN_DIST} if method == "umap" else {}
    if method == "umap" and knn is not None:
        params["knn"] = _knn_digest(knn)
    elif method == "umap" and exact_knn:
        params["knn"] = "exact"
    key = projection_cache_key(embeddings, method, params)
    cached = _read_cache(key, cache_dir)
    if cached is not None:
        report(1.0, f"{method.upper()}: loaded from cache")
        return cached
    report(0.0, f"{method.upper()}: projecting {len(embeddings)} embeddings")
    if method == "pca":
        coords = calc_pca_projection(embeddings)
    else:
        if knn is None and exact_knn:
            report(0.0, f"UMAP: exact {UMAP_N_NEIGHBORS}-nearest neighbours of {len(embeddings)} items")
            knn = knn_graph(embeddings, UMAP_N_NEIGHBORS)
        coords = calc_umap_projection(embeddings, seed=seed, progress=progress, knn=knn)
    _write_cache(key, coords, cache_dir)
    report(1.0, f"{method.upper()}: done")
    return coords


def projection_cache_key(embeddings: np.ndarray, method: ProjectionMethod, params: dict) -> str:
    """Hex digest of the embeddings' shape, dtype and bytes plus the method and its parameters."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_CACHE_FORMAT_VERSION, method, params, embeddings.shape, str(embeddings.dtype)]).encode())
    digest.update(np.ascontiguousarray(embeddings).tobytes())
    return digest.hexdigest()


def _knn_digest(knn: KnnGraph) -> str:
    """Hex digest of a kNN graph's indices and distances (the graph changes the UMAP picture)."""
    digest = hashlib.sha256()
    for array in (np.asarray(knn.indices, dtype=np.int64), np.asarray(knn.distances, dtype=np.float32)):
        digest.update(json.dumps(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _validated_embeddings(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ValueError(f"Embeddings must be a 2-D array [N, D], got shape {embeddings.shape}.")
    if len(embeddings) == 0:
        raise ValueError("There are no embeddings to project: the dataset is empty.")
    if not np.issubdtype(embeddings.dtype, np.number):
        raise ValueError(f"Embeddings must be numeric, got dtype {embeddings.dtype}.")
    bad_rows = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad_rows):
        raise ValueError(
            f"Embeddings of {len(bad_rows)} items contain NaN or infinity (first ids: {bad_rows[:5].tolist()}); "
            "recompute them or check the extractor."
        )
    return embeddings


def _read_cache(key: str, cache_dir: Path | None) -> np.ndarray | None:
    with _memory_cache_lock:
        if key in _memory_cache:
            _memory_cache.move_to_end(key)
            return _memory_cache[key].copy()
    if cache_dir is None:
        return None
    path = Path(cache_dir) / f"projection_{key}.npy"
    try:
        coords = np.load(path)
    except (OSError, ValueError):  # absent, or a half-written/corrupt file: recompute
        return None
    _remember(key, coords)
    return coords.copy()


def _write_cache(key: str, coords: np.ndarray, cache_dir: Path | None) -> None:
    _remember(key, coords)
    if cache_dir is None:
        return
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f"projection_{key}.{threading.get_ident()}.tmp.npy"
    np.save(partial, coords)
    partial.replace(cache_dir / f"projection_{key}.npy")  # atomic: readers never see half a file


def _remember(key: str, coords: np.ndarray) -> None:
    with _memory_cache_lock:
        _memory_cache[key] = coords.copy()
        _memory_cache.move_to_end(key)
        while len(_memory_cache) > MEMORY_CACHE_SIZE:
            _memory_cache.popitem(last=False)


def clear_memory_cache() -> None:
    """Forget projections held in memory (the disk cache stays)."""
    with _memory_cache_lock:
        _memory_cache.clear()


def projection_figure(
    coords: np.ndarray,
    item_ids: Sequence[int],
    labels: Sequence,
    paths: Sequence[str],
    color_values: Sequence,
    color_name: str,
    continuous: bool | None = None,
    title: str = "",
    color_map: dict[str, str] | None = None,
    focus: np.ndarray | None = None,
    thumbnails: str | None = None,
) -> go.Figure:
    """Scatter plot of `coords` [N, 2] coloured by `color_values`, for the app's Embeddings view.

    Hover shows each item's label, id, file and colour value; each point's `customdata` is its item id so a click
    or a box / lasso selection maps back to the items. Colours are categorical (label, split, query/gallery, hit@1;
    `color_map` fixes the colour of named categories) unless `continuous` (map@5); None decides from the values:
    floating-point values are continuous. Missing values (None/NaN, e.g. hit@1 of gallery-only items) are grey.
    More than MAX_LEGEND_CATEGORIES categories: the most frequent keep their own legend entry, the rest share one
    "other" trace. Points outside `focus` (a boolean mask, e.g. one label) are drawn faint. `thumbnails` is the
    token the page sends back for a hovered point's image (`explorer.viz.thumbnails.register_items`). Above
    WEBGL_MIN_POINTS points the traces use WebGL (Scattergl).
    """
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"Projection coordinates must have shape [N, 2], got {coords.shape}.")
    n_items = len(coords)
    for name, values in (("item_ids", item_ids), ("labels", labels), ("paths", paths), ("color_values", color_values)):
        if len(values) != n_items:
            raise ValueError(f"{name} has {len(values)} entries but there are {n_items} points; they must match.")
    colors = pd.Series(_as_objects(color_values).tolist())  # Python values: their own dtype, as from a list
    if continuous is None:
        continuous = pd.api.types.is_float_dtype(colors)
    missing = colors.isna().to_numpy()
    hover = _Hover(labels, paths, colors, missing, color_name, continuous)
    points = _Points(coords, np.asarray(item_ids), hover, go.Scattergl if n_items > WEBGL_MIN_POINTS else go.Scatter)
    faint = np.zeros(n_items, bool) if focus is None else ~np.asarray(focus, dtype=bool)
    shown = ~missing & ~faint
    if continuous:
        traces = _continuous_traces(points, colors.to_numpy(dtype=float, na_value=np.nan), shown, color_name)
    else:
        traces = _categorical_traces(points, colors, shown, color_map or {})
    if (missing & ~faint).any():
        traces.append(points.trace(missing & ~faint, MISSING_CATEGORY, {"color": MISSING_VALUE_COLOR}, "name"))
    if faint.any():
        traces.insert(0, points.trace(faint, FAINT_NAME, {"color": MISSING_VALUE_COLOR, "opacity": 0.25}, "points"))
    layout = go.Layout(  # validated (plotly.js needs the template expanded); the traces' arrays are ours
        title=title or None,
        template="plotly_white",
        height=600,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend_title_text=None if continuous else color_name,  # a colour bar already names a continuous colouring
        hovermode="closest",
        clickmode="event",
        dragmode="zoom",
        meta={"thumbnails": thumbnails} if thumbnails else None,
        xaxis={"showticklabels": False, "zeroline": False, "title": None},
        yaxis={"showticklabels": False, "zeroline": False, "title": None},
    )
    figure = go.Figure(data=traces, layout=layout, _validate=False)
    return figure


def _as_objects(values: Sequence) -> np.ndarray:
    """Any 1-D values (list, array, Series) as an object array, converted in one call: iterating a pandas string
    column element by element costs ~0.6 us per value (60 ms at 100k points, for each column)."""
    return np.asarray(values, dtype=object)


# Where a trace's hover takes the colour value from: its name (one category, or n/a), its marker colour (a colour
# scale), or each point (points of several values: the faint and the "other" traces).
ValueSource = Literal["name", "color", "points"]


class _Hover:
    """The hover lines of every point: label, id, file and the colour value, as few strings as possible.

    The id comes from the point's `customdata`, the file from its `text`; the colour value from the trace's name or
    marker colour where those hold it, and the label from the trace's name where every point's label is that name
    (colouring by label). Only what differs from point to point within a trace is sent per point: at 100k points,
    per-point strings are most of the figure's bytes.
    """

    def __init__(self, labels: Sequence, paths: Sequence[str], colors: pd.Series, missing, color_name: str, continuous):
        # fixed-width text arrays, not object arrays: plotly deep-copies a figure's arrays (twice on the way to
        # JSON), element by element for objects (~80 ms per 100k strings) but in one block for these
        self.labels, self.files = _as_objects(labels).astype(str), _as_objects(paths).astype(str)
        self.values, self.missing, self.continuous = _as_objects(colors), missing, continuous
        self.color_name = color_name

    def fields(self, mask: np.ndarray, name: str, value_from: ValueSource) -> dict:
        """`text`, `hovertext` (when needed) and `hovertemplate` of the trace `name` of the points in `mask`."""
        labels = self.labels[mask]
        label_from_name = bool(len(labels)) and bool((labels == name).all())
        label = "%{fullData.name}" if label_from_name else "%{hovertext}"
        template = f"label: {label}<br>id: %{{customdata}}<br>file: %{{text}}"
        text = self.files[mask]
        if self.color_name != LABELS_COLUMN:  # colouring by label: the label line already says it
            value_line = f"<br>{self.color_name}: "
            if value_from == "points":
                text = text + value_line + self._value_texts(mask)
            else:
                template += value_line + ("%{marker.color:.3f}" if value_from == "color" else "%{fullData.name}")
        fields = {"text": text, "hovertemplate": template + "<extra></extra>"}
        if not label_from_name:
            fields["hovertext"] = labels
        return fields

    def _value_texts(self, mask: np.ndarray) -> np.ndarray:
        """The colour value of each point in `mask` as hover shows it (n/a where missing)."""
        shown = [f"{value:.3f}" if self.continuous else str(value) for value in self.values[mask]]
        return np.where(self.missing[mask], MISSING_CATEGORY, np.array(shown, dtype=str))


class _Points:
    """All points of one figure; `trace` makes a marker trace of a subset of them."""

    def __init__(self, coords: np.ndarray, item_ids: np.ndarray, hover: _Hover, scatter: type):
        self.coords, self.item_ids, self.hover, self.scatter = coords, item_ids, hover, scatter

    def trace(
        self, mask: np.ndarray, name: str, marker: dict, value_from: ValueSource, showlegend: bool = True
    ) -> go.Scatter | go.Scattergl:
        return self.scatter(
            x=self.coords[mask, 0],
            y=self.coords[mask, 1],
            mode="markers",
            name=name,
            showlegend=showlegend,
            marker={"size": 7, "opacity": 0.85, **marker},
            customdata=self.item_ids[mask],
            **self.hover.fields(mask, name, value_from),
            _validate=False,  # our own arrays, per point: plotly's per-element validation costs seconds at 100k
        )


def _categorical_traces(points: _Points, colors: pd.Series, shown: np.ndarray, color_map: dict[str, str]) -> list:
    """One trace per category (legend toggles them); beyond MAX_LEGEND_CATEGORIES, the most frequent categories
    keep theirs and the rest share one "other" trace (still in their own colours)."""
    counts = colors[shown].value_counts(sort=False)
    categories = list(counts.index)
    palette = np.asarray(CATEGORICAL_PALETTE, dtype=object)
    colour_of = {c: color_map.get(str(c), palette[i % len(palette)]) for i, c in enumerate(categories)}
    if len(categories) > MAX_LEGEND_CATEGORIES:
        kept = set(counts.sort_values(ascending=False, kind="stable").index[: MAX_LEGEND_CATEGORIES - 1])
    else:
        kept = set(categories)
    traces = [
        points.trace((colors == c).to_numpy() & shown, str(c), {"color": colour_of[c]}, "name")
        for c in categories
        if c in kept
    ]
    rest = shown & ~colors.isin(kept).to_numpy()
    if rest.any():
        name = f"{len(categories) - len(kept)} other {OTHER_NAME}"
        colours = np.array([colour_of[c] for c in _as_objects(colors[rest])])
        traces.append(points.trace(rest, name, {"color": colours}, "points"))
    return traces


def _continuous_traces(points: _Points, values: np.ndarray, shown: np.ndarray, color_name: str) -> list:
    """One trace on a continuous colour scale with a colour bar (titled once, by the bar)."""
    marker = {
        "color": values[shown],
        "colorscale": "Viridis",
        "showscale": True,
        "colorbar": {"title": {"text": color_name}},
    }
    return [points.trace(shown, color_name, marker, "color", showlegend=False)]


def projection_frame(coords: np.ndarray, df: pd.DataFrame, method: ProjectionMethod) -> pd.DataFrame:
    """Table for exporting a projection: item id (row position), label, path, split (when present), x, y, method."""
    coords = np.asarray(coords)
    if len(coords) != len(df):
        raise ValueError(f"The projection has {len(coords)} points but the dataset has {len(df)} rows.")
    frame = pd.DataFrame({PROJECTION_ID_COLUMN: np.arange(len(df))})
    for column in (LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN):
        if column in df.columns:
            frame[column] = df[column].to_numpy()
    frame[PROJECTION_X_COLUMN] = coords[:, 0]
    frame[PROJECTION_Y_COLUMN] = coords[:, 1]
    frame[PROJECTION_METHOD_COLUMN] = method
    return frame


def save_projection(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a `projection_frame` as CSV or parquet, chosen by the file suffix."""
    path = Path(path)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"Cannot export a projection to {path.name!r}: use a .csv or .parquet file name.")
    return path
