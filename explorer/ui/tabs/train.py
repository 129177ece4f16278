"""The Train tab: training settings, Train / Cancel / Revert, the run's phase and progress beside (never over) its
live curves of loss, triplets, distances and validation, the per-epoch table and the trained checkpoint."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.errors import InputError
from explorer.training.train import IMAGE_SIZE_RANGE, KEEP_CHOICES, SELECTABLE_METRICS
from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.workspace import WorkspaceSession
from explorer.workspace.inputs import TRAIN_CHOICES, TRAIN_DEFAULTS, training_settings
from explorer.workspace.session import TrainingUpdate
from explorer.workspace.tables import TRAINING_CHARTS, training_curves

CURVES_HEIGHT = 560
MAX_EPOCH_TICKS = 10


@dataclass(frozen=True)
class TrainTab:
    """The Train tab's components: the settings, the run's buttons, its progress, status, curves and table."""

    settings: dict[str, gr.components.Component]  # keyed by the parameter names of `training_settings`
    selection: dict[str, gr.components.Component]  # keyed by `keep` and `select_by` (TrainingSettings fields)
    start: gr.Button
    cancel: gr.Button
    revert: gr.Button
    download: gr.Button
    checkpoint: gr.File
    status: gr.Markdown  # the run's phase and progress (and Gradio's queue display), beside the curves
    curves: gr.Plot
    history: gr.Dataframe
    api_run: gr.Button  # never shown: its event is the scriptable `/train(epochs)` endpoint

    def run_views(self) -> list[gr.components.Component]:
        """What a training run updates while it runs (the keys of what `train` yields)."""
        return [self.status, self.curves, self.history]


def _choice(name: str) -> gr.Dropdown:
    """A dropdown of one training choice (optimizer, miner), its first option chosen."""
    return gr.Dropdown(list(TRAIN_CHOICES[name]), value=TRAIN_CHOICES[name][0], label=name)


def _settings_rows() -> tuple[dict[str, gr.components.Component], dict[str, gr.components.Component]]:
    """The settings fields at `TRAIN_DEFAULTS` (in two rows), and the choice of the epoch the run ends on."""
    with gr.Row():
        settings: dict[str, gr.components.Component] = {
            "epochs": gr.Number(TRAIN_DEFAULTS.epochs, label="epochs", precision=0, minimum=1, maximum=200),
            "lr": gr.Number(TRAIN_DEFAULTS.lr, label="learning rate", minimum=0),
            "optimizer": _choice("optimizer"),
            "margin": gr.Number(TRAIN_DEFAULTS.margin, label="margin", minimum=0),
            "soft_margin": gr.Checkbox(
                False, label="soft margin: log(1 + exp(d(a,p) - d(a,n))), no margin", elem_id="train-soft"
            ),
            "miner": _choice("miner"),
        }
    with gr.Row():
        settings["n_labels"] = gr.Number(TRAIN_DEFAULTS.n_labels, label="n_labels", precision=0, minimum=2)
        settings["n_instances"] = gr.Number(TRAIN_DEFAULTS.n_instances, label="n_instances", precision=0, minimum=2)
        settings["image_size"] = gr.Number(
            TRAIN_DEFAULTS.image_size,
            label="image size (empty or 0: automatic: the model's own, at most the images' side, "
            "at least half the model's)",
            precision=0,
            minimum=0,
            maximum=IMAGE_SIZE_RANGE[1],
            elem_id="train-image-size",
        )
        selection = {
            "keep": gr.Radio(
                list(KEEP_CHOICES),
                value=TRAIN_DEFAULTS.keep,
                label="end on the epoch (best: by the metric below; epoch 0 is the model before training)",
                elem_id="train-keep",
            ),
            "select_by": gr.Dropdown(
                list(SELECTABLE_METRICS), value=TRAIN_DEFAULTS.select_by, label="best by", elem_id="train-select-by"
            ),
        }
    return settings, selection


def build_train_tab() -> TrainTab:
    """The tab, its settings at `TRAIN_DEFAULTS`."""
    with gr.Tab("Train", id="train"):
        settings, selection = _settings_rows()
        with gr.Row():
            start = gr.Button("Train", variant="primary", elem_id="train-start")
            cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
            revert = gr.Button("Revert to the extractor before training", elem_id="train-revert")
            download = gr.Button("Download the trained checkpoint", elem_id="train-download")
        status = gr.Markdown(elem_id="train-status", min_height=48)
        curves = gr.Plot(label="training curves", elem_id="train-curves")
        history = gr.Dataframe(label="per epoch (epoch 0: before training)", interactive=False, elem_id="train-history")
        checkpoint = gr.File(label="trained checkpoint", elem_id="train-checkpoint", height=100)
        api_run = gr.Button(visible=False)
    return TrainTab(settings, selection, start, cancel, revert, download, checkpoint, status, curves, history, api_run)


def training_figure(history: pd.DataFrame, batches: pd.DataFrame, epochs: int) -> go.Figure:
    """The four training charts over the planned epochs, ticks at whole epochs (per-batch points between them)."""
    figure = make_subplots(rows=2, cols=2, subplot_titles=TRAINING_CHARTS, horizontal_spacing=0.08)
    for index, (chart, frame) in enumerate(training_curves(history, batches).items()):
        row, col = divmod(index, 2)
        for series, points in frame.groupby("series", sort=False):
            per_batch = series == "per batch"
            figure.add_trace(
                go.Scatter(
                    x=points["epoch"],
                    y=points["value"],
                    name=f"{chart}: {series}" if chart in TRAINING_CHARTS[:2] else series,
                    mode="lines" if per_batch else "lines+markers",
                    line={"width": 1 if per_batch else 2},
                    opacity=0.6 if per_batch else 1.0,
                ),
                row=row + 1,
                col=col + 1,
            )
    step = max(1, math.ceil(epochs / MAX_EPOCH_TICKS))
    figure.update_xaxes(range=[-0.2, epochs + 0.2], tick0=0, dtick=step, title_text="epoch")
    figure.update_yaxes(range=[0, 1.02], row=2, col=2)
    figure.update_layout(height=CURVES_HEIGHT, margin={"l": 40, "r": 20, "t": 40, "b": 40})
    return figure


def _shown(update: TrainingUpdate, epochs: int, tab: TrainTab) -> dict[gr.components.Component, Any]:
    return {
        tab.status: update.status,
        tab.curves: training_figure(update.history, update.batches, epochs),
        tab.history: update.history.round(4),
    }


def start_run(session: WorkspaceSession) -> gr.Button:
    """Train clicked: arm the run (see `WorkspaceSession.arm_training`) and disable Train until it ends."""
    session.arm_training()
    return gr.Button(interactive=False)


def run_ended() -> gr.Button:
    """The run ended (finished, cancelled or failed): Train can be pressed again."""
    return gr.Button(interactive=True)


@user_errors
def train(
    session: WorkspaceSession, progress=TRACKED, *, tab: TrainTab, keep: str, select_by: str, **settings: Any
) -> Iterator[dict[gr.components.Component, Any]]:
    """Train: the status line, the curves and the per-epoch table whenever the run moved on (`settings` are
    `TrainTab.settings`' values, `keep` and `select_by` those of `TrainTab.selection`)."""
    chosen = replace(training_settings(**settings), keep=keep, select_by=select_by)
    for update in session.train(chosen, reporter(progress)):
        yield _shown(update, chosen.epochs, tab)


@user_errors
def train_with_defaults(session: WorkspaceSession, epochs: int, progress=TRACKED) -> pd.DataFrame:
    """`/train(epochs)`: the Train tab's run with its defaults (`TRAIN_DEFAULTS`) but `epochs`, on the session's
    data and model; returns the per-epoch table, epoch 0 (before training) first."""
    updates = session.train(replace(TRAIN_DEFAULTS, epochs=epochs), reporter(progress))
    return deque(updates, maxlen=1)[0].history.round(4)  # the run's last update: its end


@user_errors
def revert(session: WorkspaceSession) -> str:
    """Revert: back to the extractor before the last training run (the views are refreshed next)."""
    session.revert_training()
    return "Reverted: the views use the extractor before the last training run again (Compare shows no change)."


@user_errors
def download_trained(session: WorkspaceSession) -> str:
    """The checkpoint of the latest run in this session: the weights it ended on."""
    path = session.latest_checkpoint
    if path is None or not path.exists():
        raise InputError("No trained checkpoint yet: train on this tab first (it holds the weights the run kept).")
    return str(path)


def cancel_training(session: WorkspaceSession) -> None:
    """Cancel: a toast, not the status line (the run's own last status could arrive first and be overwritten)."""
    session.cancel()
    gr.Info("Cancelling after the current step…")
