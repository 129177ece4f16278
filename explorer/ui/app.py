"""Gradio wiring of the explorer: components, events and API names. Every decision lives in `explorer.workspace`.

Each browser session gets a `WorkspaceSession` (a `gr.State`), which reads the shared default workspace until the
user changes data, model or training, and then works on its own copy. Backend `ValueError`s become `gr.Error`
messages; anything else is logged and reported in one line, so the app keeps serving.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from explorer.data.loading import BUILTIN_DATASETS
from explorer.errors import InputError
from explorer.training.train import IMAGE_SIZE_RANGE
from explorer.ui.plotly_click import on_point_click, plotly_click
from explorer.viz.projection import PROJECTION_METHODS
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.extractors import available_models
from explorer.workspace.inputs import (
    COLOR_BY_CHOICES,
    MAX_INSTANCES,
    MAX_QUERIES_PER_GRID,
    TRAIN_CHOICES,
    TRAIN_DEFAULTS,
    WEIGHT_CHOICES,
    training_settings,
)
from explorer.workspace.tables import training_curves

log = logging.getLogger(__name__)

MAX_UPLOAD_SIZE = "500mb"
HEAVY_JOBS = "heavy"  # data/model switches and projections share this queue slot
HEAVY_CONCURRENCY = 2
VIEW_CONCURRENCY = 4
DEFAULT_INSTANCES = 5
DEFAULT_WORST_COUNT = 4


TRACKED = gr.Progress(track_tqdm=True)  # default of handlers' progress parameter; Gradio makes one per call


def _as_ui_error(error: Exception, where: str) -> gr.Error:
    """Backend input errors keep their message; anything unexpected is logged and shown in one line."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, InputError):
        return gr.Error(str(error))
    log.error("unexpected error in %s", where, exc_info=error)
    return gr.Error(f"Unexpected error ({type(error).__name__}): {error}")


def _user_errors(fn: Callable) -> Callable:
    """Wrap a handler (plain or generator) so the user sees a message, never a traceback, and the app serves on."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # the app must keep serving whatever happened
                raise _as_ui_error(error, fn.__name__) from error

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # the app must keep serving whatever happened
            raise _as_ui_error(error, fn.__name__) from error

    return wrapper


def _reporter(progress: gr.Progress) -> Callable[[float, str], None]:
    return lambda fraction, message: progress(fraction, desc=message)


def launch_options() -> dict[str, Any]:
    """`launch()` settings the app needs wherever it runs.

    Upload cap; `show_error` so that input Gradio itself cannot decode (a file that is not an image) reaches the
    user as its reason rather than a generic failure (our handlers already turn errors into messages). No
    `allowed_paths`: pictures are rendered on the server and every file a handler returns is copied into
    Gradio's own cache, so the app serves nothing from the dataset folder or the workspace cache directly.
    """
    return {"max_file_size": MAX_UPLOAD_SIZE, "show_error": True}


def build_demo(workspace: Workspace) -> gr.Blocks:
    """The app on `workspace` (shared read-only by all sessions; each session copies it on first change)."""
    first_metric = workspace.default_metric()
    first_ids = workspace.default_query_ids()
    n_default = min(DEFAULT_INSTANCES, workspace.max_instances())

    with gr.Blocks(title="Metric-learning explorer", delete_cache=(3600, 3600)) as demo:
        session = gr.State(WorkspaceSession(workspace))
        gr.Markdown("# Metric-learning explorer")
        header = gr.Markdown(workspace.describe(), elem_id="header")

        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data"):
                with gr.Row():
                    data_source = gr.Textbox(
                        label=f"Built-in name ({', '.join(BUILTIN_DATASETS)}) or a CSV / image-folder path on the server",
                        value=workspace.dataset.name
                        if workspace.dataset.name in BUILTIN_DATASETS
                        else str(workspace.dataset.root),
                        scale=3,
                        elem_id="data-source",
                    )
                    data_root = gr.Textbox(
                        label="dataset_root (CSV only; default: the CSV's folder)", scale=2, elem_id="data-root"
                    )
                    data_load = gr.Button("Load", variant="primary", scale=1, elem_id="data-load")
                with gr.Row():
                    data_zip = gr.File(
                        label="…or upload a zip (image folder, or one CSV + images)",
                        file_types=[".zip"],
                        elem_id="data-zip",
                    )
                data_status = gr.Markdown(elem_id="data-status")
                data_warnings = gr.Markdown(workspace.warnings_text(), elem_id="data-warnings")
                with gr.Row():
                    data_summary = gr.Dataframe(
                        workspace.data_summary(), label="Counts", interactive=False, scale=1, elem_id="data-summary"
                    )
                    data_preview = gr.Dataframe(
                        workspace.data_preview(), label="First rows", interactive=False, scale=3
                    )

            with gr.Tab("Model", id="model"):
                with gr.Row():
                    model_name = gr.Dropdown(
                        available_models(),
                        value=workspace.extractor.choice.name,
                        label="Preset or timm name",
                        allow_custom_value=True,
                        elem_id="model-name",
                    )
                    model_weights = gr.Radio(
                        list(WEIGHT_CHOICES),
                        value=workspace.extractor.choice.weights,
                        label="Weights",
                        elem_id="model-weights",
                    )
                    model_checkpoint = gr.File(
                        label="Checkpoint (for weights = checkpoint)",
                        file_types=[".safetensors"],
                        elem_id="model-checkpoint",
                    )
                with gr.Row():
                    model_apply = gr.Button("Use this model", variant="primary", elem_id="model-apply")
                    model_download = gr.Button("Download current checkpoint", elem_id="model-download")
                model_status = gr.Markdown(elem_id="model-status")
                model_file = gr.File(label="Checkpoint file", interactive=False, elem_id="model-file")

            with gr.Tab("Train", id="train"):
                with gr.Row():
                    train_epochs = gr.Number(TRAIN_DEFAULTS.epochs, label="epochs", precision=0, minimum=1, maximum=200)
                    train_lr = gr.Number(TRAIN_DEFAULTS.lr, label="learning rate", minimum=0)
                    train_optimizer = gr.Dropdown(
                        list(TRAIN_CHOICES["optimizer"]), value=TRAIN_CHOICES["optimizer"][0], label="optimizer"
                    )
                    train_margin = gr.Number(TRAIN_DEFAULTS.margin, label="margin", minimum=0)
                    train_soft_margin = gr.Checkbox(
                        False, label="soft margin: log(1 + exp(d(a,p) - d(a,n))), no margin", elem_id="train-soft"
                    )
                    train_miner = gr.Dropdown(
                        list(TRAIN_CHOICES["miner"]), value=TRAIN_CHOICES["miner"][0], label="miner"
                    )
                with gr.Row():
                    train_n_labels = gr.Number(TRAIN_DEFAULTS.n_labels, label="n_labels", precision=0, minimum=2)
                    train_n_instances = gr.Number(
                        TRAIN_DEFAULTS.n_instances, label="n_instances", precision=0, minimum=2
                    )
                    train_image_size = gr.Number(
                        TRAIN_DEFAULTS.image_size,
                        label="image size (0: the model's own)",
                        precision=0,
                        minimum=0,
                        maximum=IMAGE_SIZE_RANGE[1],
                        elem_id="train-image-size",
                    )
                    train_start = gr.Button("Train", variant="primary", elem_id="train-start")
                    train_cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
                train_status = gr.Markdown(elem_id="train-status")
                with gr.Row():
                    curve_loss = gr.LinePlot(
                        x="epoch", y="value", color="series", title="loss", height=240, elem_id="curve-loss"
                    )
                    curve_active = gr.LinePlot(
                        x="epoch", y="value", color="series", title="active triplets", height=240
                    )
                with gr.Row():
                    curve_dist = gr.LinePlot(
                        x="epoch", y="value", color="series", title="positive / negative distance", height=240
                    )
                    curve_val = gr.LinePlot(
                        x="epoch",
                        y="value",
                        color="series",
                        title="validation cmc@1 / map@5",
                        height=240,
                        elem_id="curve-val",
                    )

            with gr.Tab("Metrics", id="metrics"):
                with gr.Row():
                    metrics_k = gr.Textbox(
                        ", ".join(map(str, workspace.metric_top_k)), label="k for cmc / precision / map"
                    )
                    metrics_apply = gr.Button("Recompute")
                metrics_note = gr.Markdown(workspace.no_relevant_gallery_text())
                metrics_table = gr.Dataframe(
                    workspace.metrics_table(), label="Metrics (validation)", interactive=False, elem_id="metrics-table"
                )

            with gr.Tab("Queries", id="queries"):
                with gr.Row():
                    query_ids = gr.Textbox(
                        first_ids, label=f"Query ids (0..{workspace.n_queries - 1}), e.g. 0, 3, 7", elem_id="query-ids"
                    )
                    query_instances = gr.Slider(
                        1, MAX_INSTANCES, n_default, step=1, label="n_instances", elem_id="query-instances"
                    )
                    query_show = gr.Button("Show", variant="primary", elem_id="query-show")
                query_image = gr.Image(
                    workspace.query_grid(first_ids, n_default),
                    type="pil",
                    label="Retrieval rows",
                    format="png",
                    elem_id="query-grid",
                )

            with gr.Tab("Worst queries", id="worst"):
                with gr.Row():
                    worst_metric = gr.Dropdown(
                        workspace.metric_names(), value=first_metric, label="metric", allow_custom_value=True
                    )
                    worst_count = gr.Slider(
                        1,
                        MAX_QUERIES_PER_GRID,
                        DEFAULT_WORST_COUNT,
                        step=1,
                        label="number of queries",
                        elem_id="worst-count",
                    )
                    worst_instances = gr.Slider(1, MAX_INSTANCES, n_default, step=1, label="n_instances")
                    worst_show = gr.Button("Show", variant="primary", elem_id="worst-show")
                first_worst = workspace.worst_queries(
                    first_metric, min(DEFAULT_WORST_COUNT, workspace.n_queries), n_default
                )
                worst_table = gr.Dataframe(
                    first_worst[1],
                    label="Worst queries (click a row to open it)",
                    interactive=False,
                    elem_id="worst-table",
                )
                worst_image = gr.Image(
                    first_worst[0], type="pil", label="Worst queries", format="png", elem_id="worst-grid"
                )

            with gr.Tab("Embeddings", id="embeddings"):
                with gr.Row():
                    projection_method = gr.Radio(list(PROJECTION_METHODS), value="pca", label="method")
                    projection_color = gr.Dropdown(list(COLOR_BY_CHOICES), value="label", label="colour by")
                    projection_show = gr.Button("Show", variant="primary")
                gr.Markdown("Hover a point for its label, id and file; **click it** to see its retrieval row below.")
                projection_plot = plotly_click(workspace.projection("pca", "label"), elem_id="projection-plot")
                clicked_row = gr.Image(
                    type="pil", label="Retrieval row of the clicked item", format="png", elem_id="clicked-row"
                )

            with gr.Tab("Search", id="search"):
                with gr.Row():
                    search_image = gr.Image(
                        type="filepath",  # no copy per search: the workspace reads Gradio's upload in place
                        label="Image to search with",
                        sources=["upload", "clipboard"],
                        elem_id="search-image",
                    )
                    with gr.Column():
                        search_instances = gr.Slider(1, MAX_INSTANCES, n_default, step=1, label="n_instances")
                        search_run = gr.Button("Search", variant="primary", elem_id="search-run")
                search_result = gr.Image(
                    type="pil", label="Nearest gallery items", format="png", elem_id="search-result"
                )
                search_table = gr.Dataframe(label="Nearest gallery items", interactive=False, elem_id="search-table")

            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "The extractor before the last training run (base) against the trained one, on the same queries."
                )
                with gr.Row():
                    compare_metric = gr.Dropdown(
                        workspace.metric_names(), value=first_metric, label="per-query metric", allow_custom_value=True
                    )
                    compare_count = gr.Slider(1, MAX_QUERIES_PER_GRID, 3, step=1, label="number of queries")
                    compare_instances = gr.Slider(1, MAX_INSTANCES, n_default, step=1, label="n_instances")
                    compare_run = gr.Button("Compare", variant="primary", elem_id="compare-run")
                compare_deltas = gr.Dataframe(
                    label="Metric deltas (trained − base)", interactive=False, elem_id="compare-deltas"
                )
                compare_improved_table = gr.Dataframe(
                    label="Most improved queries", interactive=False, elem_id="compare-improved-table"
                )
                compare_improved = gr.Image(
                    type="pil",
                    label="Most improved: base (left) vs trained (right)",
                    format="png",
                    elem_id="compare-improved",
                )
                compare_regressed_table = gr.Dataframe(
                    label="Most regressed queries", interactive=False, elem_id="compare-regressed-table"
                )
                compare_regressed = gr.Image(
                    type="pil",
                    label="Most regressed: base (left) vs trained (right)",
                    format="png",
                    elem_id="compare-regressed",
                )

            with gr.Tab("Export", id="export"):
                export_methods = gr.CheckboxGroup(
                    list(PROJECTION_METHODS), value=["pca"], label="projection coordinates to include"
                )
                export_run = gr.Button(
                    "Export embeddings, metrics and projections", variant="primary", elem_id="export-run"
                )
                export_files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="export-files")

        # -- handlers: thin calls into the session's workspace ----------------------------------------------

        @_user_errors
        def query_grid(session: WorkspaceSession, query_ids: str, n_instances: int) -> Image.Image:
            return session.workspace.query_grid(query_ids, n_instances)

        @_user_errors
        def worst_queries(session: WorkspaceSession, metric_name: str, n_queries: int, n_instances: int):
            return session.workspace.worst_queries(metric_name, n_queries, n_instances)

        @_user_errors
        def metrics(session: WorkspaceSession) -> pd.DataFrame:
            return session.workspace.metrics_table()

        @_user_errors
        def projection(session: WorkspaceSession, method: str, color_by: str, progress=TRACKED):
            return session.workspace.projection(method, color_by, _reporter(progress))

        @_user_errors
        def search(session: WorkspaceSession, image: str | None, n_instances: int):
            return session.workspace.search(image, n_instances)

        @_user_errors
        def open_clicked(item_id: int, session: WorkspaceSession, n_instances: int) -> Image.Image:
            return session.workspace.item_row(item_id, n_instances)

        @_user_errors
        def open_worst_row(session: WorkspaceSession, n_instances: int, event: gr.SelectData):
            query_id = int(event.row_value[0])  # the clicked row's own "query id", also after the user sorts
            return gr.Tabs(selected="queries"), str(query_id), session.workspace.query_grid([query_id], n_instances)

        # Data and model switches write the header and a status line: their progress bars show there while
        # embeddings are computed, so a long load is never a silent page.
        @_user_errors
        def load_data(session: WorkspaceSession, source: str, root: str, progress=TRACKED) -> tuple[str, str]:
            workspace = session.edit()
            workspace.load_data(source, root)
            workspace.warm_up(_reporter(progress))
            return workspace.describe(), f"Loaded. {workspace.describe()}"

        @_user_errors
        def load_zip(session: WorkspaceSession, zip_path: str | None, progress=TRACKED):
            if zip_path is None:  # the upload was cleared
                return gr.skip(), gr.skip()
            workspace = session.edit()
            workspace.load_uploaded_zip(zip_path)
            workspace.warm_up(_reporter(progress))
            return workspace.describe(), f"Loaded the upload. {workspace.describe()}"

        @_user_errors
        def set_model(
            session: WorkspaceSession, name: str, weights: str, checkpoint: str | None, progress=TRACKED
        ) -> tuple[str, str]:
            workspace = session.edit()
            workspace.set_model(name, weights, checkpoint)
            workspace.warm_up(_reporter(progress))
            return workspace.describe(), f"Now using {workspace.extractor.description}."

        @_user_errors
        def download_checkpoint(session: WorkspaceSession) -> str:
            return str(session.workspace.save_checkpoint())

        @_user_errors
        def set_metric_k(session: WorkspaceSession, text: str):
            session.edit().set_metric_top_k(text)

        @_user_errors
        def train(
            session: WorkspaceSession,
            epochs,
            lr,
            optimizer,
            margin,
            miner,
            n_labels,
            n_instances,
            image_size,
            soft_margin,
            progress=TRACKED,
        ):
            settings = training_settings(
                epochs, lr, optimizer, margin, miner, n_labels, n_instances, image_size, soft_margin
            )
            for history, status in session.train(settings, _reporter(progress)):
                yield (status, *training_curves(history))

        def cancel_training(session: WorkspaceSession) -> None:
            # A toast, not the status line: the run's own last status could arrive first and be overwritten.
            session.stop_training()
            gr.Info("Cancelling after the current step…")

        @_user_errors
        def compare(session: WorkspaceSession, metric_name: str, n_queries: int, n_instances: int, progress=TRACKED):
            result = session.workspace.compare(metric_name, n_queries, n_instances, _reporter(progress))
            return result.deltas, result.improved, result.improved_grid, result.regressed, result.regressed_grid

        @_user_errors
        def export(session: WorkspaceSession, methods: list[str], progress=TRACKED) -> list[str]:
            return [str(path) for path in session.workspace.export(methods, _reporter(progress))]

        @_user_errors
        def refresh(
            session: WorkspaceSession, ids: str, n_instances: int, metric: str, n_worst: int, method: str, color_by: str
        ):
            """Every view after data, model or training changed."""
            workspace = session.workspace
            names = workspace.metric_names()
            metric = workspace.default_metric(metric)
            n_instances = min(int(n_instances), workspace.max_instances())
            ids = workspace.default_query_ids(ids)
            worst_picture, worst_rows = workspace.worst_queries(
                metric, min(int(n_worst), workspace.n_queries), n_instances
            )
            return (
                workspace.describe(),
                workspace.warnings_text(),
                workspace.data_summary(),
                workspace.data_preview(),
                workspace.no_relevant_gallery_text(),
                workspace.metrics_table(),
                gr.Textbox(value=ids, label=f"Query ids (0..{workspace.n_queries - 1}), e.g. 0, 3, 7"),
                workspace.query_grid(ids, n_instances),
                gr.Dropdown(choices=names, value=metric),
                worst_picture,
                worst_rows,
                workspace.projection(method, color_by),
                gr.Dropdown(choices=names, value=metric),
                None,
                workspace.extractor.choice.name,
                workspace.extractor.choice.weights,
            )

        refresh_inputs = [
            session,
            query_ids,
            query_instances,
            worst_metric,
            worst_count,
            projection_method,
            projection_color,
        ]
        refresh_outputs = [
            header,
            data_warnings,
            data_summary,
            data_preview,
            metrics_note,
            metrics_table,
            query_ids,
            query_image,
            worst_metric,
            worst_image,
            worst_table,
            projection_plot,
            compare_metric,
            clicked_row,
            model_name,
            model_weights,
        ]

        def then_refresh(event):
            event.success(refresh, refresh_inputs, refresh_outputs, api_visibility="private", concurrency_id=HEAVY_JOBS)

        # -- the scriptable API ---------------------------------------------------------------------------
        gr.on(
            [query_show.click, query_ids.submit],
            query_grid,
            [session, query_ids, query_instances],
            query_image,
            api_name="query_grid",
            concurrency_limit=VIEW_CONCURRENCY,
        )
        worst_show.click(
            worst_queries,
            [session, worst_metric, worst_count, worst_instances],
            [worst_image, worst_table],
            api_name="worst_queries",
            concurrency_limit=VIEW_CONCURRENCY,
        )
        metrics_apply.click(set_metric_k, [session, metrics_k], None, api_visibility="private").success(
            metrics, session, metrics_table, api_name="metrics"
        )
        projection_show.click(
            projection,
            [session, projection_method, projection_color],
            projection_plot,
            api_name="projection",
            concurrency_id=HEAVY_JOBS,
            concurrency_limit=HEAVY_CONCURRENCY,
        )
        search_run.click(
            search,
            [session, search_image, search_instances],
            [search_result, search_table],
            api_name="search",
            concurrency_limit=VIEW_CONCURRENCY,
        )

        # -- the rest of the UI -----------------------------------------------------------------------------
        worst_table.select(
            open_worst_row,
            [session, query_instances],
            [tabs, query_ids, query_image],
            api_visibility="private",
        )
        on_point_click(projection_plot, open_clicked, [session, query_instances], clicked_row, api_visibility="private")
        then_refresh(
            data_load.click(
                load_data,
                [session, data_source, data_root],
                [header, data_status],
                api_visibility="private",
                concurrency_id=HEAVY_JOBS,
                concurrency_limit=HEAVY_CONCURRENCY,
            )
        )
        then_refresh(
            data_zip.upload(
                load_zip,
                [session, data_zip],
                [header, data_status],
                api_visibility="private",
                concurrency_id=HEAVY_JOBS,
            )
        )
        then_refresh(
            model_apply.click(
                set_model,
                [session, model_name, model_weights, model_checkpoint],
                [header, model_status],
                api_visibility="private",
                concurrency_id=HEAVY_JOBS,
            )
        )
        model_download.click(download_checkpoint, session, model_file, api_visibility="private")
        training = train_start.click(
            WorkspaceSession.arm_training, session, None, queue=False, api_visibility="private"
        ).then(
            train,
            [
                session,
                train_epochs,
                train_lr,
                train_optimizer,
                train_margin,
                train_miner,
                train_n_labels,
                train_n_instances,
                train_image_size,
                train_soft_margin,
            ],
            [train_status, curve_loss, curve_active, curve_dist, curve_val],
            api_visibility="private",
            concurrency_id="training",
            concurrency_limit=HEAVY_CONCURRENCY,
        )
        then_refresh(training)
        train_cancel.click(cancel_training, session, None, api_visibility="private", concurrency_limit=None)
        compare_run.click(
            compare,
            [session, compare_metric, compare_count, compare_instances],
            [compare_deltas, compare_improved_table, compare_improved, compare_regressed_table, compare_regressed],
            api_visibility="private",
            concurrency_id=HEAVY_JOBS,
        )
        export_run.click(
            export, [session, export_methods], export_files, api_visibility="private", concurrency_id=HEAVY_JOBS
        )

    demo.queue(default_concurrency_limit=VIEW_CONCURRENCY, max_size=128)
    demo.explorer_workspace = workspace  # the shared default, for start-up work such as precomputing UMAP
    return demo
