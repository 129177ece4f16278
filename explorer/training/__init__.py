"""Training: balanced sampling, triplet mining and losses, Lightning integration and the `train_extractor` loop.

The Lightning names (`ExtractorModule`, `MetricValCallback`, `create_logger`) load Lightning on first use, not on
import: `train_extractor` and the app's start-up do not need it, and it costs about a second.
"""

from __future__ import annotations

import importlib
from typing import Any

from explorer.training.losses import NonFiniteLossError, TripletLoss, TripletLossWithMiner
from explorer.training.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner, TripletsMiner
from explorer.training.recipe import FineTuneRecipe
from explorer.training.sampler import BalanceSampler
from explorer.training.train import (
    EpochRecord,
    TrainingResult,
    TrainingSettings,
    evaluate_extractor,
    train_extractor,
)

_LIGHTNING_NAMES = {
    "ExtractorModule": "explorer.training.lightning",
    "MetricValCallback": "explorer.training.lightning",
    "create_logger": "explorer.training.loggers",
}


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING_NAMES:
        return getattr(importlib.import_module(_LIGHTNING_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AllTripletsMiner",
    "BalanceSampler",
    "EpochRecord",
    "ExtractorModule",
    "FineTuneRecipe",
    "HardTripletsMiner",
    "MetricValCallback",
    "NHardTripletsMiner",
    "NonFiniteLossError",
    "TrainingResult",
    "TrainingSettings",
    "TripletLoss",
    "TripletLossWithMiner",
    "TripletsMiner",
    "create_logger",
    "evaluate_extractor",
    "train_extractor",
]
