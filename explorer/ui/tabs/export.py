"""The Export tab: embeddings (.npy, parquet), metrics (CSV, JSON) and projection coordinates as files."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.viz.projection import PROJECTION_METHODS
from explorer.workspace import WorkspaceSession


@dataclass(frozen=True)
class ExportTab:
    """The Export tab's components: which projections, Export, and the written files."""

    methods: gr.CheckboxGroup
    run: gr.Button
    files: gr.File


def build_export_tab() -> ExportTab:
    """The tab, with PCA coordinates included by default."""
    with gr.Tab("Export", id="export"):
        methods = gr.CheckboxGroup(list(PROJECTION_METHODS), value=["pca"], label="projection coordinates to include")
        run = gr.Button("Export embeddings, metrics and projections", variant="primary", elem_id="export-run")
        files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="export-files")
    return ExportTab(methods, run, files)


@user_errors
def export(session: WorkspaceSession, methods: list[str], progress=TRACKED) -> list[str]:
    """Export: the paths of the written files."""
    return [str(path) for path in session.export(methods, reporter(progress))]
