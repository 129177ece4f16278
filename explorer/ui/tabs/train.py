"""The Train tab: training settings, Train / Cancel, and live curves of loss, triplets, distances and validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from explorer.training.train import IMAGE_SIZE_RANGE
from explorer.ui.handlers import TRACKED, reporter, user_errors
from explorer.workspace import WorkspaceSession
from explorer.workspace.inputs import TRAIN_CHOICES, TRAIN_DEFAULTS, training_settings
from explorer.workspace.tables import training_curves


@dataclass(frozen=True)
class TrainTab:
    """The Train tab's components: the settings, Train / Cancel, and the status and curves of a run."""

    settings: dict[str, gr.components.Component]  # keyed by the parameter names of `training_settings`
    start: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    loss_curve: gr.LinePlot
    active_curve: gr.LinePlot
    distance_curve: gr.LinePlot
    validation_curve: gr.LinePlot

    def progress_views(self) -> list[gr.components.Component]:
        """What a training run updates after every epoch (the keys of what `train` yields)."""
        return [self.status, self.loss_curve, self.active_curve, self.distance_curve, self.validation_curve]


def _choice(name: str) -> gr.Dropdown:
    """A dropdown of one training choice (optimizer, miner), its first option chosen."""
    return gr.Dropdown(list(TRAIN_CHOICES[name]), value=TRAIN_CHOICES[name][0], label=name)


def _curve(title: str, **kwargs: Any) -> gr.LinePlot:
    """One training chart: a line per series over the epochs."""
    return gr.LinePlot(x="epoch", y="value", color="series", title=title, height=240, **kwargs)


def build_train_tab() -> TrainTab:
    """The tab, its settings at `TRAIN_DEFAULTS`."""
    with gr.Tab("Train", id="train"):
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
                label="image size (0: the model's own)",
                precision=0,
                minimum=0,
                maximum=IMAGE_SIZE_RANGE[1],
                elem_id="train-image-size",
            )
            start = gr.Button("Train", variant="primary", elem_id="train-start")
            cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        status = gr.Markdown(elem_id="train-status")
        with gr.Row():
            loss_curve = _curve("loss", elem_id="curve-loss")
            active_curve = _curve("active triplets")
        with gr.Row():
            distance_curve = _curve("positive / negative distance")
            validation_curve = _curve("validation cmc@1 / map@5", elem_id="curve-val")
    return TrainTab(settings, start, cancel, status, loss_curve, active_curve, distance_curve, validation_curve)


@user_errors
def train(
    session: WorkspaceSession, progress=TRACKED, *, tab: TrainTab, **settings: Any
) -> Iterator[dict[gr.components.Component, Any]]:
    """Train: the status line and the four curves after every epoch (`settings` are `TrainTab.settings`' values)."""
    for history, status in session.train(training_settings(**settings), reporter(progress)):
        loss, active, distance, validation = training_curves(history)
        yield {
            tab.status: status,
            tab.loss_curve: loss,
            tab.active_curve: active,
            tab.distance_curve: distance,
            tab.validation_curve: validation,
        }


def cancel_training(session: WorkspaceSession) -> None:
    """Cancel: a toast, not the status line (the run's own last status could arrive first and be overwritten)."""
    session.cancel()
    gr.Info("Cancelling after the current step…")
