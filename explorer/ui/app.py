"""The app: assembles the tabs of `explorer.ui.tabs` into one page and wires their events, API names and queues.

Each browser session gets a `WorkspaceSession` (a `gr.State`), which reads the shared default workspace until the
user changes data, model or training, and then works on its own copy. Handlers live in their tab's module and
every decision in `explorer.workspace`; errors become messages (`explorer.ui.handlers`), so the app keeps serving.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer.ui.handlers import with_outputs
from explorer.ui.lifecycle import wire_session_lifecycle
from explorer.ui.page import Page, first_views, refresh
from explorer.ui.plotly_click import on_point_click
from explorer.ui.tabs import compare, data, embeddings, export, metrics, model, queries, search, train, worst
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.policy import ServingPolicy
from explorer.workspace.workspace import LOCAL

HEAVY_JOBS = "heavy"  # data/model switches and projections share this queue slot
HEAVY_CONCURRENCY = 2
VIEW_CONCURRENCY = 4


def launch_options(policy: ServingPolicy = LOCAL) -> dict[str, Any]:
    """`launch()` settings the app needs wherever it runs.

    Upload cap (the policy's: smaller in public mode); `show_error` so that input Gradio itself cannot decode (a file that is not an image) reaches the
    user as its reason rather than a generic failure (our handlers already turn errors into messages). No
    `allowed_paths`: pictures are rendered on the server and every file a handler returns is copied into
    Gradio's own cache, so the app serves nothing from the dataset folder or the workspace cache directly.
    """
    return {"max_file_size": policy.max_file_size, "show_error": True}


def build_demo(workspace: Workspace) -> gr.Blocks:
    """The app on `workspace` (shared read-only by all sessions; each session copies it on first change)."""
    views = first_views(workspace)
    with gr.Blocks(title="Metric-learning explorer", delete_cache=(3600, 3600)) as demo:
        session = gr.State(WorkspaceSession(workspace), delete_callback=WorkspaceSession.close)  # files go at the end
        gr.Markdown("# Metric-learning explorer")
        gr.Markdown(workspace.policy.describe(), elem_id="mode")
        header = gr.Markdown(views.header, elem_id="header")
        with gr.Tabs() as tabs:
            page = Page(
                header=header,
                data=data.build_data_tab(workspace, views),
                model=model.build_model_tab(views),
                train=train.build_train_tab(),
                metrics=metrics.build_metrics_tab(workspace, views),
                queries=queries.build_queries_tab(views),
                worst=worst.build_worst_tab(views),
                embeddings=embeddings.build_embeddings_tab(views),
                search=search.build_search_tab(views),
                compare=compare.build_compare_tab(views),
                export=export.build_export_tab(),
            )
        _wire_api(session, page)
        _wire_views(session, tabs, page)
        _wire_changes(session, page)
        _wire_training(session, page)
        wire_session_lifecycle(demo, session)
    demo.queue(default_concurrency_limit=VIEW_CONCURRENCY, max_size=128)
    demo.explorer_workspace = workspace  # the shared default, for start-up work such as precomputing UMAP
    return demo


def _wire_api(session: gr.State, page: Page) -> None:
    """The scriptable views: named API endpoints whose parameters and return values scripts rely on."""
    gr.on(
        [page.queries.show.click, page.queries.ids.submit],
        queries.query_grid,
        [session, page.queries.ids, page.queries.instances],
        page.queries.grid,
        api_name="query_grid",
        concurrency_limit=VIEW_CONCURRENCY,
    )
    page.worst.show.click(
        worst.worst_queries,
        [session, page.worst.choice.metric, page.worst.choice.count, page.worst.choice.instances],
        [page.worst.grid, page.worst.table],
        api_name="worst_queries",
        concurrency_limit=VIEW_CONCURRENCY,
    )
    page.metrics.recompute.click(
        metrics.set_metric_k, [session, page.metrics.top_k], None, api_visibility="private"
    ).success(metrics.metrics, session, page.metrics.table, api_name="metrics")
    page.embeddings.show.click(
        embeddings.projection,
        [session, page.embeddings.method, page.embeddings.color_by],
        page.embeddings.plot,
        api_name="projection",
        concurrency_id=HEAVY_JOBS,
        concurrency_limit=HEAVY_CONCURRENCY,
    )
    page.search.run.click(
        search.search,
        [session, page.search.image, page.search.instances],
        [page.search.result, page.search.table],
        api_name="search",
        concurrency_limit=VIEW_CONCURRENCY,
    )


def _wire_views(session: gr.State, tabs: gr.Tabs, page: Page) -> None:
    """Clicks that open one item's retrieval row: a worst-queries table row, a projection point."""
    page.worst.table.select(
        worst.open_worst_row,
        [session, page.queries.instances],
        [tabs, page.queries.ids, page.queries.grid],
        api_visibility="private",
    )
    on_point_click(
        page.embeddings.plot,
        embeddings.open_clicked,
        [session, page.queries.instances],
        page.embeddings.clicked_row,
        api_visibility="private",
    )


def _then_refresh(event: Any, session: gr.State, page: Page) -> None:
    """After `event` succeeded, redraw every view of the page for the session's (changed) workspace."""
    event.success(
        with_outputs(refresh, page=page),
        [session],
        inputs_kwargs=page.view_choices(),
        outputs=list(page.shown_views()),
        api_visibility="private",
        concurrency_id=HEAVY_JOBS,
    )


def _wire_changes(session: gr.State, page: Page) -> None:
    """Data and model switches, each writing the header and a status line, then refreshing every view; the two
    scriptable ones are `/load_data` and `/set_model`. Cancel (not queued) stops a running load."""
    heavy = {"concurrency_id": HEAVY_JOBS, "concurrency_limit": HEAVY_CONCURRENCY}
    status = {"data": [page.header, page.data.status], "model": [page.header, page.model.status]}
    changes = [
        page.data.load.click(
            data.load_data, [session, page.data.source, page.data.root], status["data"], api_name="load_data", **heavy
        ),
        page.data.zip.upload(
            data.load_zip, [session, page.data.zip], status["data"], api_visibility="private", **heavy
        ),
        page.data.embeddings.upload(
            data.load_embeddings, [session, page.data.embeddings], status["data"], api_visibility="private", **heavy
        ),
        page.model.apply.click(
            model.set_model,
            [session, page.model.name, page.model.weights, page.model.checkpoint],
            status["model"],
            api_name="set_model",
            **heavy,
        ),
    ]
    for change in changes:
        _then_refresh(change, session, page)
    for button in (page.data.cancel, page.model.cancel):
        button.click(data.cancel, session, None, api_visibility="private", concurrency_limit=None)
    page.model.download.click(model.download_checkpoint, session, page.model.file, api_visibility="private")


def _wire_training(session: gr.State, page: Page) -> None:
    """Train (armed without queueing, so a Cancel pressed while the run waits in the queue still stops it; the
    button disabled until the run ends, however it ends; progress drawn beside the curves, never over them), then
    refresh every view; Cancel; Revert, then refresh; the trained checkpoint; the scriptable `/train(epochs)`;
    Compare and Export, which read the trained workspace."""
    tab = page.train
    training_jobs = {"concurrency_id": "training", "concurrency_limit": HEAVY_CONCURRENCY}
    armed = tab.start.click(train.start_run, session, tab.start, queue=False, api_visibility="private")
    training = armed.then(
        with_outputs(train.train, tab=tab),
        [session],
        tab.run_views(),
        inputs_kwargs={**tab.settings, **tab.selection},
        show_progress_on=[tab.progress],
        api_visibility="private",
        **training_jobs,
    )
    training.then(train.run_ended, None, tab.start, queue=False, api_visibility="private")
    _then_refresh(training, session, page)
    tab.api_run.click(
        train.train_with_defaults, [session, tab.settings["epochs"]], tab.history, api_name="train", **training_jobs
    )
    tab.cancel.click(train.cancel_training, session, None, api_visibility="private", concurrency_limit=None)
    reverted = tab.revert.click(train.revert, session, tab.status, api_visibility="private", concurrency_id=HEAVY_JOBS)
    _then_refresh(reverted, session, page)
    tab.download.click(train.download_trained, session, tab.checkpoint, api_visibility="private")
    page.compare.run.click(
        with_outputs(compare.compare, tab=page.compare),
        [session, page.compare.choice.metric, page.compare.choice.count, page.compare.choice.instances],
        page.compare.results(),
        api_visibility="private",
        concurrency_id=HEAVY_JOBS,
    )
    page.export.run.click(
        export.export,
        [session, page.export.methods],
        page.export.files,
        api_visibility="private",
        concurrency_id=HEAVY_JOBS,
    )
