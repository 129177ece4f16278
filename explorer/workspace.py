"""The one backend object the app drives: a dataset, an extractor, and everything derived from them.

Data flows dataset -> extractor -> embeddings -> evaluation (retrieval results + metrics) -> pictures and
projections. `Workspace` holds the first two and computes the rest lazily, once, behind per-item locks, so the
UI only asks for tables, images and figures. The app builds one read-only default workspace at start-up and
gives each browser session a `WorkspaceSession`, which reads the shared default until the user changes
something and then works on its own cheap copy (copy-on-write), so sessions never see each other's uploads,
models or training runs. Nothing here imports gradio.
"""

from __future__ import annotations

import contextvars
import copy
import json
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from explorer import const as C
from explorer.data.images import read_image
from explorer.data.loading import LoadedDataset, load_dataset
from explorer.data.schema import bbox_of_row
from explorer.errors import InputError
from explorer.inference import EmbeddingsCache
from explorer.metrics.evaluation import EvaluationResult, evaluate_embeddings
from explorer.metrics.functional import flatten_metrics
from explorer.models import OFFLINE_PRESET, PRESETS, PretrainedWeightsUnavailable, ViTExtractor, save_checkpoint
from explorer.training.train import (
    MINER_NAMES,
    OPTIMIZERS,
    EpochRecord,
    TrainingResult,
    TrainingSettings,
    train_extractor,
)
from explorer.viz.projection import (
    PROJECTION_METHODS,
    compute_projection,
    projection_figure,
    projection_frame,
    save_projection,
)
from explorer.viz.retrieval_layout import RetrievalLayout, Tile, build_retrieval_layout
from explorer.viz.retrieval_render import render_pillow

Progress = Callable[[float, str], None]

APP_CACHE_ROOT = C.CACHE_ROOT / "app"
DEFAULT_DATA = "shapes"
DEFAULT_MODEL = OFFLINE_PRESET
DEFAULT_WORST_METRIC = f"{C.OVERALL_CATEGORIES_KEY}/map/5"
WEIGHT_CHOICES = ("pretrained", "random", "checkpoint")
COLOR_BY_CHOICES = ("label", "split", "query/gallery", "hit@1", "map@5")
METRIC_TOP_K = (1, 5, 10)
ALWAYS_TOP_K = (1, 5)  # hit@1 and map@5 colour the projection and rank worst queries by default
TRAIN_CHOICES = {"optimizer": tuple(OPTIMIZERS), "miner": MINER_NAMES}
MAX_QUERIES_PER_GRID = 30
EMBED_BATCH_SIZE = 32
MAX_INSTANCES = 30
MAX_UPLOAD_UNPACKED_BYTES = 4 * 1024**3  # a zip that unpacks beyond this is refused (zip-bomb guard)
MAX_UPLOAD_MEMBERS = 200_000
MAX_EPOCHS = 200
MAX_BATCH_LABELS = 1024
MAX_BATCH_INSTANCES = 1024
IMAGE_SIZE_RANGE = (32, 1024)  # training / inference resolution the Train tab accepts (0 or empty: the model's own)


class WorkspaceInputError(InputError):
    """Input the user can fix: the message says what was wrong, where, and what is accepted."""


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def _scaled(progress: Progress | None, start: float, stop: float) -> Progress | None:
    """A progress callable for one stage that maps its 0..1 onto [start, stop] of the whole job."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (stop - start) * float(fraction), message)


# ----------------------------------------------------------------------------------------------- user input


def parse_query_ids(text: str | Sequence[int], n_queries: int) -> list[int]:
    """Parse "0, 3, 7" (commas or spaces) into query positions, checking each against 0..n_queries-1."""
    tokens = text.replace(",", " ").split() if isinstance(text, str) else [str(t) for t in text]
    if not tokens:
        raise WorkspaceInputError(
            f"No query ids given: enter ids such as '0, 3, 7' (valid ids are 0..{n_queries - 1})."
        )
    ids = []
    for token in tokens:
        try:
            ids.append(int(token))
        except ValueError:
            raise WorkspaceInputError(
                f"Query id {token!r} is not an integer: enter ids such as '0, 3, 7' (valid ids are 0..{n_queries - 1})."
            ) from None
    out_of_range = [i for i in ids if not 0 <= i < n_queries]
    if out_of_range:
        raise WorkspaceInputError(
            f"Query id {out_of_range[0]} is out of range: this dataset has {n_queries} queries, "
            f"valid ids are 0..{n_queries - 1}."
        )
    if len(ids) > MAX_QUERIES_PER_GRID:
        raise WorkspaceInputError(f"{len(ids)} query ids given: show at most {MAX_QUERIES_PER_GRID} at once.")
    return list(dict.fromkeys(ids))


def check_count(name: str, value: float | int | None, low: int, high: int) -> int:
    """An integer setting such as n_instances within [low, high], or a message that gives the range."""
    if value is None or isinstance(value, bool) or float(value) != int(value):
        raise WorkspaceInputError(f"{name} must be a whole number between {low} and {high}, got {value!r}.")
    if not low <= int(value) <= high:
        raise WorkspaceInputError(f"{name} must be between {low} and {high}, got {int(value)}.")
    return int(value)


def training_settings(
    epochs: float | None,
    lr: float | None,
    optimizer: str,
    margin: float | None,
    miner: str,
    n_labels: float | None,
    n_instances: float | None,
    image_size: float | None,
) -> TrainingSettings:
    """The Train tab's fields as `TrainingSettings`; an empty or out-of-range field gets a message naming it.

    An empty margin means the soft-margin triplet loss; an empty or 0 image size keeps the model's own size.
    """
    if lr is None or not float(lr) > 0:
        raise WorkspaceInputError(f"learning rate must be a positive number such as 0.0001, got {lr!r}.")
    if margin is not None and float(margin) < 0:
        raise WorkspaceInputError(f"margin must be 0 or more (empty: soft margin), got {margin!r}.")
    size = None if not image_size else check_count("image size", image_size, *IMAGE_SIZE_RANGE)
    return TrainingSettings(
        epochs=check_count("epochs", epochs, 1, MAX_EPOCHS),
        lr=float(lr),
        optimizer=_check_choice("optimizer", optimizer, TRAIN_CHOICES["optimizer"]),
        margin=None if margin is None else float(margin),
        miner=_check_choice("miner", miner, TRAIN_CHOICES["miner"]),
        n_labels=check_count("n_labels", n_labels, 2, MAX_BATCH_LABELS),
        n_instances=check_count("n_instances", n_instances, 2, MAX_BATCH_INSTANCES),
        image_size=size,
    )


def unpack_upload(zip_path: str | Path, destination: Path) -> Path:
    """Unpack an uploaded dataset zip safely (no paths outside `destination`, bounded size) and return its root.

    The root is the single top-level folder when the zip wraps everything in one, else `destination`.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise WorkspaceInputError(
            f"{zip_path.name} is not a zip file: upload a .zip of an image folder or a CSV + images."
        )
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_UPLOAD_MEMBERS:
            raise WorkspaceInputError(
                f"The zip holds {len(members):,} files; at most {MAX_UPLOAD_MEMBERS:,} are accepted."
            )
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UPLOAD_UNPACKED_BYTES:
            raise WorkspaceInputError(
                f"The zip unpacks to {unpacked / 1024**3:.1f} GiB; at most {MAX_UPLOAD_UNPACKED_BYTES / 1024**3:.0f} GiB "
                "are accepted. Load large datasets as a path on the server instead."
            )
        root = destination.resolve()
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise WorkspaceInputError(
                    f"The zip member {member.filename!r} points outside the archive; refusing it."
                )
        archive.extractall(root)
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def _dataset_source_in(folder: Path) -> Path:
    """A CSV at the top of an unpacked upload is the dataset; otherwise the folder is an image folder."""
    csvs = sorted(folder.glob("*.csv"))
    if len(csvs) > 1:
        names = ", ".join(p.name for p in csvs)
        raise WorkspaceInputError(f"The upload has several CSV files at its top level ({names}); keep exactly one.")
    return csvs[0] if csvs else folder


# -------------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class ModelChoice:
    """What the user picked on the Model tab: a preset or timm name plus where the weights come from."""

    name: str = DEFAULT_MODEL
    weights: str = "pretrained"  # one of WEIGHT_CHOICES
    checkpoint: str | None = None
    image_size: int | None = None  # None: the model's own input size

    def describe(self) -> str:
        source = (
            f"checkpoint {Path(str(self.checkpoint)).name}"
            if self.weights == "checkpoint"
            else f"{self.weights} weights"
        )
        size = f", {self.image_size} px" if self.image_size else ""
        return f"{self.name} ({source}{size})"


@dataclass
class Extractor:
    """A loaded extractor: the module in eval mode plus the transform its inputs need."""

    model: torch.nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    choice: ModelChoice
    description: str


@dataclass
class CompareResult:
    deltas: pd.DataFrame
    improved: pd.DataFrame
    regressed: pd.DataFrame
    improved_grid: Image.Image | None
    regressed_grid: Image.Image | None


class Workspace:
    """A dataset + an extractor, with embeddings, evaluation, projections and pictures derived on demand.

    Read methods are safe to call from several threads. Mutating methods refuse to run on a read-only
    (shared) workspace: get a private one with `copy()` (which `WorkspaceSession.edit()` does).
    """

    def __init__(self, dataset: LoadedDataset, extractor: Extractor, cache_dir: Path = APP_CACHE_ROOT):
        self.dataset = dataset
        self.extractor = extractor
        self.base: Workspace | None = None  # this workspace before the last training run, for Compare
        self.training_history: pd.DataFrame | None = None
        self.metric_top_k: tuple[int, ...] = METRIC_TOP_K
        self.cache_dir = Path(cache_dir)
        self.read_only = False
        self._derived: dict[tuple, Any] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- construction and copy-on-write ------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        data: str = DEFAULT_DATA,
        dataset_root: str | None = None,
        model: str = DEFAULT_MODEL,
        checkpoint: str | None = None,
        weights: str = "pretrained",
        image_size: int | None = None,
        progress: Progress | None = None,
        cache_dir: Path = APP_CACHE_ROOT,
    ) -> Workspace:
        """Load data and model and compute embeddings and metrics now, so the first page view is complete."""
        _report(progress, 0.0, f"loading data {data!r}")
        dataset = _load_dataset(data, dataset_root)
        choice = ModelChoice(model, "checkpoint" if checkpoint else weights, checkpoint, image_size)
        _report(progress, 0.1, f"loading model {choice.describe()}")
        workspace = cls(dataset, load_extractor(choice), cache_dir)
        workspace.warm_up(_scaled(progress, 0.15, 1.0))
        return workspace

    def copy(self) -> Workspace:
        """A private, writable copy that shares everything already computed (nothing is recomputed)."""
        twin = copy.copy(self)
        twin.read_only = False
        twin._derived = dict(self._derived)
        twin._locks = {}
        twin._locks_guard = threading.Lock()
        return twin

    def _check_writable(self) -> None:
        if self.read_only:
            raise RuntimeError("The shared default workspace is read-only: change a copy (WorkspaceSession.edit()).")

    def _invalidate(self) -> None:
        self._derived = {}

    def warm_up(self, progress: Progress | None = None) -> None:
        """Compute embeddings, evaluation and the PCA projection (UMAP stays lazy: it compiles for ~20 s)."""
        self.embeddings(_scaled(progress, 0.0, 0.85))
        _report(progress, 0.85, "computing metrics")
        self.evaluation()
        _report(progress, 0.95, "projecting embeddings (PCA)")
        self.projection_coords("pca")
        _report(progress, 1.0, "ready")

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """Compute `key` once; concurrent callers of the same key wait for the first instead of repeating it."""
        if key in self._derived:
            return self._derived[key]
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._derived:
                self._derived[key] = compute()
            return self._derived[key]

    # -- data --------------------------------------------------------------------------------------------

    def load_data(self, source: str, dataset_root: str | None = None) -> None:
        """Switch to another dataset (built-in name, CSV path or image-folder path on the server)."""
        self._check_writable()
        self.dataset = _load_dataset(source, dataset_root)
        self.base = None
        self._invalidate()

    def load_uploaded_zip(self, zip_path: str | Path) -> None:
        """Switch to a dataset uploaded as a zip: an image folder, or one CSV + the images it names."""
        self._check_writable()
        root = unpack_upload(zip_path, self.cache_dir / "uploads" / uuid.uuid4().hex)
        source = _dataset_source_in(root)
        self.load_data(str(source), str(root) if source.is_file() else None)

    @property
    def df(self) -> pd.DataFrame:
        return self.dataset.df

    @property
    def validation_positions(self) -> np.ndarray:
        """Rows of `df` that take part in evaluation (the validation split), in df order."""
        return np.flatnonzero((self.df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT).to_numpy())

    @property
    def validation_df(self) -> pd.DataFrame:
        return self.df.iloc[self.validation_positions].reset_index(drop=True)

    @property
    def query_positions(self) -> np.ndarray:
        """Rows of `df` of the queries, in query-id order (query id = position among the queries)."""
        validation = self.validation_df
        return self.validation_positions[validation[C.IS_QUERY_COLUMN].astype(bool).to_numpy()]

    @property
    def gallery_positions(self) -> np.ndarray:
        validation = self.validation_df
        return self.validation_positions[validation[C.IS_GALLERY_COLUMN].astype(bool).to_numpy()]

    @property
    def n_queries(self) -> int:
        return len(self.query_positions)

    @property
    def paths(self) -> list[str]:
        """Absolute image paths of every row of `df` (computed once per dataset: views index it per item)."""
        root = Path(self.dataset.root)
        return self._cached(
            ("paths",), lambda: [str(p if Path(p).is_absolute() else root / p) for p in self.df[C.PATHS_COLUMN]]
        )

    @property
    def bboxes(self) -> list[tuple[int, int, int, int] | None]:
        """Crop box of every row of `df` (None where a row has none)."""
        if not all(column in self.df.columns for column in C.BBOX_COLUMNS):
            return [None] * len(self.df)
        return self._cached(("bboxes",), lambda: [bbox_of_row(row) for _, row in self.df.iterrows()])

    def data_summary(self) -> pd.DataFrame:
        """Counts a user checks first: images, labels, train/validation, queries/gallery."""
        df = self.df
        split = df[C.SPLIT_COLUMN]
        validation = self.validation_df
        rows = [
            ("dataset", self.dataset.name),
            ("images", len(df)),
            ("labels", df[C.LABELS_COLUMN].nunique()),
            ("train images", int((split == C.TRAIN_SPLIT).sum())),
            ("train labels", df.loc[split == C.TRAIN_SPLIT, C.LABELS_COLUMN].nunique()),
            ("validation images", int((split == C.VALIDATION_SPLIT).sum())),
            ("validation labels", validation[C.LABELS_COLUMN].nunique()),
            ("queries", int(validation[C.IS_QUERY_COLUMN].astype(bool).sum())),
            ("gallery items", int(validation[C.IS_GALLERY_COLUMN].astype(bool).sum())),
        ]
        if C.CATEGORIES_COLUMN in df.columns:
            rows.append(("categories", df[C.CATEGORIES_COLUMN].nunique()))
        return pd.DataFrame(rows, columns=["what", "count"]).astype({"count": str})

    def data_preview(self, n_rows: int = 20) -> pd.DataFrame:
        return self.df.head(n_rows).reset_index(names="id")

    def warnings_text(self) -> str:
        """The dataset's validation warnings as a Markdown list."""
        warnings = self.dataset.warnings
        return "\n".join(f"- ⚠ {w}" for w in warnings) if warnings else "No validation warnings."

    def default_query_ids(self, wanted: str = "") -> str:
        """`wanted` when it is valid for this dataset, else the first three queries (after a data change)."""
        try:
            return ", ".join(map(str, parse_query_ids(wanted, self.n_queries)))
        except WorkspaceInputError:
            return ", ".join(str(i) for i in range(min(3, self.n_queries)))

    def describe(self) -> str:
        """One line for the page header: what data and which model the session is looking at."""
        counts = f"{len(self.df):,} images, {self.df[C.LABELS_COLUMN].nunique()} labels, {self.n_queries} queries"
        return f"**Data:** {self.dataset.name} ({counts}) · **Model:** {self.extractor.description}"

    # -- model -------------------------------------------------------------------------------------------

    def set_model(self, name: str, weights: str, checkpoint: str | None = None) -> None:
        """Switch the extractor (preset/timm name + pretrained, random or an uploaded checkpoint)."""
        self._check_writable()
        if weights not in WEIGHT_CHOICES:
            raise WorkspaceInputError(f"Weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}.")
        if weights == "checkpoint" and not checkpoint:
            raise WorkspaceInputError("Weights 'checkpoint' needs a checkpoint file: upload one first.")
        self.extractor = load_extractor(
            ModelChoice(name.strip(), weights, checkpoint if weights == "checkpoint" else None)
        )
        self.base = None
        self.training_history = None
        self._invalidate()

    def save_checkpoint(self) -> Path:
        """Write the current extractor to a checkpoint file the user can download (and load again)."""
        out = self.cache_dir / "exports" / uuid.uuid4().hex / f"{_safe_name(self.extractor.choice.name)}.safetensors"
        out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.extractor.model, out)
        return out

    # -- derived data ------------------------------------------------------------------------------------

    def embeddings(self, progress: Progress | None = None) -> np.ndarray:
        """Embeddings of every row of `df` with the current extractor, `[N, D]` float32."""
        return self._cached(
            ("embeddings",),
            lambda: (
                EmbeddingsCache(self.cache_dir / "embeddings")
                .embed(
                    self.extractor.model,
                    self.paths,
                    self.extractor.transform,
                    self.bboxes,
                    batch_size=EMBED_BATCH_SIZE,
                    progress=progress,
                )
                .numpy()
            ),
        )

    def evaluation(self, progress: Progress | None = None, top_k: tuple[int, ...] | None = None) -> EvaluationResult:
        """Retrieval results + metrics of the validation split at `top_k` (default: the chosen k)."""
        top_k = top_k or self.metric_top_k
        return self._cached(
            ("evaluation", top_k),
            lambda: evaluate_embeddings(
                self.embeddings(progress)[self.validation_positions],
                self.validation_df,
                cmc_top_k=top_k,
                precision_top_k=top_k,
                map_top_k=top_k,
            ),
        )

    def metric_names(self) -> list[str]:
        """Flat per-query metric keys (`OVERALL/map/5`, …) that worst queries and Compare can rank by."""
        unreduced = flatten_metrics(self.evaluation().metrics_unreduced)
        return sorted(key for key, values in unreduced.items() if isinstance(values, torch.Tensor))

    def per_query_values(self, metric_name: str, evaluation: EvaluationResult | None = None) -> np.ndarray:
        """`[n_queries]` values of a per-query metric; NaN for queries outside its category or undefined."""
        evaluation = evaluation or self.evaluation()
        names = self.metric_names()
        if metric_name not in names:
            raise WorkspaceInputError(f"Unknown metric {metric_name!r}: choose one of {', '.join(names)}.")
        values = flatten_metrics(evaluation.metrics_unreduced)[metric_name].double().numpy()
        category = metric_name.split(C.METRIC_NAME_SEPARATOR)[0]
        if category == C.OVERALL_CATEGORIES_KEY:
            return values
        full = np.full(evaluation.n_queries, np.nan)
        full[np.asarray([str(c) for c in evaluation.query_categories]) == category] = values
        return full

    def set_metric_top_k(self, text: str) -> None:
        """Choose the k of cmc / precision / map, e.g. "1, 5, 10" (1 and 5 are always kept)."""
        self._check_writable()
        values = []
        for token in text.replace(",", " ").split():
            if not token.isdigit() or int(token) < 1:
                raise WorkspaceInputError(f"k must be a positive whole number such as '1, 5, 10', got {token!r}.")
            values.append(int(token))
        if not values:
            raise WorkspaceInputError("Give at least one k, such as '1, 5, 10'.")
        self.metric_top_k = tuple(sorted(set(values) | set(ALWAYS_TOP_K)))

    # -- tables and pictures -----------------------------------------------------------------------------

    def metrics_table(self) -> pd.DataFrame:
        """One row per (category, metric, k) with its value; OVERALL first."""
        return _metrics_frame(self.evaluation().metrics_flat)

    def queries_without_relevant_gallery(self) -> int:
        return int(self.evaluation().n_queries_without_gt)

    def no_relevant_gallery_text(self) -> str:
        n = self.queries_without_relevant_gallery()
        return f"**{n}** of {self.n_queries} queries have no relevant gallery item (excluded from the precision mean)."

    def default_metric(self, wanted: str = DEFAULT_WORST_METRIC) -> str:
        """`wanted` if this evaluation has it, else the default worst-query metric, else the first one."""
        names = self.metric_names()
        for name in (wanted, DEFAULT_WORST_METRIC):
            if name in names:
                return name
        return names[0]

    def query_grid(self, query_ids: str | Sequence[int], n_instances: int) -> Image.Image:
        """Retrieval rows of the chosen queries: query blue, hits green, misses red, GT grey, distances."""
        ids = parse_query_ids(query_ids, self.n_queries)
        n_instances = check_count("n_instances", n_instances, 1, self.max_instances())
        return _render_rows(self, ids, n_instances)

    def worst_queries(self, metric_name: str, n_queries: int, n_instances: int) -> tuple[Image.Image, pd.DataFrame]:
        """The grid of the `n_queries` lowest-scoring queries by `metric_name`, and their ids and values."""
        names = self.metric_names()
        if metric_name not in names:
            raise WorkspaceInputError(f"Unknown metric {metric_name!r}: choose one of {', '.join(names)}.")
        n_queries = check_count("n_queries", n_queries, 1, min(MAX_QUERIES_PER_GRID, self.n_queries))
        n_instances = check_count("n_instances", n_instances, 1, self.max_instances())
        ids = self.evaluation().worst_queries(metric_name, n_queries)
        values = self.per_query_values(metric_name)[ids]
        table = self._query_table(ids).assign(**{metric_name: np.round(values, 4)})
        return _render_rows(self, ids, n_instances), table

    def _query_table(self, query_ids: Sequence[int]) -> pd.DataFrame:
        rows = self.query_positions[list(query_ids)]
        return pd.DataFrame(
            {
                "query id": list(query_ids),
                "item id": rows,
                "label": self.df[C.LABELS_COLUMN].to_numpy()[rows],
                "file": [Path(self.paths[r]).name for r in rows],
            }
        )

    def max_instances(self) -> int:
        return max(1, min(MAX_INSTANCES, len(self.gallery_positions)))

    def item_id_of_query(self, query_id: int) -> int:
        return int(self.query_positions[parse_query_ids([query_id], self.n_queries)[0]])

    def query_id_of_item(self, item_id: int) -> int | None:
        """The query id of a df row, or None when the row is not a query."""
        hits = np.flatnonzero(self.query_positions == int(item_id))
        return int(hits[0]) if len(hits) else None

    def item_row(self, item_id: int, n_instances: int = 5) -> Image.Image:
        """The retrieval row of any item (a clicked projection point): its evaluation row if it is a query,
        else its nearest validation gallery items (itself excluded)."""
        if not 0 <= int(item_id) < len(self.df):
            raise WorkspaceInputError(f"Item id {item_id} is out of range: valid ids are 0..{len(self.df) - 1}.")
        query_id = self.query_id_of_item(item_id)
        if query_id is not None:
            return self.query_grid([query_id], n_instances)
        item_id = int(item_id)
        n_instances = check_count("n_instances", n_instances, 1, self.max_instances())
        label = self.df[C.LABELS_COLUMN].iloc[item_id]
        query = Tile(self.paths[item_id], self.bboxes[item_id], C.QUERY_COLOR, (f"Item {item_id}", f"label {label}"))
        return self._nearest_gallery(self.embeddings()[item_id], query, n_instances, query_row=item_id)[0]

    # -- projection --------------------------------------------------------------------------------------

    def projection_coords(self, method: str, progress: Progress | None = None) -> np.ndarray:
        """2-D coordinates of every row's embedding (cached per method)."""
        method = _check_choice("method", method, PROJECTION_METHODS)
        return self._cached(
            ("projection", method),
            lambda: compute_projection(
                self.embeddings(), method, progress=progress, cache_dir=self.cache_dir / "projections"
            ),
        )

    def projection(self, method: str, color_by: str, progress: Progress | None = None):
        """Plotly figure of the projection, coloured by `color_by`; points carry their item id."""
        color_by = _check_choice("color_by", color_by, COLOR_BY_CHOICES)
        coords = self.projection_coords(method, progress)
        points = self._point_table()
        colors = points[color_by]
        if color_by == "hit@1":
            colors = colors.map({1.0: "hit", 0.0: "miss"})
        return projection_figure(
            coords, points["id"], points["label"], points["file"], colors, color_by, continuous=color_by == "map@5"
        )

    def _point_table(self) -> pd.DataFrame:
        """Per df row: what hover shows and what colouring uses."""
        df = self.df
        table = pd.DataFrame(
            {
                "id": np.arange(len(df)),
                "label": df[C.LABELS_COLUMN].astype(str).to_numpy(),
                "split": df[C.SPLIT_COLUMN].to_numpy(),
                "file": [Path(p).name for p in df[C.PATHS_COLUMN]],
            }
        )
        role = np.full(len(df), "train", dtype=object)
        role[self.gallery_positions] = "gallery"
        role[self.query_positions] = "query"
        both = np.intersect1d(self.query_positions, self.gallery_positions)
        role[both] = "query+gallery"
        table["query/gallery"] = role
        for column, key in (("hit@1", f"{C.OVERALL_CATEGORIES_KEY}/cmc/1"), ("map@5", DEFAULT_WORST_METRIC)):
            values = np.full(len(df), np.nan)
            values[self.query_positions] = self.per_query_values(key)
            table[column] = values
        return table

    # -- search ------------------------------------------------------------------------------------------

    def search(self, image: Image.Image | None, n_instances: int) -> tuple[Image.Image, pd.DataFrame]:
        """Nearest gallery items of an uploaded image, as a picture and a table with distances and labels."""
        if image is None:
            raise WorkspaceInputError("No image given: upload an image to search with.")
        n_instances = check_count("n_instances", n_instances, 1, self.max_instances())
        upload = self.cache_dir / "uploads" / f"{uuid.uuid4().hex}.png"
        upload.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(upload)
        embedding = _embed_image(self.extractor, read_image(upload))
        return self._nearest_gallery(
            embedding, Tile(str(upload), None, C.QUERY_COLOR, ("Query", "upload")), n_instances
        )

    def _nearest_gallery(
        self, embedding: np.ndarray, query: Tile, n_instances: int, query_row: int | None = None
    ) -> tuple[Image.Image, pd.DataFrame]:
        """Gallery items nearest to `embedding` (ties by position; `query_row` itself excluded), picture + table.

        Frames are green/red when the query's label is known (a dataset item), grey for an upload.
        """
        gallery = self.gallery_positions
        if query_row is not None:
            gallery = gallery[gallery != query_row]
        distances = np.linalg.norm(self.embeddings()[gallery] - embedding[None, :], axis=1)
        order = np.lexsort((np.arange(len(gallery)), distances))[:n_instances]
        rows, nearest = gallery[order], distances[order]
        labels = self.df[C.LABELS_COLUMN].to_numpy()
        table = pd.DataFrame(
            {
                "rank": np.arange(1, len(rows) + 1),
                "item id": rows,
                "label": labels[rows],
                "distance": np.round(nearest, 4),
                "file": [Path(self.paths[r]).name for r in rows],
            }
        )
        bboxes = self.bboxes

        def color(row: int) -> tuple[int, int, int]:
            if query_row is None:
                return C.GT_COLOR
            return C.HIT_COLOR if labels[row] == labels[query_row] else C.MISS_COLOR

        tiles = [
            Tile(self.paths[r], bboxes[r], color(r), (f"id {r} · {d:.3f}", f"label {labels[r]}"))
            for r, d in zip(rows.tolist(), nearest.tolist(), strict=True)
        ]
        return _render_search(query, tiles), table

    # -- training and comparison -------------------------------------------------------------------------

    def train(
        self,
        settings: TrainingSettings,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> TrainingResult:
        """Train a copy of the current extractor on the train split (validating on the validation split after
        every epoch); afterwards it is the current extractor and this workspace as it was is the `base` that
        Compare measures against. A run cancelled before its first epoch ends changes nothing."""
        self._check_writable()
        model = copy.deepcopy(self.extractor.model)
        result = train_extractor(
            model,
            self.dataset.train_df,
            self.dataset.validation_df,
            dataset_root=self.dataset.root,
            settings=settings,
            progress=progress,
            on_epoch_end=on_epoch,
            cancel=should_stop,
        )
        if not result.history:
            return result
        self.base = self.copy()  # keeps the pre-training embeddings and metrics: nothing is recomputed
        self.base.base = None
        epochs = len(result.history)
        description = f"{self.extractor.choice.describe()}, trained {epochs} epoch(s) here"
        self.extractor = Extractor(model.eval(), model.get_transforms(train=False), self.extractor.choice, description)
        self.training_history = result.history_frame()
        self._invalidate()
        return result

    def compare(
        self,
        metric_name: str = DEFAULT_WORST_METRIC,
        n_queries: int = 3,
        n_instances: int = 5,
        progress: Progress | None = None,
    ) -> CompareResult:
        """Base vs trained extractor on the same queries: metric deltas and the most improved/regressed queries."""
        if self.base is None:
            raise WorkspaceInputError(
                "Nothing to compare yet: train the extractor on the Train tab first; Compare then shows the model "
                "before training (base) against the trained one."
            )
        names = self.metric_names()
        if metric_name not in names:
            raise WorkspaceInputError(f"Unknown metric {metric_name!r}: choose one of {', '.join(names)}.")
        n_queries = check_count("n_queries", n_queries, 1, min(MAX_QUERIES_PER_GRID, self.n_queries))
        n_instances = check_count("n_instances", n_instances, 1, self.max_instances())
        base = self.base
        base_evaluation = base.evaluation(progress, top_k=self.metric_top_k)
        base_flat, trained_flat = base_evaluation.metrics_flat, self.evaluation().metrics_flat
        deltas = pd.DataFrame(
            [
                (k, base_flat[k], trained_flat[k], trained_flat[k] - base_flat[k])
                for k in trained_flat
                if k in base_flat
            ],
            columns=["metric", "base", "trained", "delta"],
        ).round(4)
        before = self.per_query_values(metric_name, base_evaluation)
        after = self.per_query_values(metric_name)
        change = np.nan_to_num(after - before, nan=0.0)
        order = np.lexsort((np.arange(len(change)), -change))
        improved = [int(i) for i in order[:n_queries] if change[i] > 0]
        regressed = [int(i) for i in order[::-1][:n_queries] if change[i] < 0]

        def table(ids: list[int]) -> pd.DataFrame:
            values = {"base": before[ids], "trained": after[ids], "delta": change[ids]}
            return self._query_table(ids).assign(**{k: np.round(v, 4) for k, v in values.items()})

        def side_by_side(ids: list[int]) -> Image.Image | None:
            if not ids:
                return None
            return _side_by_side(_render_rows(base, ids, n_instances), _render_rows(self, ids, n_instances))

        return CompareResult(deltas, table(improved), table(regressed), side_by_side(improved), side_by_side(regressed))

    # -- export ------------------------------------------------------------------------------------------

    def export(self, methods: Sequence[str] = ("pca",), progress: Progress | None = None) -> list[Path]:
        """Write embeddings (.npy + parquet with paths and labels), metrics (CSV + JSON) and projection coords."""
        out = self.cache_dir / "exports" / uuid.uuid4().hex
        out.mkdir(parents=True)
        embeddings = self.embeddings()
        np.save(out / "embeddings.npy", embeddings)
        table = self.df.reset_index(names="id").assign(**{C.PATHS_COLUMN: self.paths})
        table[C.EMBEDDINGS_KEY] = list(embeddings)
        table.to_parquet(out / "embeddings.parquet", index=False)
        self.metrics_table().to_csv(out / "metrics.csv", index=False)
        evaluation = self.evaluation()
        (out / "metrics.json").write_text(
            json.dumps({"metrics": _jsonable(evaluation.metrics_flat), "model": self.extractor.description}, indent=2)
        )
        files = [out / "embeddings.npy", out / "embeddings.parquet", out / "metrics.csv", out / "metrics.json"]
        for method in methods:
            frame = projection_frame(
                self.projection_coords(method, progress), self.df.assign(**{C.PATHS_COLUMN: self.paths}), method
            )
            files.append(save_projection(frame, out / f"projection_{method}.csv"))
        return files


class WorkspaceSession:
    """One browser session's view: the shared default until its first change, then a private copy.

    Deep-copying (what a UI framework does to give each session its own initial state) yields a fresh session on
    the same shared workspace, never a copy of the workspace itself.
    """

    def __init__(self, shared: Workspace):
        shared.read_only = True
        self._shared = shared
        self._own: Workspace | None = None
        self._stop_training = threading.Event()

    def __deepcopy__(self, memo: dict) -> WorkspaceSession:
        return WorkspaceSession(self._shared)

    @property
    def workspace(self) -> Workspace:
        return self._own if self._own is not None else self._shared

    def edit(self) -> Workspace:
        """The session's own workspace, copied from the shared one on first use."""
        if self._own is None:
            self._own = self._shared.copy()
        return self._own

    def train(self, settings: TrainingSettings, progress: Progress | None = None) -> Iterator[tuple[pd.DataFrame, str]]:
        """Train in this session, yielding (history so far, status) after every epoch and once at the end.

        Training runs in a worker thread (with the caller's context, so progress trackers follow it) while this
        generator reports; `stop_training()` from another thread ends it before the next batch.
        """
        self._stop_training.clear()
        workspace = self.edit()
        epochs: list[EpochRecord] = []
        outcome: list[TrainingResult | BaseException] = []

        def run() -> None:
            try:
                outcome.append(workspace.train(settings, progress, self._stop_training.is_set, epochs.append))
            except BaseException as error:  # re-raised in the caller's thread below
                outcome.append(error)

        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="training", daemon=True)
        worker.start()
        shown = 0
        while worker.is_alive():
            worker.join(timeout=0.5)
            if len(epochs) > shown:
                shown = len(epochs)
                yield _history_frame(epochs), f"Training: epoch {shown}/{settings.epochs} done."
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result = outcome[0]
        if not result.history:
            status = f"{result.stopped_reason or 'Stopped'} No epoch finished: the extractor is unchanged."
        else:
            status = (result.stopped_reason or f"Finished {len(result.history)} epoch(s).") + (
                " The views now use the trained extractor; Compare shows it against the one before training."
            )
        yield _history_frame(result.history), status

    def stop_training(self) -> None:
        self._stop_training.set()


# ------------------------------------------------------------------------------------ integration points


def _load_dataset(source: str, dataset_root: str | None) -> LoadedDataset:
    source = (source or "").strip()
    if not source:
        raise WorkspaceInputError(
            "No dataset given: pick a built-in name, a CSV or image-folder path, or upload a zip."
        )
    return load_dataset(source, dataset_root=dataset_root or None)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise WorkspaceInputError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "model"


def _jsonable(values: dict) -> dict:
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else float(v)) for k, v in values.items()}


def _metrics_frame(flat: dict[str, float]) -> pd.DataFrame:
    rows = []
    for key, value in flat.items():
        category, metric, k = key.split(C.METRIC_NAME_SEPARATOR)
        rows.append((category, metric, k, round(float(value), 4)))
    frame = pd.DataFrame(rows, columns=["category", "metric", "k", "value"])
    frame["overall_first"] = frame["category"] != C.OVERALL_CATEGORIES_KEY
    return (
        frame.sort_values(["overall_first", "category"], kind="stable")
        .drop(columns="overall_first")
        .reset_index(drop=True)
    )


def _history_frame(records: Sequence[EpochRecord]) -> pd.DataFrame:
    return pd.DataFrame([asdict(record) for record in records], columns=list(EpochRecord.__annotations__))


def training_curves(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-form (epoch, series, value) frames of the four training charts: loss, active triplets,
    positive/negative distance, validation cmc@1/map@5."""
    names = {"val_cmc_1": "cmc@1", "val_map_5": "map@5"}

    def long(columns: list[str]) -> pd.DataFrame:
        frame = history.melt(id_vars="epoch", value_vars=columns, var_name="series", value_name="value").dropna()
        return frame.assign(series=frame["series"].replace(names), value=frame["value"].astype(float))

    return long(["loss"]), long(["active_tri"]), long(["pos_dist", "neg_dist"]), long(["val_cmc_1", "val_map_5"])


def _side_by_side(left: Image.Image, right: Image.Image, gap: int = 16) -> Image.Image:
    """Base grid left, trained grid right, for Compare."""
    canvas = Image.new("RGB", (left.width + gap + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas


def available_models() -> list[str]:
    """Presets first (the offline one on top); any timm name can be typed in as well."""
    return [OFFLINE_PRESET, *(name for name in PRESETS if name != OFFLINE_PRESET)]


def load_extractor(choice: ModelChoice) -> Extractor:
    """Build the extractor a `ModelChoice` names, in eval mode, with its evaluation transform."""
    name = choice.name.strip()
    if not name:
        raise WorkspaceInputError("No model given: pick a preset or type a timm name such as 'resnet18'.")
    try:
        if choice.weights == "checkpoint":
            model = ViTExtractor(choice.checkpoint)
        elif choice.weights == "random":
            model = ViTExtractor(None, arch=PRESETS[name].timm_arch if name in PRESETS else name)
        elif name in PRESETS or "." in name:
            model = ViTExtractor(name)
        else:
            raise WorkspaceInputError(
                f"{name!r} is not a preset, so 'pretrained' needs timm's 'arch.tag' form (e.g. 'resnet18.a1_in1k', "
                f"which downloads) or weights 'random'. Offline, use the preset {OFFLINE_PRESET!r}."
            )
    except PretrainedWeightsUnavailable as error:  # offline hub download: say so in the UI, not as a crash
        raise WorkspaceInputError(str(error)) from error
    if choice.weights == "checkpoint":  # the checkpoint, not the name field, says what the model is
        choice = replace(choice, name=model.preset or model.arch)
    if choice.image_size:
        model.set_input_size(choice.image_size)
    return Extractor(model.eval(), model.get_transforms(train=False), choice, choice.describe())


def _embed_image(extractor: Extractor, image: Image.Image) -> np.ndarray:
    """Embedding `[D]` of one in-memory image (an upload), pre-processed like the dataset's images."""
    with torch.inference_mode():
        return extractor.model(extractor.transform(image)[None]).float()[0].numpy()


def _render_rows(workspace: Workspace, query_ids: list[int], n_instances: int) -> Image.Image:
    """The evaluation's retrieval rows of `query_ids` (positions among the queries) as one Pillow image."""
    retrieval = workspace.evaluation().retrieval_for_queries(query_ids, n_instances)
    rows = workspace.validation_positions
    paths, bboxes = workspace.paths, workspace.bboxes
    layout = build_retrieval_layout(
        retrieval, [paths[r] for r in rows], [bboxes[r] for r in rows], n_instances, query_positions=query_ids
    )
    return render_pillow(layout)


def _render_search(query: Tile, results: list[Tile]) -> Image.Image:
    return render_pillow(RetrievalLayout(((query, *results),)))
