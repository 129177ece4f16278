"""`train_extractor`: the one training routine behind the CLI and the app.

A plain loop (no Lightning) so it runs in a UI worker thread, reports progress per batch, stops on a cancel
request between batches and stops cleanly on a NaN/inf loss, restoring the last good weights.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from explorer import const as C
from explorer.checks import check_choice, check_count, check_number
from explorer.data.datasets import DatasetQueryGallery, DatasetWithLabels
from explorer.inference.embed import inference_on_images
from explorer.metrics.evaluation import EvaluationResult, evaluate_embeddings
from explorer.metrics.functional import CMC, MAP
from explorer.models.extractor import ViTExtractor
from explorer.progress import Progress
from explorer.training.lightning import NonFiniteLossError, check_finite_loss
from explorer.training.losses import TRIPLET_LOG_KEYS, TripletLossWithMiner
from explorer.training.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner, TripletsMiner
from explorer.training.sampler import BalanceSampler

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}
MINER_NAMES = ("all", "hard", "n_hard")
MAX_EPOCHS = 200
MAX_BATCH_LABELS = 1024
MAX_BATCH_INSTANCES = 1024
IMAGE_SIZE_RANGE = (32, 1024)  # training / inference resolution (None: the model's own)
VAL_CMC_1 = C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, CMC, "1"))
VAL_MAP_5 = C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, MAP, "5"))
CANCELLED = "Cancelled by the user."

CancelFlag = threading.Event | Callable[[], bool]


@dataclass
class TrainingSettings:
    """Hyper-parameters of one run; stored in the checkpoint."""

    epochs: int = 3
    lr: float = 1e-4
    optimizer: str = "adamw"  # one of OPTIMIZERS
    weight_decay: float = 0.0
    margin: float | None = 0.1  # None: soft-margin triplet loss
    miner: str = "all"  # one of MINER_NAMES
    max_output_triplets: int = 5000  # cap of the "all" miner
    n_hard_positive: int = 2  # "n_hard" miner
    n_hard_negative: int = 2
    n_labels: int = 4
    n_instances: int = 4
    image_size: int | None = None  # None: the model's own input size
    augment: bool = True
    num_workers: int = 0
    eval_batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        """The one validation of training settings (app, CLI and Python alike): every field is checked and
        normalised (30.0 -> 30), and a bad one is named with what it accepts, before any training starts."""
        self.epochs = check_count("epochs", self.epochs, 1, MAX_EPOCHS)
        self.lr = check_number("learning rate (lr)", self.lr, 0.0, strictly_above=True)
        self.optimizer = check_choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        self.weight_decay = check_number("weight decay", self.weight_decay, 0.0)
        if self.margin is not None:
            self.margin = check_number("margin (None: soft margin)", self.margin, 0.0)
        self.miner = check_choice("miner", self.miner, MINER_NAMES)
        self.max_output_triplets = check_count("max_output_triplets", self.max_output_triplets, 1)
        self.n_hard_positive = check_count("n_hard_positive", self.n_hard_positive, 1)
        self.n_hard_negative = check_count("n_hard_negative", self.n_hard_negative, 1)
        self.n_labels = check_count("n_labels", self.n_labels, 2, MAX_BATCH_LABELS)
        self.n_instances = check_count("n_instances", self.n_instances, 2, MAX_BATCH_INSTANCES)
        if self.image_size is not None:
            self.image_size = check_count("image size", self.image_size, *IMAGE_SIZE_RANGE)
        self.num_workers = check_count("num_workers", self.num_workers, 0)
        self.eval_batch_size = check_count("eval_batch_size", self.eval_batch_size, 1)
        self.seed = check_count("seed", self.seed, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochRecord:
    """One row of the training history."""

    epoch: int
    loss: float
    active_tri: float
    pos_dist: float
    neg_dist: float
    val_cmc_1: float | None
    val_map_5: float | None
    seconds: float


@dataclass
class TrainingResult:
    extractor: ViTExtractor
    history: list[EpochRecord]
    initial_metrics: dict[str, float] = field(default_factory=dict)  # validation before training
    final_metrics: dict[str, float] = field(default_factory=dict)  # validation of the returned weights
    stopped_reason: str | None = None  # None: all epochs ran
    checkpoint_path: Path | None = None

    def history_frame(self) -> pd.DataFrame:
        return history_frame(self.history)


def history_frame(records: Sequence[EpochRecord]) -> pd.DataFrame:
    """One row per finished epoch (also while training runs, before a `TrainingResult` exists)."""
    return pd.DataFrame([asdict(record) for record in records], columns=list(EpochRecord.__annotations__))


def make_miner(settings: TrainingSettings) -> TripletsMiner:
    if settings.miner == "hard":
        return HardTripletsMiner()
    if settings.miner == "n_hard":
        return NHardTripletsMiner(settings.n_hard_positive, settings.n_hard_negative)
    return AllTripletsMiner(max_output_triplets=settings.max_output_triplets)


def make_optimizer(settings: TrainingSettings, parameters: Any) -> torch.optim.Optimizer:
    extra = {"momentum": 0.9} if settings.optimizer == "sgd" else {}
    return OPTIMIZERS[settings.optimizer](parameters, lr=settings.lr, weight_decay=settings.weight_decay, **extra)


def evaluate_extractor(
    extractor: ViTExtractor,
    dataset: DatasetQueryGallery,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Embed a query/gallery dataset (with its own transform) and compute cmc@1/5, precision@5, map@5."""
    embeddings = inference_on_images(
        extractor,
        dataset.paths,
        dataset.transform,
        num_workers=num_workers,
        batch_size=batch_size,
        progress=progress,
        bboxes=dataset.bboxes,
    )
    return evaluate_embeddings(embeddings, dataset.df, cmc_top_k=(1, 5), precision_top_k=(5,), map_top_k=(5,))


def _datasets(
    extractor: ViTExtractor,
    train_data: DatasetWithLabels | pd.DataFrame,
    val_data: DatasetQueryGallery | pd.DataFrame | None,
    dataset_root: str | Path | None,
    augment: bool,
) -> tuple[DatasetWithLabels, DatasetQueryGallery | None]:
    root = dataset_root if dataset_root is not None else ""
    if isinstance(train_data, pd.DataFrame):
        train_data = DatasetWithLabels(train_data, root, transform=extractor.get_transforms(train=augment))
    if isinstance(val_data, pd.DataFrame):
        val_data = DatasetQueryGallery(val_data, root, transform=extractor.get_transforms()) if len(val_data) else None
    return train_data, val_data


def _is_cancelled(cancel: CancelFlag | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def _headline(metrics: dict[str, float], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None or np.isnan(value) else float(value)


def train_extractor(
    extractor: ViTExtractor,
    train_data: DatasetWithLabels | pd.DataFrame,
    val_data: DatasetQueryGallery | pd.DataFrame | None = None,
    *,
    dataset_root: str | Path | None = None,
    settings: TrainingSettings | None = None,
    progress: Progress | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    cancel: CancelFlag | None = None,
    checkpoint_path: str | Path | None = None,
) -> TrainingResult:
    """Train `extractor` in place with a mined triplet loss on balanced batches; validate after every epoch.

    `train_data` / `val_data` are datasets, or OML DataFrames (one split each) read relative to `dataset_root`
    with the model's transforms (augmented for training when `settings.augment`). `progress(fraction, message)`
    is called per batch, `on_epoch_end(record)` per epoch; `cancel` (an Event or a callable) is checked between
    batches. With `checkpoint_path`, a checkpoint is written atomically after every completed epoch. A cancel or
    a NaN/inf loss stops training and restores the weights of the last completed epoch, the ones the checkpoint on
    disk, `history[-1]` and `final_metrics` describe.
    """
    settings = settings or TrainingSettings()
    torch.manual_seed(settings.seed)
    extractor.set_input_size(settings.image_size)
    train_dataset, val_dataset = _datasets(extractor, train_data, val_data, dataset_root, settings.augment)
    sampler = BalanceSampler(train_dataset.get_labels(), settings.n_labels, settings.n_instances, seed=settings.seed)
    loader = DataLoader(train_dataset, batch_sampler=sampler, num_workers=settings.num_workers)
    criterion = TripletLossWithMiner(margin=settings.margin, miner=make_miner(settings), need_logs=True)
    optimizer = make_optimizer(settings, extractor.parameters())

    def validate() -> dict[str, float]:
        if val_dataset is None:
            return {}
        return evaluate_extractor(extractor, val_dataset, settings.eval_batch_size, settings.num_workers).metrics_flat

    result = TrainingResult(extractor=extractor, history=[], initial_metrics=validate())
    result.final_metrics = result.initial_metrics
    last_good_state = copy.deepcopy(extractor.state_dict())
    n_batches = len(loader)
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        extractor.train()
        sums = dict.fromkeys(("loss", *TRIPLET_LOG_KEYS), 0.0)
        for step, batch in enumerate(loader, start=1):
            if _is_cancelled(cancel):
                extractor.load_state_dict(last_good_state)
                result.stopped_reason = f"{CANCELLED} Weights are those of the end of epoch {epoch - 1}."
                break
            loss = criterion(extractor(batch[C.INPUT_TENSORS_KEY]), batch[C.LABELS_KEY])
            try:
                check_finite_loss(loss, f"epoch {epoch}, batch {step}")
            except NonFiniteLossError as error:
                extractor.load_state_dict(last_good_state)
                result.stopped_reason = f"{error} Weights were restored to the end of epoch {epoch - 1}."
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            sums["loss"] += loss_value
            for key in TRIPLET_LOG_KEYS:
                sums[key] += criterion.last_logs[key]
            if progress is not None:
                progress(
                    ((epoch - 1) * n_batches + step) / (settings.epochs * n_batches),
                    f"Epoch {epoch}/{settings.epochs}, batch {step}/{n_batches}, loss {loss_value:.4f}",
                )
        if result.stopped_reason is not None:
            break
        metrics = validate()
        result.final_metrics = metrics
        record = EpochRecord(
            epoch=epoch,
            **{key: value / max(n_batches, 1) for key, value in sums.items()},
            val_cmc_1=_headline(metrics, VAL_CMC_1),
            val_map_5=_headline(metrics, VAL_MAP_5),
            seconds=time.perf_counter() - started,
        )
        result.history.append(record)
        last_good_state = copy.deepcopy(extractor.state_dict())
        if checkpoint_path is not None:
            training = {**settings.to_dict(), "epochs_done": epoch}
            result.checkpoint_path = extractor.save(checkpoint_path, training=training, metrics=metrics)
        if on_epoch_end is not None:
            on_epoch_end(record)
    extractor.eval()
    return result
