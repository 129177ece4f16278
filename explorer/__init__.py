"""Metric-learning explorer: OML-style deep metric learning on images, written on timm and Lightning.

The names the seed workflow uses are importable from here, with OML's meaning:
`from explorer import DatasetWithLabels, BalanceSampler, ViTExtractor, TripletLossWithMiner, ...`.
This package never imports gradio; the app lives in `explorer.ui` on top of `explorer.workspace`.

The names are imported on first use (PEP 562), so `import explorer.const` or the app's start-up page costs no
torch import; `from explorer import ViTExtractor` works as usual.
"""

import importlib
from typing import Any

_HOMES = {
    "AllTripletsMiner": "explorer.training",
    "BalanceSampler": "explorer.training",
    "DatasetQueryGallery": "explorer.data",
    "DatasetValidationError": "explorer.data",
    "DatasetWithLabels": "explorer.data",
    "EmbeddingMetrics": "explorer.metrics",
    "ExtractorModule": "explorer.training",
    "HardTripletsMiner": "explorer.training",
    "ImageReadError": "explorer.data",
    "MOCK_DATASET_PATH": "explorer.const",
    "MetricValCallback": "explorer.training",
    "NHardTripletsMiner": "explorer.training",
    "RetrievalResults": "explorer.retrieval",
    "TripletLoss": "explorer.training",
    "TripletLossWithMiner": "explorer.training",
    "ViTExtractor": "explorer.models",
    "calc_retrieval_metrics": "explorer.metrics",
    "dataframe_from_image_folder": "explorer.data",
    "download_mock_dataset": "explorer.data",
    "evaluate_embeddings": "explorer.metrics",
    "flatten_metrics": "explorer.metrics",
    "generate_shapes_dataset": "explorer.data",
    "get_transforms_for_pretrained": "explorer.models",
    "inference_on_images": "explorer.inference",
    "load_dataset": "explorer.data",
    "pairwise_dist": "explorer.retrieval",
    "read_image": "explorer.data",
    "retrieve": "explorer.retrieval",
    "train_extractor": "explorer.training",
    "validate_dataframe": "explorer.data",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'explorer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
