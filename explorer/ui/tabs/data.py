"""The Data tab: pick built-in data, a path on the server (local mode) or an uploaded zip, or upload embeddings
computed elsewhere; see the counts, first rows and warnings. `/load_data` in the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from explorer.data.loading import BUILTIN_DATASETS
from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class DataTab:
    """The Data tab's components: the source fields, Load / Cancel, the uploads, and what the data looks like."""

    source: gr.Textbox
    root: gr.Textbox
    load: gr.Button
    cancel: gr.Button
    zip: gr.File
    embeddings: gr.File
    status: gr.Markdown
    warnings: gr.Markdown
    summary: gr.Dataframe
    preview: gr.Dataframe


def build_data_tab(workspace: Workspace, views: PageViews) -> DataTab:
    """The tab, showing `views`; in public mode the source field takes built-in names only."""
    public = workspace.policy.public
    where = "" if public else " or a CSV / image-folder path on the server"
    with gr.Tab("Data", id="data"):
        with gr.Row():
            source = gr.Textbox(
                label=f"Built-in name ({', '.join(BUILTIN_DATASETS)}){where}",
                value=views.data_source,
                scale=3,
                elem_id="data-source",
            )
            root = gr.Textbox(
                label="dataset_root (CSV only; default: the CSV's folder)",
                scale=2,
                visible=not public,
                elem_id="data-root",
            )
            load = gr.Button("Load", variant="primary", scale=1, elem_id="data-load")
            cancel = gr.Button("Cancel", variant="stop", scale=1, elem_id="data-cancel")
        with gr.Row():
            zip_file = gr.File(
                label="…or upload a zip (image folder, or one CSV + images)", file_types=[".zip"], elem_id="data-zip"
            )
            embeddings = gr.File(
                label="Embeddings computed elsewhere for this data (.npy row-aligned, or parquet with 'embedding')",
                file_types=[".npy", ".parquet"],
                elem_id="data-embeddings",
            )
        status = gr.Markdown(elem_id="data-status")
        warnings = gr.Markdown(views.warnings, elem_id="data-warnings")
        with gr.Row():
            summary = gr.Dataframe(views.summary, label="Counts", interactive=False, scale=1, elem_id="data-summary")
            preview = gr.Dataframe(views.preview, label="First rows", interactive=False, scale=3)
    return DataTab(source, root, load, cancel, zip_file, embeddings, status, warnings, summary, preview)


# Data and model switches write the header and a status line: their progress bars show there while embeddings are
# computed, so a long load is never a silent page.
@user_errors
def load_data(session: WorkspaceSession, source: str, dataset_root: str, progress=TRACKED) -> tuple[str, str]:
    """Load Data (and `/load_data(source, dataset_root)`): the header and the status line."""
    session.load_data(source, dataset_root, reporter(progress))
    return session.workspace.describe(), f"Loaded. {session.workspace.describe()}"


@user_errors
def load_zip(session: WorkspaceSession, zip_path: str | None, progress=TRACKED):
    """An uploaded zip: the header and the status line (unchanged when the upload was cleared)."""
    return _load_upload(session.load_uploaded_zip, session, zip_path, "Loaded the upload.", progress)


@user_errors
def load_embeddings(session: WorkspaceSession, path: str | None, progress=TRACKED):
    """Uploaded embeddings for the session's data: the header and the status line."""
    note = "Using the uploaded embeddings (search by image and training need a model)."
    return _load_upload(session.use_embeddings, session, path, note, progress)


def _load_upload(load: Callable[..., None], session: WorkspaceSession, path: str | None, done: str, progress):
    if path is None:  # the upload was cleared
        return gr.skip(), gr.skip()
    load(path, reporter(progress))
    return session.workspace.describe(), f"{done} {session.workspace.describe()}"


@user_errors
def refuse_if_busy(session: WorkspaceSession) -> None:
    """Unqueued, before a data or model change: a second job of a session is refused at once, not queued."""
    session.check_free()


def cancel(session: WorkspaceSession) -> None:
    """Cancel a data or model load: the session keeps what it had (a toast says so)."""
    session.cancel()
    gr.Info("Cancelling the load; the data and model in use stay as they are…")
