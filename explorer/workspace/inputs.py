"""What the user may type or pick in the app, and the checks that turn it into values or a fixable message.

Every check raises `explorer.errors.InputError`, whose message says what was wrong, where, and what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from explorer import const as C
from explorer.checks import shown_token, typed_whole_number
from explorer.errors import InputError
from explorer.training.train import MINER_NAMES, OPTIMIZERS, TrainingSettings

DEFAULT_WORST_METRIC = f"{C.OVERALL_CATEGORIES_KEY}/map/5"
WEIGHT_CHOICES = ("pretrained", "random", "checkpoint")
COLOR_BY_CHOICES = ("label", "split", "query/gallery", "hit@1", "map@5")
METRIC_TOP_K = (1, 5, 10)
ALWAYS_TOP_K = (1, 5)  # hit@1 and map@5 colour the projection and rank worst queries by default
TRAIN_CHOICES = {"optimizer": tuple(OPTIMIZERS), "miner": MINER_NAMES}
MAX_QUERIES_PER_GRID = 30
MAX_INSTANCES = 30


# What the Train tab (and `/train`) starts with: `TrainingSettings`' defaults (the CLI's too) for 30 epochs, i.e. the
# fine-tuning recipe on batches of 6 labels x 4 images, AdamW lr 3e-4 for the last stage, margin 0.2 of the
# triplets' mean distance, at the automatic image size (the model's own, no larger than the data's images but at least
# half the model's: the 96 px shapes train at 112 px, 8 px digits too). Chosen for pretrained backbones on data far
# from (shapes) or close to (birds photos) their pretraining; the kept epoch never loses to the extractor in use
# (bench/bench_train_tab.py, bench_training.py).
TRAIN_DEFAULTS = TrainingSettings(epochs=30)


def parse_top_k(text: str) -> tuple[int, ...]:
    """The k of cmc / precision / map from text such as "1, 5, 10", sorted, with 1 and 5 always kept."""
    values = []
    for token in text.replace(",", " ").split():
        k = typed_whole_number(token)
        if k is None or k < 1:
            raise InputError(f"k must be a positive whole number such as '1, 5, 10', got {shown_token(token)}.")
        values.append(k)
    if not values:
        raise InputError("Give at least one k, such as '1, 5, 10'.")
    return tuple(sorted(set(values) | set(ALWAYS_TOP_K)))


def check_metric(metric_name: str, names: Sequence[str]) -> str:
    """`metric_name` when the evaluation has it as a per-query metric, else a message that lists those."""
    if metric_name not in names:
        raise InputError(f"Unknown metric {metric_name!r}: choose one of {', '.join(names)}.")
    return metric_name


def training_settings(
    epochs: float | None,
    lr: float | None,
    optimizer: str,
    margin: float | None,
    miner: str,
    n_labels: float | None,
    n_instances: float | None,
    image_size: float | None,
    soft_margin: bool = False,
) -> TrainingSettings:
    """The Train tab's fields as `TrainingSettings` (which validates them, naming a bad field).

    `soft_margin` selects the soft-margin triplet loss (the margin field is then ignored); an empty or 0 image
    size is automatic (see `Workspace.train`).
    """
    if not soft_margin and margin is None:
        raise InputError("margin must be 0 or more such as 0.2 (or tick soft margin), got an empty field.")
    return replace(
        TRAIN_DEFAULTS,
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        margin=None if soft_margin else margin,
        miner=miner,
        n_labels=n_labels,
        n_instances=n_instances,
        image_size=image_size or None,
    )
