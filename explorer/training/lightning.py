"""Lightning integration: `ExtractorModule` (train with a criterion, embed in validation) and `MetricValCallback`.

Lightning is the engine that scales past one process (`devices=`, `strategy="ddp"`); the callback gathers the
validation batches of every process and places them by dataset index, so metrics are the single-process ones.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from explorer import const as C
from explorer.errors import InputError
from explorer.metrics.embedding_metrics import EmbeddingMetrics
from explorer.metrics.functional import flatten_metrics
from explorer.models.pooling import GEM, set_pooling, state_pools_with_gem
from explorer.training.loggers import log_figure
from explorer.training.losses import check_finite_loss
from explorer.training.recipe import AppliedRecipe, FineTuneRecipe, backbone_of

WORST_QUERIES_TO_PLOT = 3
INSTANCES_PER_PLOTTED_QUERY = 5


class ExtractorModule(pl.LightningModule):
    """Trains `extractor` with `criterion(embeddings, labels)`; validation returns the batch plus its embeddings.

    Without an `optimizer`, training follows `recipe` (default `FineTuneRecipe()`, the one `train_extractor` and the
    app use: for pretrained weights, frozen BatchNorm statistics and first stages, per-stage learning rates, warm-up
    + cosine over the trainer's steps), applied when the fit starts and undone when it ends. An explicit `optimizer`
    (and `scheduler`) is used as given. Logs the loss, the learning rate and every value of `criterion.last_logs`
    (active_tri, pos_dist, neg_dist with `need_logs`).
    """

    def __init__(
        self,
        extractor: nn.Module,
        criterion: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        scheduler_interval: str = "step",
        input_tensors_key: str = C.INPUT_TENSORS_KEY,
        labels_key: str = C.LABELS_KEY,
        embeddings_key: str = C.EMBEDDINGS_KEY,
        recipe: FineTuneRecipe | None = None,
    ) -> None:
        super().__init__()
        if optimizer is not None and recipe is not None:
            raise InputError("ExtractorModule takes an optimizer or a recipe (which builds one), not both.")
        if optimizer is None and scheduler is not None:
            raise InputError("ExtractorModule's scheduler needs its optimizer; a recipe builds both.")
        self.extractor = extractor
        self.criterion = criterion
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.recipe = recipe if recipe is not None or optimizer is not None else FineTuneRecipe()
        self._applied: AppliedRecipe | None = None
        self.input_tensors_key = input_tensors_key
        self.labels_key = labels_key
        self.embeddings_key = embeddings_key

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming a fit (`ckpt_path=`) of a fine-tuned run: its weights pool with GeM (the recipe switched them),
        so this extractor must pool with GeM before Lightning loads them."""
        if state_pools_with_gem(checkpoint.get("state_dict", {})):
            set_pooling(backbone_of(self.extractor), GEM)

    def forward(self, images: Tensor) -> Tensor:
        return self.extractor(images)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        embeddings = self.extractor(batch[self.input_tensors_key])
        loss = self.criterion(embeddings, batch[self.labels_key])
        check_finite_loss(loss, f"epoch {self.current_epoch}, batch {batch_idx}")
        size = len(embeddings)
        self.log("loss", loss.detach(), prog_bar=True, batch_size=size, on_step=True, on_epoch=True)
        for name, value in getattr(self.criterion, "last_logs", {}).items():
            self.log(name, float(value), batch_size=size, on_step=True, on_epoch=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {**batch, self.embeddings_key: self.extractor(batch[self.input_tensors_key])}

    def configure_optimizers(self) -> Any:
        if self.recipe is not None:
            steps = self.trainer.estimated_stepping_batches
            if not np.isfinite(steps):
                raise InputError("The recipe's schedule needs a finite run: give the Trainer max_epochs or max_steps.")
            self._release_recipe()  # a second fit starts from the plain extractor
            self._applied = AppliedRecipe(self.extractor, self.recipe, int(steps))
            optimizer, scheduler, interval = self._applied.optimizer, self._applied.scheduler, "step"
        else:
            optimizer, scheduler, interval = self.optimizer, self.scheduler, self.scheduler_interval
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def on_fit_end(self) -> None:
        self._release_recipe()

    def _release_recipe(self) -> None:
        """Undo the recipe (BatchNorm and requires_grad as before the fit), so the trained extractor is plain."""
        if self._applied is not None:
            self._applied.undo()
            self._applied = None


def _detached(batch: dict[str, Any]) -> dict[str, Any]:
    """A batch safe to keep until the epoch ends: tensors on CPU, no graph, no image tensors (memory)."""
    return {
        key: value.detach().cpu() if isinstance(value, Tensor) else value
        for key, value in batch.items()
        if key != C.INPUT_TENSORS_KEY
    }


class MetricValCallback(pl.Callback):
    """Feeds validation outputs to `metric` (an `EmbeddingMetrics`), logs its flat metrics each validation epoch.

    Batches are kept per process and gathered across processes at the end of the epoch; each row is placed by
    its dataset index (`idx`), so DDP's split and padding do not change the numbers. With `log_images`, pictures
    of the worst queries by each per-query metric go to every TensorBoard, W&B or MLflow logger, at the step of the
    metrics.
    """

    def __init__(
        self, metric: EmbeddingMetrics, log_images: bool = False, n_worst_queries: int = WORST_QUERIES_TO_PLOT
    ):
        super().__init__()
        if log_images and C.PATHS_KEY not in metric.extra_keys:
            raise InputError(
                f"log_images=True draws retrieval pictures, which need image paths: create the metric with "
                f"EmbeddingMetrics(extra_keys=('{C.PATHS_KEY}',))."
            )
        self.metric = metric
        self.log_images = log_images
        self.n_worst_queries = n_worst_queries
        self._batches: list[dict[str, Any]] = []
        self.last_metrics: dict[str, float] = {}

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches = []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._batches.append(_detached(outputs))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._batches:
            return
        batches = self._gathered(trainer)
        self.metric.setup(num_samples=_validation_size(trainer, batches))
        for batch in batches:
            self.metric.update_data(batch)
        self.metric.compute_metrics()
        self.last_metrics = {key: float(value) for key, value in flatten_metrics(self.metric.metrics).items()}
        pl_module.log_dict(self.last_metrics, on_epoch=True, add_dataloader_idx=False, sync_dist=False)
        if self.log_images and trainer.is_global_zero:
            self._log_worst_queries(trainer)
        self._batches = []

    def _gathered(self, trainer: pl.Trainer) -> list[dict[str, Any]]:
        if trainer.world_size == 1:
            return self._batches
        if any(C.INDEX_KEY not in batch for batch in self._batches):
            raise KeyError(
                f"With several processes, validation batches need the dataset index under '{C.INDEX_KEY}' to be "
                "put back in order; DatasetQueryGallery provides it."
            )
        per_process: list[list[dict[str, Any]] | None] = [None] * trainer.world_size
        torch.distributed.all_gather_object(per_process, self._batches)
        return [batch for batches in per_process for batch in batches]

    def _log_worst_queries(self, trainer: pl.Trainer) -> None:
        unreduced = flatten_metrics(self.metric.metrics_unreduced)
        step = _logging_step(trainer)
        for name, values in unreduced.items():
            if not (isinstance(values, Tensor) and name.startswith(C.OVERALL_CATEGORIES_KEY)):
                continue
            figure = self.metric.get_plot_for_worst_queries(
                metric_name=name, n_queries=self.n_worst_queries, n_instances=INSTANCES_PER_PLOTTED_QUERY
            )
            for logger in trainer.loggers:
                log_figure(logger, f"worst_queries/{name}", figure, step)
            plt.close(figure)


def _logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives the metrics logged now (not `global_step`, one ahead in validation during fit)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def _validation_size(trainer: pl.Trainer, batches: list[dict[str, Any]]) -> int:
    """Dataset size when the loader exposes it, else the largest index seen + 1, else the row count."""
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    if all(C.INDEX_KEY in batch for batch in batches):
        return int(max(int(torch.as_tensor(batch[C.INDEX_KEY]).max()) for batch in batches)) + 1
    return sum(len(batch[C.EMBEDDINGS_KEY]) for batch in batches)
