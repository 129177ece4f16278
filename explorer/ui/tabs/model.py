"""The Model tab: choose a preset or timm name and its weights (or a checkpoint); download the current one."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.workspace import WorkspaceSession
from explorer.workspace.extractors import available_models
from explorer.workspace.inputs import WEIGHT_CHOICES
from explorer.workspace.views import PageViews


@dataclass(frozen=True)
class ModelTab:
    """The Model tab's components: the model choice and its buttons, status and checkpoint file."""

    name: gr.Dropdown
    weights: gr.Radio
    checkpoint: gr.File
    apply: gr.Button
    cancel: gr.Button
    download: gr.Button
    status: gr.Markdown
    file: gr.File


def build_model_tab(views: PageViews) -> ModelTab:
    """The tab, showing the model of `views`."""
    with gr.Tab("Model", id="model"):
        with gr.Row():
            name = gr.Dropdown(
                available_models(),
                value=views.model_name,
                label="Preset or timm name",
                allow_custom_value=True,
                elem_id="model-name",
            )
            weights = gr.Radio(
                list(WEIGHT_CHOICES), value=views.model_weights, label="Weights", elem_id="model-weights"
            )
            checkpoint = gr.File(
                label="Checkpoint (for weights = checkpoint)", file_types=[".safetensors"], elem_id="model-checkpoint"
            )
        with gr.Row():
            apply = gr.Button("Use this model", variant="primary", elem_id="model-apply")
            cancel = gr.Button("Cancel", variant="stop", elem_id="model-cancel")
            download = gr.Button("Download current checkpoint", elem_id="model-download")
        status = gr.Markdown(elem_id="model-status")
        file = gr.File(label="Checkpoint file", interactive=False, elem_id="model-file")
    return ModelTab(name, weights, checkpoint, apply, cancel, download, status, file)


@user_errors
def set_model(
    session: WorkspaceSession, model: str, weights: str, checkpoint: str | None = None, progress=TRACKED
) -> tuple[str, str]:
    """Use this model (and `/set_model(model, weights)`): the header and the status line."""
    session.set_model(model, weights, checkpoint, reporter(progress))
    return session.workspace.describe(), f"Now using {session.workspace.model_description()}."


@user_errors
def download_checkpoint(session: WorkspaceSession) -> str:
    """Download current checkpoint: the saved file's path."""
    return str(session.save_checkpoint())
