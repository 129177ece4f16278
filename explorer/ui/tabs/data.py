"""The Data tab: pick built-in data, a path on the server or an uploaded zip; see its counts, rows and warnings."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.data.loading import BUILTIN_DATASETS
from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.workspace import Workspace, WorkspaceSession
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class DataTab:
    """The Data tab's components: the source fields and Load, the zip upload, and what the data looks like."""

    source: gr.Textbox
    root: gr.Textbox
    load: gr.Button
    zip: gr.File
    status: gr.Markdown
    warnings: gr.Markdown
    summary: gr.Dataframe
    preview: gr.Dataframe


def build_data_tab(workspace: Workspace, views: PageViews) -> DataTab:
    """The tab, showing `workspace`'s data source and `views`."""
    builtin = workspace.dataset.name in BUILTIN_DATASETS
    with gr.Tab("Data", id="data"):
        with gr.Row():
            source = gr.Textbox(
                label=f"Built-in name ({', '.join(BUILTIN_DATASETS)}) or a CSV / image-folder path on the server",
                value=workspace.dataset.name if builtin else str(workspace.dataset.root),
                scale=3,
                elem_id="data-source",
            )
            root = gr.Textbox(label="dataset_root (CSV only; default: the CSV's folder)", scale=2, elem_id="data-root")
            load = gr.Button("Load", variant="primary", scale=1, elem_id="data-load")
        with gr.Row():
            zip_file = gr.File(
                label="…or upload a zip (image folder, or one CSV + images)", file_types=[".zip"], elem_id="data-zip"
            )
        status = gr.Markdown(elem_id="data-status")
        warnings = gr.Markdown(views.warnings, elem_id="data-warnings")
        with gr.Row():
            summary = gr.Dataframe(views.summary, label="Counts", interactive=False, scale=1, elem_id="data-summary")
            preview = gr.Dataframe(views.preview, label="First rows", interactive=False, scale=3)
    return DataTab(source, root, load, zip_file, status, warnings, summary, preview)


# Data and model switches write the header and a status line: their progress bars show there while embeddings are
# computed, so a long load is never a silent page.
@user_errors
def load_data(session: WorkspaceSession, source: str, root: str, progress=TRACKED) -> tuple[str, str]:
    """Load Data: the header and the status line."""
    session.load_data(source, root, reporter(progress))
    return session.workspace.describe(), f"Loaded. {session.workspace.describe()}"


@user_errors
def load_zip(session: WorkspaceSession, zip_path: str | None, progress=TRACKED):
    """An uploaded zip: the header and the status line (unchanged when the upload was cleared)."""
    if zip_path is None:
        return gr.skip(), gr.skip()
    session.load_uploaded_zip(zip_path, reporter(progress))
    return session.workspace.describe(), f"Loaded the upload. {session.workspace.describe()}"
