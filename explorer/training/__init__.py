"""Training: balanced sampling, triplet mining and losses, Lightning integration and the `train_extractor` loop."""

from explorer.training.lightning import ExtractorModule, MetricValCallback, NonFiniteLossError
from explorer.training.loggers import create_logger
from explorer.training.losses import TripletLoss, TripletLossWithMiner
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
