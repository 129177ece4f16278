"""Experiment trackers for Lightning: `create_logger` builds one by name, `log_figure` sends it a matplotlib figure.

TensorBoard, W&B (online with a key, or `WANDB_MODE=offline`) and MLflow (a local file store under
`save_dir/mlruns`, or the server in `MLFLOW_TRACKING_URI`) run for real. Neptune has been shut down and Lightning
2.6 no longer has a working `NeptuneLogger`, so asking for it says so.
"""

from __future__ import annotations

import importlib
import netrc
import os
from urllib.parse import urlparse

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure

from explorer.errors import InputError

LOGGER_KINDS = ("tensorboard", "wandb", "mlflow")
WANDB_DEFAULT_HOST = "https://api.wandb.ai"
WANDB_LOCAL_MODES = ("offline", "disabled")
NEPTUNE_SHUT_DOWN = (
    "Neptune has been shut down and Lightning 2.6 no longer has a working NeptuneLogger: "
    f"use one of {', '.join(LOGGER_KINDS)}."
)


def create_logger(kind: str = "tensorboard", save_dir: str = ".", project: str = "metric_learning") -> Logger:
    """A Lightning logger by name writing under `save_dir`, or one clear message naming the missing package or key.

    `mlflow` without `MLFLOW_TRACKING_URI` uses the local file store `save_dir/mlruns` (MLflow 3 wants the opt-in
    `MLFLOW_ALLOW_FILE_STORE=true` for it, which is set unless already set); `wandb` follows `WANDB_MODE`.
    """
    if kind == "tensorboard":
        return TensorBoardLogger(save_dir, name=project)
    if kind == "wandb":
        _require_package("wandb", pip_name="wandb")
        if not _wandb_can_log():
            raise InputError(
                "The wandb logger needs an API key: set WANDB_API_KEY (or run `wandb login`), "
                "or set WANDB_MODE=offline to keep the run in local files."
            )
        return WandbLogger(project=project, save_dir=save_dir, log_model=False)
    if kind == "mlflow":
        _require_package("mlflow", pip_name="mlflow-skinny")
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not tracking_uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return MLFlowLogger(
            experiment_name=project, tracking_uri=tracking_uri, save_dir=os.path.join(save_dir, "mlruns")
        )
    if kind == "neptune":
        raise InputError(NEPTUNE_SHUT_DOWN)
    raise InputError(f"Unknown logger {kind!r}: choose one of {', '.join(LOGGER_KINDS)}.")


def _require_package(module: str, pip_name: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"The {module} logger needs the package {pip_name!r}: pip install {pip_name}") from error


def _wandb_can_log() -> bool:
    """Offline (or disabled) mode, a `WANDB_API_KEY`, or the key `wandb login` left in the netrc file."""
    if os.environ.get("WANDB_MODE") in WANDB_LOCAL_MODES or os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", WANDB_DEFAULT_HOST)).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def log_figure(logger: Logger, tag: str, figure: Figure, step: int) -> None:
    """Send a matplotlib figure to the tracker behind `logger` at `step`; other loggers (CSV, …) get nothing.

    TensorBoard: an image summary; W&B: an image in the run's history; MLflow: the artifact `<tag>/step_<step>.png`.
    """
    if isinstance(logger, TensorBoardLogger):
        logger.experiment.add_figure(tag, figure, global_step=step, close=False)
    elif isinstance(logger, WandbLogger):
        logger.log_image(key=tag, images=[figure], step=step)
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_figure(logger.run_id, figure, f"{tag}/step_{step}.png")
