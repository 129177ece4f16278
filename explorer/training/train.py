"""`train_extractor`: the one training routine behind the CLI and the app.

A plain loop (no Lightning) so it runs in a UI worker thread, reports progress and every batch, stops on a cancel
request between batches and stops cleanly on a NaN/inf loss. It validates before training (epoch 0) and after
every epoch, and ends on the best epoch by a chosen validation metric, epoch 0 included, so a run never leaves the
model worse on validation than it started (or, on request, on the last epoch).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from explorer import const as C
from explorer.checks import check_choice, check_count, check_number
from explorer.data.datasets import DatasetQueryGallery, DatasetWithLabels
from explorer.data.images import typical_image_side
from explorer.errors import InputError
from explorer.inference.embed import INFERENCE_BATCH_SIZE, inference_on_images
from explorer.metrics.evaluation import EvaluationResult, evaluate_embeddings
from explorer.metrics.functional import CMC, MAP
from explorer.models.extractor import ViTExtractor
from explorer.models.pooling import pooling_of, set_pooling
from explorer.progress import Progress, report
from explorer.training.losses import TRIPLET_LOG_KEYS, NonFiniteLossError, TripletLossWithMiner, check_finite_loss
from explorer.training.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner, TripletsMiner
from explorer.training.recipe import OPTIMIZERS as OPTIMIZERS  # re-exported: the CLI's and the app's choices
from explorer.training.recipe import FineTuneRecipe, fine_tuning
from explorer.training.sampler import BalanceSampler

MINER_NAMES = ("all", "hard", "n_hard")
MAX_EPOCHS = 200
MAX_BATCH_LABELS = 1024
MAX_BATCH_INSTANCES = 1024
IMAGE_SIZE_RANGE = (32, 1024)  # training / inference resolution (None: `automatic_image_size`)
VAL_CMC_1 = C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, CMC, "1"))
VAL_MAP_5 = C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, MAP, "5"))
# The overall metrics every validation computes (see `evaluate_extractor`): what `select_by` usually names.
SELECTABLE_METRICS = (
    VAL_CMC_1,
    VAL_MAP_5,
    C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, CMC, "5")),
    C.METRIC_NAME_SEPARATOR.join((C.OVERALL_CATEGORIES_KEY, "precision", "5")),
)
KEEP_CHOICES = ("best", "last")
STEP_KEYS = ("loss", *TRIPLET_LOG_KEYS)  # what every training step reports, averaged per epoch in the history
CANCELLED = "Cancelled by the user."

CancelFlag = threading.Event | Callable[[], bool]
_RECIPE = FineTuneRecipe()  # the recipe's defaults are TrainingSettings' defaults
RECIPE_FIELDS = tuple(FineTuneRecipe.__dataclass_fields__)


@dataclass
class TrainingSettings:
    """Hyper-parameters of one run; stored in the checkpoint. The defaults are the app's Train tab's (bar epochs),
    measured in bench/bench_train_tab.py and bench/bench_training.py."""

    epochs: int = 3
    lr: float = _RECIPE.lr  # of the last stage (see `FineTuneRecipe`)
    optimizer: str = _RECIPE.optimizer  # one of OPTIMIZERS
    weight_decay: float = _RECIPE.weight_decay
    margin: float | None = 0.2  # None: soft-margin triplet loss
    relative_margin: bool = True  # margin x the triplets' mean distance (see `TripletLoss`); False: absolute
    miner: str = "all"  # one of MINER_NAMES
    max_output_triplets: int = 5000  # cap of the "all" miner
    n_hard_positive: int = 2  # "n_hard" miner
    n_hard_negative: int = 2
    n_labels: int = 6  # capped at the number of train labels
    n_instances: int = 4
    image_size: int | None = None  # None: automatic (`automatic_image_size`)
    augment: bool = True
    num_workers: int = 0
    eval_batch_size: int = INFERENCE_BATCH_SIZE
    seed: int = 0
    select_by: str = VAL_CMC_1  # the validation metric (higher is better) that picks the epoch to keep
    keep: str = "best"  # one of KEEP_CHOICES: the best epoch by `select_by` (epoch 0 included), or the last one
    # The fine-tuning recipe (`FineTuneRecipe`, with lr, optimizer and weight_decay): None = on for pretrained
    # weights or a checkpoint, off for a random init. On: BatchNorm statistics frozen, the first stages holding
    # `frozen_fraction` of the parameters frozen, each earlier stage's learning rate `layer_decay` times the next's.
    fine_tune: bool | None = _RECIPE.fine_tune
    frozen_fraction: float = _RECIPE.frozen_fraction
    layer_decay: float = _RECIPE.layer_decay
    warmup_fraction: float = _RECIPE.warmup_fraction  # of all steps: the lr rises linearly, then a cosine ...
    final_lr_fraction: float = _RECIPE.final_lr_fraction  # ... down to this fraction of `lr` at the last step
    pooling: str = _RECIPE.pooling  # "gem": a convnet's average pooling becomes GeM (p = 3) when fine-tuning

    def __post_init__(self) -> None:
        """The one validation of training settings (app, CLI and Python alike): every field is checked and
        normalised (30.0 -> 30), and a bad one is named with what it accepts, before any training starts."""
        self.epochs = check_count("epochs", self.epochs, 1, MAX_EPOCHS)
        for name, value in vars(self.recipe).items():  # checked (and normalised) by the recipe itself
            setattr(self, name, value)
        if self.margin is not None:
            self.margin = check_number("margin (None: soft margin)", self.margin, 0.0)
        if not isinstance(self.relative_margin, bool):
            raise InputError(f"relative_margin must be True or False, got {self.relative_margin!r}.")
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
        self.keep = check_choice("keep", self.keep, KEEP_CHOICES)
        if not isinstance(self.select_by, str) or self.select_by.count(C.METRIC_NAME_SEPARATOR) != 2:
            raise InputError(
                f"select_by must be a validation metric such as {', '.join(SELECTABLE_METRICS)}, got {self.select_by!r}."
            )

    @property
    def recipe(self) -> FineTuneRecipe:
        """The optimisation part of these settings, as `ExtractorModule` takes it too."""
        return FineTuneRecipe(**{name: getattr(self, name) for name in RECIPE_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochRecord:
    """One row of the training history: epoch 0 is the validation before training (no loss yet)."""

    epoch: int
    loss: float | None
    active_tri: float | None
    pos_dist: float | None
    neg_dist: float | None
    val_cmc_1: float | None
    val_map_5: float | None
    seconds: float


@dataclass
class BatchRecord:
    """One training step: its loss and triplet statistics; `position` is in epochs (epoch 1's last batch: 1.0)."""

    epoch: int
    batch: int
    n_batches: int
    position: float
    loss: float
    active_tri: float
    pos_dist: float
    neg_dist: float


@dataclass
class TrainingResult:
    extractor: ViTExtractor
    history: list[EpochRecord]  # epoch 0 (before training) first, then every completed epoch
    initial_metrics: dict[str, float] = field(default_factory=dict)  # validation before training
    final_metrics: dict[str, float] = field(default_factory=dict)  # validation of the returned weights
    stopped_reason: str | None = None  # None: all epochs ran
    checkpoint_path: Path | None = None  # holds the returned weights (those of `kept_epoch`)
    kept_epoch: int = 0  # the epoch whose weights `extractor` ends with (0: the weights before training)
    select_by: str = VAL_CMC_1
    keep: str = "best"
    settings: TrainingSettings = field(default_factory=TrainingSettings)  # as used (n_labels capped at the labels)

    @property
    def epochs_done(self) -> int:
        """How many training epochs completed (the history's rows after epoch 0)."""
        return max(len(self.history) - 1, 0)

    def history_frame(self) -> pd.DataFrame:
        return history_frame(self.history)

    def kept_summary(self) -> str:
        """Which epoch's weights the run ended on and why, e.g. "using epoch 3 of 5 (best OVERALL/cmc/1 = 0.7100)"."""
        value = self.final_metrics.get(self.select_by)
        if value is None:
            why = "the last: no validation data to choose by"
        else:
            why = f"{'best' if self.keep == 'best' else 'the last;'} {self.select_by} = {value:.4f}"
        before = ", the weights before training: no epoch beat them" if self.kept_epoch == 0 else ""
        return f"using epoch {self.kept_epoch} of {self.epochs_done} ({why}{before})"


def history_frame(records: Sequence[EpochRecord]) -> pd.DataFrame:
    """One row per validated epoch, epoch 0 first (also while training runs, before a `TrainingResult` exists)."""
    return pd.DataFrame([asdict(record) for record in records], columns=list(EpochRecord.__annotations__))


def batches_frame(records: Sequence[BatchRecord]) -> pd.DataFrame:
    """One row per training step, in order."""
    return pd.DataFrame([asdict(record) for record in records], columns=list(BatchRecord.__annotations__))


def make_miner(settings: TrainingSettings) -> TripletsMiner:
    if settings.miner == "hard":
        return HardTripletsMiner()
    if settings.miner == "n_hard":
        return NHardTripletsMiner(settings.n_hard_positive, settings.n_hard_negative)
    return AllTripletsMiner(max_output_triplets=settings.max_output_triplets)


def evaluate_extractor(
    extractor: ViTExtractor,
    dataset: DatasetQueryGallery,
    batch_size: int = INFERENCE_BATCH_SIZE,
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


def automatic_image_size(model_size: int, paths: list[str]) -> int:
    """The training size when none is given: the model's own, but no larger than the train images' typical side,
    and no smaller than half the model's own size.

    Why: a pretrained model is at its best at its own size, which real photos (larger than it) can feed. Smaller
    images would only be upsampled to it, which costs compute (224 px: 5x the pixels of 96) and adds no detail, so
    they train at their own side, down to half the model's size: below that the pretrained features fall apart
    (scikit-learn's 8 px digits, offline preset, bench/bench_image_sizes.py: validation cmc@1 0.626 at 32 px, 0.814
    at 64, 0.856 at 112, 0.852 at its own 224), and training there could never beat the model in use."""
    side = typical_image_side(paths)
    if side is None:
        return model_size
    return max(IMAGE_SIZE_RANGE[0], min(model_size, max(side, model_size // 2)))


def _val_dataset(
    extractor: ViTExtractor, data: DatasetQueryGallery | pd.DataFrame | None, root: str | Path
) -> DatasetQueryGallery | None:
    """`data` as a dataset read with the extractor's current transform (at its current size); None when empty."""
    if isinstance(data, pd.DataFrame):
        return DatasetQueryGallery(data, root, transform=extractor.get_transforms()) if len(data) else None
    return data


def _fitted(settings: TrainingSettings, image_size: int, labels: Sequence[int]) -> TrainingSettings:
    """`settings` as the run uses them: at `image_size`, n_labels at most the number of train labels (a small
    dataset trains on batches of all of them rather than failing; fewer than 2 labels get the sampler's message)."""
    n_labels = min(settings.n_labels, max(2, len(np.unique(np.asarray(labels)))))
    return replace(settings, image_size=image_size, n_labels=n_labels)


def _is_cancelled(cancel: CancelFlag | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def _headline(metrics: dict[str, float], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None or np.isnan(value) else float(value)


class _KeptWeights:
    """The weights a run ends on: the best epoch so far by `settings.select_by` (ties keep the earlier one,
    epoch 0 included), or the latest epoch with `keep="last"` or without validation data."""

    def __init__(self, extractor: ViTExtractor, metrics: dict[str, float], settings: TrainingSettings):
        if metrics and settings.select_by not in metrics:
            raise InputError(
                f"select_by {settings.select_by!r} is not a validation metric of this data: choose one of "
                f"{', '.join(sorted(metrics))}."
            )
        self.settings = settings
        self.by_last = settings.keep == "last" or not metrics
        self._take(extractor, 0, metrics)

    def _take(self, extractor: ViTExtractor, epoch: int, metrics: dict[str, float]) -> None:
        self.state = copy.deepcopy(extractor.state_dict())
        self.pooling = pooling_of(extractor.model)  # the recipe may switch it to GeM after epoch 0
        self.epoch, self.metrics = epoch, metrics

    def _put_back(self, extractor: ViTExtractor) -> None:
        set_pooling(extractor.model, self.pooling)
        extractor.load_state_dict(self.state)

    def _value(self, metrics: dict[str, float]) -> float:
        value = _headline(metrics, self.settings.select_by)
        return -np.inf if value is None else value

    def offer(self, extractor: ViTExtractor, epoch: int, metrics: dict[str, float]) -> None:
        """The weights at the end of `epoch`, kept when they are the last wanted or better than the kept ones."""
        if self.by_last or self._value(metrics) > self._value(self.metrics):
            self._take(extractor, epoch, metrics)

    def restore(self, extractor: ViTExtractor, result: TrainingResult) -> None:
        """Put the kept weights (and their pooling) back into `extractor` and say so in `result`."""
        self._put_back(extractor)
        result.kept_epoch, result.final_metrics = self.epoch, self.metrics

    def save(self, extractor: ViTExtractor, path: str | Path, epochs_done: int) -> Path:
        """Write the kept weights as `extractor`'s checkpoint (its own weights are left as they are)."""
        holder = extractor
        if self.epoch != epochs_done:  # `extractor` holds later weights than the kept ones
            holder = copy.deepcopy(extractor)
            self._put_back(holder)
        training = {**self.settings.to_dict(), "epochs_done": epochs_done, "epoch_in_use": self.epoch}
        return holder.save(path, training=training, metrics=self.metrics)


def _validation_phase(progress: Progress | None, fraction: float, phase: str) -> Progress | None:
    """`progress` for one validation: the run's fraction stays put, the message names the phase and the step."""
    if progress is None:
        return None
    progress(fraction, phase)
    return lambda _, step: progress(fraction, f"{phase} ({step})")


def _epoch_record(
    epoch: int, sums: dict[str, float], n_batches: int, metrics: dict[str, float], started: float
) -> EpochRecord:
    """The history row of `epoch` from its summed batch statistics and its validation."""
    means = {key: value / n_batches for key, value in sums.items()} if n_batches else dict.fromkeys(sums)
    return EpochRecord(
        epoch=epoch,
        **means,
        val_cmc_1=_headline(metrics, VAL_CMC_1),
        val_map_5=_headline(metrics, VAL_MAP_5),
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _RunHooks:
    """What a training step reports to and checks: the settings, progress, the per-batch callback and cancel."""

    settings: TrainingSettings
    progress: Progress | None
    on_batch_end: Callable[[BatchRecord], None] | None
    cancel: CancelFlag | None


def _train_epoch(
    extractor: ViTExtractor,
    loader: DataLoader,
    criterion: TripletLossWithMiner,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    run: _RunHooks,
) -> tuple[dict[str, float], str | None]:
    """One pass over `loader`: the summed step statistics, and why it stopped early (None: it did not)."""
    extractor.train()
    sums = dict.fromkeys(STEP_KEYS, 0.0)
    n_batches, n_epochs = len(loader), run.settings.epochs
    for step, batch in enumerate(loader, start=1):
        if _is_cancelled(run.cancel):
            return sums, f"{CANCELLED} Stopped in epoch {epoch}."
        loss = criterion(extractor(batch[C.INPUT_TENSORS_KEY]), batch[C.LABELS_KEY])
        try:
            check_finite_loss(loss, f"epoch {epoch}, batch {step}")
        except NonFiniteLossError as error:
            return sums, f"{error} Training stopped in epoch {epoch}."
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        logs = {key: criterion.last_logs[key] for key in TRIPLET_LOG_KEYS}
        record = BatchRecord(epoch, step, n_batches, epoch - 1 + step / n_batches, float(loss.detach()), **logs)
        for key in sums:
            sums[key] += getattr(record, key)
        if run.on_batch_end is not None:
            run.on_batch_end(record)
        report(
            run.progress,
            ((epoch - 1) * n_batches + step) / (n_epochs * n_batches),
            f"epoch {epoch}/{n_epochs}, batch {step}/{n_batches}, loss {record.loss:.4f}",
        )
    return sums, None


def train_extractor(
    extractor: ViTExtractor,
    train_data: DatasetWithLabels | pd.DataFrame,
    val_data: DatasetQueryGallery | pd.DataFrame | None = None,
    *,
    dataset_root: str | Path | None = None,
    settings: TrainingSettings | None = None,
    progress: Progress | None = None,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    on_batch_end: Callable[[BatchRecord], None] | None = None,
    cancel: CancelFlag | None = None,
    checkpoint_path: str | Path | None = None,
) -> TrainingResult:
    """Train `extractor` in place with a mined triplet loss on balanced batches; validate before training and
    after every epoch, and end on the kept epoch's weights (`settings.keep`, `settings.select_by`).

    `train_data` / `val_data` are datasets, or OML DataFrames (one split each) read relative to `dataset_root`
    with the model's transforms (augmented for training when `settings.augment`). `progress(fraction, message)`
    names the phase (validating before training, epoch k/n and its batch, validating after epoch k);
    `on_batch_end(record)` is called per step and `on_epoch_end(record)` per validation, epoch 0 first; `cancel`
    (an Event or a callable) is checked between batches. With `checkpoint_path`, the kept weights are written
    atomically after every completed epoch. A cancel or a NaN/inf loss stops training; the run then also ends on
    the kept weights of the epochs completed, the ones the checkpoint on disk and `final_metrics` describe.

    Epoch 0 is the extractor exactly as given, at its own image size (what it gives in use): training runs at
    `settings.image_size` (None: `automatic_image_size`), and a trained epoch is kept only when it beats that, so a size change never shows as a
    gain or a drop that training did not make; when epoch 0 is kept, the extractor keeps its own size. The
    optimisation follows `settings.recipe` (`FineTuneRecipe`), undone at the end; n_labels is capped at the number
    of train labels (`result.settings` holds what was used, the size included).
    """
    settings = settings or TrainingSettings()
    torch.manual_seed(settings.seed)
    root = dataset_root if dataset_root is not None else ""
    original_size = extractor.image_config
    baseline_dataset = _val_dataset(extractor, val_data, root)  # epoch 0: the extractor as given, at its own size
    train_dataset = train_data if isinstance(train_data, DatasetWithLabels) else DatasetWithLabels(train_data, root)
    image_size = settings.image_size or automatic_image_size(original_size.input_size, train_dataset.paths)
    settings = _fitted(settings, image_size, train_dataset.get_labels())
    extractor.set_input_size(settings.image_size)
    if train_dataset is not train_data:  # read with the training size's transforms (a given dataset keeps its own)
        train_dataset.transform = extractor.get_transforms(train=settings.augment)
    resized = extractor.image_config != original_size
    val_dataset = _val_dataset(extractor, val_data, root) if resized else baseline_dataset
    sampler = BalanceSampler(train_dataset.get_labels(), settings.n_labels, settings.n_instances, seed=settings.seed)
    loader = DataLoader(train_dataset, batch_sampler=sampler, num_workers=settings.num_workers)
    criterion = TripletLossWithMiner(
        margin=settings.margin, miner=make_miner(settings), need_logs=True, relative_margin=settings.relative_margin
    )
    n_batches = len(loader)
    run = _RunHooks(settings, progress, on_batch_end, cancel)

    def validate(phase: str, fraction: float, dataset: DatasetQueryGallery | None = val_dataset) -> dict[str, float]:
        if dataset is None:
            return {}
        images = f"{len(dataset.get_query_ids())} queries, {len(dataset.get_gallery_ids())} gallery images"
        step_progress = _validation_phase(progress, fraction, f"{phase}: {images}")
        return evaluate_extractor(
            extractor, dataset, settings.eval_batch_size, settings.num_workers, step_progress
        ).metrics_flat

    started = time.perf_counter()
    initial = validate("validating before training", 0.0, baseline_dataset)
    kept = _KeptWeights(extractor, initial, settings)
    result = TrainingResult(extractor, [], initial, initial, select_by=settings.select_by, keep=settings.keep)
    result.settings = settings
    result.history.append(_epoch_record(0, dict.fromkeys(STEP_KEYS), 0, initial, started))
    if on_epoch_end is not None:
        on_epoch_end(result.history[0])
    total_steps = settings.epochs * n_batches
    with fine_tuning(extractor, settings.recipe, total_steps) as recipe:
        for epoch in range(1, settings.epochs + 1):
            started = time.perf_counter()
            sums, result.stopped_reason = _train_epoch(
                extractor, loader, criterion, recipe.optimizer, recipe.scheduler, epoch, run
            )
            if result.stopped_reason is not None:
                break
            metrics = validate(f"validating after epoch {epoch}", epoch / settings.epochs)
            result.history.append(_epoch_record(epoch, sums, n_batches, metrics, started))
            kept.offer(extractor, epoch, metrics)
            if checkpoint_path is not None:
                result.checkpoint_path = kept.save(extractor, checkpoint_path, epoch)
            if on_epoch_end is not None:
                on_epoch_end(result.history[-1])
    kept.restore(extractor, result)
    if result.kept_epoch == 0:  # the weights before training stay, and so does the size they were used at
        extractor.image_config = original_size
    extractor.eval()
    return result
