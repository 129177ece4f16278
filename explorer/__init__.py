"""Metric-learning explorer: OML-style deep metric learning on images, written on timm and Lightning.

The names the seed workflow uses are importable from here, with OML's meaning:
`from explorer import DatasetWithLabels, BalanceSampler, ViTExtractor, TripletLossWithMiner, ...`.
This package never imports gradio; the app lives in `explorer.ui` on top of `explorer.workspace`.
"""

from explorer.const import MOCK_DATASET_PATH
from explorer.data import (
    DatasetQueryGallery,
    DatasetValidationError,
    DatasetWithLabels,
    ImageReadError,
    dataframe_from_image_folder,
    download_mock_dataset,
    generate_shapes_dataset,
    load_dataset,
    read_image,
    validate_dataframe,
)
from explorer.inference import inference_on_images
from explorer.metrics import EmbeddingMetrics, calc_retrieval_metrics, evaluate_embeddings, flatten_metrics
from explorer.models import ViTExtractor, get_transforms_for_pretrained
from explorer.retrieval import RetrievalResults, pairwise_dist, retrieve
from explorer.training import (
    AllTripletsMiner,
    BalanceSampler,
    ExtractorModule,
    HardTripletsMiner,
    MetricValCallback,
    NHardTripletsMiner,
    TripletLoss,
    TripletLossWithMiner,
    train_extractor,
)

__all__ = [
    "MOCK_DATASET_PATH",
    "AllTripletsMiner",
    "BalanceSampler",
    "DatasetQueryGallery",
    "DatasetValidationError",
    "DatasetWithLabels",
    "EmbeddingMetrics",
    "ExtractorModule",
    "HardTripletsMiner",
    "ImageReadError",
    "MetricValCallback",
    "NHardTripletsMiner",
    "RetrievalResults",
    "TripletLoss",
    "TripletLossWithMiner",
    "ViTExtractor",
    "calc_retrieval_metrics",
    "dataframe_from_image_folder",
    "download_mock_dataset",
    "evaluate_embeddings",
    "flatten_metrics",
    "generate_shapes_dataset",
    "get_transforms_for_pretrained",
    "inference_on_images",
    "load_dataset",
    "pairwise_dist",
    "read_image",
    "retrieve",
    "train_extractor",
    "validate_dataframe",
]
