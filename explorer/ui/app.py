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
from explorer.ui.plotly_click import on_point_click, on_points_selected
from explorer.ui.tabs import (
    analysis,
    compare,
    data,
    embeddings,
    export,
    metrics,
    model,
    queries,
    search,
    train,
    worst,
)
from explorer.ui.widgets import wire_item_panel
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.policy import ServingPolicy
from explorer.workspace.session import start_idle_sweep
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
                confusions=analysis.build_confusions_tab(),
                label_errors=analysis.build_label_errors_tab(),
            )
        _wire_api(session, page)
        _wire_views(session, tabs, page)
        _wire_changes(session, page)
        _wire_training(session, page)
        _wire_analysis(session, page)
        wire_session_lifecycle(demo, session)
    demo.queue(default_concurrency_limit=VIEW_CONCURRENCY, max_size=128)
    if workspace.policy.session_idle_s is not None:
        start_idle_sweep(workspace, workspace.policy.session_idle_s)
    demo.explorer_workspace = workspace  # the shared default, for start-up work such as precomputing UMAP
    return demo


def _wire_api(session: gr.State, page: Page) -> None:
    """The scriptable views: named API endpoints whose parameters and return values scripts rely on (a trailing
    page or label parameter is optional)."""
    shown = page.queries
    query_inputs = [session, shown.ids, shown.instances, shown.pages.page]
    gr.on(
        [shown.show.click, shown.ids.submit],
        queries.query_grid,
        query_inputs,
        shown.grid,
        api_name="query_grid",
        concurrency_limit=VIEW_CONCURRENCY,
    )
    worst_inputs = [session, *page.worst.choice.inputs(), page.worst.pages.page]
    gr.on(
        [page.worst.show.click, page.worst.choice.metric.input],  # a new metric redraws: never a stale header
        worst.worst_queries,
        worst_inputs,
        [page.worst.grid, page.worst.table],
        api_name="worst_queries",
        concurrency_limit=VIEW_CONCURRENCY,
    )
    page.metrics.recompute.click(
        metrics.set_metric_k, [session, page.metrics.top_k], None, api_visibility="private"
    ).success(metrics.metrics, session, page.metrics.table, api_name="metrics")
    tab = page.embeddings
    gr.on(
        [tab.show.click, tab.label.input],
        embeddings.projection,
        [session, tab.method, tab.color_by, tab.label],
        tab.plot,
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
    """Clicks that open items: grid tiles, table rows and projection points open an item's row in their own tab;
    pages turn; a plot selection or a label opens a grid of its items; a label opens its queries."""
    private = {"api_visibility": "private"}
    shown = page.queries
    query_inputs = [session, shown.ids, shown.instances, shown.pages.page]
    shown.pages.on_turn(queries.query_grid, query_inputs, shown.grid, **private)
    shown.label.input(queries.label_queries, [session, shown.label], [shown.ids, shown.pages.page], **private).success(
        queries.query_grid, query_inputs, shown.grid, **private
    )
    shown.grid.select(
        queries.open_grid_tile, [*query_inputs, shown.item.scope], [shown.item.item_id, shown.item.row], **private
    )
    tab = page.worst
    worst_inputs = [session, *tab.choice.inputs(), tab.pages.page]
    tab.pages.on_turn(worst.worst_queries, worst_inputs, [tab.grid, tab.table], **private)
    tab.table.select(
        worst.open_worst_row,
        [session, tab.choice.instances, tab.item.scope],
        [tab.item.item_id, tab.item.row],
        **private,
    )
    tab.grid.select(worst.open_grid_tile, [*worst_inputs, tab.item.scope], [tab.item.item_id, tab.item.row], **private)
    for panel, instances in ((shown.item, shown.instances), (tab.item, tab.choice.instances)):
        wire_item_panel(panel, session, instances)
    _wire_embeddings(session, page.embeddings)


def _wire_embeddings(session: gr.State, tab: embeddings.EmbeddingsTab) -> None:
    """The plot's clicks and selections, the label list and filter, the selection's pages, tiles and CSV."""
    private = {"api_visibility": "private"}
    chosen = tab.selection
    selection_outputs = [chosen.item_ids, chosen.pages.page, chosen.grid, chosen.labels]
    on_point_click(
        tab.plot,
        embeddings.open_clicked,
        [session, tab.instances, tab.item.scope],
        [tab.item.item_id, tab.item.row],
        **private,
    )
    on_points_selected(
        tab.plot, embeddings.select_points, [session, chosen.view, tab.instances], selection_outputs, **private
    )
    tab.label_list.select(embeddings.pick_listed_label, None, tab.label, **private).then(
        embeddings.projection, [session, tab.method, tab.color_by, tab.label], tab.plot, **private
    )
    tab.label.change(
        embeddings.select_label, [session, tab.label, chosen.view, tab.instances], selection_outputs, **private
    )
    page_inputs = [session, chosen.item_ids, chosen.view, tab.instances, chosen.pages.page]
    chosen.pages.on_turn(embeddings.show_selection, page_inputs, chosen.grid, **private)
    chosen.view.input(embeddings.show_selection, page_inputs, chosen.grid, **private)
    chosen.grid.select(
        embeddings.open_selection_tile, [*page_inputs, tab.item.scope], [tab.item.item_id, tab.item.row], **private
    )
    chosen.export.click(embeddings.export_selection, [session, chosen.item_ids], chosen.file, **private)
    wire_item_panel(tab.item, session, tab.instances)


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
    """Data and model switches, each refused at once while the session's job runs (unqueued check), else
    writing the header and a status line (progress and errors on the status line only), then refreshing every
    view; the two scriptable ones are `/load_data` and `/set_model`. Cancel (not queued) stops a running load."""
    heavy = {"concurrency_id": HEAVY_JOBS, "concurrency_limit": HEAVY_CONCURRENCY}
    private = {"api_visibility": "private"}
    data_tab, model_tab = page.data, page.model
    changes = (  # (trigger, handler, inputs, status line, API name)
        (data_tab.load.click, data.load_data, [data_tab.source, data_tab.root], data_tab.status, "load_data"),
        (data_tab.zip.upload, data.load_zip, [data_tab.zip], data_tab.status, None),
        (data_tab.embeddings.upload, data.load_embeddings, [data_tab.embeddings], data_tab.status, None),
        (
            model_tab.apply.click,
            model.set_model,
            [model_tab.name, model_tab.weights, model_tab.checkpoint],
            model_tab.status,
            "set_model",
        ),
    )
    for trigger, handler, inputs, status, api_name in changes:
        naming = {"api_name": api_name} if api_name else private
        change = trigger(data.refuse_if_busy, session, None, queue=False, **private).success(
            handler, [session, *inputs], [page.header, status], show_progress_on=[status], **naming, **heavy
        )
        _then_refresh(change, session, page)
    for button in (data_tab.cancel, model_tab.cancel):
        button.click(data.cancel, session, None, concurrency_limit=None, **private)
    model_tab.download.click(model.download_checkpoint, session, model_tab.file, **private)


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
        show_progress_on=[tab.status],
        api_name="train_tab",  # private; `/train` is the scriptable run below
        api_visibility="private",
        **training_jobs,
    )
    for ended in (training.success, training.failure):  # `then` does not follow an error (Gradio 6.31)
        ended(train.run_ended, None, tab.start, queue=False, api_visibility="private")
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


def _wire_analysis(session: gr.State, page: Page) -> None:
    """Confusions and suspected label errors: their tables are `/confusions` and `/suspected_errors`; the heat
    map, a pair's queries, the rows to review and the CSV follow in the page only."""
    heavy = {"concurrency_id": HEAVY_JOBS, "concurrency_limit": HEAVY_CONCURRENCY}
    tab = page.confusions
    tab.show.click(analysis.confusions, [session, tab.n_pairs], tab.table, api_name="confusions", **heavy).success(
        analysis.confusion_heatmap, session, tab.heatmap, api_visibility="private"
    )
    private = {"api_visibility": "private"}
    tab.table.select(analysis.open_pair, [session, tab.instances], [tab.pair, tab.pages.page, tab.queries], **private)
    pair_page = [session, tab.pair, tab.instances, tab.pages.page]
    tab.pages.on_turn(analysis.show_pair, pair_page, tab.queries, **private)
    tab.queries.select(
        analysis.open_pair_tile, [*pair_page, tab.item.scope], [tab.item.item_id, tab.item.row], **private
    )
    wire_item_panel(tab.item, session, tab.instances)
    errors = page.label_errors
    errors.show.click(
        analysis.suspected_errors, [session, errors.n], errors.table, api_name="suspected_errors", **heavy
    ).success(analysis.review_rows, [session, errors.n_rows, errors.instances], errors.rows, api_visibility="private")
    errors.download.click(analysis.download_suspects, session, errors.file, api_visibility="private", **heavy)
