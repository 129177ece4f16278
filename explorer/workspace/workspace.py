"""The one backend object the app drives: a dataset, an extractor, and everything derived from them.

Data flows dataset -> extractor -> embeddings -> evaluation (retrieval results + metrics) -> pictures and
projections. `Workspace` holds the first two and computes the rest lazily, once, behind per-item locks, so the
UI only asks for tables, images and figures.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from explorer import const as C
from explorer.analysis import LabelConfusions, label_confusions, suspected_label_errors
from explorer.checks import check_choice, check_count
from explorer.data.images import read_image
from explorer.data.items import ItemIndex
from explorer.data.loading import BUILTIN_DATASETS, LoadedDataset, load_dataset
from explorer.data.precomputed import load_embeddings
from explorer.errors import InputError
from explorer.inference import EmbeddingsCache
from explorer.inference.embed import INFERENCE_BATCH_SIZE
from explorer.metrics.evaluation import EvaluationResult, evaluate_embeddings
from explorer.metrics.functional import flatten_metrics
from explorer.models.pooling import pooling_of
from explorer.progress import Progress, report, scaled
from explorer.retrieval.search import search_gallery
from explorer.training.train import (
    BatchRecord,
    EpochRecord,
    TrainingResult,
    TrainingSettings,
    train_extractor,
)
from explorer.viz.heatmap import confusion_heatmap
from explorer.viz.projection import PROJECTION_METHODS, compute_projection, projection_figure
from explorer.viz.retrieval_layout import RetrievalLayout, Tile, build_search_layout
from explorer.viz.retrieval_render import render_pillow
from explorer.viz.thumbnails import register_items
from explorer.workspace.compare import CompareResult, compare_evaluations
from explorer.workspace.exploration import (
    NO_TRUTH,
    PROJECTION_COLORS,
    SELECTION_PAGE_SIZE,
    SELECTION_VIEWS,
    check_item_id,
    check_selection,
    items_of_label,
    label_choice,
    label_choices,
    label_table,
    neighbour_pool,
    neighbours_layout,
    page_of,
    parse_item_ids,
    queries_of_label,
    queries_per_page,
    query_items_text,
    query_positions_of,
    ranked_table,
    rows_layout,
    selected_queries,
    selection_frame,
    selection_labels,
    selection_layout,
)
from explorer.workspace.export import export_checkpoint, export_files
from explorer.workspace.extractors import DEFAULT_MODEL, Extractor, ModelChoice, embed_image, load_extractor
from explorer.workspace.inputs import (
    COLOR_BY_CHOICES,
    DEFAULT_WORST_METRIC,
    MAX_INSTANCES,
    MAX_QUERIES_PER_GRID,
    METRIC_TOP_K,
    WEIGHT_CHOICES,
    check_metric,
    parse_top_k,
)
from explorer.workspace.pictures import stacked
from explorer.workspace.policy import ServingPolicy
from explorer.workspace.tables import metrics_frame, neighbours_table
from explorer.workspace.uploads import dataset_source_in, unpack_upload

APP_CACHE_ROOT = C.CACHE_ROOT / "app"
DEFAULT_DATA = C.DEFAULT_DATA
LOCAL = ServingPolicy()
FMR_VALUES = (0.001, 0.01, 0.1)  # fnmr@fmr shown in the Metrics tab
# fnmr@fmr needs the distance of every query-gallery pair (three streamed passes over them, every matching distance
# kept): above this many pairs (10k x 10k) the app leaves it out, so large data stays interactive.
MAX_FNMR_PAIRS = 10**8
MAX_TABLE_ROWS = 1000  # rows of an analysis table shown at once
MAX_REVIEW_ROWS = 10  # neighbour rows of suspected items drawn at once


@dataclass(frozen=True)
class PrecomputedEmbeddings:
    """Embeddings computed elsewhere for the current dataset (row-aligned), and the file they came from."""

    vectors: np.ndarray
    file_name: str


def _picture(layout: RetrievalLayout, heading: str) -> Image.Image:
    """A layout drawn for the app, its heading (which page, which item) in the band above the tiles."""
    return render_pillow(layout, heading=heading)


class Workspace:
    """A dataset + an extractor (or embeddings computed elsewhere), with evaluation, projections and pictures
    derived on demand.

    Read methods are safe to call from several threads. Mutating methods refuse to run on a read-only
    (shared) workspace: get a private one with `copy()` (which `WorkspaceSession.edit()` does).
    """

    def __init__(
        self,
        dataset: LoadedDataset,
        extractor: Extractor | None,
        cache_dir: Path = APP_CACHE_ROOT,
        policy: ServingPolicy = LOCAL,
        precomputed: PrecomputedEmbeddings | None = None,
    ):
        if extractor is None and precomputed is None:
            raise ValueError("A workspace needs an extractor or precomputed embeddings.")
        self.dataset = dataset
        self.extractor = extractor
        self.precomputed = precomputed  # when set, the embeddings; `extractor` is then None
        self.policy = policy
        self.base: Workspace | None = None  # this workspace before the last training run, for Compare
        self.training_history: pd.DataFrame | None = None
        self.metric_top_k: tuple[int, ...] = METRIC_TOP_K
        self.cache_dir = Path(cache_dir)
        self.read_only = False
        self._upload_dir: Path | None = None  # the unpacked zip the current dataset lives in, if any
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
        policy: ServingPolicy = LOCAL,
        embeddings: str | Path | None = None,
    ) -> Workspace:
        """Load data and model (or the data's `embeddings` computed elsewhere: .npy or parquet) and compute
        embeddings and metrics now, so the first page view is complete.

        What the app's owner starts it with (flags) is trusted; `policy` governs what visitors change later.
        """
        report(progress, 0.0, f"loading data {data!r}")
        dataset = load_dataset(data, dataset_root=dataset_root or None)
        if embeddings is not None:
            vectors = load_embeddings(embeddings, dataset.df)
            workspace = cls(dataset, None, cache_dir, policy, PrecomputedEmbeddings(vectors, Path(embeddings).name))
        else:
            choice = ModelChoice(model, "checkpoint" if checkpoint else weights, checkpoint)
            report(progress, 0.1, f"loading model {choice.describe()}")
            workspace = cls(dataset, load_extractor(choice, image_size), cache_dir, policy)
        workspace.warm_up(scaled(progress, 0.15, 1.0))
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
        self.embeddings(scaled(progress, 0.0, 0.85))
        report(progress, 0.85, "computing metrics")
        self.evaluation()
        report(progress, 0.95, "projecting embeddings (PCA)")
        self.projection_coords("pca")
        report(progress, 1.0, "ready")

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """Compute `key` once; concurrent callers of the same key wait for the first instead of repeating it.

        The result goes into the cache of the state it was computed from: if data or model change meanwhile
        (`_invalidate` swaps the cache), a late result is dropped with the old cache, never shown as the new one.
        """
        derived = self._derived
        if key in derived:
            return derived[key]
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in derived:
                derived[key] = compute()
            return derived[key]

    # -- data --------------------------------------------------------------------------------------------

    def load_data(self, source: str, dataset_root: str | None = None, progress: Progress | None = None) -> None:
        """Switch to another dataset (built-in name, or in local mode a CSV / image-folder path on the server).

        The new dataset is embedded and evaluated before it replaces the current one: a failure (or a cancel
        raised through `progress`) leaves this workspace exactly as it was.
        """
        self._check_writable()
        source = (source or "").strip()
        if not source:
            raise InputError("No dataset given: pick a built-in name, a CSV or image-folder path, or upload a zip.")
        self.policy.check_data_source(source)
        report(progress, 0.0, f"loading data {source!r}")
        self._switch(progress, dataset=load_dataset(source, dataset_root=dataset_root or None))

    def load_uploaded_zip(
        self, zip_path: str | Path, folder: Path, progress: Progress | None = None, room_bytes: int | None = None
    ) -> None:
        """Switch to a dataset uploaded as a zip (an image folder, or one CSV + the images it names), unpacked
        into `folder` for as long as it is this workspace's dataset. Paths in its CSV must stay inside it.

        Like `load_data`, nothing changes unless the whole load succeeds; on failure `folder` is removed.
        `room_bytes` is what the server has left for all sessions' files (None: no shared budget).
        """
        self._check_writable()
        try:
            report(progress, 0.0, "unpacking the upload")
            policy = self.policy
            root = unpack_upload(zip_path, folder, policy.max_upload_bytes, policy.max_upload_members, room_bytes)
            source = dataset_source_in(root)
            dataset = load_dataset(
                source,
                dataset_root=root if source.is_file() else None,
                confine_to_root=True,
                max_rows=policy.max_upload_images,
            )
            policy.check_upload_images(len(dataset.df))
            dataset = replace(dataset, name=Path(zip_path).stem)  # not the random name of the folder it is in
            self._switch(progress, dataset=dataset, upload_dir=folder)
        except BaseException as error:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(error, InputError):  # name the visitor's zip, not the random folder it was unpacked to
                message = str(error)
                for shown in (str(folder.resolve()), str(folder), folder.name):
                    message = message.replace(shown, Path(zip_path).name)
                error.args = (message,)
            raise

    def use_embeddings(self, path: str | Path, progress: Progress | None = None) -> None:
        """Explore embeddings computed elsewhere for the current dataset (`.npy` row-aligned, or a parquet with an
        `embedding` column): metrics, grids, projections work without a model; search and training need one."""
        self._check_writable()
        report(progress, 0.0, f"reading {Path(path).name}")
        vectors = load_embeddings(path, self.df)
        self._switch(progress, precomputed=PrecomputedEmbeddings(vectors, Path(path).name))

    def _switch(
        self,
        progress: Progress | None,
        dataset: LoadedDataset | None = None,
        extractor: Extractor | None = None,
        precomputed: PrecomputedEmbeddings | None = None,
        upload_dir: Path | None = None,
    ) -> None:
        """Build the new state aside (embeddings, metrics, PCA) and swap it in only when all of it succeeded.

        A new model or new precomputed embeddings replace each other; new data keeps the model and drops
        embeddings that belonged to the old data (so it needs a model)."""
        if extractor is None and precomputed is None:
            if self.extractor is None:
                raise InputError(
                    "These embeddings came from a file, so there is no model to embed the new data with: choose a "
                    "model on the Model tab first (or upload the new data's embeddings after loading it)."
                )
            extractor = self.extractor
        candidate = Workspace(dataset or self.dataset, extractor, self.cache_dir, self.policy, precomputed)
        candidate.metric_top_k = self.metric_top_k
        candidate.warm_up(scaled(progress, 0.1, 1.0))
        if dataset is not None:
            self._remove_upload()
            self._upload_dir = upload_dir
        self.dataset, self.extractor, self.precomputed = candidate.dataset, candidate.extractor, candidate.precomputed
        self._derived = candidate._derived
        self.base = None
        self.training_history = None  # curves of a run on other data or another model would mislead

    def _remove_upload(self) -> None:
        if self._upload_dir is not None:
            shutil.rmtree(self._upload_dir, ignore_errors=True)
            self._upload_dir = None

    @property
    def df(self) -> pd.DataFrame:
        return self.dataset.df

    @property
    def items(self) -> ItemIndex:
        """Paths, boxes, labels and validation / query / gallery item ids of the current dataset."""
        return self.dataset.items

    @property
    def validation_df(self) -> pd.DataFrame:
        return self.dataset.validation_df

    @property
    def n_queries(self) -> int:
        return self.items.n_queries

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
        """`wanted` (item ids of queries) when it is valid for this dataset, else the first three queries."""
        return query_items_text(self.items, wanted)

    def data_source_text(self) -> str:
        """What the Data tab's source field shows: the built-in name, or in local mode the path that was loaded;
        nothing for an upload or in public mode (a visitor never sees server folders)."""
        if self.dataset.source in BUILTIN_DATASETS:
            return self.dataset.source
        if self._upload_dir is not None or self.policy.public:
            return ""
        return self.dataset.source

    def describe(self) -> str:
        """One line for the page header: what data and which model the session is looking at."""
        counts = f"{len(self.df):,} images, {self.df[C.LABELS_COLUMN].nunique()} labels, {self.n_queries} queries"
        return f"**Data:** {self.dataset.name} ({counts}) · **Model:** {self.model_description()}"

    def model_description(self) -> str:
        if self.extractor is None:
            return f"none: embeddings from {self.precomputed.file_name}"
        return self.extractor.description

    def _model_for(self, action: str) -> Extractor:
        """The extractor, or a message that `action` needs one (the embeddings came from a file)."""
        if self.extractor is None:
            raise InputError(
                f"{action} needs the model that computed these embeddings ({self.precomputed.file_name}): load it "
                "on the Model tab (e.g. as a checkpoint); the embeddings are then recomputed with it."
            )
        return self.extractor

    # -- model -------------------------------------------------------------------------------------------

    def set_model(
        self, name: str, weights: str, checkpoint: str | None = None, progress: Progress | None = None
    ) -> None:
        """Switch the extractor (preset/timm name + pretrained, random or an uploaded checkpoint).

        The model must fit the serving policy (checked before anything is built); the data is embedded with it
        before it replaces the current one, so a failure or a cancel leaves this workspace as it was.
        """
        self._check_writable()
        if weights not in WEIGHT_CHOICES:
            raise InputError(f"Weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}.")
        if weights == "checkpoint" and not checkpoint:
            raise InputError("Weights 'checkpoint' needs a checkpoint file: upload one first.")
        self.policy.check_model_name(name)
        choice = ModelChoice((name or "").strip(), weights, checkpoint if weights == "checkpoint" else None)
        report(progress, 0.0, f"loading model {choice.describe()}")
        self._switch(progress, extractor=load_extractor(choice, allow=self.policy.check_model))

    def save_checkpoint(self, folder: Path) -> Path:
        """Write the current extractor into `folder` as a checkpoint the user can download (and load again)."""
        extractor = self._model_for("Downloading a checkpoint")
        return export_checkpoint(extractor.model, extractor.choice.name, folder)

    # -- derived data ------------------------------------------------------------------------------------

    def embeddings(self, progress: Progress | None = None) -> np.ndarray:
        """Embeddings of every row of `df` with the current extractor (or the precomputed ones), `[N, D]` float32."""
        if self.precomputed is not None:
            return self.precomputed.vectors
        return self._cached(
            ("embeddings",),
            lambda: (
                EmbeddingsCache(self.cache_dir / "embeddings")
                .embed(
                    self.extractor.model,
                    self.items.paths,
                    self.extractor.transform,
                    self.items.bboxes,
                    batch_size=INFERENCE_BATCH_SIZE,
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
                self.embeddings(progress)[self.items.validation_items],
                self.validation_df,
                cmc_top_k=top_k,
                precision_top_k=top_k,
                map_top_k=top_k,
                fmr_vals=FMR_VALUES if self._n_pairs() <= MAX_FNMR_PAIRS else (),
            ),
        )

    def _n_pairs(self) -> int:
        """Query-gallery pairs of the validation split: what pair metrics (fnmr@fmr) go through."""
        return self.items.n_queries * len(self.items.gallery_items)

    def metric_names(self) -> list[str]:
        """Flat per-query metric keys (`OVERALL/map/5`, …) that worst queries and Compare can rank by."""
        unreduced = flatten_metrics(self.evaluation().metrics_unreduced)
        return sorted(key for key, values in unreduced.items() if isinstance(values, torch.Tensor))

    def per_query_values(self, metric_name: str) -> np.ndarray:
        """`[n_queries]` values of a per-query metric; NaN for queries outside its category or undefined."""
        return self.evaluation().per_query_values(check_metric(metric_name, self.metric_names()))

    def set_metric_top_k(self, text: str) -> None:
        """Choose the k of cmc / precision / map, e.g. "1, 5, 10" (1 and 5 are always kept)."""
        self._check_writable()
        self.metric_top_k = parse_top_k(text)

    # -- tables and pictures -----------------------------------------------------------------------------

    def metrics_table(self) -> pd.DataFrame:
        """One row per (category, metric, k) with its value; OVERALL first."""
        return metrics_frame(self.evaluation().metrics_flat)

    def queries_without_relevant_gallery(self) -> int:
        return int(self.evaluation().n_queries_without_gt)

    def no_relevant_gallery_text(self) -> str:
        """The Metrics tab's note: queries without relevant gallery items, and a pair metric left out at scale."""
        n = self.queries_without_relevant_gallery()
        note = f"**{n}** of {self.n_queries} queries have no relevant gallery item (excluded from the precision mean)."
        if self._n_pairs() > MAX_FNMR_PAIRS:
            note += (
                f" fnmr@fmr is left out: it goes through every one of the {self._n_pairs():,} query-gallery pairs "
                f"(the app computes it up to {MAX_FNMR_PAIRS:,}); compute it offline with "
                "`EmbeddingMetrics(fmr_vals=(0.001, 0.01, 0.1))`."
            )
        return note

    def default_metric(self, wanted: str = DEFAULT_WORST_METRIC) -> str:
        """`wanted` if this evaluation has it, else the default worst-query metric, else the first one."""
        names = self.metric_names()
        for name in (wanted, DEFAULT_WORST_METRIC):
            if name in names:
                return name
        return names[0]

    def query_grid(self, query_ids: str | Sequence[int], n_instances: int, page: int = 1) -> Image.Image:
        """Retrieval rows of the chosen queries (their item ids), one page of them: query blue, hits green, misses
        red, missed ground truth grey, with ranks and distances."""
        return _picture(*self.query_grid_layout(query_ids, n_instances, page))

    def query_grid_layout(self, query_ids: str | Sequence[int], n_instances: int, page: int = 1):
        """(layout, heading) of `query_grid`: what a click on its picture is looked up in."""
        positions = query_positions_of(self.items, parse_item_ids(query_ids, self.items.n_items))
        return self._rows_page(positions, n_instances, page, "queries")

    def _rows_page(self, query_positions: Sequence[int], n_instances: int, page: int, what: str):
        n_instances = self._check_instances(n_instances)
        if not len(query_positions):
            raise InputError(f"There are no {what} to show: select or type item ids of queries.")
        shown = page_of(list(query_positions), page, queries_per_page(n_instances))
        return rows_layout(self.evaluation(), self.items, shown.entries, n_instances), shown.heading(what)

    def worst_queries(
        self, metric_name: str, n_queries: int, n_instances: int, page: int = 1
    ) -> tuple[Image.Image, pd.DataFrame]:
        """One page of the grid of the `n_queries` lowest-scoring queries by `metric_name`, and the table of all of
        them: item id, label, file and value."""
        ids = self._worst_positions(metric_name, n_queries)
        values = self.evaluation().per_query_values(metric_name)[ids]
        table = ranked_table(self.items, self.items.query_items[ids], {metric_name: values})
        return _picture(*self._rows_page(ids, n_instances, page, "worst queries")), table

    def worst_queries_layout(self, metric_name: str, n_queries: int, n_instances: int, page: int = 1):
        """(layout, heading) of `worst_queries`' picture."""
        return self._rows_page(self._worst_positions(metric_name, n_queries), n_instances, page, "worst queries")

    def _worst_positions(self, metric_name: str, n_queries: int) -> list[int]:
        """The first `n_queries` of the metric's ranking of every query, sorted once per data, model and k."""
        check_metric(metric_name, self.metric_names())
        n_queries = self._check_query_count(n_queries)
        ranking = self._cached(
            ("worst queries", metric_name, self.metric_top_k),
            lambda: self.evaluation().worst_queries(metric_name, self.n_queries),
        )
        return ranking[:n_queries]

    def max_instances(self) -> int:
        return max(1, min(MAX_INSTANCES, len(self.items.gallery_items)))

    def _check_instances(self, n_instances: int) -> int:
        return check_count("n_instances", n_instances, 1, self.max_instances())

    def _check_query_count(self, n_queries: int) -> int:
        return check_count("n_queries", n_queries, 1, min(MAX_QUERIES_PER_GRID, self.n_queries))

    def item_row(self, item_id: int, n_instances: int = 5, scope: str = "own split") -> Image.Image:
        """The retrieval row of any item (a clicked point or tile): a query's evaluation row (scope "own split"),
        else its nearest items of its own split or of all items (`scope`), itself excluded."""
        return _picture(*self.item_row_layout(item_id, n_instances, scope))

    def item_row_layout(self, item_id: int, n_instances: int = 5, scope: str = "own split"):
        """(layout, heading) of `item_row`."""
        items = self.items
        item_id = check_item_id(item_id, items.n_items)
        n_instances = self._check_instances(n_instances)
        pool = neighbour_pool(self.df, items, item_id, scope)
        where = "of its split" if scope == "own split" else "of all items"
        heading = f"item {item_id} · label {label_choice(items, items.labels[item_id])} · nearest items {where}"
        query_position = items.query_id_of_item(item_id)
        if query_position is not None and scope == "own split":
            return rows_layout(self.evaluation(), items, [query_position], n_instances), heading
        return neighbours_layout(items, self.embeddings(), item_id, pool, n_instances), heading

    # -- selections and labels ---------------------------------------------------------------------------

    def selection_grid(self, item_ids: Sequence[int], view: str, n_instances: int, page: int = 1) -> Image.Image:
        """One page of a plot selection: its items as tiles, or the retrieval rows of its queries (`view`)."""
        return _picture(*self.selection_grid_layout(item_ids, view, n_instances, page))

    def selection_grid_layout(self, item_ids: Sequence[int], view: str, n_instances: int, page: int = 1):
        """(layout, heading) of one page of a plot selection: its items, or the retrieval rows of its queries."""
        ids = check_selection(list(item_ids), self.items.n_items)
        view = check_choice("view", view, SELECTION_VIEWS)
        if view == SELECTION_VIEWS[1]:
            positions = query_positions_of(self.items, selected_queries(self.items, ids))
            return self._rows_page(positions, n_instances, page, "selected queries")
        if not ids:
            raise InputError("Nothing is selected: draw a box or lasso around points in the plot first.")
        shown = page_of(ids, page, SELECTION_PAGE_SIZE)
        return selection_layout(self.items, shown), shown.heading("selected items")

    def selection_labels(self, item_ids: Sequence[int]) -> pd.DataFrame:
        """How many selected items each label has."""
        return selection_labels(self.items, check_selection(list(item_ids), self.items.n_items))

    def selection_csv(self, item_ids: Sequence[int], folder: Path) -> Path:
        """The selection as `selection.csv` in `folder`: item id, the dataset's relative path, label, name, split."""
        ids = check_selection(list(item_ids), self.items.n_items)
        if not ids:
            raise InputError("Nothing is selected: draw a box or lasso around points in the plot first.")
        path = Path(folder) / "selection.csv"
        selection_frame(self.df, self.items, ids).to_csv(path, index=False)
        return path

    def label_table(self) -> pd.DataFrame:
        """The dataset's labels: name, number, items and queries."""
        return label_table(self.items)

    def label_items(self, label: str) -> list[int]:
        """Item ids of a label (a filter of the plot)."""
        return items_of_label(self.items, label).tolist()

    def label_queries_text(self, label: str) -> str:
        """The item ids of a label's queries, as the Queries tab's field takes them."""
        return ", ".join(map(str, queries_of_label(self.items, label)))

    # -- projection --------------------------------------------------------------------------------------

    def projection_coords(self, method: str, progress: Progress | None = None) -> np.ndarray:
        """2-D coordinates of every row's embedding (cached per method)."""
        method = check_choice("method", method, PROJECTION_METHODS)
        return self._cached(
            ("projection", method),
            lambda: compute_projection(
                self.embeddings(),
                method,
                progress=progress,
                cache_dir=self.cache_dir / "projections",
                exact_knn=True,  # UMAP from the exact search, not pynndescent (tens of seconds of numba compile)
            ),
        )

    def projection(self, method: str, color_by: str, label: str = "", progress: Progress | None = None):
        """Plotly figure of the projection, coloured by `color_by` in the grids' colours; points carry their item id
        and hover fetches their thumbnail; `label` (optional) draws the other labels' points faint."""
        color_by = check_choice("color_by", color_by, COLOR_BY_CHOICES)
        focus = None
        if (label or "").strip():
            focus = np.zeros(self.items.n_items, bool)
            focus[items_of_label(self.items, label)] = True
        coords = self.projection_coords(method, progress)
        points = self._cached(("point table", self.metric_top_k), self._point_table)
        return projection_figure(
            coords,
            points["id"],
            points["label"],
            points["file"],
            points[color_by],
            color_by,
            continuous=color_by == "map@5",
            color_map=PROJECTION_COLORS.get(color_by),
            focus=focus,
            thumbnails=register_items(self.items.paths, self.items.bboxes),
        )

    def _point_table(self) -> pd.DataFrame:
        """Per df row: what hover shows and what colouring uses (hit@1 as hit / miss / no ground truth); computed
        once per data, model and k (`projection` caches it), so a figure costs only its own drawing."""
        items = self.items
        table = pd.DataFrame(
            {
                "id": np.arange(items.n_items),
                "label": label_choices(items),
                "split": self.df[C.SPLIT_COLUMN].to_numpy(),
                "file": items.all_file_names,
                "query/gallery": items.roles(),
            }
        )
        hits = pd.Series(self.per_query_values(f"{C.OVERALL_CATEGORIES_KEY}/cmc/1")).map({1.0: "hit", 0.0: "miss"})
        hits[self.evaluation().retrieval.n_gt.numpy() == 0] = NO_TRUTH
        table["hit@1"] = pd.Series([None] * items.n_items, dtype=object)
        table.loc[items.query_items, "hit@1"] = hits.to_numpy()
        values = np.full(items.n_items, np.nan)
        values[items.query_items] = self.per_query_values(DEFAULT_WORST_METRIC)
        table["map@5"] = values
        return table

    # -- search ------------------------------------------------------------------------------------------

    def search(self, image: str | Path | Image.Image | None, n_instances: int) -> tuple[Image.Image, pd.DataFrame]:
        """Nearest gallery items of an uploaded image (a file path, as the app passes it, or an in-memory image),
        as a picture (grey frames: the upload's label is unknown) and a table with distances and labels."""
        if image is None or (not isinstance(image, Image.Image) and not str(image).strip()):
            raise InputError("No image given: upload an image to search with.")
        n_instances = self._check_instances(n_instances)
        if isinstance(image, Image.Image):  # from Python: a short-lived copy, only for drawing the query tile
            with tempfile.TemporaryDirectory() as folder:
                copy_path = Path(folder) / "query.png"
                image.convert("RGB").save(copy_path)
                return self._search_file(copy_path, n_instances)
        return self._search_file(Path(image), n_instances)

    def _search_file(self, path: Path, n_instances: int) -> tuple[Image.Image, pd.DataFrame]:
        embedding = embed_image(
            self._model_for("Search by image"), read_image(path)
        )  # a non-image file: a message naming it
        items = self.items
        retrieval = search_gallery(
            embedding, self.embeddings()[items.gallery_items], n_instances, gallery_ids=items.gallery_items
        )
        query = Tile(str(path), None, C.QUERY_COLOR, ("your image", path.name, ""))
        layout = build_search_layout(query, retrieval, items.paths, items.bboxes, items.label_names, n_instances, False)
        table = neighbours_table(retrieval, items)
        table["label"] = [label_choice(items, label) for label in table["label"]]
        return render_pillow(layout), table.astype({"distance": float}).round({"distance": 4})

    # -- analysis: confused labels, suspected label errors -----------------------------------------------

    def confusions(self, progress: Progress | None = None) -> LabelConfusions:
        """Which labels the validation queries retrieve for which among their first results (names shown)."""
        rows = self.items.validation_items
        return self._cached(
            ("confusions",),
            lambda: label_confusions(
                self.evaluation(), self.items.labels[rows], self.items.label_names[rows], progress=progress
            ),
        )

    def confusions_table(self, n_pairs: int) -> pd.DataFrame:
        """The `n_pairs` most frequent (query label, retrieved label) confusions: count and share."""
        n_pairs = check_count("n_pairs", n_pairs, 1, MAX_TABLE_ROWS)
        return self.confusions().table.head(n_pairs).round({"share": 4})

    def confusion_queries(self, query_label: str, retrieved_label: str, n_instances: int, page: int = 1) -> Image.Image:
        """One page of the retrieval rows of the queries of one confused pair."""
        return _picture(*self.confusion_queries_layout(query_label, retrieved_label, n_instances, page))

    def confusion_queries_layout(self, query_label: str, retrieved_label: str, n_instances: int, page: int = 1):
        """(layout, heading) of `confusion_queries`: what a click on its picture is looked up in."""
        confusions = self.confusions()
        table = confusions.table
        match = np.flatnonzero(
            (table["query label"].to_numpy() == str(query_label))
            & (table["retrieved label"].to_numpy() == str(retrieved_label))
        )
        if not len(match):
            raise InputError(
                f"No confusion of {query_label!r} with {retrieved_label!r}: pick a row of the confusions table."
            )
        query_ids = confusions.query_ids[int(match[0])]
        return self._rows_page(query_ids, n_instances, page, f"{query_label} queries retrieving {retrieved_label}:")

    def confusion_heatmap(self):
        """Plotly heat map of the most confused labels (query label x retrieved label)."""
        confusions = self.confusions()
        return confusion_heatmap(confusions.matrix, confusions.matrix_names, confusions.top_k)

    def suspected_errors_csv(self, folder: Path) -> Path:
        """The whole suspected-errors ranking as a CSV in `folder` (item id, relative path, labels, score)."""
        path = folder / "suspected_label_errors.csv"
        self._suspected_ranking().to_csv(path, index=False)
        return path

    def suspected_errors(self, n: int, progress: Progress | None = None) -> pd.DataFrame:
        """The `n` items that look most mislabelled: item id, path (relative), given and suggested label, score."""
        n = check_count("n", n, 1, MAX_TABLE_ROWS)
        return self._suspected_ranking(progress).head(n).round({"score": 4})

    def _suspected_ranking(self, progress: Progress | None = None) -> pd.DataFrame:
        """Every item, most suspected first (computed once per data and model)."""
        return self._cached(
            ("suspected errors",), lambda: suspected_label_errors(self.embeddings(), self.df, progress=progress)
        )

    def suspected_error_rows(self, n: int, n_instances: int) -> Image.Image:
        """The neighbour rows of the `n` most suspected items (up to `MAX_REVIEW_ROWS`), for review."""
        n = check_count("n", n, 1, MAX_REVIEW_ROWS)
        item_ids = self.suspected_errors(n)["item id"].tolist()
        return stacked([self.item_row(item_id, n_instances) for item_id in item_ids])

    # -- training and comparison -------------------------------------------------------------------------

    def train(
        self,
        settings: TrainingSettings,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        checkpoint_path: Path | None = None,
        on_batch: Callable[[BatchRecord], None] | None = None,
    ) -> TrainingResult:
        """Train a copy of the current extractor on the train split (validating on the validation split before
        training and after every epoch); afterwards the kept epoch's weights (`settings.keep`: the best by
        `settings.select_by`, epoch 0 included, or the last) are the current extractor, and this workspace as it
        was is the `base` that Compare measures against and `revert_training` returns to. A run cancelled before
        its first epoch ends changes nothing.

        `checkpoint_path` is rewritten (atomically) after every completed epoch with the kept weights."""
        self._check_writable()
        self.policy.check_image_size(settings.image_size)
        model = copy.deepcopy(self._model_for("Training").model)
        result = train_extractor(
            model,
            self.dataset.train_df,
            self.dataset.validation_df,
            dataset_root=self.dataset.root,
            settings=settings,
            progress=progress,
            on_epoch_end=on_epoch,
            on_batch_end=on_batch,
            cancel=should_stop,
            checkpoint_path=checkpoint_path,
        )
        if not result.epochs_done:
            return result
        self.base = self.copy()  # keeps the pre-training embeddings and metrics: nothing is recomputed
        self.base.base = None
        trained = f"trained here, epoch {result.kept_epoch} of {result.epochs_done} in use"
        pooling = pooling_of(model.model)  # the recipe's switch to GeM stays with the weights: say so
        if pooling is not None:
            trained += f", {pooling.upper()} pooling"
        description = f"{self.extractor.choice.describe(model)}, {trained}"
        self.extractor = Extractor(model.eval(), model.get_transforms(train=False), self.extractor.choice, description)
        self.training_history = result.history_frame()
        self._invalidate()
        return result

    def revert_training(self) -> None:
        """Go back to the extractor before the last training run, with its embeddings and metrics exactly as they
        were (nothing is recomputed); Compare then shows no change until the next run."""
        self._check_writable()
        if self.base is None:
            raise InputError("Nothing to revert: no training run changed this extractor (train on the Train tab).")
        self.extractor, self.precomputed = self.base.extractor, self.base.precomputed
        self.training_history = self.base.training_history
        self._derived = dict(self.base._derived)

    def compare(
        self,
        metric_name: str = DEFAULT_WORST_METRIC,
        n_queries: int = 3,
        n_instances: int = 5,
        progress: Progress | None = None,
    ) -> CompareResult:
        """The extractor before the last training run (base) against the one in use (trained, or reverted to the
        base) on the same queries: metric deltas and the most improved / regressed queries."""
        if self.base is None:
            raise InputError(
                "Nothing to compare yet: train the extractor on the Train tab first; Compare then shows the model "
                "before training (base) against the one in use."
            )
        check_metric(metric_name, self.metric_names())
        n_queries, n_instances = self._check_query_count(n_queries), self._check_instances(n_instances)
        base = self.base.evaluation(progress, top_k=self.metric_top_k)
        return compare_evaluations(base, self.evaluation(), self.items, metric_name, n_queries, n_instances)

    # -- export ------------------------------------------------------------------------------------------

    def export(self, folder: Path, methods: Sequence[str] = ("pca",), progress: Progress | None = None) -> list[Path]:
        """Write embeddings (.npy + parquet with the dataset's relative paths), metrics (CSV + JSON) and projection
        coordinates into `folder` (new)."""
        projections = {method: self.projection_coords(method, progress) for method in methods}
        return export_files(
            folder,
            self.embeddings(),
            self.df,
            self.evaluation(),
            self.model_description(),
            projections,
        )
